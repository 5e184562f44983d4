//! The fake host's implementation of the `cvx_1` imports (native builds).
//!
//! Same names and argument meanings as the wasm imports, as plain Rust
//! functions over raw pointers into this process's memory: one for every
//! entry of the host's list (`src/abi/host_fns.def`), with its signature,
//! or `sys.rs`'s forwards do not compile. A guest-side contract violation
//! (reading the wrong length, too many log lines) is a trap on the real
//! host; here it is a panic, which the export turns into a failed call the
//! same way.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::store::Store;
use crate::error::{ConvexError, ErrorCode};
use crate::function::FunctionKind;
use crate::value::Value;
use crate::{HttpResponse, LogLevel};

/// Lines a call keeps (ABI §3, the default limit): the last of them says
/// the rest were omitted, as the host does; the call goes on.
const LOG_LINE_LIMIT: usize = 256;
/// Log lines longer than this are cut.
const LOG_LINE_MAX: usize = 32768;

/// A request that reached [`set_fetch_handler`](super::set_fetch_handler)'s
/// handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchRequest {
    /// The URL.
    pub url: String,
    /// The method.
    pub method: String,
    /// The headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body, if one was set.
    pub body: Option<Vec<u8>>,
}

type FetchHandler = Rc<dyn Fn(&FetchRequest) -> Result<HttpResponse, ConvexError>>;

/// Everything the fake host knows, per thread.
pub(crate) struct State {
    pending: Option<Vec<u8>>,
    output: Option<(i32, Vec<u8>)>,
    panic: Option<Value>,
    pub(crate) last_panic: Option<Value>,
    pub(crate) logs: Vec<(LogLevel, String)>,
    /// The kinds of the calls in progress (innermost last) and their log
    /// line counts.
    calls: Vec<(FunctionKind, usize)>,
    pub(crate) now_ms: f64,
    pub(crate) rng: u64,
    pub(crate) store: Store,
    pub(crate) fetch: Option<FetchHandler>,
    pub(crate) functions: HashMap<String, (FunctionKind, extern "C" fn(i32) -> i32)>,
    /// Upload URLs handed out.
    uploads: u64,
    /// The deployment's environment variables ([`super::set_env`]).
    pub(crate) env: std::collections::BTreeMap<String, String>,
    /// The caller's identity ([`super::set_identity`]); `None`: anonymous.
    pub(crate) identity: Option<crate::UserIdentity>,
}

impl Default for State {
    fn default() -> State {
        State {
            pending: None,
            output: None,
            panic: None,
            last_panic: None,
            logs: Vec::new(),
            calls: Vec::new(),
            now_ms: 1_700_000_000_000.0,
            rng: 0x5eed,
            store: Store::default(),
            fetch: None,
            functions: HashMap::new(),
            uploads: 0,
            env: Default::default(),
            identity: None,
        }
    }
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Runs `f` on this thread's state. Never call back into guest code inside.
pub(crate) fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|s| f(&mut s.borrow_mut()))
}

/// Marks a call of `kind` as running until the guard drops.
pub(crate) struct CallGuard;

impl Drop for CallGuard {
    fn drop(&mut self) {
        with(|s| s.calls.pop());
    }
}

/// Called by the export when a function starts.
pub(crate) fn enter(kind: FunctionKind) -> CallGuard {
    with(|s| s.calls.push((kind, 0)));
    CallGuard
}

fn current_kind() -> Option<FunctionKind> {
    with(|s| s.calls.last().map(|c| c.0))
}

/// Stores a result (or an error) in the pending buffer and returns the ABI
/// return value.
fn respond(result: Result<Value, ConvexError>) -> i64 {
    with(|s| match result {
        Ok(v) => {
            let bytes = v.to_json().into_bytes();
            let n = bytes.len() as i64;
            s.pending = Some(bytes);
            n
        }
        Err(e) => {
            s.pending = Some(e.to_abi_json().into_bytes());
            -(e.code().code() as i64)
        }
    })
}

