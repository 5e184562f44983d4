//! `auth_config!`: the app's authentication providers → the `cvx.auth`
//! record.
//!
//! Grammar (see the `convex_sdk::auth_config!` docs for the user's view):
//!
//! ```text
//! config   := "providers" ":" "[" (provider ","?)* "]" ","?
//! provider := "{" "domain" ":" value "," "application_id" ":" value ","? "}"    (any order)
//!           | "{" "custom_jwt" ":" "{" field ("," field)* ","? "}" ","? "}"
//! field    := ("issuer" | "jwks" | "algorithm" | "application_id") ":" value
//! value    := string | "env" "(" string ")"
//! ```
//!
//! The record is Convex's `auth.config.ts` providers as JSON, with
//! Convex's key names: `{"abi":1,"providers":[{"domain":..,"applicationID":..},
//! {"type":"customJwt","issuer":..,"jwks":..,"algorithm":..,"applicationID":..}]}`;
//! `env("NAME")` is `{"env":"NAME"}`, which the server replaces with the
//! deployment's variable at deploy. Everything is known at expansion time,
//! so the record is a byte string literal in a `#[used]` static.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream};
use syn::{braced, bracketed, parenthesized, Ident, LitStr, Token};

use crate::types::json_string;

pub(crate) struct AuthConfig {
    providers: Vec<Provider>,
}

enum Provider {
    Oidc {
        domain: Setting,
        application_id: Setting,
    },
    CustomJwt {
        issuer: Setting,
        jwks: Setting,
        algorithm: Setting,
        application_id: Option<Setting>,
    },
}

/// The fields of a `{ ... }`: key, value, the key's span.
type Fields = Vec<(String, Setting, Span)>;

/// A provider's string field: a literal, or a deployment variable.
enum Setting {
    Literal(String),
    Env(String),
}

impl Setting {
    fn json(&self) -> String {
        match self {
            Setting::Literal(s) => json_string(s),
            Setting::Env(name) => format!("{{\"env\":{}}}", json_string(name)),
        }
    }
}

/// Letters, digits and `_`, a letter first, at most 40: the server's rule
/// for variable names (`cvx env set`).
fn valid_env_name(s: &str) -> bool {
    s.len() <= 40
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What a field's literal must look like.
#[derive(Clone, Copy)]
enum Check {
    /// An http(s) URL (an issuer, a domain).
    Url,
    /// An http(s) URL or a `data:` URI (a JWKS).
    Jwks,
    /// `RS256` or `ES256`.
    Algorithm,
    /// Any non-empty string.
    NonEmpty,
}

fn check_literal(key: &str, check: Check, lit: &LitStr) -> syn::Result<String> {
    let v = lit.value();
    let err = |m: String| Err(syn::Error::new(lit.span(), m));
    if v.trim().is_empty() {
        return err(format!("`{key}` must not be empty"));
    }
    let url = v.starts_with("https://") || v.starts_with("http://");
    match check {
        Check::Url if !url || v.chars().any(char::is_whitespace) => err(format!(
            "`{key}` must be the issuer's URL, starting with `https://` (`http://` only for a local test issuer), \
             e.g. \"https://issuer.example.com\"; or `env(\"NAME\")` to take it from the deployment"
        )),
        Check::Jwks if !(url || v.starts_with("data:")) || v.chars().any(char::is_whitespace) => err(format!(
            "`{key}` must be the URL of the key set, e.g. \"https://issuer.example.com/.well-known/jwks.json\" \
             (or a `data:` URI holding it); or `env(\"NAME\")` to take it from the deployment"
        )),
        Check::Algorithm if v != "RS256" && v != "ES256" => {
            let hint = if matches!(v.to_ascii_uppercase().as_str(), "RS256" | "ES256") {
                format!(" (write \"{}\")", v.to_ascii_uppercase())
            } else {
                String::new()
            };
            err(format!(
                "unsupported algorithm \"{v}\"{hint}: `algorithm` is \"RS256\" or \"ES256\""
            ))
        }
        _ => Ok(v),
    }
}

/// `"literal"` or `env("NAME")`.
fn parse_setting(input: ParseStream<'_>, key: &str, check: Check) -> syn::Result<Setting> {
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        return check_literal(key, check, &lit).map(Setting::Literal);
    }
    if input.peek(Ident) && input.fork().parse::<Ident>()? == "env" {
        let kw: Ident = input.parse()?;
        if input.peek(Token![!]) {
            return Err(syn::Error::new(
                kw.span(),
                "write `env(\"NAME\")`, without `!`: the server reads the deployment's variable NAME \
                 (`cvx env set NAME ...`) at deploy; `env!` would read the compiler's environment",
            ));
        }
        let content;
        parenthesized!(content in input);
        let name: LitStr = content.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "`env` takes the variable's name as a string literal: `env(\"AUTH_ISSUER\")`",
            )
        })?;
        if !content.is_empty() {
            return Err(content.error("`env` takes one argument, the variable's name"));
        }
        if !valid_env_name(&name.value()) {
            return Err(syn::Error::new(
                name.span(),
                "an environment variable's name is 1 to 40 letters, digits and underscores, starting with a letter",
            ));
        }
        return Ok(Setting::Env(name.value()));
    }
    Err(input.error(format!(
        "expected the value of `{key}`: a string literal, or `env(\"NAME\")` for the deployment's variable NAME"
    )))
}

