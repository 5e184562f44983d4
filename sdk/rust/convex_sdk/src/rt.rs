//! The runtime behind the function macros: what a generated export calls.
//!
//! A generated export is `extern "C" fn(args_len: i32) -> i32` (ABI §5). It
//! hands [`run_function`] a closure that takes the decoded arguments, builds
//! the context parameters, runs the user's function (polling its future with
//! [`block_on`]) and converts the result. `run_function` reads the
//! arguments from the pending buffer and reports the outcome with
//! `__convex_output`.
//!
//! Panics: guests build with `panic = "abort"`, so nothing can catch them.
//! A panic hook (installed once per instance) sends the message and
//! location to the host with `__convex_panic` before the abort traps; the
//! host reports `Uncaught Error: <message>`. In native test builds the same
//! hook records the panic in the fake host and `catch_unwind` stops the
//! unwind at the export (a panic must not cross an `extern "C"` boundary).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::task::{Context as TaskContext, Poll, RawWaker, RawWakerVTable, Waker};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::de::Missing;
use crate::error::{ConvexError, ErrorCode};
use crate::sys;
use crate::value::Value;

pub use crate::function::FunctionKind as Kind;

/// A context parameter (`Database`, `ActionCtx`, `Scheduler`, `Storage`, `Auth`)
/// that the generated code creates instead of reading it from the
/// arguments.
#[doc(hidden)]
pub trait Context: Sized {
    /// Creates the context for a function of `kind`.
    fn __convex_new(kind: Kind) -> Self;
}

/// The decoded argument object of a call.
#[doc(hidden)]
pub struct Args {
    fields: BTreeMap<String, Value>,
}

impl Args {
    /// Removes the argument `name` and converts it to `T`. A missing
    /// argument is `None` for an `Option<T>` and an error otherwise.
    pub fn take<T: DeserializeOwned>(&mut self, name: &str) -> Result<T, ConvexError> {
        let result = match self.fields.remove(name) {
            Some(v) => T::deserialize(v),
            None => T::deserialize(Missing(name)),
        };
        result.map_err(|e| match e {
            ConvexError::Coded { message, .. } if message.starts_with("missing required field") => {
                ConvexError::coded(ErrorCode::Args, format!("missing required argument \"{name}\""))
            }
            e => ConvexError::coded(ErrorCode::Args, format!("argument \"{name}\": {}", e.message())),
        })
    }

    /// The whole argument object as the request of an HTTP action.
    pub fn request(&mut self) -> Result<crate::HttpRequest, ConvexError> {
        crate::HttpRequest::from_value(Value::Object(std::mem::take(&mut self.fields)))
    }
}

fn parse_args(bytes: &[u8]) -> Result<Args, ConvexError> {
    let bad = |m: String| ConvexError::coded(ErrorCode::Args, m);
    if bytes.is_empty() {
        return Ok(Args {
            fields: BTreeMap::new(),
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| bad("arguments are not UTF-8".into()))?;
    match Value::from_json(text).map_err(|e| bad(format!("arguments: {}", e.message())))? {
        Value::Object(fields) => Ok(Args { fields }),
        Value::Null => Ok(Args {
            fields: BTreeMap::new(),
        }),
        other => Err(bad(format!("arguments must be an object, not {}", other.type_name()))),
    }
}

/// Runs one call of a function: reads `args_len` bytes of arguments, runs
/// `body` and reports its outcome. Always returns 0 (ABI §5).
#[doc(hidden)]
pub fn run_function(kind: Kind, args_len: i32, body: impl FnOnce(Args) -> Result<Value, ConvexError>) -> i32 {
    install_panic_hook();
    let bytes = sys::read_pending(args_len.max(0) as usize);
    #[cfg(not(target_arch = "wasm32"))]
    let _guard = crate::testing::host::enter(kind);
    #[cfg(target_arch = "wasm32")]
    let _ = kind;
    // Calls nest in native tests (an action's run_query runs another export).
    let outer = IN_FUNCTION.with(|f| f.replace(true));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse_args(&bytes).and_then(body)));
    IN_FUNCTION.with(|f| f.set(outer));
    match outcome {
        Ok(Ok(value)) => sys::output(0, value.to_json().as_bytes()),
        Ok(Err(e)) => sys::output(1, e.to_abi_json().as_bytes()),
        // Only reachable when panics unwind (native tests): the hook has
        // recorded the panic, and no outcome is set, as after a trap.
        Err(_) => {}
    }
    0
}

