//! Write [Convex](https://convex.dev)-compatible backend functions in Rust
//! for **cvx**: queries, mutations and actions compiled to `wasm32-wasip1`
//! and run sandboxed by the cvx server.
//!
//! ```no_run
//! // src/lib.rs of a crate named `users` (crate-type = ["cdylib", "rlib"])
//! use convex_sdk::*;
//!
//! #[query]
//! async fn get_user(db: Database, id: String) -> Result<Option<Document>, ConvexError> {
//!     db.get(id.into()).await
//! }
//!
//! #[mutation]
//! async fn create_user(
//!     db: Database,
//!     name: String,
//!     email: String,
//! ) -> Result<DocumentId, ConvexError> {
//!     db.insert("users", json!({ "name": name, "email": email })).await
//! }
//!
//! #[action]
//! async fn send_webhook(url: String, data: String) -> Result<(), ConvexError> {
//!     let response = fetch(&url, FetchOptions::new()
//!         .method("POST")
//!         .header("Content-Type", "application/json")
//!         .body(data.into_bytes())).await?;
//!
//!     if response.status == 200 {
//!         Ok(())
//!     } else {
//!         Err(ConvexError::Unknown("Webhook failed".to_string()))
//!     }
//! }
//! ```
//!
//! A web app then calls `api.users.get_user`, `api.users.create_user` and
//! `api.users.send_webhook` with the unmodified `convex` npm client.
//!
//! # Functions
//!
//! [`#[query]`](query), [`#[mutation]`](mutation) and [`#[action]`](action)
//! turn an `async fn` (or a plain `fn`) into a Convex function
//! ([`#[http_action]`](http_action) into a handler of HTTP requests):
//!
//! - **Path.** `<module>:<name>`: `<name>` is the Rust name (or
//!   `#[query(name = "...")]`); `<module>` is the Rust module path without
//!   the crate name, `::` written `/`, or the crate name for functions at
//!   the crate root. In crate `app`, `app::admin::users::list` is
//!   `admin/users:list` (`api.admin.users.list`).
//! - **Arguments** are the parameters, by name: the client passes an object
//!   `{ "name": ..., "email": ... }`. Any `serde::Deserialize` type works;
//!   `Option<T>` arguments may be left out. Parameters of type [`Database`]
//!   (queries, mutations), [`ActionCtx`] (actions), [`Scheduler`]
//!   (mutations, actions), [`Storage`] and [`Auth`] (all) are not
//!   arguments: the SDK supplies them.
//! - **Result**: any `serde::Serialize` type, or a `Result<T, E>` where `E`
//!   converts into [`ConvexError`]. An `Err` reaches the client as an error
//!   with its message, and with `data` for [`ConvexError::Application`].
//!   A panic ends the call with `Uncaught Error: <message>` and its source
//!   location.
//! - **Visibility.** `#[mutation(internal)]` functions can be called by
//!   other functions and the admin CLI, not by clients.
//!
//! # Scheduling, files, HTTP, crons, authentication
//!
//! A [`Scheduler`] runs a mutation or an action later
//! ([`run_after`](Scheduler::run_after), [`run_at`](Scheduler::run_at));
//! [`Storage`] stores and serves files; an
//! [`#[http_action]`](http_action) answers `METHOD /http<route>`;
//! [`crons!`] declares functions the server runs on a schedule; and
//! [`Auth::user_identity`] says who is calling, checked against the
//! providers [`auth_config!`] declares.
//!
//! # Values
//!
//! [`Value`] is a Convex value. Rust types convert to values through serde
//! ([`to_value`], [`from_value`]) and [`json!`]; the one rule to remember is
//! that only 64-bit integer types (`i64`, `u64`, `usize` …) become `Int64`
//! (a JavaScript `bigint`), while every other number, including an integer
//! literal in `json!`, becomes `Float64` (a JavaScript `number`).
//!
//! # Native tests
//!
//! On non-wasm targets the host is a fake that runs in the test process
//! (see [`testing`]), so functions can be unit-tested with `cargo test`.
//!
//! # The ABI
//!
//! Everything the host and a guest exchange is specified in cvx's
//! `docs/abi.md` (ABI version 1, host module `cvx_1`).
#![deny(missing_docs)]
#![warn(rust_2018_idioms)]

// The macros name `::convex_sdk`; this makes that path work in this crate's
// own tests and doc examples.
#[allow(unused_extern_crates)]
extern crate self as convex_sdk;

mod action;
#[cfg(target_arch = "wasm32")]
mod alloc;
mod auth;
mod base64;
mod db;
mod de;
mod document;
pub mod env;
mod error;
mod function;
mod http;
mod json;
mod meta;
mod rt;
mod scheduler;
mod ser;
mod storage;
mod sys;
mod value;

