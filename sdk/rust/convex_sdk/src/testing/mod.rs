//! An in-process fake of the cvx host, for native `cargo test` (not built
//! for wasm).
//!
//! In a native build the SDK's host calls land here instead of in wasm
//! imports: an in-memory database with tables, ids, creation times, index
//! ranges, filters, ordering and pagination; a log; a seeded random
//! generator; a settable clock; hooks for `fetch` and for the functions
//! an action runs; a scheduler whose due jobs [`run_scheduled`] runs; file
//! storage; environment variables ([`set_env`]); the caller's identity
//! ([`set_identity`]); and [`call_http`] for HTTP actions. It follows `docs/abi.md`
//! (the same JSON requests, system tables, error codes and kind rules: a
//! write in a query or a database call in an action is
//! [`ErrorCode::Forbidden`]), but it is a test double, not the server: no
//! concurrency, no schema validation, no limits but the log line limit (256 kept),
//! no pagination journal, nothing runs by itself (call
//! [`run_scheduled`], [`run_cron`]). Its queries, index ranges, filters,
//! cursors and write rules are checked against the server's store by
//! `tests/conformance` in the cvx repository.
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
mod sha256;
mod store;

use crate::error::{ConvexError, ErrorCode};
use crate::function::{ConvexFunction, FunctionKind};
use crate::value::Value;
use crate::{HttpRequest, HttpResponse, LogLevel, StorageId};

/// The origin of the fake host's storage URLs.
pub(crate) const FAKE_ORIGIN: &str = "http://127.0.0.1:3210";

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

/// Calls the HTTP action `F` with `request`, as the server does for
/// `METHOD /http<route>` (the route is not checked), and returns its
/// response. An `Err` is a failed call (an error or a panic of the
/// function), which the server answers with an error status.
///
/// ```
/// use convex_sdk::*;
///
/// #[http_action(method = "POST", route = "/echo")]
/// fn echo(req: HttpRequest) -> HttpResponse {
///     HttpResponse::from_text(req.text())
/// }
///
/// # fn main() {
/// let response = testing::call_http::<echo>(HttpRequest::new("POST", "/echo").with_body("hi")).unwrap();
/// assert_eq!((response.status, response.text().as_str()), (200, "hi"));
/// # }
/// ```
pub fn call_http<F: ConvexFunction>(request: HttpRequest) -> Result<HttpResponse, ConvexError> {
    assert_eq!(
        F::KIND,
        FunctionKind::HttpAction,
        "testing::call_http: {} is not an #[http_action] (use testing::call)",
        F::PATH
    );
    host::call_export(F::KIND, F::EXPORT, request.into_value()).and_then(crate::http::response_from)
}

/// Runs the scheduled jobs that are due (pending, with a time at or before
/// the clock, see [`set_now_ms`]), oldest first, including jobs they
/// schedule that are due too; returns how many ran.
///
/// A job's function must be [`register`]ed. Each job's document in
/// `_scheduled_functions` (read it with [`documents`] or `db.get`) ends
/// in the state `success`, or `failed` with the error message.
///
/// ```
/// use convex_sdk::*;
///
/// #[mutation]
/// async fn ping(db: Database, text: String) -> Result<DocumentId, ConvexError> {
///     db.insert("pings", json!({ "text": text })).await
/// }
///
/// #[mutation]
/// async fn remind(scheduler: Scheduler) -> Result<DocumentId, ConvexError> {
///     scheduler.run_after(60_000, <ping as ConvexFunction>::PATH, json!({ "text": "hello" })).await
/// }
///
/// # fn main() {
/// testing::register::<ping>();
/// testing::call::<remind>(json!({})).unwrap();
/// assert_eq!(testing::run_scheduled(), 0, "not due yet");
/// testing::set_now_ms(now_ms() + 60_000.0);
/// assert_eq!(testing::run_scheduled(), 1);
/// assert_eq!(testing::documents("pings").len(), 1);
/// let job = &testing::documents("_scheduled_functions")[0];
/// assert_eq!(job["state"]["kind"], json!("success"));
/// # }
/// ```
pub fn run_scheduled() -> usize {
    let mut ran = 0;
    while let Some((id, path, args)) = host::with(|s| {
        let now = s.now_ms;
        s.store
            .all(host::SCHEDULED)
            .into_iter()
            .filter(|job| job["state"]["kind"].as_str() == Some("pending"))
            .filter(|job| job["scheduledTime"].as_f64().is_some_and(|t| t <= now))
            .min_by(|a, b| a["scheduledTime"].total_cmp(&b["scheduledTime"]))
            .map(|job| {
                let path = job["name"].as_str().unwrap_or_default().to_string();
                (job.id(), path, job["args"][0].clone())
            })
    }) {
        ran += 1;
        assert!(
            ran <= 10_000,
            "testing::run_scheduled: more than 10000 jobs ran; does a job keep scheduling itself without a delay?"
        );
        set_job_state(id.as_str(), [("kind", Value::from("inProgress"))], false);
        let outcome = host::lookup(&path).and_then(|(kind, export)| match kind {
            FunctionKind::Mutation | FunctionKind::Action => anonymously(|| host::call_export(kind, export, args)),
            other => Err(ConvexError::coded(
                ErrorCode::InvalidArgument,
                format!(
                    "\"{path}\" is a {}; only mutations and actions can be scheduled",
                    other.as_str()
                ),
            )),
        });
        match outcome {
            Ok(_) => set_job_state(id.as_str(), [("kind", Value::from("success"))], true),
            Err(e) => set_job_state(
                id.as_str(),
                [("kind", Value::from("failed")), ("error", Value::from(e.message()))],
                true,
            ),
        }
    }
    ran
}

