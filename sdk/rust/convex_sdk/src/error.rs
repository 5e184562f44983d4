//! Errors: [`ConvexError`], what a function returns when it fails, and
//! [`ErrorCode`], the cvx error codes that host functions report.
//!
//! `ErrorCode` mirrors the host's one list of codes, `src/util/errors.def`
//! in the cvx repository; the test at the bottom of this file parses that
//! file and fails if a name, number or message drifts.

use std::fmt;

use crate::value::Value;

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $num:literal, $name:literal, $msg:literal; )*) => {
        /// A cvx error code (ABI v1, `docs/abi.md` §6).
        ///
        /// A host function that fails returns the negated code; the SDK turns
        /// it into [`ConvexError::Coded`]. The numbers never change.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        #[repr(i32)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant = $num, )*
        }

        impl ErrorCode {
            /// Every code, in numeric order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The code for `number`, if it is one this SDK knows.
            pub fn from_i32(number: i32) -> Option<ErrorCode> {
                match number {
                    $( $num => Some(ErrorCode::$variant), )*
                    _ => None,
                }
            }

            /// The host's name for the code, e.g. `"NOT_FOUND"`.
            pub fn name(self) -> &'static str {
                match self { $( ErrorCode::$variant => $name, )* }
            }

            /// The host's default message for the code, e.g. `"not found"`.
            pub fn default_message(self) -> &'static str {
                match self { $( ErrorCode::$variant => $msg, )* }
            }
        }
    };
}

error_codes! {
    /// Success (never an error a guest sees).
    Ok = 0, "OK", "ok";
    /// The host ran out of memory.
    NoMem = 1, "NOMEM", "out of memory";
    /// A malformed request: bad JSON, a bad index range, an unknown table.
    InvalidArgument = 2, "INVALID_ARGUMENT", "invalid argument";
    /// A value breaks a limit or a field-name rule, or an id is malformed.
    InvalidValue = 3, "INVALID_VALUE", "invalid value";
    /// The document does not exist (patch, replace, delete).
    NotFound = 4, "NOT_FOUND", "not found";
    /// A write conflict (the host retries the mutation).
    Conflict = 5, "CONFLICT", "write conflict";
    /// A per-transaction read or write limit was exceeded.
    Limit = 6, "LIMIT", "limit exceeded";
    /// Not allowed in this kind of function (a write in a query, the
    /// database in an action, fetch outside an action).
    Forbidden = 7, "FORBIDDEN", "not allowed here";
    /// A host I/O error.
    Io = 8, "IO", "I/O error";
    /// A storage error.
    Store = 9, "STORE", "storage error";
    /// An invalid module.
    BadModule = 10, "BAD_MODULE", "invalid module";
    /// The function trapped.
    Trap = 11, "TRAP", "function trapped";
    /// The function ran out of fuel.
    Fuel = 12, "FUEL", "function exceeded its fuel limit";
    /// The function exceeded its memory limit.
    Memory = 13, "MEMORY", "function exceeded its memory limit";
    /// The function timed out.
    Timeout = 14, "TIMEOUT", "function timed out";
    /// The function logged too many lines.
    LogLimit = 15, "LOG_LIMIT", "function exceeded its log line limit";
    /// A nested function failed with an application error (with data).
    Application = 16, "APPLICATION", "application error";
    /// A nested function failed.
    Uncaught = 17, "UNCAUGHT", "uncaught error";
    /// The function panicked.
    Panic = 18, "PANIC", "function panicked";
    /// The arguments did not match the function's declared types.
    Args = 19, "ARGS", "argument validation failed";
    /// No function with that path.
    NoFunction = 20, "NO_FUNCTION", "function not found";
    /// An HTTP request failed (DNS, connect, timeout, too large).
    Http = 21, "HTTP", "HTTP request failed";
    /// An internal host error.
    Internal = 22, "INTERNAL", "internal error";
    /// Not supported.
    Unsupported = 23, "UNSUPPORTED", "unsupported";
    /// A document does not match the schema.
    Schema = 24, "SCHEMA", "schema validation failed";
    /// Not authorized.
    Auth = 25, "AUTH", "not authorized";
}