/// The usual spellings of Convex's `applicationID`, for a hint.
fn application_id_hint(key: &str) -> bool {
    key != "application_id" && key.to_ascii_lowercase().replace('_', "") == "applicationid"
}

/// The `key: value` fields of a `{ ... }`, each key once and one of
/// `allowed` (with the value's check); `nested` parses `custom_jwt`.
fn parse_fields(
    content: ParseStream<'_>,
    what: &str,
    allowed: &[(&str, Check)],
    mut nested: impl FnMut(&Ident, ParseStream<'_>) -> syn::Result<bool>,
) -> syn::Result<Fields> {
    let mut fields: Fields = Vec::new();
    let expected = allowed
        .iter()
        .map(|(k, _)| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    while !content.is_empty() {
        let key = parse_key(content)?;
        let name = key.to_string();
        let name = name.strip_prefix("r#").unwrap_or(&name).to_string();
        if fields.iter().any(|(k, _, _)| *k == name) {
            return Err(syn::Error::new(key.span(), format!("`{name}` is given twice")));
        }
        content
            .parse::<Token![:]>()
            .map_err(|e| syn::Error::new(e.span(), format!("expected `:` after `{name}`")))?;
        if !nested(&key, content)? {
            let Some((_, check)) = allowed.iter().find(|(k, _)| *k == name) else {
                let hint = if application_id_hint(&name) {
                    " (Convex's `applicationID` is written `application_id` here)".to_string()
                } else if name == "type" {
                    " (a custom JWT provider is written `{ custom_jwt: { issuer: ..., jwks: ..., algorithm: ... } }`)"
                        .to_string()
                } else {
                    String::new()
                };
                return Err(syn::Error::new(
                    key.span(),
                    format!("unknown key `{name}` in {what}: expected {expected}{hint}"),
                ));
            };
            let value = parse_setting(content, &name, *check)?;
            fields.push((name, value, key.span()));
        }
        if content.is_empty() {
            break;
        }
        content
            .parse::<Token![,]>()
            .map_err(|e| syn::Error::new(e.span(), "expected `,` between the fields of a provider"))?;
    }
    Ok(fields)
}

/// Takes the field `key` out of `fields`.
fn take(fields: &mut Fields, key: &str) -> Option<Setting> {
    let i = fields.iter().position(|(k, _, _)| k == key)?;
    Some(fields.remove(i).1)
}

/// A field's key: an identifier, keywords included (`type` gets a hint
/// rather than a parse error).
fn parse_key(input: ParseStream<'_>) -> syn::Result<Ident> {
    use syn::ext::IdentExt;
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        let v = lit.value();
        let key = if application_id_hint(&v) {
            "application_id"
        } else {
            v.as_str()
        };
        return Err(syn::Error::new(
            lit.span(),
            format!("write the key without quotes: `{key}: ...`"),
        ));
    }
    Ident::parse_any(input).map_err(|e| syn::Error::new(e.span(), "expected a key, e.g. `domain: \"https://...\"`"))
}

fn parse_provider(input: ParseStream<'_>) -> syn::Result<Provider> {
    if !input.peek(syn::token::Brace) {
        return Err(input.error(
            "expected a provider: `{ domain: \"https://issuer.example.com\", application_id: \"my-app\" }` \
             or `{ custom_jwt: { issuer: ..., jwks: ..., algorithm: \"RS256\" } }`",
        ));
    }
    let content;
    let brace = braced!(content in input);
    let mut custom: Option<(Span, Fields)> = None;
    let mut fields = parse_fields(
        &content,
        "a provider",
        &[
            ("domain", Check::Url),
            ("application_id", Check::NonEmpty),
            ("custom_jwt", Check::NonEmpty),
        ],
        |key, content| {
            if key != "custom_jwt" {
                return Ok(false);
            }
            if custom.is_some() {
                return Err(syn::Error::new(key.span(), "`custom_jwt` is given twice"));
            }
            if !content.peek(syn::token::Brace) {
                return Err(content.error(
                    "`custom_jwt` takes the provider's settings: `custom_jwt: { issuer: \"https://...\", \
                     jwks: \"https://.../jwks.json\", algorithm: \"RS256\", application_id: \"my-app\" }`",
                ));
            }
            let inner;
            let brace = braced!(inner in content);
            let f = parse_fields(
                &inner,
                "`custom_jwt`",
                &[
                    ("issuer", Check::Url),
                    ("jwks", Check::Jwks),
                    ("algorithm", Check::Algorithm),
                    ("application_id", Check::NonEmpty),
                ],
                |_, _| Ok(false),
            )?;
            custom = Some((brace.span.join(), f));
            Ok(true)
        },
    )?;
    if let Some((span, mut f)) = custom {
        if let Some((k, _, s)) = fields.first() {
            return Err(syn::Error::new(
                *s,
                format!(
                    "`{k}` does not go next to `custom_jwt`: a custom JWT provider's settings all go inside \
                     `custom_jwt: {{ ... }}`"
                ),
            ));
        }
        let missing = |what: &str, example: &str| {
            syn::Error::new(span, format!("`custom_jwt` needs `{what}`, e.g. `{what}: {example}`"))
        };
        let issuer = take(&mut f, "issuer").ok_or_else(|| missing("issuer", "\"https://issuer.example.com\""))?;
        let jwks = take(&mut f, "jwks")
            .ok_or_else(|| missing("jwks", "\"https://issuer.example.com/.well-known/jwks.json\""))?;
        let algorithm = take(&mut f, "algorithm").ok_or_else(|| missing("algorithm", "\"RS256\" (or \"ES256\")"))?;
        let application_id = take(&mut f, "application_id");
        return Ok(Provider::CustomJwt {
            issuer,
            jwks,
            algorithm,
            application_id,
        });
    }
    let span = brace.span.join();
    let domain = take(&mut fields, "domain").ok_or_else(|| {
        syn::Error::new(
            span,
            "a provider needs `domain` (the OpenID Connect issuer's URL), e.g. \
             `{ domain: \"https://issuer.example.com\", application_id: \"my-app\" }`; \
             a custom JWT provider is `{ custom_jwt: { ... } }`",
        )
    })?;
    let application_id = take(&mut fields, "application_id").ok_or_else(|| {
        syn::Error::new(
            span,
            "an OpenID Connect provider needs `application_id`, the audience (`aud`) its tokens are issued for, \
             e.g. `application_id: \"my-app\"`",
        )
    })?;
    Ok(Provider::Oidc { domain, application_id })
}

impl Parse for AuthConfig {
    fn parse(input: ParseStream<'_>) -> syn::Result<AuthConfig> {
        let expected = "expected `providers: [ ... ]`, e.g. \
                        `providers: [{ domain: env(\"AUTH_ISSUER\"), application_id: \"my-app\" }]`";
        let key: Ident = input.parse().map_err(|e| syn::Error::new(e.span(), expected))?;
        if key != "providers" {
            return Err(syn::Error::new(key.span(), format!("unknown key `{key}`: {expected}")));
        }
        input
            .parse::<Token![:]>()
            .map_err(|e| syn::Error::new(e.span(), expected))?;
        if !input.peek(syn::token::Bracket) {
            return Err(input.error("`providers` is a list: `providers: [ { ... }, { ... } ]`"));
        }
        let content;
        bracketed!(content in input);
        let mut providers = Vec::new();
        while !content.is_empty() {
            providers.push(parse_provider(&content)?);
            if content.is_empty() {
                break;
            }
            content
                .parse::<Token![,]>()
                .map_err(|e| syn::Error::new(e.span(), "expected `,` between providers"))?;
        }
        if input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
        }
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after `providers: [...]` (declare every provider in the list)"));
        }
        Ok(AuthConfig { providers })
    }
}

