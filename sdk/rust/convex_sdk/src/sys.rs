//! The raw guest ABI (`docs/abi.md`): imports from `cvx_1`, and the safe
//! wrappers the rest of the SDK uses.
//!
//! This is the only file that touches the host. On `wasm32` the functions are
//! wasm imports; on other targets they are the in-process fake host of
//! [`crate::testing`], with the same names and signatures, so everything
//! above this file is the same code in both builds. A wasm module imports
//! only the host functions it really calls (the linker drops the rest).

use crate::error::ConvexError;
use crate::value::Value;

#[cfg(target_arch = "wasm32")]
pub(crate) mod imports {
    #[link(wasm_import_module = "cvx_1")]
    extern "C" {
        pub fn __convex_read(dst: *mut u8, len: i32) -> i32;
        pub fn __convex_pending_len() -> i32;
        pub fn __convex_output(kind: i32, ptr: *const u8, len: i32) -> i32;
        pub fn __convex_panic(ptr: *const u8, len: i32) -> i32;
        pub fn __convex_log(level: i32, ptr: *const u8, len: i32) -> i32;
        pub fn __convex_random_bytes(dst: *mut u8, len: i32) -> i32;
        pub fn __convex_now_ms() -> f64;
        pub fn __convex_db_get(ptr: *const u8, len: i32) -> i64;
        pub fn __convex_db_insert(ptr: *const u8, len: i32) -> i64;
        pub fn __convex_db_patch(ptr: *const u8, len: i32) -> i64;
        pub fn __convex_db_replace(ptr: *const u8, len: i32) -> i64;
        pub fn __convex_db_delete(ptr: *const u8, len: i32) -> i64;
        pub fn __convex_db_query(ptr: *const u8, len: i32) -> i64;
        pub fn __convex_db_count(ptr: *const u8, len: i32) -> i64;
        pub fn __convex_run_query(ptr: *const u8, len: i32) -> i64;
        pub fn __convex_run_mutation(ptr: *const u8, len: i32) -> i64;
        pub fn __convex_run_action(ptr: *const u8, len: i32) -> i64;
        pub fn __convex_http_fetch(ptr: *const u8, len: i32) -> i64;
        pub fn __convex_schedule(ptr: *const u8, len: i32) -> i64;
        pub fn __convex_schedule_cancel(ptr: *const u8, len: i32) -> i64;
        pub fn __convex_storage_store(meta_ptr: *const u8, meta_len: i32, data_ptr: *const u8, data_len: i32) -> i64;
        pub fn __convex_storage_get(ptr: *const u8, len: i32) -> i64;
        pub fn __convex_storage_get_url(ptr: *const u8, len: i32) -> i64;
        pub fn __convex_storage_delete(ptr: *const u8, len: i32) -> i64;
        pub fn __convex_storage_generate_upload_url(ptr: *const u8, len: i32) -> i64;
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use crate::testing::host as imports;

/// A host function that takes one JSON request and returns a *result*
/// (ABI §3: `n >= 0` bytes of response, or `-code` with an error JSON).
///
/// Callers pass the import itself (`imports::__convex_db_get`), so a module
/// references, and therefore imports, only the host functions it calls.
#[cfg(target_arch = "wasm32")]
pub(crate) type HostFn = unsafe extern "C" fn(*const u8, i32) -> i64;
#[cfg(not(target_arch = "wasm32"))]
pub(crate) type HostFn = unsafe fn(*const u8, i32) -> i64;

/// Log levels of `__convex_log`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub(crate) enum Level {
    Log = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
    Debug = 4,
}

fn len_i32(n: usize) -> i32 {
    // The host traps on lengths above 64 MiB anyway; saturate rather than wrap.
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Copies the pending buffer (exactly `len` bytes) into a new vector.
pub(crate) fn read_pending(len: usize) -> Vec<u8> {
    let mut buf = Vec::<u8>::with_capacity(len);
    if len > 0 {
        // SAFETY: the host writes exactly `len` bytes into the spare capacity
        // (or traps), after which they are initialised.
        unsafe {
            imports::__convex_read(buf.as_mut_ptr(), len_i32(len));
            buf.set_len(len);
        }
    }
    buf
}

/// Sets the call's outcome (kind 0 = result JSON, 1 = error JSON).
pub(crate) fn output(kind: i32, bytes: &[u8]) {
    // SAFETY: a valid pointer range the host only reads.
    unsafe {
        imports::__convex_output(kind, bytes.as_ptr(), len_i32(bytes.len()));
    }
}

/// Records a panic before the guest aborts.
pub(crate) fn panic_record(bytes: &[u8]) {
    // SAFETY: as for `output`.
    unsafe {
        imports::__convex_panic(bytes.as_ptr(), len_i32(bytes.len()));
    }
}

/// Writes one log line.
pub(crate) fn log(level: Level, line: &str) {
    // SAFETY: as for `output`.
    unsafe {
        imports::__convex_log(level as i32, line.as_ptr(), len_i32(line.len()));
    }
}

/// Fills `buf` from the host's generator (seeded in queries and mutations).
pub(crate) fn random_bytes(buf: &mut [u8]) {
    for chunk in buf.chunks_mut(1 << 20) {
        // SAFETY: the host writes exactly `chunk.len()` bytes into it.
        unsafe {
            imports::__convex_random_bytes(chunk.as_mut_ptr(), len_i32(chunk.len()));
        }
    }
}

/// The host's clock, in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> f64 {
    // SAFETY: no arguments.
    unsafe { imports::__convex_now_ms() }
}

/// Sends `request` to a *result* host function and parses the response.
pub(crate) fn call(f: HostFn, request: &Value) -> Result<Value, ConvexError> {
    parse_response(&call_raw(f, request.to_json().as_bytes())?)
}

fn parse_response(body: &[u8]) -> Result<Value, ConvexError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ConvexError::coded(crate::ErrorCode::Internal, "host returned invalid UTF-8"))?;
    Value::from_json(text)
}

/// Like [`call`], with the request and response as bytes.
pub(crate) fn call_raw(f: HostFn, request: &[u8]) -> Result<Vec<u8>, ConvexError> {
    // SAFETY: a valid pointer range the host only reads.
    let n = unsafe { f(request.as_ptr(), len_i32(request.len())) };
    take_result(n)
}

/// `__convex_storage_store`: a JSON `meta` request plus raw `data` (the one
/// host function with two input ranges); the response is JSON.
pub(crate) fn storage_store(meta: &Value, data: &[u8]) -> Result<Value, ConvexError> {
    let meta = meta.to_json();
    // SAFETY: two valid pointer ranges the host only reads.
    let n = unsafe {
        imports::__convex_storage_store(meta.as_ptr(), len_i32(meta.len()), data.as_ptr(), len_i32(data.len()))
    };
    parse_response(&take_result(n)?)
}

/// Reads the outcome of a *result* host function that returned `n`.
fn take_result(n: i64) -> Result<Vec<u8>, ConvexError> {
    if n >= 0 {
        Ok(read_pending(n as usize))
    } else {
        // The error JSON's length is not in the return value; ask for it.
        // SAFETY: no arguments.
        let len = unsafe { imports::__convex_pending_len() };
        let body = read_pending(len.max(0) as usize);
        let code = i32::try_from(-n).unwrap_or(i32::MAX);
        Err(ConvexError::from_host(code, &body))
    }
}
