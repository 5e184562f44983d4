//! `crons!`: scheduled functions → the `cvx.crons` record.
//!
//! Grammar (see the `convex_sdk::crons!` docs for the user's view):
//!
//! ```text
//! crons    := (cron (";" cron)* ";"?)?
//! cron     := string schedule "=>" target object?
//! schedule := "every" number unit | "cron" string
//! target   := string | path
//! object   := "{" (string ":" literal ","?)* "}"
//! literal  := object | "[" literal,* "]" | string | "-"? number | true | false | null | b"..."
//! ```
//!
//! Everything but a target given as a Rust path is known at expansion
//! time and validated here. A Rust path becomes
//! `<path as ConvexFunction>::PATH`, so the record is assembled by the
//! SDK's const fns (`crons_record`), like a function's metadata.

use std::collections::{BTreeMap, BTreeSet};

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{braced, bracketed, Ident, Lit, LitStr, Token};

use crate::types::json_string;

pub(crate) struct Crons {
    crons: Vec<Cron>,
}

struct Cron {
    name: String,
    /// The schedule's JSON.
    schedule: String,
    target: Target,
    /// The arguments' JSON (an object).
    args: String,
}

enum Target {
    Path(String),
    Function(syn::Path),
}

impl Parse for Crons {
    fn parse(input: ParseStream<'_>) -> syn::Result<Crons> {
        let mut crons = Vec::new();
        let mut names = BTreeSet::new();
        while !input.is_empty() {
            let name: LitStr = input.parse().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "expected the cron's name, a string literal: `\"cleanup\" every 1 hour => ...`",
                )
            })?;
            if name.value().is_empty() {
                return Err(syn::Error::new(name.span(), "a cron's name must not be empty"));
            }
            if !names.insert(name.value()) {
                return Err(syn::Error::new(
                    name.span(),
                    format!("there is already a cron named \"{}\"", name.value()),
                ));
            }
            let schedule = parse_schedule(input)?;
            input.parse::<Token![=>]>().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "expected `=>` and the function to run, e.g. `=> \"users:cleanup\"`",
                )
            })?;
            let target = if input.peek(LitStr) {
                let lit: LitStr = input.parse()?;
                check_path(&lit)?;
                Target::Path(lit.value())
            } else {
                Target::Function(input.call(syn::Path::parse_mod_style).map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "expected the function to run: a path string (\"module:function\") or the name of a \
                         #[mutation] or #[action]",
                    )
                })?)
            };
            let args = if input.peek(syn::token::Brace) {
                literal(input)?
            } else {
                "{}".to_string()
            };
            crons.push(Cron {
                name: name.value(),
                schedule,
                target,
                args,
            });
            if input.is_empty() {
                break;
            }
            input
                .parse::<Token![;]>()
                .map_err(|e| syn::Error::new(e.span(), "expected `;` after the cron (or `{ args }` before it)"))?;
        }
        Ok(Crons { crons })
    }
}