impl AuthConfig {
    /// The record's JSON.
    pub(crate) fn to_json(&self) -> String {
        let providers: Vec<String> = self
            .providers
            .iter()
            .map(|p| match p {
                Provider::Oidc { domain, application_id } => {
                    format!(
                        r#"{{"domain":{},"applicationID":{}}}"#,
                        domain.json(),
                        application_id.json()
                    )
                }
                Provider::CustomJwt {
                    issuer,
                    jwks,
                    algorithm,
                    application_id,
                } => {
                    let app = application_id
                        .as_ref()
                        .map(|a| format!(r#","applicationID":{}"#, a.json()))
                        .unwrap_or_default();
                    format!(
                        r#"{{"type":"customJwt","issuer":{},"jwks":{},"algorithm":{}{app}}}"#,
                        issuer.json(),
                        jwks.json(),
                        algorithm.json()
                    )
                }
            })
            .collect();
        format!(r#"{{"abi":1,"providers":[{}]}}"#, providers.join(","))
    }

    pub(crate) fn expand(&self) -> TokenStream {
        crate::record::framed(
            "cvx.auth",
            "__CONVEX_AUTH",
            "__CONVEX_AUTH_JSON",
            "ABI \"Authentication\"",
            &self.to_json(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> Result<String, String> {
        syn::parse_str::<AuthConfig>(s)
            .map(|c| c.to_json())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn record() {
        assert_eq!(
            json(
                r#"providers: [
                    { domain: env("AUTH_ISSUER"), application_id: "my-app" },
                    { custom_jwt: { issuer: "https://x", jwks: "https://x/jwks.json", algorithm: "ES256", application_id: "my-app" } },
                    { application_id: "a\"b", domain: "https://issuer.example" },
                    { custom_jwt: { algorithm: env("ALG"), jwks: "data:text/plain;charset=utf-8;base64,e30=", issuer: "http://127.0.0.1:9" }, },
                ],"#
            )
            .unwrap(),
            concat!(
                r#"{"abi":1,"providers":["#,
                r#"{"domain":{"env":"AUTH_ISSUER"},"applicationID":"my-app"},"#,
                r#"{"type":"customJwt","issuer":"https://x","jwks":"https://x/jwks.json","algorithm":"ES256","applicationID":"my-app"},"#,
                r#"{"domain":"https://issuer.example","applicationID":"a\"b"},"#,
                r#"{"type":"customJwt","issuer":"http://127.0.0.1:9","jwks":"data:text/plain;charset=utf-8;base64,e30=","algorithm":{"env":"ALG"}}"#,
                r#"]}"#
            )
        );
        assert_eq!(json("providers: []").unwrap(), r#"{"abi":1,"providers":[]}"#);
    }

    #[test]
    fn errors() {
        let e = |s: &str| json(s).unwrap_err();
        assert!(e("").contains("expected `providers: [ ... ]`"));
        assert!(e("provider: []").contains("unknown key `provider`"));
        assert!(e(r#"providers: [{ domain: "https://x" }]"#).contains("needs `application_id`"));
        assert!(e(r#"providers: [{ application_id: "a" }]"#).contains("needs `domain`"));
        assert!(e(r#"providers: [{ domain: "x.example", application_id: "a" }]"#).contains("starting with `https://`"));
        assert!(e(r#"providers: [{ domain: "https://x", applicationID: "a" }]"#).contains("written `application_id`"));
        assert!(
            e(r#"providers: [{ domain: "https://x", application_id: "a", audience: "b" }]"#)
                .contains("unknown key `audience` in a provider")
        );
        assert!(e(r#"providers: [{ domain: "https://x", domain: "https://y" }]"#).contains("given twice"));
        assert!(e(r#"providers: [{ type: "customJwt", issuer: "https://x" }]"#).contains("custom_jwt: {"));
        assert!(
            e(r#"providers: [{ custom_jwt: { issuer: "https://x", jwks: "https://x/k" } }]"#)
                .contains("needs `algorithm`")
        );
        assert!(
            e(r#"providers: [{ custom_jwt: { issuer: "https://x", algorithm: "RS256" } }]"#).contains("needs `jwks`")
        );
        assert!(
            e(r#"providers: [{ custom_jwt: { jwks: "https://x/k", algorithm: "RS256" } }]"#).contains("needs `issuer`")
        );
        assert!(
            e(r#"providers: [{ custom_jwt: { issuer: "https://x", jwks: "https://x/k", algorithm: "HS256" } }]"#)
                .contains("\"RS256\" or \"ES256\"")
        );
        assert!(
            e(r#"providers: [{ custom_jwt: { issuer: "https://x", jwks: "https://x/k", algorithm: "rs256" } }]"#)
                .contains("write \"RS256\"")
        );
        assert!(
            e(r#"providers: [{ custom_jwt: { issuer: "https://x", domain: "https://x" } }]"#)
                .contains("unknown key `domain` in `custom_jwt`")
        );
        assert!(e(r#"providers: [{ application_id: "a", custom_jwt: { issuer: "https://x", jwks: "https://x/k", algorithm: "RS256" } }]"#)
            .contains("does not go next to `custom_jwt`"));
        assert!(e(r#"providers: [{ domain: env("1X"), application_id: "a" }]"#).contains("1 to 40 letters"));
        assert!(e(r#"providers: [{ domain: env!("X"), application_id: "a" }]"#).contains("without `!`"));
        assert!(e(r#"providers: [{ domain: env(X), application_id: "a" }]"#).contains("env(\"AUTH_ISSUER\")"));
        assert!(e(r#"providers: [{ domain: ISSUER, application_id: "a" }]"#).contains("a string literal, or `env"));
        assert!(e(r#"providers: [{ domain: "https://x", application_id: "" }]"#).contains("must not be empty"));
        assert!(e(r#"providers: [{ "domain": "https://x" }]"#).contains("without quotes"));
        assert!(e(
            r#"providers: [{ domain: "https://x", application_id: "a" } { domain: "https://y", application_id: "a" }]"#
        )
        .contains("between providers"));
        assert!(e(r#"providers: [], x"#).contains("unexpected tokens"));
    }
}
