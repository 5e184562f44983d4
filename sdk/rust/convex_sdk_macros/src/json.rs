//! `json!`: JSON-like syntax → an expression building a `convex_sdk::Value`.
//!
//! A proc macro rather than `macro_rules!` so that literals can follow JSON
//! (a number literal is a float64 whatever its size: `json!(3000000000)`
//! does not fall back to `i32` and overflow) and so that errors point at the
//! offending token. Expressions are converted by type with serde.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{braced, bracketed, Expr, ExprLit, ExprUnary, Lit, Token, UnOp};

pub(crate) struct Json(TokenStream);

impl Parse for Json {
    fn parse(input: ParseStream<'_>) -> syn::Result<Json> {
        let v = parse_value(input)?;
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after the value (missing a `,` or brackets?)"));
        }
        Ok(Json(v))
    }
}

impl Json {
    pub(crate) fn into_tokens(self) -> TokenStream {
        self.0
    }
}

fn parse_value(input: ParseStream<'_>) -> syn::Result<TokenStream> {
    if input.is_empty() {
        return Err(input.error("expected a value"));
    }
    if input.peek(syn::token::Brace) {
        let content;
        braced!(content in input);
        let mut inserts = Vec::new();
        while !content.is_empty() {
            let key = if content.peek(syn::LitStr) {
                let k: syn::LitStr = content.parse()?;
                quote!(::std::string::String::from(#k))
            } else if content.peek(syn::token::Paren) {
                let inner;
                syn::parenthesized!(inner in content);
                let e: Expr = inner.parse()?;
                quote_spanned!(e.span()=> ::std::string::ToString::to_string(&(#e)))
            } else {
                return Err(content.error("expected a key: a string literal, or an expression in parentheses"));
            };
            content.parse::<Token![:]>()?;
            let value = parse_value(&content)?;
            inserts.push(quote!(__convex_object.insert(#key, #value);));
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
        return Ok(quote!({
            let mut __convex_object = ::std::collections::BTreeMap::<::std::string::String, ::convex_sdk::Value>::new();
            #(#inserts)*
            ::convex_sdk::Value::Object(__convex_object)
        }));
    }
    if input.peek(syn::token::Bracket) {
        let content;
        bracketed!(content in input);
        let mut items = Vec::new();
        while !content.is_empty() {
            items.push(parse_value(&content)?);
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
        return Ok(quote!(::convex_sdk::Value::Array(::std::vec![#(#items),*])));
    }
    if input.peek(syn::Ident) && (input.peek2(Token![,]) || is_last(input)) {
        let fork = input.fork();
        let ident: syn::Ident = fork.parse()?;
        if ident == "null" {
            input.parse::<syn::Ident>()?;
            return Ok(quote_spanned!(ident.span()=> ::convex_sdk::Value::Null));
        }
    }
    let expr: Expr = input.parse()?;
    Ok(expression(&expr))
}

/// Whether only one token tree is left.
fn is_last(input: ParseStream<'_>) -> bool {
    let fork = input.fork();
    fork.parse::<proc_macro2::TokenTree>().is_ok() && fork.is_empty()
}

/// A literal follows JSON; anything else converts by type.
fn expression(expr: &Expr) -> TokenStream {
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => literal(lit, false).unwrap_or_else(|| convert(expr)),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr: inner,
            ..
        }) => match &**inner {
            Expr::Lit(ExprLit { lit, .. }) => literal(lit, true).unwrap_or_else(|| convert(expr)),
            _ => convert(expr),
        },
        Expr::Group(g) => expression(&g.expr),
        _ => convert(expr),
    }
}

fn convert(expr: &Expr) -> TokenStream {
    quote_spanned!(expr.span()=> ::convex_sdk::__private::json_expr(&(#expr)))
}

fn literal(lit: &Lit, negative: bool) -> Option<TokenStream> {
    let span = lit.span();
    let sign = if negative { "-" } else { "" };
    Some(match lit {
        Lit::Int(i) if i.suffix() == "i64" => {
            let digits = format!("{sign}{}", i.base10_digits());
            match digits.parse::<i64>() {
                // Through the bit pattern: no negative literal tokens.
                Ok(n) => {
                    let bits = n as u64;
                    quote_spanned!(span=> ::convex_sdk::Value::Int64(#bits as i64))
                }
                Err(_) => return Some(syn::Error::new(span, "integer out of range for i64").to_compile_error()),
            }
        }
        Lit::Int(i) if i.suffix().is_empty() => {
            let f: f64 = format!("{sign}{}", i.base10_digits()).parse().ok()?;
            float(f, span)
        }
        Lit::Float(f) if f.suffix().is_empty() || f.suffix() == "f64" => {
            let v: f64 = format!("{sign}{}", f.base10_digits()).parse().ok()?;
            float(v, span)
        }
        // Other suffixes (`5u8`, `1.5f32`) convert by their type.
        Lit::Int(_) | Lit::Float(_) => return None,
        Lit::Str(s) if !negative => quote_spanned!(span=> ::convex_sdk::Value::String(::std::string::String::from(#s))),
        Lit::Char(c) if !negative => {
            let s = c.value().to_string();
            quote_spanned!(span=> ::convex_sdk::Value::String(::std::string::String::from(#s)))
        }
        Lit::Bool(b) if !negative => quote_spanned!(span=> ::convex_sdk::Value::Boolean(#b)),
        Lit::ByteStr(b) if !negative => quote_spanned!(span=> ::convex_sdk::Value::Bytes((#b).to_vec())),
        _ => return None,
    })
}

/// A float64 value, exactly (through its bits, so -0.0 stays -0.0).
fn float(f: f64, span: proc_macro2::Span) -> TokenStream {
    if !f.is_finite() {
        return syn::Error::new(span, "number literal out of range for f64").to_compile_error();
    }
    let bits = f.to_bits();
    quote_spanned!(span=> ::convex_sdk::Value::Float64(f64::from_bits(#bits)))
}