thread_local! {
    /// Set while a function runs, so the panic hook knows a panic is the
    /// function's (native builds share the process with a test harness).
    static IN_FUNCTION: Cell<bool> = const { Cell::new(false) };
    /// Set when the waker of [`block_on`] is woken.
    static WOKEN: Cell<bool> = const { Cell::new(false) };
}

fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_FUNCTION.with(Cell::get) {
                return previous(info);
            }
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "Box<dyn Any>".to_string());
            let mut record = BTreeMap::new();
            record.insert("message".to_string(), Value::String(message));
            if let Some(loc) = info.location() {
                record.insert("file".to_string(), Value::String(loc.file().to_string()));
                record.insert("line".to_string(), Value::Float64(loc.line().into()));
                record.insert("column".to_string(), Value::Float64(loc.column().into()));
            }
            sys::panic_record(Value::Object(record).to_json().as_bytes());
        }));
    });
}

/// Polls `future` to completion on the current thread.
///
/// The SDK's futures complete on their first poll (host calls are
/// synchronous), so this is all the executor a guest needs. A future that
/// stays pending without waking itself would wait forever for nothing, so
/// it is a panic instead.
#[doc(hidden)]
pub fn block_on<F: Future>(future: F) -> F::Output {
    fn clone(_: *const ()) -> RawWaker {
        RawWaker::new(std::ptr::null(), &VTABLE)
    }
    fn wake(_: *const ()) {
        WOKEN.with(|w| w.set(true));
    }
    fn drop(_: *const ()) {}
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop);

    // SAFETY: the vtable functions ignore the data pointer.
    let waker = unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) };
    let mut cx = TaskContext::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        WOKEN.with(|w| w.set(false));
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        if !WOKEN.with(Cell::get) {
            panic!(
                "a future is pending, but a Convex function has nothing to wait for (no I/O runs in the background)"
            );
        }
    }
}

/// Holds a function's return value so that method resolution can tell a
/// `Result` from a plain value (autoref specialisation: [`OutResult`] is
/// found on `Out<Result<..>>` before [`OutPlain`] on `&mut Out<T>`).
#[doc(hidden)]
pub struct Out<T>(pub Option<T>);

/// Converts a `Result<T, E>` return value.
#[doc(hidden)]
pub trait OutResult {
    /// The outcome.
    fn __convex_output_must_be_serializable(&mut self) -> Result<Value, ConvexError>;
}

impl<T: Serialize, E: Into<ConvexError>> OutResult for Out<Result<T, E>> {
    fn __convex_output_must_be_serializable(&mut self) -> Result<Value, ConvexError> {
        match self.0.take().expect("output taken twice") {
            Ok(v) => crate::to_value(&v).map_err(result_error),
            Err(e) => Err(e.into()),
        }
    }
}

/// Converts any other (`Serialize`) return value.
#[doc(hidden)]
pub trait OutPlain {
    /// The outcome.
    fn __convex_output_must_be_serializable(&mut self) -> Result<Value, ConvexError>;
}

impl<T: Serialize> OutPlain for &mut Out<T> {
    fn __convex_output_must_be_serializable(&mut self) -> Result<Value, ConvexError> {
        crate::to_value(&self.0.take().expect("output taken twice")).map_err(result_error)
    }
}