#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use crate::action::ActionCtx;
pub use crate::auth::{Auth, UserIdentity};
pub use crate::db::{Database, Expr, FilterBuilder, IndexRange, Order, PaginationOpts, PaginationResult, Query};
pub use crate::de::from_value;
pub use crate::document::{Bytes, Document, DocumentId};
pub use crate::env::{log_line, now_ms, random_bytes, random_f64, random_u64, LogLevel};
pub use crate::error::{ConvexError, ErrorCode};
pub use crate::function::{ConvexFunction, FunctionKind};
pub use crate::http::{fetch, FetchOptions, HttpRequest, HttpResponse};
pub use crate::scheduler::{ScheduleDelay, ScheduleTime, Scheduler};
pub use crate::ser::to_value;
pub use crate::storage::{Storage, StorageId};
pub use crate::value::Value;

/// Makes an `async fn` (or `fn`) a Convex **query**: it reads the database
/// through a [`Database`] parameter, cannot write, and is deterministic
/// (cached and reactive on the server).
///
/// Options: `#[query(name = "other_name")]` sets the Convex name (default:
/// the Rust name); `#[query(internal)]` hides it from clients.
///
/// ```no_run
/// use convex_sdk::*;
///
/// #[query]
/// async fn list(db: Database, limit: Option<f64>) -> Result<Vec<Document>, ConvexError> {
///     db.query("users").order(Order::Desc).take(limit.unwrap_or(50.0) as usize).await
/// }
/// ```
///
/// See the [crate documentation](crate#functions) for paths, arguments and
/// results.
pub use convex_sdk_macros::query;

/// Makes an `async fn` (or `fn`) a Convex **mutation**: it reads and writes
/// the database through a [`Database`] parameter in one atomic transaction
/// (an `Err` or a panic writes nothing).
///
/// Options as for [`query`](macro@query): `name = "..."`, `internal`.
///
/// ```no_run
/// use convex_sdk::*;
///
/// #[mutation(internal)]
/// async fn purge(db: Database, id: DocumentId) -> Result<(), ConvexError> {
///     db.delete(id).await
/// }
/// ```
pub use convex_sdk_macros::mutation;

/// Makes an `async fn` (or `fn`) a Convex **action**: it may call the
/// outside world with [`fetch`] and run queries, mutations and actions
/// through an [`ActionCtx`] parameter; it has no [`Database`].
///
/// Options as for [`query`](macro@query): `name = "..."`, `internal`.
///
/// ```no_run
/// use convex_sdk::*;
///
/// #[action]
/// async fn count_users(ctx: ActionCtx) -> Result<f64, ConvexError> {
///     let users: Vec<Document> = ctx.run_query("users:list", json!({})).await?;
///     Ok(users.len() as f64)
/// }
/// ```
pub use convex_sdk_macros::action;

/// Makes an `async fn` (or `fn`) an **HTTP action**: it answers
/// `METHOD /http<route>` on the server, with the rights of an action.
///
/// ```no_run
/// use convex_sdk::*;
///
/// #[http_action(method = "POST", route = "/webhook")]
/// async fn webhook(ctx: ActionCtx, req: HttpRequest) -> Result<HttpResponse, ConvexError> {
///     let event: Value = req.json()?;
///     let id: DocumentId = ctx.run_mutation("events:record", json!({ "event": event })).await?;
///     Ok(HttpResponse::from_json(&json!({ "id": id })).with_status(201))
/// }
///
/// #[http_action(method = "GET", route = "/health")]
/// fn health() -> HttpResponse {
///     HttpResponse::from_text("ok")
/// }
/// ```
///
/// - **Options** (both required): `method`, one of `GET`, `POST`, `PUT`,
///   `PATCH`, `DELETE`, `OPTIONS`; `route`, a path starting with `/`.
///   A route ending in `/` matches every path under it (`"/files/"`
///   answers `/http/files/abc`; read [`HttpRequest::path`]).
/// - **Parameters**: the request, `req: HttpRequest`, and any of the
///   context parameters of an action (`ActionCtx`, `Scheduler`,
///   `Storage`), all optional. There are no client arguments.
/// - **Result**: an [`HttpResponse`], or a `Result<HttpResponse, E>` with
///   `E: Into<ConvexError>`; an `Err` or a panic fails the request (the
///   server answers with an error status).
///
/// The function's path (`<module>:<name>`, as for the other kinds) names
/// it in logs; it is not callable by path.
pub use convex_sdk_macros::http_action;

