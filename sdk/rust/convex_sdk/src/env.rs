//! The call's environment: the deployment's environment variables
//! ([`var`]), logging, randomness and time.
//!
//! In queries and mutations randomness is seeded from the request id and
//! the clock is frozen at the start of the call, so re-running a function
//! gives the same result; in actions both are real. `std` works too:
//! `println!`/`eprintln!` become log lines, `SystemTime::now()` reads the
//! same clock, through the host's WASI subset.

use std::collections::BTreeMap;

use crate::error::ConvexError;
use crate::sys::{self, imports, Level};
use crate::value::Value;

/// The deployment's environment variable `name` (set with `cvx env set
/// NAME VALUE`), or `None` when it is not set: what `process.env.NAME` is
/// in a TypeScript function. Read in every kind of function, no redeploy
/// needed: in queries and mutations the read is part of the call's reads,
/// so a change re-runs the subscriptions that read the variable; actions
/// see the latest value.
///
/// ```
/// # use convex_sdk::ConvexError;
/// # fn main() -> Result<(), ConvexError> {
/// # convex_sdk::testing::set_env("OPENAI_API_KEY", Some("sk-test")); // what `cvx env set` does
/// let key = convex_sdk::env::var("OPENAI_API_KEY")?
///     .ok_or_else(|| ConvexError::new("set OPENAI_API_KEY with `cvx env set`"))?;
/// assert_eq!(key, "sk-test");
/// # Ok(())
/// # }
/// ```
pub fn var(name: &str) -> Result<Option<String>, ConvexError> {
    let req = Value::Object(BTreeMap::from([("name".to_string(), Value::String(name.to_string()))]));
    match sys::call(imports::__convex_env_get, &req)? {
        Value::String(s) => Ok(Some(s)),
        _ => Ok(None),
    }
}

/// Every environment variable of the deployment, by name.
pub fn vars() -> Result<BTreeMap<String, String>, ConvexError> {
    match sys::call(imports::__convex_env_get, &Value::Object(BTreeMap::new()))? {
        Value::Object(o) => Ok(o
            .into_iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k, s)),
                _ => None,
            })
            .collect()),
        _ => Ok(BTreeMap::new()),
    }
}

/// The level of a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// `console.log`
    Log,
    /// `console.info`
    Info,
    /// `console.warn`
    Warn,
    /// `console.error`
    Error,
    /// `console.debug`
    Debug,
}

/// Writes one log line at `level`. The host cuts lines over 32 KiB and
/// keeps 256 lines per call (the last one saying the rest were omitted);
/// the call itself goes on.
pub fn log_line(level: LogLevel, line: &str) {
    let level = match level {
        LogLevel::Log => Level::Log,
        LogLevel::Info => Level::Info,
        LogLevel::Warn => Level::Warn,
        LogLevel::Error => Level::Error,
        LogLevel::Debug => Level::Debug,
    };
    sys::log(level, line);
}

/// Logs a formatted line, like `console.log` (`log!("n = {}", n)`).
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => { $crate::log_line($crate::LogLevel::Log, &::std::format!($($arg)*)) };
}

/// Logs a formatted line at INFO level.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log_line($crate::LogLevel::Info, &::std::format!($($arg)*)) };
}

/// Logs a formatted line at WARN level.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log_line($crate::LogLevel::Warn, &::std::format!($($arg)*)) };
}

/// Logs a formatted line at ERROR level.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log_line($crate::LogLevel::Error, &::std::format!($($arg)*)) };
}

/// Logs a formatted line at DEBUG level.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log_line($crate::LogLevel::Debug, &::std::format!($($arg)*)) };
}

/// Fills `buf` with random bytes (deterministic per request in queries and
/// mutations).
pub fn random_bytes(buf: &mut [u8]) {
    sys::random_bytes(buf);
}

/// A random `u64`.
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    random_bytes(&mut b);
    u64::from_le_bytes(b)
}

/// A random `f64` in `[0, 1)`, like `Math.random()`.
pub fn random_f64() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Milliseconds since the Unix epoch, like `Date.now()` (frozen for the
/// call in queries and mutations).
pub fn now_ms() -> f64 {
    sys::now_ms()
}