/// Reads a request the guest passed.
///
/// # Safety
/// `ptr..ptr+len` must be readable.
unsafe fn request(ptr: *const u8, len: i32) -> Result<Value, ConvexError> {
    let bytes = std::slice::from_raw_parts(ptr, len as usize);
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ConvexError::coded(ErrorCode::InvalidArgument, "request is not UTF-8"))?;
    Value::from_json(text)
}

// ---- call plumbing -------------------------------------------------------

pub(crate) unsafe fn __convex_read(dst: *mut u8, len: i32) -> i32 {
    let bytes = with(|s| s.pending.take());
    let Some(bytes) = bytes else {
        panic!("function trapped: __convex_read: nothing is pending")
    };
    if bytes.len() != len as usize {
        panic!(
            "function trapped: __convex_read: {len} bytes requested, {} pending",
            bytes.len()
        );
    }
    std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len());
    len
}

pub(crate) unsafe fn __convex_pending_len() -> i32 {
    with(|s| s.pending.as_ref().map_or(0, |p| p.len() as i32))
}

pub(crate) unsafe fn __convex_output(kind: i32, ptr: *const u8, len: i32) -> i32 {
    let bytes = std::slice::from_raw_parts(ptr, len as usize).to_vec();
    with(|s| s.output = Some((kind, bytes)));
    0
}

pub(crate) unsafe fn __convex_panic(ptr: *const u8, len: i32) -> i32 {
    let v = request(ptr, len).unwrap_or(Value::Null);
    with(|s| {
        s.panic = Some(v.clone());
        s.last_panic = Some(v);
    });
    0
}

pub(crate) unsafe fn __convex_log(level: i32, ptr: *const u8, len: i32) -> i32 {
    let bytes = std::slice::from_raw_parts(ptr, len as usize);
    let mut line = String::from_utf8_lossy(&bytes[..bytes.len().min(LOG_LINE_MAX)]).into_owned();
    if bytes.len() > LOG_LINE_MAX {
        line.push_str(" (truncated due to length)");
    }
    let level = match level {
        1 => LogLevel::Info,
        2 => LogLevel::Warn,
        3 => LogLevel::Error,
        4 => LogLevel::Debug,
        _ => LogLevel::Log,
    };
    with(|s| {
        let count = s.calls.last_mut().map(|c| {
            c.1 += 1;
            c.1
        });
        match count {
            Some(n) if n == LOG_LINE_LIMIT => s.logs.push((
                LogLevel::Warn,
                format!("Log overflow (maximum {LOG_LINE_LIMIT}). Remaining log lines omitted."),
            )),
            Some(n) if n > LOG_LINE_LIMIT => {}
            _ => s.logs.push((level, line)),
        }
    });
    0
}

// ---- determinism ---------------------------------------------------------

