//! `schema!`: tables, field types and indexes → the `cvx.schema` record.
//!
//! Grammar (see the `convex_sdk::schema!` docs for the user's view):
//!
//! ```text
//! schema   := ("#![" "strict" "=" bool "]")* table*
//! table    := ident ( "{" fields "}" | ";" ) index*
//! index    := "index" ident "(" field ("," field)* ","? ")" ";"
//! fields   := (name ":" type ","?)*
//! type     := atom ("|" atom)*
//! atom     := "{" fields "}" | literal | "Id" "<" table ">" | "Null" | "()"
//!           | path ("<" type ("," type)* ">")?
//! ```
//!
//! Everything is known at expansion time, so the whole record is a byte
//! string literal in a `#[used]` static.

use std::collections::BTreeSet;

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream};
use syn::{braced, parenthesized, Ident, LitBool, Token};

use crate::types::{json_string, named, simple};

pub(crate) struct Schema {
    strict: bool,
    tables: Vec<Table>,
}

struct Table {
    name: String,
    /// The JSON of the fields object, or `None` for any fields.
    fields: Option<(String, Vec<String>)>,
    indexes: Vec<(String, Vec<String>)>,
}

fn valid_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn unraw(i: &Ident) -> String {
    let s = i.to_string();
    s.strip_prefix("r#").map(str::to_string).unwrap_or(s)
}

impl Parse for Schema {
    fn parse(input: ParseStream<'_>) -> syn::Result<Schema> {
        let mut strict = true;
        for attr in input.call(syn::Attribute::parse_inner)? {
            let nv = match &attr.meta {
                syn::Meta::NameValue(nv) if nv.path.is_ident("strict") => nv,
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        "unknown schema option: expected `#![strict = true|false]`",
                    ))
                }
            };
            match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Bool(LitBool { value, .. }),
                    ..
                }) => strict = *value,
                other => return Err(syn::Error::new_spanned(other, "`strict` takes `true` or `false`")),
            }
        }
        let mut tables: Vec<Table> = Vec::new();
        let mut table_names = BTreeSet::new();
        while !input.is_empty() {
            // `index name(...)`: an index of the table before it.
            if input.peek(Ident) && input.peek2(Ident) && input.fork().parse::<Ident>()? == "index" {
                let kw: Ident = input.parse()?;
                let name: Ident = input.parse()?;
                let content;
                parenthesized!(content in input);
                let mut fields = Vec::new();
                while !content.is_empty() {
                    let (field, span) = if content.peek(syn::LitStr) {
                        let l: syn::LitStr = content.parse()?;
                        (l.value(), l.span())
                    } else {
                        let i: Ident = content.parse()?;
                        (unraw(&i), i.span())
                    };
                    if field == "_id" || field == "_creationTime" {
                        return Err(syn::Error::new(
                            span,
                            "every index already ends with `_creationTime`, `_id`; do not list them",
                        ));
                    }
                    if fields.contains(&field) {
                        return Err(syn::Error::new(
                            span,
                            format!("`{field}` is listed twice in this index"),
                        ));
                    }
                    let Some(table) = tables.last() else {
                        return Err(syn::Error::new(
                            kw.span(),
                            "an index must follow the table it belongs to",
                        ));
                    };
                    if let Some((_, names)) = &table.fields {
                        let top = field.split('.').next().unwrap_or("");
                        if !names.iter().any(|n| n == top) {
                            return Err(syn::Error::new(
                                span,
                                format!("table `{}` has no field `{top}`", table.name),
                            ));
                        }
                    }
                    fields.push(field);
                    if content.is_empty() {
                        break;
                    }
                    content.parse::<Token![,]>()?;
                }
                input.parse::<Token![;]>()?;
                let index_name = unraw(&name);
                if fields.is_empty() {
                    return Err(syn::Error::new(name.span(), "an index needs at least one field"));
                }
                if index_name == "by_id" || index_name == "by_creation_time" {
                    return Err(syn::Error::new(
                        name.span(),
                        format!("`{index_name}` is a built-in index of every table"),
                    ));
                }
                let table = tables.last_mut().unwrap();
                if table.indexes.iter().any(|(n, _)| *n == index_name) {
                    return Err(syn::Error::new(
                        name.span(),
                        format!("table `{}` already has an index `{index_name}`", table.name),
                    ));
                }
                table.indexes.push((index_name, fields));
                continue;
            }
            let name: Ident = input
                .parse()
                .map_err(|e| syn::Error::new(e.span(), "expected a table name or `index`"))?;
            let table_name = unraw(&name);
            if !valid_identifier(&table_name) || table_name.starts_with('_') || table_name.len() > 64 {
                return Err(syn::Error::new(
                    name.span(),
                    "a table name is letters, digits and `_`, at most 64 characters, and must not start with `_`",
                ));
            }
            if !table_names.insert(table_name.clone()) {
                return Err(syn::Error::new(
                    name.span(),
                    format!("table `{table_name}` is declared twice"),
                ));
            }
            let fields = if input.peek(Token![;]) {
                input.parse::<Token![;]>()?;
                None
            } else if input.peek(syn::token::Brace) {
                let content;
                braced!(content in input);
                Some(parse_fields(&content, true)?)
            } else {
                return Err(input.error(format!(
                    "expected `{{ field: Type, ... }}` or `;` after table `{table_name}`"
                )));
            };
            tables.push(Table {
                name: table_name,
                fields,
                indexes: Vec::new(),
            });
        }
        Ok(Schema { strict, tables })
    }
}