/// Declares cron jobs: functions the server runs on a schedule.
///
/// ```
/// use convex_sdk::*;
///
/// #[mutation(internal)]
/// async fn cleanup(db: Database) -> Result<(), ConvexError> {
///     Ok(())
/// }
///
/// crons! {
///     // name       schedule                 function          arguments
///     "cleanup"     every 10 minutes      => cleanup;
///     "nightly"     cron "0 3 * * *"      => "reports:build"    { "kind": "full" };
///     "heartbeat"   every 30 seconds      => "health:ping"      { "source": "cron", "n": 1i64 };
/// }
/// ```
///
/// Each line is `"name" schedule => function args?;`:
///
/// - **name**: a string literal, unique in the crate.
/// - **schedule**: `every N unit` with `unit` one of `milliseconds`
///   (`ms`), `seconds`, `minutes`, `hours`, `days` (singular or plural; `N`
///   a positive integer or decimal literal), or `cron "m h dom mon dow"`,
///   a 5-field cron expression in UTC: each field `*`, `n`, `a-b`, `*/s`,
///   `a-b/s` or `n/s` (from `n` on), or a comma-separated list of those;
///   minute 0-59, hour 0-23, day of month 1-31, month 1-12, day of week
///   0-7 (Sunday is 0 or 7).
///   When both the day of month and the day of week are restricted, a day
///   matching either one runs.
/// - **function**: a path string (`"module:function"`), or the Rust name
///   of a `#[mutation]` or `#[action]` of this crate (then its path is
///   derived like the function's own and the kind is checked).
/// - **args**: a JSON object of literals, as in [`json!`] but without
///   expressions (the record is written at compile time); `{}` when left
///   out.
///
/// The crons become the `cvx.crons` custom section (ABI "Crons"); the
/// server runs each one through the scheduler when it is due. Mistakes
/// (a zero interval, a malformed cron expression, a duplicate name) are
/// compile errors. Declare crons once per crate. The record's JSON is also
/// the constant `__CONVEX_CRONS_JSON`, for
/// [`testing::run_cron`].
pub use convex_sdk_macros::crons;

/// Builds a [`Value`] from JSON-like syntax.
///
/// Keys are string literals (or any expression in parentheses); values are
/// `null`, nested `{..}`/`[..]`, literals, or any Rust expression whose type
/// is `serde::Serialize` (converted with [`to_value`], panicking if that
/// fails, e.g. for a `u64` above `i64::MAX`).
///
/// Literals follow JSON: a number literal is a `Float64` — `json!(1)` is
/// `Float64(1.0)`, like the JSON text `1` — unless it has the suffix `i64`
/// (`5i64` is `Int64(5)`). Byte-string literals (`b"..."`) are `Bytes`.
/// Expressions convert by type: an `i64` variable is an `Int64`.
///
/// ```
/// use convex_sdk::{json, Value};
///
/// let name = "Ada";
/// let visits: i64 = 3;
/// let v = json!({ "name": name, "n": 1, "big": 2i64, "visits": visits, "tags": ["a", null] });
/// assert_eq!(v["n"], Value::Float64(1.0));
/// assert_eq!(v["big"], Value::Int64(2));
/// assert_eq!(v["visits"], Value::Int64(3));
/// assert_eq!(v.to_json(), r#"{"big":{"$integer":"AgAAAAAAAAA="},"n":1,"name":"Ada","tags":["a",null],"visits":{"$integer":"AwAAAAAAAAA="}}"#);
/// ```
pub use convex_sdk_macros::json;

/// Declares the database schema: tables, their field types and indexes.
///
/// ```
/// convex_sdk::schema! {
///     users {
///         name: String,
///         email: String,
///         age: Option<f64>,
///         role: "admin" | "member",
///         manager: Option<Id<users>>,
///     }
///     index by_email(email);
///     index by_role_age(role, age);
///
///     messages {
///         author: Id<users>,
///         body: String,
///         meta: { pinned: bool, tags: Vec<String> },
///     }
///     index by_author(author);
///
///     // No field list: any documents.
///     audit_log;
/// }
/// ```
///
/// The schema is emitted at compile time into the wasm custom section
/// `cvx.schema` (ABI §4); the server checks every write against it.
///
/// **Tables** are `name { field: Type, ... }` (or `name;` for a table
/// without field rules), each followed by its `index name(field, ...);`
/// lines. Every table also has the indexes `by_id` and `by_creation_time`,
/// and every index ends with `_creationTime`, `_id`.
///
/// **Types** are Rust types, mapped as for function arguments: `String` →
/// string, `f64`/`f32`/`i32`/`u32`/… → float64, `i64`/`u64`/`usize` →
/// int64, `bool`, `Bytes` → bytes, `Vec<T>` → array, `Option<T>` →
/// optional (the field may be absent or null), `BTreeMap<String, T>` /
/// `HashMap<String, T>` → record, `Value` → any. Also: `Id<table>` (the id
/// of a document in `table`), `{ field: Type, ... }` (a nested object),
/// `"literal"` / `1.5` / `true` (a literal), `A | B` (a union), `Null`,
/// `Any`.
///
/// **Options** go first, as `#![strict = false]`: `strict` (default `true`)
/// is the record's `"strict"` flag (ABI §4), by which the server enforces
/// the field types on writes; `false` declares tables and indexes without
/// enforcing fields.
///
/// Declare the schema once per crate (the host accepts at most one).
pub use convex_sdk_macros::schema;