/// What an HTTP action may return.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "an #[http_action] must return `HttpResponse` or `Result<HttpResponse, E>`, not `{Self}`",
    label = "not an `HttpResponse`",
    note = "build one with `HttpResponse::new(status)`, `HttpResponse::from_json(&value)` or `HttpResponse::from_text(text)`"
)]
pub trait HttpResult {
    /// The outcome: the response as the function's result value.
    fn __convex_http_result(self) -> Result<Value, ConvexError>;
}

impl HttpResult for crate::HttpResponse {
    fn __convex_http_result(self) -> Result<Value, ConvexError> {
        Ok(self.into_value())
    }
}

impl<E: Into<ConvexError>> HttpResult for Result<crate::HttpResponse, E> {
    fn __convex_http_result(self) -> Result<Value, ConvexError> {
        self.map(crate::HttpResponse::into_value).map_err(Into::into)
    }
}

/// Converts an HTTP action's return value.
#[doc(hidden)]
pub fn http_output<R: HttpResult>(r: R) -> Result<Value, ConvexError> {
    r.__convex_http_result()
}

fn result_error(e: ConvexError) -> ConvexError {
    ConvexError::coded(
        ErrorCode::InvalidValue,
        format!(
            "the function's result cannot be converted to a Convex value: {}",
            e.message()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::needless_borrow)]
    fn out_specialisation() {
        #[allow(unused_imports)]
        use super::{OutPlain, OutResult};
        let ok: Result<i64, ConvexError> = Ok(5);
        assert_eq!(
            (&mut Out(Some(ok))).__convex_output_must_be_serializable().unwrap(),
            Value::Int64(5)
        );
        let err: Result<i64, ConvexError> = Err(ConvexError::new("x"));
        assert_eq!(
            (&mut Out(Some(err)))
                .__convex_output_must_be_serializable()
                .unwrap_err()
                .message(),
            "x"
        );
        let err: Result<(), &str> = Err("str error");
        assert_eq!(
            (&mut Out(Some(err)))
                .__convex_output_must_be_serializable()
                .unwrap_err()
                .message(),
            "str error"
        );
        assert_eq!(
            (&mut Out(Some("plain")))
                .__convex_output_must_be_serializable()
                .unwrap(),
            Value::from("plain")
        );
        assert_eq!(
            (&mut Out(Some(()))).__convex_output_must_be_serializable().unwrap(),
            Value::Null
        );
    }

    #[test]
    fn block_on_ready_and_self_waking() {
        assert_eq!(block_on(async { 1 + 1 }), 2);
        struct YieldOnce(bool);
        impl Future for YieldOnce {
            type Output = u8;
            fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<u8> {
                if self.0 {
                    Poll::Ready(7)
                } else {
                    self.0 = true;
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            }
        }
        assert_eq!(block_on(YieldOnce(false)), 7);
    }

    #[test]
    #[should_panic(expected = "nothing to wait for")]
    fn block_on_stuck() {
        block_on(std::future::pending::<()>());
    }

    #[test]
    fn args() {
        let mut a = parse_args(br#"{"name":"Ada","n":{"$integer":"AQAAAAAAAAA="}}"#).unwrap();
        assert_eq!(a.take::<String>("name").unwrap(), "Ada");
        assert_eq!(a.take::<i64>("n").unwrap(), 1);
        assert_eq!(a.take::<Option<f64>>("opt").unwrap(), None);
        let e = a.take::<String>("gone").unwrap_err();
        assert_eq!(
            (e.code(), e.message().as_str()),
            (ErrorCode::Args, "missing required argument \"gone\"")
        );
        let mut a = parse_args(br#"{"n":"x"}"#).unwrap();
        let e = a.take::<f64>("n").unwrap_err();
        assert!(
            e.message()
                .starts_with("argument \"n\": invalid type: string \"x\", expected f64"),
            "{e}"
        );
        assert!(parse_args(b"[1]").is_err());
        assert!(parse_args(b"").is_ok());
    }
}