fn set_job_state<const N: usize>(id: &str, state: [(&str, Value); N], done: bool) {
    host::with(|s| {
        let now = s.now_ms;
        if let Some(job) = s.store.system_doc_mut(host::SCHEDULED, id) {
            job.insert("state".into(), state.into_iter().collect());
            if done {
                job.insert("completedTime".into(), Value::Float64(now));
            }
        }
    });
}

/// Runs the cron `name` of a [`crons!`](crate::crons!) declaration now,
/// as the server does when it is due: calls its (registered, see
/// [`register`]) function with its arguments. `crons_json` is the
/// `__CONVEX_CRONS_JSON` constant that `crons!` defines.
pub fn run_cron(crons_json: &str, name: &str) -> Result<Value, ConvexError> {
    let crons = Value::from_json(crons_json).expect("crons JSON");
    let cron = crons["crons"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("testing::run_cron: there is no cron named \"{name}\""));
    let (kind, export) = host::lookup(cron["path"].as_str().unwrap_or_default())?;
    anonymously(|| host::call_export(kind, export, cron["args"].clone()))
}

/// Stores a file as a client upload would (to a URL from
/// [`Storage::generate_upload_url`](crate::Storage::generate_upload_url))
/// and returns its id.
pub fn store_file(data: impl Into<Vec<u8>>, content_type: Option<&str>) -> StorageId {
    StorageId::new(host::with(|s| host::store_file(s, data.into(), content_type)))
}

/// The contents of a stored file, or `None`.
pub fn file(id: &StorageId) -> Option<Vec<u8>> {
    host::with(|s| s.store.files.get(id.as_str()).cloned())
}

/// The metadata record of `F` (ABI §4) as a [`Value`], exactly as the host
/// reads it from the `cvx.fn` section.
pub fn metadata<F: ConvexFunction>() -> Value {
    let records = crate::meta::split_records(F::METADATA).expect("a framed record");
    assert_eq!(records.len(), 1, "one record per function");
    Value::from_json(records[0]).expect("the record is convex-encoded JSON")
}

/// Declares the tables and indexes of a schema (the `__CONVEX_SCHEMA_JSON`
/// constant that [`schema!`](crate::schema!) defines) in the fake host, so
/// indexed queries sort by the declared fields. From then on, as on the
/// server, a query naming an index the schema does not declare fails.
pub fn use_schema(schema_json: &str) {
    let schema = Value::from_json(schema_json).expect("schema JSON");
    for table in schema["tables"].as_array().into_iter().flatten() {
        let name = table["name"].as_str().unwrap_or_default();
        host::with(|s| {
            s.store
                .schema_tables
                .get_or_insert_with(Default::default)
                .insert(name.to_string())
        });
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

/// Clears this thread's fake host: data, files, scheduled jobs, logs,
/// hooks, registered functions, environment variables, the caller's
/// identity, clock and random seed.
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

/// Sets (`Some`) or removes (`None`) an environment variable that
/// [`env::var`](crate::env::var) reads, as `cvx env set` / `remove` do.
pub fn set_env(name: &str, value: Option<&str>) {
    host::with(|s| match value {
        Some(v) => s.env.insert(name.to_string(), v.to_string()),
        None => s.env.remove(name),
    });
}

/// Makes the following calls (until the next `set_identity` or
/// [`reset`]) come from the user `identity` (`Some`, or a
/// [`UserIdentity`](crate::UserIdentity) as is) or from an anonymous
/// caller (`None`, the default): what [`Auth::user_identity`] answers, as
/// if the client had sent a valid token of that user.
///
/// Functions an action runs by path see the same caller; jobs that
/// [`run_scheduled`] and [`run_cron`] run are anonymous, as on Convex.
///
/// [`Auth::user_identity`]: crate::Auth::user_identity
///
/// ```
/// use convex_sdk::*;
///
/// #[query]
/// async fn whoami(auth: Auth) -> Result<Option<String>, ConvexError> {
///     Ok(auth.user_identity().await?.and_then(|user| user.email))
/// }
///
/// # fn main() {
/// assert_eq!(testing::call::<whoami>(json!({})).unwrap(), json!(null));
/// testing::set_identity(UserIdentity {
///     email: Some("ada@example.com".into()),
///     ..UserIdentity::new("https://issuer.example", "user_1")
/// });
/// assert_eq!(testing::call::<whoami>(json!({})).unwrap(), json!("ada@example.com"));
/// testing::set_identity(None);
/// assert_eq!(testing::call::<whoami>(json!({})).unwrap(), json!(null));
/// # }
/// ```
pub fn set_identity(identity: impl Into<Option<crate::UserIdentity>>) {
    let identity = identity.into();
    host::with(|s| s.identity = identity);
}

/// Runs `f` as an anonymous caller (scheduled jobs and crons).
fn anonymously<R>(f: impl FnOnce() -> R) -> R {
    let saved = host::with(|s| s.identity.take());
    let out = f();
    host::with(|s| s.identity = saved);
    out
}

/// Reseeds the random generator.
pub fn set_seed(seed: u64) {
    host::with(|s| s.rng = seed);
}

/// Declares the fields of an index so queries `with_index(name, ..)` sort
/// by them (without it, and without [`use_schema`], an index's fields are
/// taken from the range conditions of each query).
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

/// All documents of `table`, in creation order (system tables too:
/// `_scheduled_functions`, `_storage`).
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
