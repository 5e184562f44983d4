//! Procedural macros of [`convex_sdk`](https://docs.rs/convex_sdk): the
//! function attributes `#[query]`, `#[mutation]`, `#[action]`,
//! `#[http_action]`, and the function-like `json!`, `schema!`, `crons!` and
//! `auth_config!`.
//!
//! Use them through `convex_sdk` (`use convex_sdk::*;`), which documents
//! them; the code they generate names `::convex_sdk` and needs it as a
//! dependency under that name.
#![deny(missing_docs)]

use proc_macro::TokenStream;

mod auth;
mod crons;
mod function;
mod json;
mod record;
mod schema;
mod types;

use function::Kind;

/// Makes a function a Convex query. See `convex_sdk::query`.
#[proc_macro_attribute]
pub fn query(attr: TokenStream, item: TokenStream) -> TokenStream {
    function::expand(Kind::Query, attr.into(), item.into()).into()
}

/// Makes a function a Convex mutation. See `convex_sdk::mutation`.
#[proc_macro_attribute]
pub fn mutation(attr: TokenStream, item: TokenStream) -> TokenStream {
    function::expand(Kind::Mutation, attr.into(), item.into()).into()
}

/// Makes a function a Convex action. See `convex_sdk::action`.
#[proc_macro_attribute]
pub fn action(attr: TokenStream, item: TokenStream) -> TokenStream {
    function::expand(Kind::Action, attr.into(), item.into()).into()
}

/// Makes a function an HTTP action. See `convex_sdk::http_action`.
#[proc_macro_attribute]
pub fn http_action(attr: TokenStream, item: TokenStream) -> TokenStream {
    function::expand(Kind::HttpAction, attr.into(), item.into()).into()
}

/// Declares cron jobs. See `convex_sdk::crons`.
#[proc_macro]
pub fn crons(input: TokenStream) -> TokenStream {
    match syn::parse::<crons::Crons>(input) {
        Ok(c) => c.expand().into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// Builds a `convex_sdk::Value` from JSON-like syntax. See `convex_sdk::json`.
#[proc_macro]
pub fn json(input: TokenStream) -> TokenStream {
    match syn::parse::<json::Json>(input) {
        Ok(j) => j.into_tokens().into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// Declares the database schema. See `convex_sdk::schema`.
#[proc_macro]
pub fn schema(input: TokenStream) -> TokenStream {
    match syn::parse::<schema::Schema>(input) {
        Ok(s) => s.expand().into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// Declares the app's authentication providers. See `convex_sdk::auth_config`.
#[proc_macro]
pub fn auth_config(input: TokenStream) -> TokenStream {
    match syn::parse::<auth::AuthConfig>(input) {
        Ok(c) => c.expand().into(),
        Err(e) => e.to_compile_error().into(),
    }
}