impl ErrorCode {
    /// The numeric code.
    pub fn code(self) -> i32 {
        self as i32
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error type of Convex functions and of every fallible SDK call.
///
/// A function returning `Err(e)` fails with `e`'s [message](Self::message);
/// if `e` carries [data](Self::data), the client sees an application error
/// whose `data` is that value (`ConvexError.data` in the JavaScript client).
///
/// ```
/// use convex_sdk::*;
///
/// fn check_age(age: f64) -> Result<(), ConvexError> {
///     if age < 0.0 {
///         return Err(ConvexError::app(json!({"code": "BAD_AGE", "age": age})));
///     }
///     if age > 200.0 {
///         return Err(ConvexError::Unknown("age is implausible".into()));
///     }
///     Ok(())
/// }
/// assert!(check_age(-1.0).unwrap_err().data().is_some());
/// assert_eq!(check_age(300.0).unwrap_err().message(), "age is implausible");
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ConvexError {
    /// A plain error with a message (a JavaScript `Error`).
    Unknown(String),
    /// An application error carrying a value, like `throw new
    /// ConvexError(data)` in TypeScript: the client receives `data`. The
    /// message is the data itself if it is a string, otherwise its JSON.
    Application(Value),
    /// An error with a cvx [`ErrorCode`]: returned by a host function (for
    /// example [`ErrorCode::NotFound`] from a patch of a missing document),
    /// or raised by the SDK (invalid arguments, values that do not convert).
    Coded {
        /// What kind of failure.
        code: ErrorCode,
        /// What happened, for a person.
        message: String,
        /// Application data, when a nested function failed with some.
        data: Option<Value>,
    },
}

impl ConvexError {
    /// A plain error with `message` (same as [`ConvexError::Unknown`]).
    pub fn new(message: impl Into<String>) -> ConvexError {
        ConvexError::Unknown(message.into())
    }

    /// An application error whose data is `data` converted to a [`Value`].
    ///
    /// If `data` cannot be converted (see [`to_value`](crate::to_value)),
    /// the conversion error is returned instead.
    pub fn app(data: impl serde::Serialize) -> ConvexError {
        match crate::to_value(&data) {
            Ok(value) => ConvexError::Application(value),
            Err(e) => e,
        }
    }

    /// An error with a code and a message.
    pub fn coded(code: ErrorCode, message: impl Into<String>) -> ConvexError {
        ConvexError::Coded {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// The error code: [`ErrorCode::Uncaught`] for [`Unknown`](Self::Unknown),
    /// [`ErrorCode::Application`] for [`Application`](Self::Application).
    pub fn code(&self) -> ErrorCode {
        match self {
            ConvexError::Unknown(_) => ErrorCode::Uncaught,
            ConvexError::Application(_) => ErrorCode::Application,
            ConvexError::Coded { code, .. } => *code,
        }
    }

    /// The message a client sees.
    pub fn message(&self) -> String {
        match self {
            ConvexError::Unknown(m) => m.clone(),
            ConvexError::Application(Value::String(s)) => s.clone(),
            ConvexError::Application(v) => v.to_json(),
            ConvexError::Coded { message, .. } => message.clone(),
        }
    }

    /// The application data, if any.
    pub fn data(&self) -> Option<&Value> {
        match self {
            ConvexError::Unknown(_) => None,
            ConvexError::Application(v) => Some(v),
            ConvexError::Coded { data, .. } => data.as_ref(),
        }
    }

    /// Whether this is a host error with `code`.
    pub fn is(&self, code: ErrorCode) -> bool {
        self.code() == code
    }

    /// The error as ABI JSON, `{"message": string, "data"?: value}`.
    pub(crate) fn to_abi_json(&self) -> String {
        let mut obj = std::collections::BTreeMap::new();
        obj.insert("message".to_string(), Value::String(self.message()));
        if let Some(data) = self.data() {
            obj.insert("data".to_string(), data.clone());
        }
        Value::Object(obj).to_json()
    }

    /// Parses an ABI error JSON that a host function returned with `code`.
    pub(crate) fn from_host(code: i32, body: &[u8]) -> ConvexError {
        let known = ErrorCode::from_i32(code);
        let parsed = std::str::from_utf8(body).ok().and_then(|s| Value::from_json(s).ok());
        let (message, data) = match parsed {
            Some(Value::Object(mut obj)) => {
                let message = match obj.remove("message") {
                    Some(Value::String(s)) => Some(s),
                    _ => None,
                };
                (message, obj.remove("data"))
            }
            _ => (None, None),
        };
        let message = message.unwrap_or_else(|| match known {
            Some(c) => c.default_message().to_string(),
            None => format!("host error {code}"),
        });
        match known {
            Some(code) => ConvexError::Coded { code, message, data },
            None => ConvexError::Coded {
                code: ErrorCode::Internal,
                message: format!("{message} (unknown error code {code})"),
                data,
            },
        }
    }
}

impl fmt::Display for ConvexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConvexError::Unknown(m) => f.write_str(m),
            ConvexError::Application(_) => write!(f, "application error: {}", self.message()),
            ConvexError::Coded { code, message, .. } => write!(f, "{code}: {message}"),
        }
    }
}

impl std::error::Error for ConvexError {}

impl From<String> for ConvexError {
    fn from(message: String) -> ConvexError {
        ConvexError::Unknown(message)
    }
}

impl From<&str> for ConvexError {
    fn from(message: &str) -> ConvexError {
        ConvexError::Unknown(message.to_string())
    }
}

impl serde::ser::Error for ConvexError {
    fn custom<T: fmt::Display>(msg: T) -> ConvexError {
        ConvexError::coded(ErrorCode::InvalidValue, msg.to_string())
    }
}

impl serde::de::Error for ConvexError {
    fn custom<T: fmt::Display>(msg: T) -> ConvexError {
        ConvexError::coded(ErrorCode::InvalidValue, msg.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `errors.def` is the host's list; this SDK must agree with it.
    #[test]
    fn error_codes_match_errors_def() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../src/util/errors.def");
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("skipping: cannot read {path}: {e}");
                return;
            }
        };
        let mut seen = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            let Some(rest) = line.strip_prefix("CVX_ERR(") else {
                continue;
            };
            let rest = rest.strip_suffix(')').expect("CVX_ERR line ends with )");
            let mut parts = rest.splitn(3, ',');
            let name = parts.next().unwrap().trim();
            let number: i32 = parts.next().unwrap().trim().parse().expect("code is a number");
            let message = parts.next().unwrap().trim().trim_matches('"');
            let code = ErrorCode::from_i32(number)
                .unwrap_or_else(|| panic!("errors.def has {name} = {number}; ErrorCode lacks it"));
            assert_eq!(code.name(), name, "name of code {number}");
            assert_eq!(code.default_message(), message, "message of {name}");
            seen.push(number);
        }
        assert!(!seen.is_empty(), "no CVX_ERR lines found in {path}");
        let ours: Vec<i32> = ErrorCode::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(
            ours, seen,
            "ErrorCode has codes that errors.def lacks (or a different order)"
        );
    }

    #[test]
    fn abi_json() {
        let e = ConvexError::Unknown("boom".into());
        assert_eq!(e.to_abi_json(), r#"{"message":"boom"}"#);
        let e = ConvexError::Application(Value::String("nope".into()));
        assert_eq!(e.to_abi_json(), r#"{"data":"nope","message":"nope"}"#);
        let e = ConvexError::from_host(4, br#"{"message":"document x not found"}"#);
        assert_eq!(e.code(), ErrorCode::NotFound);
        assert_eq!(e.message(), "document x not found");
        let e = ConvexError::from_host(16, br#"{"message":"m","data":{"k":1}}"#);
        assert!(e.data().is_some());
        let e = ConvexError::from_host(999, b"garbage");
        assert_eq!(e.code(), ErrorCode::Internal);
    }
}