/// Parses `name: Type, ...`; returns the JSON object of descriptors and the
/// field names.
fn parse_fields(input: ParseStream<'_>, top_level: bool) -> syn::Result<(String, Vec<String>)> {
    let mut entries = Vec::new();
    let mut names: Vec<String> = Vec::new();
    while !input.is_empty() {
        let (name, span) = if input.peek(syn::LitStr) {
            let l: syn::LitStr = input.parse()?;
            (l.value(), l.span())
        } else {
            let i: Ident = input.call(syn::ext::IdentExt::parse_any)?;
            (unraw(&i), i.span())
        };
        if name.is_empty() || name.starts_with('$') || (top_level && name.starts_with('_')) {
            return Err(syn::Error::new(
                span,
                "a field name must not be empty or start with `$`, and a document field must not start with `_`",
            ));
        }
        if names.contains(&name) {
            return Err(syn::Error::new(span, format!("field `{name}` is declared twice")));
        }
        input.parse::<Token![:]>()?;
        let ty = parse_type(input)?;
        entries.push(format!("{}:{ty}", json_string(&name)));
        names.push(name);
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    // Sorted keys, like every Convex object.
    let mut sorted: Vec<(&String, &String)> = names.iter().zip(&entries).collect();
    sorted.sort();
    let body: Vec<&str> = sorted.iter().map(|(_, e)| e.as_str()).collect();
    Ok((format!("{{{}}}", body.join(",")), names))
}

fn parse_type(input: ParseStream<'_>) -> syn::Result<String> {
    let mut variants = vec![parse_atom(input)?];
    while input.peek(Token![|]) {
        input.parse::<Token![|]>()?;
        variants.push(parse_atom(input)?);
    }
    Ok(if variants.len() == 1 {
        variants.pop().unwrap()
    } else {
        format!(r#"{{"type":"union","variants":[{}]}}"#, variants.join(","))
    })
}

fn parse_atom(input: ParseStream<'_>) -> syn::Result<String> {
    if input.peek(syn::token::Brace) {
        let content;
        braced!(content in input);
        let (fields, _) = parse_fields(&content, false)?;
        return Ok(format!(r#"{{"type":"object","fields":{fields}}}"#));
    }
    if input.peek(syn::token::Paren) {
        let content;
        parenthesized!(content in input);
        if content.is_empty() {
            return Ok(simple("null"));
        }
        return parse_type(&content);
    }
    if input.peek(syn::Lit) || input.peek(Token![-]) {
        let negative = input.peek(Token![-]);
        if negative {
            input.parse::<Token![-]>()?;
        }
        let lit: syn::Lit = input.parse()?;
        let value = match &lit {
            syn::Lit::Str(s) if !negative => json_string(&s.value()),
            syn::Lit::Bool(b) if !negative => b.value.to_string(),
            syn::Lit::Int(i) if i.suffix().is_empty() => number(
                &format!("{}{}", if negative { "-" } else { "" }, i.base10_digits()),
                lit.span(),
            )?,
            syn::Lit::Float(f) if f.suffix().is_empty() => number(
                &format!("{}{}", if negative { "-" } else { "" }, f.base10_digits()),
                lit.span(),
            )?,
            _ => {
                return Err(syn::Error::new(
                    lit.span(),
                    "literal types are strings, numbers (float64, no suffix) or booleans",
                ))
            }
        };
        return Ok(format!(r#"{{"type":"literal","value":{value}}}"#));
    }
    let path: syn::Path = input.call(syn::Path::parse_mod_style)?;
    let last = path.segments.last().unwrap().ident.clone();
    let name = unraw(&last);
    let mut args = Vec::new();
    if input.peek(Token![<]) {
        input.parse::<Token![<]>()?;
        if name == "Id" {
            let table = if input.peek(syn::LitStr) {
                input.parse::<syn::LitStr>()?.value()
            } else {
                unraw(&input.parse::<Ident>()?)
            };
            input.parse::<Token![>]>()?;
            return Ok(format!(r#"{{"type":"id","table":{}}}"#, json_string(&table)));
        }
        loop {
            args.push(parse_type(input)?);
            if input.peek(Token![,]) {
                input.parse::<Token![,]>()?;
            }
            if input.peek(Token![>]) {
                input.parse::<Token![>]>()?;
                break;
            }
        }
    }
    if name == "Id" {
        return Err(syn::Error::new(last.span(), "write `Id<table>`, e.g. `Id<users>`"));
    }
    if name == "Null" && args.is_empty() {
        return Ok(simple("null"));
    }
    if name == "Any" && args.is_empty() {
        return Ok(simple("any"));
    }
    let d = named(&name, &args);
    if d == simple("any") && !matches!(name.as_str(), "Value") {
        return Err(syn::Error::new(
            last.span(),
            format!(
                "unknown schema type `{name}`: use String, f64, i64, bool, Bytes, Vec<T>, Option<T>, \
                 BTreeMap<String, T>, Id<table>, Value, {{ field: T }}, a literal, or A | B"
            ),
        ));
    }
    Ok(d)
}

fn number(text: &str, span: Span) -> syn::Result<String> {
    let f: f64 = text.parse().map_err(|_| syn::Error::new(span, "invalid number"))?;
    if !f.is_finite() {
        return Err(syn::Error::new(span, "number out of range for f64"));
    }
    Ok(if f == 0.0 && f.is_sign_negative() {
        "0".to_string()
    } else {
        format!("{f}")
    })
}

impl Schema {
    fn to_json(&self) -> String {
        let tables: Vec<String> = self
            .tables
            .iter()
            .map(|t| {
                let indexes: Vec<String> = t
                    .indexes
                    .iter()
                    .map(|(n, f)| {
                        let fields: Vec<String> = f.iter().map(|x| json_string(x)).collect();
                        format!(r#"{{"name":{},"fields":[{}]}}"#, json_string(n), fields.join(","))
                    })
                    .collect();
                format!(
                    r#"{{"name":{},"fields":{},"indexes":[{}]}}"#,
                    json_string(&t.name),
                    t.fields.as_ref().map_or("null", |(j, _)| j.as_str()),
                    indexes.join(",")
                )
            })
            .collect();
        format!(
            r#"{{"abi":1,"tables":[{}],"strict":{}}}"#,
            tables.join(","),
            self.strict
        )
    }

    pub(crate) fn expand(&self) -> TokenStream {
        // __CONVEX_SCHEMA_JSON is also what `convex_sdk::testing::use_schema` reads.
        crate::record::framed(
            "cvx.schema",
            "__CONVEX_SCHEMA",
            "__CONVEX_SCHEMA_JSON",
            "ABI §4",
            &self.to_json(),
        )
    }
}