fn parse_schedule(input: ParseStream<'_>) -> syn::Result<String> {
    let kw: Ident = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected a schedule: `every 5 minutes` or `cron \"0 3 * * *\"`",
        )
    })?;
    if kw == "cron" {
        let lit: LitStr = input
            .parse()
            .map_err(|e| syn::Error::new(e.span(), "expected a cron expression string, e.g. `cron \"0 3 * * *\"`"))?;
        let normalized = check_cron(&lit.value()).map_err(|m| syn::Error::new(lit.span(), m))?;
        return Ok(format!(r#"{{"cron":{}}}"#, json_string(&normalized)));
    }
    if kw != "every" {
        return Err(syn::Error::new(
            kw.span(),
            "expected a schedule: `every 5 minutes` or `cron \"0 3 * * *\"`",
        ));
    }
    let (n, span) = if input.peek(Token![-]) {
        let minus = input.parse::<Token![-]>()?;
        return Err(syn::Error::new(minus.span, "the interval must be greater than zero"));
    } else if input.peek(syn::LitInt) || input.peek(syn::LitFloat) {
        let lit: Lit = input.parse()?;
        let (digits, suffix) = match &lit {
            Lit::Int(i) => (i.base10_digits().to_string(), i.suffix().to_string()),
            Lit::Float(f) => (f.base10_digits().to_string(), f.suffix().to_string()),
            _ => unreachable!(),
        };
        if !suffix.is_empty() {
            return Err(syn::Error::new(lit.span(), "write the number without a suffix"));
        }
        let n: f64 = digits
            .parse()
            .map_err(|_| syn::Error::new(lit.span(), "invalid number"))?;
        (n, lit.span())
    } else {
        return Err(input.error("expected the interval, a number: `every 5 minutes`"));
    };
    let unit: Ident = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected a unit after the number: `milliseconds`, `seconds`, `minutes`, `hours` or `days`",
        )
    })?;
    let scale = match unit.to_string().as_str() {
        "ms" | "millisecond" | "milliseconds" => 1.0,
        "second" | "seconds" => 1e3,
        "minute" | "minutes" => 60e3,
        "hour" | "hours" => 3600e3,
        "day" | "days" => 86400e3,
        other => {
            return Err(syn::Error::new(
                unit.span(),
                format!(
                    "unknown unit `{other}`: expected `milliseconds` (`ms`), `seconds`, `minutes`, `hours` or `days`"
                ),
            ))
        }
    };
    if n <= 0.0 {
        return Err(syn::Error::new(span, "the interval must be greater than zero"));
    }
    let ms = n * scale;
    if !ms.is_finite() || ms > 9_007_199_254_740_992.0 {
        return Err(syn::Error::new(span, "the interval is too long"));
    }
    if ms < 1.0 || ms.fract() != 0.0 {
        return Err(syn::Error::new(
            span,
            format!("the interval must be a whole number of milliseconds, at least 1 (this one is {ms} ms)"),
        ));
    }
    Ok(format!(r#"{{"every":{{"ms":{ms}}}}}"#))
}

/// Checks a `"module:function"` path.
fn check_path(lit: &LitStr) -> syn::Result<()> {
    let v = lit.value();
    let ok = match v.split_once(':') {
        Some((module, function)) => {
            !module.is_empty()
                && !function.is_empty()
                && module.split('/').all(|m| {
                    !m.is_empty()
                        && m.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
                })
                && function.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !function.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(syn::Error::new(
            lit.span(),
            "a function path is \"module:function\", e.g. \"users:cleanup\" or \"admin/users:purge\"",
        ))
    }
}

/// The fields of a cron expression: name, minimum, maximum.
const CRON_FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

/// Validates a 5-field cron expression; returns it with single spaces.
pub(crate) fn check_cron(expr: &str) -> Result<String, String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "a cron expression has 5 fields, \"minute hour day-of-month month day-of-week\" (e.g. \"0 3 * * *\"), \
             this one has {}",
            fields.len()
        ));
    }
    for (field, (what, min, max)) in fields.iter().zip(CRON_FIELDS) {
        for item in field.split(',') {
            check_cron_item(item, min, max).map_err(|m| format!("{what} `{field}`: {m}"))?;
        }
    }
    Ok(fields.join(" "))
}

fn check_cron_item(item: &str, min: u32, max: u32) -> Result<(), String> {
    let number = |s: &str| -> Result<u32, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(if s.chars().any(|c| c.is_ascii_alphabetic()) {
                format!("`{s}` is not a number (use numbers: months 1-12, days of week 0-7 with Sunday = 0 or 7)")
            } else {
                format!("`{s}` is not a number")
            });
        }
        let n: u32 = s.parse().map_err(|_| format!("{s} is out of range {min}-{max}"))?;
        if n < min || n > max {
            return Err(format!("{n} is out of range {min}-{max}"));
        }
        Ok(n)
    };
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(step)),
        None => (item, None),
    };
    if let Some(step) = step {
        let s: u32 = step
            .parse()
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| format!("the step `/{step}` must be a positive number"))?;
        if s > max {
            return Err(format!("the step /{s} is larger than {max}"));
        }
    }
    if range == "*" {
        return Ok(());
    }
    match range.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (number(a)?, number(b)?);
            if a > b {
                return Err(format!("the range {a}-{b} is backwards"));
            }
        }
        // `n` alone, or `n/s`: from n to the end of the range.
        None => {
            number(range)?;
        }
    }
    Ok(())
}

