//! An in-process fake of the cvx host, for native `cargo test` (not built
//! for wasm).
//!
//! In a native build the SDK's host calls land here instead of in wasm
//! imports: an in-memory database with tables, ids, creation times, index
//! ranges, filters, ordering and pagination; a log; a seeded random
//! generator; a settable clock; and hooks for `fetch` and for the functions
//! an action runs. It follows `docs/abi.md` (the same JSON requests, error
//! codes and kind rules: a write in a query or a database call in an action
//! is [`ErrorCode::Forbidden`]), but it is a
//! test double, not the server: no concurrency, no schema validation, no
//! limits but the log line limit, cursors are plain offsets.
//!
//! State is per thread (each `#[test]` runs on its own thread), so tests
//! do not see each other's data. Use it two ways:
//!
//! ```
//! use convex_sdk::*;
//!
//! #[mutation]
//! async fn create_user(db: Database, name: String) -> Result<DocumentId, ConvexError> {
//!     db.insert("users", json!({ "name": name })).await
//! }
//!
//! # fn main() {
//! // 1. Through the export, exactly as the host calls it (arguments and
//! //    result as Convex values, errors and panics as the client sees them):
//! let id = testing::call::<create_user>(json!({ "name": "Ada" })).unwrap();
//!
//! // 2. Directly, as ordinary async Rust:
//! let db = Database::for_tests();
//! let doc = testing::block_on(db.get(id.as_str().unwrap().into())).unwrap().unwrap();
//! assert_eq!(doc["name"], Value::from("Ada"));
//! # }
//! ```

pub(crate) mod host;
mod store;

use crate::error::{ConvexError, ErrorCode};
use crate::function::{ConvexFunction, FunctionKind};
use crate::value::Value;
use crate::{HttpResponse, LogLevel};

pub use host::FetchRequest;

/// Polls a future to completion (the SDK's futures complete at once).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    crate::rt::block_on(future)
}

/// Calls the function `F` through its export, as the host does: `args`
/// (an object) go in as convex-encoded JSON, the result comes back as a
/// [`Value`]. A returned error keeps its message and data
/// ([`ConvexError::Application`] when it has data); a panic is
/// [`ErrorCode::Panic`] with the message `Uncaught Error: <message>` (see
/// [`last_panic`] for the location). A failed mutation's writes are rolled
/// back.
pub fn call<F: ConvexFunction>(args: Value) -> Result<Value, ConvexError> {
    host::call_export(F::KIND, F::EXPORT, args)
}

/// The metadata record of `F` (ABI §4) as a [`Value`], exactly as the host
/// reads it from the `cvx.fn` section.
pub fn metadata<F: ConvexFunction>() -> Value {
    let records = crate::meta::split_records(F::METADATA).expect("a framed record");
    assert_eq!(records.len(), 1, "one record per function");
    Value::from_json(records[0]).expect("the record is convex-encoded JSON")
}

/// Declares the indexes of a schema (the `__CONVEX_SCHEMA_JSON` constant
/// that [`schema!`](crate::schema!) defines) in the fake host, so indexed
/// queries sort by the declared fields.
pub fn use_schema(schema_json: &str) {
    let schema = Value::from_json(schema_json).expect("schema JSON");
    for table in schema["tables"].as_array().into_iter().flatten() {
        let name = table["name"].as_str().unwrap_or_default();
        for index in table["indexes"].as_array().into_iter().flatten() {
            let fields: Vec<&str> = index["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            define_index(name, index["name"].as_str().unwrap_or_default(), &fields);
        }
    }
}

/// Makes `F` callable by path from actions ([`ActionCtx::run_query`] and
/// friends) in this thread's fake host.
///
/// [`ActionCtx::run_query`]: crate::ActionCtx::run_query
pub fn register<F: ConvexFunction>() {
    host::with(|s| s.functions.insert(F::PATH.to_string(), (F::KIND, F::EXPORT)));
}

/// Clears this thread's fake host: data, logs, hooks, registered
/// functions, clock and random seed.
pub fn reset() {
    host::with(|s| *s = host::State::default());
}

/// The log lines written so far (by `log!`, `println!` is not captured
/// natively).
pub fn logs() -> Vec<(LogLevel, String)> {
    host::with(|s| s.logs.clone())
}

/// Returns and clears the log lines written so far.
pub fn take_logs() -> Vec<(LogLevel, String)> {
    host::with(|s| std::mem::take(&mut s.logs))
}

/// The last panic recorded by a function: `{"message", "file", "line",
/// "column"}`, as the panic hook sends it to the host.
pub fn last_panic() -> Option<Value> {
    host::with(|s| s.last_panic.clone())
}

/// Sets the clock ([`now_ms`](crate::now_ms)) to `ms` since the epoch.
pub fn set_now_ms(ms: f64) {
    host::with(|s| s.now_ms = ms);
}

/// Reseeds the random generator.
pub fn set_seed(seed: u64) {
    host::with(|s| s.rng = seed);
}

/// Declares the fields of an index so queries `with_index(name, ..)` sort
/// by them (without it, an index's fields are taken from the range
/// conditions of each query).
pub fn define_index(table: &str, name: &str, fields: &[&str]) {
    host::with(|s| {
        s.store.indexes.insert(
            (table.to_string(), name.to_string()),
            fields.iter().map(|f| f.to_string()).collect(),
        )
    });
}

/// Answers [`fetch`](crate::fetch) calls with `handler` (without one,
/// fetch fails with [`ErrorCode::Http`]).
pub fn set_fetch_handler(handler: impl Fn(&FetchRequest) -> Result<HttpResponse, ConvexError> + 'static) {
    host::with(|s| s.fetch = Some(std::rc::Rc::new(handler)));
}

/// All documents of `table`, in creation order.
pub fn documents(table: &str) -> Vec<crate::Document> {
    host::with(|s| s.store.all(table))
}

/// Turns an unexpected kind of call into an error, for the hooks.
pub(crate) fn forbidden(what: &str, kind: FunctionKind) -> ConvexError {
    ConvexError::coded(
        ErrorCode::Forbidden,
        format!("{what} is not allowed in a {}", kind.as_str()),
    )
}