/// Declares the app's authentication providers: whose JSON Web Tokens the
/// server accepts, Convex's `auth.config.ts`.
///
/// ```
/// convex_sdk::auth_config! {
///     providers: [
///         // An OpenID Connect provider (Clerk, Auth0, WorkOS, ...): the issuer's
///         // URL, taken here from the deployment (`cvx env set AUTH_ISSUER ...`).
///         { domain: env("AUTH_ISSUER"), application_id: "my-app" },
///         // A custom JWT issuer with its key set.
///         {
///             custom_jwt: {
///                 issuer: "https://auth.example.com",
///                 jwks: "https://auth.example.com/.well-known/jwks.json",
///                 algorithm: "RS256",
///                 application_id: "my-app",
///             }
///         },
///     ]
/// }
/// # fn main() {
/// # assert!(__CONVEX_AUTH_JSON.starts_with(r#"{"abi":1,"providers":[{"domain":{"env":"AUTH_ISSUER"},"applicationID":"my-app"},"#));
/// # }
/// ```
///
/// A client that signed its user in sends the provider's token (the
/// `convex` client's `setAuth`, or `Authorization: Bearer` to an HTTP
/// action); the server checks its signature, issuer, audience and
/// expiry, and functions read the user with [`Auth::user_identity`].
///
/// Each provider is one of:
///
/// - `{ domain: URL, application_id: ID }`: an **OpenID Connect**
///   provider. `domain` is its issuer (the token's `iss`); the server finds
///   its keys through `<domain>/.well-known/openid-configuration`.
///   `application_id` is the audience (`aud`) its tokens carry.
/// - `{ custom_jwt: { issuer: URL, jwks: URL, algorithm: ALG, application_id: ID } }`:
///   a **custom JWT** issuer, whose keys are at `jwks` (a URL, or a
///   `data:` URI holding the key set); `algorithm` is `"RS256"` or
///   `"ES256"`; `application_id` is optional (without it the audience is
///   not checked).
///
/// Each value is a string literal or `env("NAME")`: the deployment's
/// environment variable `NAME`, read by the server when the app is
/// deployed, so one build serves several issuers. URLs are `https://`
/// (`http://` only for a local test issuer).
///
/// Unknown or repeated keys, a missing `domain`, `application_id`,
/// `issuer`, `jwks` or `algorithm`, an algorithm other than `RS256` or
/// `ES256`, and a literal URL that is not `http(s)://` are compile errors.
/// The providers become the `cvx.auth` custom section (Convex's names:
/// `{"abi":1,"providers":[{"domain":..,"applicationID":..},
/// {"type":"customJwt","issuer":..,"jwks":..,"algorithm":..}]}`,
/// `env("NAME")` as `{"env":"NAME"}`); the record's JSON is also the
/// constant `__CONVEX_AUTH_JSON`. Declare them once per crate.
pub use convex_sdk_macros::auth_config;

/// Implementation details of the macros. Not public API: no stability
/// guarantees.
#[doc(hidden)]
pub mod __private {
    pub use crate::function::{check_cron_target, path_bytes, path_len, path_str};
    pub use crate::meta::{crons_len, crons_record, fn_meta_len, fn_meta_record, record_json, CronMeta, FnMeta};
    pub use crate::rt::{
        block_on, http_output, run_function, Args, Context, HttpResult, Kind, Out, OutPlain, OutResult,
    };
    pub use serde;

    use crate::Value;

    /// `json!`'s conversion of a Rust expression.
    #[track_caller]
    pub fn json_expr<T: serde::Serialize + ?Sized>(v: &T) -> Value {
        match crate::to_value(v) {
            Ok(v) => v,
            Err(e) => panic!("json!: value cannot be converted to a Convex value: {}", e.message()),
        }
    }
}