/// Parses a literal value and returns its convex-encoded JSON.
fn literal(input: ParseStream<'_>) -> syn::Result<String> {
    const WHAT: &str = "cron arguments are literals (they are written into the module at compile time): \
                        strings, numbers, booleans, null, arrays and objects";
    if input.peek(syn::token::Brace) {
        let content;
        braced!(content in input);
        let mut fields = BTreeMap::new();
        while !content.is_empty() {
            let key: LitStr = content
                .parse()
                .map_err(|e| syn::Error::new(e.span(), "expected a key, a string literal"))?;
            content.parse::<Token![:]>()?;
            let value = literal(&content)?;
            if fields.insert(key.value(), value).is_some() {
                return Err(syn::Error::new(
                    key.span(),
                    format!("the key \"{}\" is given twice", key.value()),
                ));
            }
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("{}:{v}", json_string(k))).collect();
        return Ok(format!("{{{}}}", body.join(",")));
    }
    if input.peek(syn::token::Bracket) {
        let content;
        bracketed!(content in input);
        let mut items = Vec::new();
        while !content.is_empty() {
            items.push(literal(&content)?);
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
        return Ok(format!("[{}]", items.join(",")));
    }
    if input.peek(Ident) {
        let ident: Ident = input.parse()?;
        return if ident == "null" {
            Ok("null".into())
        } else {
            Err(syn::Error::new(ident.span(), WHAT))
        };
    }
    let negative = input.peek(Token![-]);
    if negative {
        input.parse::<Token![-]>()?;
    }
    let lit: Lit = input.parse().map_err(|e| syn::Error::new(e.span(), WHAT))?;
    let sign = if negative { "-" } else { "" };
    match &lit {
        Lit::Int(i) if i.suffix() == "i64" => {
            let n: i64 = format!("{sign}{}", i.base10_digits())
                .parse()
                .map_err(|_| syn::Error::new(lit.span(), "integer out of range for i64"))?;
            Ok(format!(r#"{{"$integer":"{}"}}"#, base64(&n.to_le_bytes())))
        }
        Lit::Int(i) if i.suffix().is_empty() => float(&format!("{sign}{}", i.base10_digits()), lit.span()),
        Lit::Float(f) if f.suffix().is_empty() || f.suffix() == "f64" => {
            float(&format!("{sign}{}", f.base10_digits()), lit.span())
        }
        Lit::Str(s) if !negative => Ok(json_string(&s.value())),
        Lit::Bool(b) if !negative => Ok(b.value.to_string()),
        Lit::ByteStr(b) if !negative => Ok(format!(r#"{{"$bytes":"{}"}}"#, base64(&b.value()))),
        _ => Err(syn::Error::new(lit.span(), WHAT)),
    }
}

fn float(text: &str, span: Span) -> syn::Result<String> {
    let f: f64 = text.parse().map_err(|_| syn::Error::new(span, "invalid number"))?;
    if !f.is_finite() {
        return Err(syn::Error::new(span, "number out of range for f64"));
    }
    Ok(if f == 0.0 && f.is_sign_negative() {
        format!(r#"{{"$float":"{}"}}"#, base64(&f.to_le_bytes()))
    } else {
        format!("{f}")
    })
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Crons {
    pub(crate) fn expand(&self) -> TokenStream {
        let mut checks = Vec::new();
        let entries = self.crons.iter().map(|c| {
            let Cron {
                name, schedule, args, ..
            } = c;
            let path = match &c.target {
                Target::Path(p) => quote!(#p),
                Target::Function(f) => {
                    checks.push(quote_spanned! {f.span()=>
                        const _: () = ::convex_sdk::__private::check_cron_target(
                            <#f as ::convex_sdk::ConvexFunction>::KIND,
                        );
                    });
                    quote_spanned!(f.span()=> <#f as ::convex_sdk::ConvexFunction>::PATH)
                }
            };
            quote! {
                ::convex_sdk::__private::CronMeta { name: #name, path: #path, args: #args, schedule: #schedule }
            }
        });
        let entries: Vec<TokenStream> = entries.collect();
        quote! {
            #(#checks)*

            #[doc(hidden)]
            const __CONVEX_CRONS_LIST: &[::convex_sdk::__private::CronMeta] = &[#(#entries),*];

            #[doc(hidden)]
            const __CONVEX_CRONS_RECORD: [u8; ::convex_sdk::__private::crons_len(__CONVEX_CRONS_LIST)] =
                ::convex_sdk::__private::crons_record(__CONVEX_CRONS_LIST);

            /// The `cvx.crons` record of this crate (ABI "Crons").
            #[doc(hidden)]
            #[allow(non_upper_case_globals, dead_code)]
            #[cfg_attr(target_arch = "wasm32", unsafe(link_section = "cvx.crons"))]
            #[used]
            static __CONVEX_CRONS: [u8; ::convex_sdk::__private::crons_len(__CONVEX_CRONS_LIST)] =
                __CONVEX_CRONS_RECORD;

            /// The crons as JSON (ABI "Crons"), e.g. for `convex_sdk::testing::run_cron`.
            #[doc(hidden)]
            #[allow(dead_code)]
            pub const __CONVEX_CRONS_JSON: &str = ::convex_sdk::__private::record_json(&__CONVEX_CRONS_RECORD);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_expressions() {
        assert_eq!(check_cron("0 3 * * *").unwrap(), "0 3 * * *");
        assert_eq!(
            check_cron(" */15  9-17 1,15 1-12/3 1-5 ").unwrap(),
            "*/15 9-17 1,15 1-12/3 1-5"
        );
        assert!(check_cron("0 3 * *").unwrap_err().contains("has 4"));
        assert!(check_cron("60 * * * *")
            .unwrap_err()
            .contains("minute `60`: 60 is out of range 0-59"));
        assert!(check_cron("* * 0 * *").unwrap_err().contains("day of month"));
        assert!(check_cron("* * * JAN *").unwrap_err().contains("use numbers"));
        assert_eq!(check_cron("5/20 * * * 7").unwrap(), "5/20 * * * 7");
        assert!(check_cron("* * * * 8").unwrap_err().contains("0-7"));
        assert!(check_cron("*/0 * * * *").unwrap_err().contains("positive"));
        assert!(check_cron("*/60 * * * *").unwrap_err().contains("larger than 59"));
        assert!(check_cron("10-5 * * * *").unwrap_err().contains("backwards"));
        assert!(check_cron("1,,2 * * * *").is_err());
    }

    fn lit(s: &str) -> syn::Result<String> {
        syn::parse::Parser::parse_str(literal, s)
    }

    #[test]
    fn literals() {
        assert_eq!(
            lit(r#"{ "b": [1, -2.5, null, true], "a": "x\"y", "n": 5i64, "z": b"hi", "m": -0.0 }"#).unwrap(),
            r#"{"a":"x\"y","b":[1,-2.5,null,true],"m":{"$float":"AAAAAAAAAIA="},"n":{"$integer":"BQAAAAAAAAA="},"z":{"$bytes":"aGk="}}"#
        );
        assert!(lit("{ \"a\": some_var }").is_err());
        assert!(lit("{ \"a\": 1, \"a\": 2 }").is_err());
    }

    #[test]
    fn base64_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }
}