pub(crate) unsafe fn __convex_random_bytes(dst: *mut u8, len: i32) -> i32 {
    let out = std::slice::from_raw_parts_mut(dst, len as usize);
    with(|s| {
        for chunk in out.chunks_mut(8) {
            // splitmix64: small, and good enough for a test double.
            s.rng = s.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s.rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    });
    0
}

pub(crate) unsafe fn __convex_now_ms() -> f64 {
    with(|s| s.now_ms)
}

// ---- database ------------------------------------------------------------

/// Runs a database request, enforcing the kind rules of ABI §3.
unsafe fn db(
    ptr: *const u8,
    len: i32,
    write: bool,
    f: impl FnOnce(&mut Store, Value, f64) -> Result<Value, ConvexError>,
) -> i64 {
    let kind = current_kind();
    let result = (|| {
        match kind {
            Some(FunctionKind::Action | FunctionKind::HttpAction) => {
                return Err(ConvexError::coded(
                    ErrorCode::Forbidden,
                    "actions cannot use the database directly; use ctx.run_query / ctx.run_mutation",
                ))
            }
            Some(FunctionKind::Query) if write => {
                return Err(ConvexError::coded(
                    ErrorCode::Forbidden,
                    "queries cannot write; use a mutation",
                ))
            }
            _ => {}
        }
        let req = request(ptr, len)?;
        with(|s| {
            let now = s.now_ms;
            f(&mut s.store, req, now)
        })
    })();
    respond(result)
}

pub(crate) unsafe fn __convex_db_get(ptr: *const u8, len: i32) -> i64 {
    db(ptr, len, false, |st, req, _| st.get(&req))
}

pub(crate) unsafe fn __convex_db_insert(ptr: *const u8, len: i32) -> i64 {
    db(ptr, len, true, |st, req, now| st.insert(&req, now))
}

pub(crate) unsafe fn __convex_db_patch(ptr: *const u8, len: i32) -> i64 {
    db(ptr, len, true, |st, req, _| st.patch(&req))
}

pub(crate) unsafe fn __convex_db_replace(ptr: *const u8, len: i32) -> i64 {
    db(ptr, len, true, |st, req, _| st.replace(&req))
}

pub(crate) unsafe fn __convex_db_delete(ptr: *const u8, len: i32) -> i64 {
    db(ptr, len, true, |st, req, _| st.delete(&req))
}

pub(crate) unsafe fn __convex_db_query(ptr: *const u8, len: i32) -> i64 {
    db(ptr, len, false, |st, req, _| st.query(&req))
}

pub(crate) unsafe fn __convex_db_count(ptr: *const u8, len: i32) -> i64 {
    db(ptr, len, false, |st, req, _| st.count(&req))
}

// ---- actions -------------------------------------------------------------

unsafe fn run(ptr: *const u8, len: i32, want: FunctionKind) -> i64 {
    let result = (|| {
        if let Some(kind) = current_kind().filter(|k| !k.is_action()) {
            return Err(super::forbidden(&format!("running a {} by path", want.as_str()), kind));
        }
        let req = request(ptr, len)?;
        let path = req.get("path").and_then(Value::as_str).unwrap_or_default().to_string();
        let args = req.get("args").cloned().unwrap_or(Value::Null);
        let (kind, export) = lookup(&path)?;
        if kind != want {
            return Err(ConvexError::coded(
                ErrorCode::InvalidArgument,
                format!("\"{path}\" is a {}, not a {}", kind.as_str(), want.as_str()),
            ));
        }
        call_export(kind, export, args).map_err(|e| match e {
            // A nested failure reaches the caller as UNCAUGHT or APPLICATION.
            ConvexError::Application(data) => ConvexError::Coded {
                code: ErrorCode::Application,
                message: ConvexError::Application(data.clone()).message(),
                data: Some(data),
            },
            e => ConvexError::coded(ErrorCode::Uncaught, e.message()),
        })
    })();
    respond(result)
}

pub(crate) unsafe fn __convex_run_query(ptr: *const u8, len: i32) -> i64 {
    run(ptr, len, FunctionKind::Query)
}

pub(crate) unsafe fn __convex_run_mutation(ptr: *const u8, len: i32) -> i64 {
    run(ptr, len, FunctionKind::Mutation)
}

pub(crate) unsafe fn __convex_run_action(ptr: *const u8, len: i32) -> i64 {
    run(ptr, len, FunctionKind::Action)
}

pub(crate) unsafe fn __convex_env_get(ptr: *const u8, len: i32) -> i64 {
    let result = request(ptr, len).and_then(|req| {
        with(|s| match req.get("name") {
            Some(Value::String(name)) => Ok(s.env.get(name).cloned().map(Value::String).unwrap_or(Value::Null)),
            None => Ok(Value::Object(
                s.env
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            )),
            Some(_) => Err(ConvexError::coded(
                ErrorCode::InvalidArgument,
                "\"name\" must be a string",
            )),
        })
    });
    respond(result)
}

pub(crate) unsafe fn __convex_auth_identity(ptr: *const u8, len: i32) -> i64 {
    let result = request(ptr, len).map(|_| with(|s| s.identity.as_ref().map_or(Value::Null, |id| id.to_value())));
    respond(result)
}

pub(crate) unsafe fn __convex_http_fetch(ptr: *const u8, len: i32) -> i64 {
    let result = (|| {
        if let Some(kind) = current_kind().filter(|k| !k.is_action()) {
            return Err(super::forbidden("fetch", kind));
        }
        let req = request(ptr, len)?;
        let headers = req
            .get("headers")
            .and_then(Value::as_array)
            .map(|hs| {
                hs.iter()
                    .map(|h| {
                        (
                            h[0].as_str().unwrap_or("").to_string(),
                            h[1].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let fr = FetchRequest {
            url: req.get("url").and_then(Value::as_str).unwrap_or_default().to_string(),
            method: req.get("method").and_then(Value::as_str).unwrap_or("GET").to_string(),
            headers,
            body: req.get("body").and_then(Value::as_bytes).map(<[u8]>::to_vec),
        };
        let handler = with(|s| s.fetch.clone());
        let Some(handler) = handler else {
            return Err(ConvexError::coded(
                ErrorCode::Http,
                format!(
                    "fetch {}: no network in tests (set one with testing::set_fetch_handler)",
                    fr.url
                ),
            ));
        };
        Ok(handler(&fr)?.into_value())
    })();
    respond(result)
}

// ---- scheduling and file storage -----------------------------------------

/// Fails unless the running function is one of `kinds` (native code
/// outside any function may do anything).
fn allowed_in(what: &str, kinds: &[FunctionKind]) -> Result<(), ConvexError> {
    match current_kind() {
        Some(kind) if !kinds.contains(&kind) => Err(super::forbidden(what, kind)),
        _ => Ok(()),
    }
}

const WRITERS: &[FunctionKind] = &[FunctionKind::Mutation, FunctionKind::Action, FunctionKind::HttpAction];
const ACTIONS: &[FunctionKind] = &[FunctionKind::Action, FunctionKind::HttpAction];

/// The table of scheduled jobs.
pub(crate) const SCHEDULED: &str = "_scheduled_functions";
/// The table of file metadata.
pub(crate) const STORAGE: &str = "_storage";

pub(crate) unsafe fn __convex_schedule(ptr: *const u8, len: i32) -> i64 {
    let result = (|| {
        allowed_in("scheduling", WRITERS)?;
        let req = request(ptr, len)?;
        let path = req
            .get("path")
            .and_then(Value::as_str)
            .filter(|p| p.contains(':'))
            .ok_or_else(|| {
                ConvexError::coded(
                    ErrorCode::InvalidArgument,
                    "schedule: \"path\" must be \"module:function\"",
                )
            })?;
        let args = req
            .get("args")
            .filter(|a| a.as_object().is_some())
            .ok_or_else(|| ConvexError::coded(ErrorCode::InvalidArgument, "schedule: \"args\" must be an object"))?;
        let at = req
            .get("atMs")
            .and_then(Value::as_f64)
            .filter(|t| t.is_finite())
            .ok_or_else(|| ConvexError::coded(ErrorCode::InvalidArgument, "schedule: \"atMs\" must be a number"))?;
        let job = [
            ("name", Value::from(path)),
            ("args", Value::Array(vec![args.clone()])),
            ("scheduledTime", Value::Float64(at)),
            ("state", [("kind", "pending")].into_iter().collect()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Ok(with(|s| {
            let now = s.now_ms;
            Value::String(s.store.insert_doc(SCHEDULED, job, now))
        }))
    })();
    respond(result)
}

pub(crate) unsafe fn __convex_schedule_cancel(ptr: *const u8, len: i32) -> i64 {
    let result = (|| {
        allowed_in("canceling a scheduled function", WRITERS)?;
        let req = request(ptr, len)?;
        let id = req.get("id").and_then(Value::as_str).ok_or_else(|| {
            ConvexError::coded(ErrorCode::InvalidArgument, "schedule_cancel: \"id\" must be a string")
        })?;
        with(|s| {
            if s.store.table_of(id)? != Some(SCHEDULED) {
                return Err(ConvexError::coded(
                    ErrorCode::NotFound,
                    format!("no scheduled function with id \"{id}\""),
                ));
            }
            let now = s.now_ms;
            let job = s.store.system_doc_mut(SCHEDULED, id).expect("the job exists");
            if job["state"]["kind"].as_str() == Some("pending") {
                job.insert("state".into(), [("kind", "canceled")].into_iter().collect());
                job.insert("completedTime".into(), Value::Float64(now));
            }
            Ok(Value::Null)
        })
    })();
    respond(result)
}

/// The storage id of a request `{"storageId": string}`, and whether it
/// names a file (a malformed id is an error).
fn storage_id(req: &Value, s: &State) -> Result<(String, bool), ConvexError> {
    let id = req
        .get("storageId")
        .and_then(Value::as_str)
        .ok_or_else(|| ConvexError::coded(ErrorCode::InvalidArgument, "request needs a string \"storageId\""))?;
    let exists = s.store.table_of(id)? == Some(STORAGE);
    Ok((id.to_string(), exists))
}

/// Stores a file as the host does: bytes plus a `_storage` document.
pub(crate) fn store_file(s: &mut State, data: Vec<u8>, content_type: Option<&str>) -> String {
    let mut meta: std::collections::BTreeMap<String, Value> = [
        ("sha256".to_string(), Value::from(super::sha256::hex(&data))),
        ("size".to_string(), Value::Float64(data.len() as f64)),
    ]
    .into_iter()
    .collect();
    if let Some(t) = content_type {
        meta.insert("contentType".into(), Value::from(t));
    }
    let now = s.now_ms;
    let id = s.store.insert_doc(STORAGE, meta, now);
    s.store.files.insert(id.clone(), data);
    id
}

pub(crate) unsafe fn __convex_storage_store(
    meta_ptr: *const u8,
    meta_len: i32,
    data_ptr: *const u8,
    data_len: i32,
) -> i64 {
    let result = (|| {
        allowed_in("storing a file", ACTIONS)?;
        let meta = request(meta_ptr, meta_len)?;
        let content_type = match meta.get("contentType") {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) => Some(t.clone()),
            Some(_) => {
                return Err(ConvexError::coded(
                    ErrorCode::InvalidArgument,
                    "storage store: \"contentType\" must be a string",
                ))
            }
        };
        let data = std::slice::from_raw_parts(data_ptr, data_len as usize).to_vec();
        Ok(Value::String(with(|s| store_file(s, data, content_type.as_deref()))))
    })();
    respond(result)
}

pub(crate) unsafe fn __convex_storage_get(ptr: *const u8, len: i32) -> i64 {
    let result = (|| {
        allowed_in("reading a file", ACTIONS)?;
        let req = request(ptr, len)?;
        with(|s| match storage_id(&req, s)? {
            (id, true) => Ok(s.store.files[&id].clone()),
            (id, false) => Err(ConvexError::coded(
                ErrorCode::NotFound,
                format!("file \"{id}\" not found"),
            )),
        })
    })();
    // The response is the raw bytes, not JSON.
    match result {
        Ok(bytes) => with(|s| {
            let n = bytes.len() as i64;
            s.pending = Some(bytes);
            n
        }),
        Err(e) => respond(Err(e)),
    }
}

pub(crate) unsafe fn __convex_storage_get_url(ptr: *const u8, len: i32) -> i64 {
    let result = (|| {
        let req = request(ptr, len)?;
        with(|s| match storage_id(&req, s)? {
            (id, true) => Ok(Value::String(format!("{}/api/storage/{id}", super::FAKE_ORIGIN))),
            (_, false) => Ok(Value::Null),
        })
    })();
    respond(result)
}

pub(crate) unsafe fn __convex_storage_delete(ptr: *const u8, len: i32) -> i64 {
    let result = (|| {
        allowed_in("deleting a file", WRITERS)?;
        let req = request(ptr, len)?;
        with(|s| match storage_id(&req, s)? {
            (id, true) => {
                s.store.remove(&id);
                s.store.files.remove(&id);
                Ok(Value::Null)
            }
            (id, false) => Err(ConvexError::coded(
                ErrorCode::NotFound,
                format!("file \"{id}\" not found"),
            )),
        })
    })();
    respond(result)
}

pub(crate) unsafe fn __convex_storage_generate_upload_url(ptr: *const u8, len: i32) -> i64 {
    let result = (|| {
        allowed_in("generating an upload URL", WRITERS)?;
        request(ptr, len)?;
        Ok(with(|s| {
            s.uploads += 1;
            Value::String(format!("{}/api/storage/upload?token={}", super::FAKE_ORIGIN, s.uploads))
        }))
    })();
    respond(result)
}

// ---- the JavaScript engine's ---------------------------------------------

/// Host functions only the JavaScript engine calls (`docs/abi.md` §3); the
/// SDK never does. They are here because this file implements the whole
/// list (`sys.rs` forwards every entry of the host's `host_fns.def` to it),
/// and fail rather than pretend.
fn not_in_fake_host(name: &str) -> i64 {
    respond(Err(ConvexError::coded(
        ErrorCode::Internal,
        format!("{name}: not implemented by the fake host of convex_sdk::testing"),
    )))
}

pub(crate) unsafe fn __convex_call_info() -> i64 {
    not_in_fake_host("__convex_call_info")
}

pub(crate) unsafe fn __convex_validate(_ptr: *const u8, _len: i32) -> i64 {
    not_in_fake_host("__convex_validate")
}

pub(crate) unsafe fn __convex_db_normalize_id(_ptr: *const u8, _len: i32) -> i64 {
    not_in_fake_host("__convex_db_normalize_id")
}

pub(crate) unsafe fn __convex_storage_metadata(_ptr: *const u8, _len: i32) -> i64 {
    not_in_fake_host("__convex_storage_metadata")
}

// ---- calling exports -----------------------------------------------------

/// The registered function at `path`.
pub(crate) fn lookup(path: &str) -> Result<(FunctionKind, extern "C" fn(i32) -> i32), ConvexError> {
    with(|s| s.functions.get(path).copied()).ok_or_else(|| {
        ConvexError::coded(
            ErrorCode::NoFunction,
            format!("Could not find function \"{path}\" (register it with testing::register)"),
        )
    })
}

/// Calls an export as the host does and turns its outcome into a result.
pub(crate) fn call_export(
    kind: FunctionKind,
    export: extern "C" fn(i32) -> i32,
    args: Value,
) -> Result<Value, ConvexError> {
    let args = args.to_json().into_bytes();
    let len = args.len() as i32;
    // Nested calls (an action running a query) keep the outer call's buffers.
    let (saved, snapshot) = with(|s| {
        let saved = (s.pending.replace(args), s.output.take(), s.panic.take());
        let snapshot = (kind == FunctionKind::Mutation).then(|| s.store.clone());
        (saved, snapshot)
    });
    export(len);
    let (output, panic) = with(|s| {
        let out = (s.output.take(), s.panic.take());
        (s.pending, s.output, s.panic) = saved;
        out
    });
    let result = match (output, panic) {
        (_, Some(p)) => Err(ConvexError::coded(
            ErrorCode::Panic,
            format!(
                "Uncaught Error: {}",
                p.get("message").and_then(Value::as_str).unwrap_or("panic")
            ),
        )),
        (Some((0, bytes)), None) => Value::from_json(std::str::from_utf8(&bytes).unwrap_or("")),
        (Some((_, bytes)), None) => {
            let v = Value::from_json(std::str::from_utf8(&bytes).unwrap_or("")).unwrap_or(Value::Null);
            let message = v.get("message").and_then(Value::as_str).unwrap_or("").to_string();
            Err(match v.get("data") {
                Some(data) => ConvexError::Application(data.clone()),
                None => ConvexError::Unknown(message),
            })
        }
        (None, None) => Err(ConvexError::coded(ErrorCode::Internal, "function returned no result")),
    };
    if let (Err(_), Some(snapshot)) = (&result, snapshot) {
        with(|s| s.store = snapshot);
    }
    result
}
