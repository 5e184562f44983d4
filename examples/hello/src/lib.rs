//! `hello`: pure functions (no database) that exercise the cvx host — value
//! round-trips, errors, panics, limits, logs, randomness and time. The host's
//! tests call them through `cvx run hello:<name>`; README.md lists the
//! expected results.

use convex_sdk::*;
use serde::{Deserialize, Serialize};

/// f64 arithmetic: `{"a": 1, "b": 2}` → `3`.
#[query]
fn add(a: f64, b: f64) -> f64 {
    a + b
}

/// i64 arithmetic: `$integer` in, `$integer` out. Overflow is an error,
/// not a wrap-around.
#[query]
fn add_int(a: i64, b: i64) -> Result<i64, ConvexError> {
    a.checked_add(b)
        .ok_or_else(|| ConvexError::new(format!("add_int: {a} + {b} overflows int64")))
}

/// `{"name": "Ada"}` → `"Hello, Ada!"`.
#[query]
async fn greet(name: String) -> String {
    format!("Hello, {name}!")
}

/// `{"text": "hi"}` → `"HI!"`.
#[query]
fn shout(text: String) -> String {
    format!("{}!", text.to_uppercase())
}

/// Returns its argument unchanged: every Convex type round-trips.
#[query]
fn echo(value: Value) -> Value {
    value
}

/// Always panics with a known message.
#[query]
fn boom() -> String {
    panic!("boom: this function always panics")
}

/// Never returns: runs until the fuel limit (or the timeout) ends it.
#[query]
fn spin() -> u64 {
    let mut i: u64 = 0;
    loop {
        i = std::hint::black_box(i.wrapping_add(1));
        if std::hint::black_box(false) {
            return i;
        }
    }
}

/// Allocates (and touches) 1 MiB blocks until the memory limit stops it.
#[query]
fn bomb() -> f64 {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        blocks.push(vec![0xA5; 1 << 20]);
        if std::hint::black_box(false) {
            return blocks.len() as f64;
        }
    }
}

/// Logs `n` lines (`line 1` … `line n`) and returns `n`. A call keeps 256
/// lines: past that, the 256th says the rest were omitted.
#[query]
fn chatty(n: u32) -> u32 {
    for i in 1..=n {
        log!("line {i}");
    }
    n
}

/// Writes one line with `println!` (a `[LOG]` line) and one with
/// `eprintln!` (an `[ERROR]` line), then one of each log level.
#[query]
fn printer() -> String {
    println!("hello from println");
    eprintln!("hello from eprintln");
    info!("an info line");
    warn!("a warn line");
    error!("an error line");
    debug!("a debug line");
    "printed".to_string()
}

/// What [`dice`] returns.
#[derive(Serialize)]
struct Dice {
    /// 16 random bytes.
    bytes: Bytes,
    /// A die roll, 1 to 6.
    roll: u8,
    /// A float in [0, 1).
    float: f64,
    /// A random int64.
    int: i64,
    /// 8 bytes from `std`'s randomness (WASI `random_get`).
    std_hash: u64,
}

/// Random values (deterministic per request id in a query).
#[query]
fn dice() -> Dice {
    let mut bytes = vec![0u8; 16];
    random_bytes(&mut bytes);
    // RandomState seeds from the OS, i.e. WASI random_get.
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(1);
    Dice {
        bytes: Bytes(bytes),
        roll: (random_u64() % 6) as u8 + 1,
        float: random_f64(),
        int: random_u64() as i64,
        std_hash: h.finish() & ((1 << 53) - 1),
    }
}

/// The clock: `{"ms": now_ms(), "std_ms": SystemTime::now()}` — equal in a
/// query (virtual time, frozen for the call).
#[query]
fn now() -> Value {
    let std_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(-1.0);
    json!({ "ms": now_ms(), "std_ms": std_ms })
}

/// Fails with an application error: the client gets `data`.
#[mutation]
fn app_error(code: Option<String>) -> Result<(), ConvexError> {
    Err(ConvexError::app(json!({
        "code": code.unwrap_or_else(|| "E_HELLO".to_string()),
        "detail": "this function always fails with data",
        "count": 3,
    })))
}

/// Fails with a plain error message.
#[action]
async fn fail() -> Result<String, ConvexError> {
    Err(ConvexError::Unknown("fail: this function always fails".to_string()))
}

/// A point, as a struct argument.
#[derive(Serialize, Deserialize)]
struct Point {
    x: f64,
    y: f64,
}

/// What [`describe`] returns.
#[derive(Serialize)]
struct Description {
    label: String,
    tag_count: usize,
    tags: Vec<String>,
    distance: f64,
    point: Point,
}

/// Option, Vec and struct arguments: `label` may be left out.
#[query]
fn describe(label: Option<String>, tags: Vec<String>, point: Point) -> Description {
    Description {
        label: label.unwrap_or_else(|| "(none)".to_string()),
        tag_count: tags.len(),
        tags,
        distance: (point.x * point.x + point.y * point.y).sqrt(),
        point,
    }
}

/// Internal: callable by other functions and the admin CLI, not clients.
#[query(internal)]
fn secret() -> String {
    "the secret is 42".to_string()
}

/// Renamed: the Rust function `abi_version` is `hello:version`.
#[query(name = "version")]
fn abi_version() -> f64 {
    1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_and_strings() {
        assert_eq!(testing::call::<add>(json!({"a": 1, "b": 2})), Ok(json!(3)));
        assert_eq!(
            testing::call::<add_int>(json!({"a": 2i64, "b": 40i64})),
            Ok(json!(42i64))
        );
        assert!(testing::call::<add_int>(json!({"a": i64::MAX, "b": 1i64})).is_err());
        assert_eq!(testing::call::<greet>(json!({"name": "Ada"})), Ok(json!("Hello, Ada!")));
        assert_eq!(testing::call::<shout>(json!({"text": "hi"})), Ok(json!("HI!")));
        let v = json!({"i": 5i64, "f": -0.0, "b": b"\x00\xff", "n": null, "a": [true]});
        assert_eq!(testing::call::<echo>(json!({ "value": v.clone() })), Ok(v));
    }

    #[test]
    fn errors_and_panics() {
        let e = testing::call::<boom>(json!({})).unwrap_err();
        assert_eq!(e.message(), "Uncaught Error: boom: this function always panics");
        let e = testing::call::<app_error>(json!({})).unwrap_err();
        assert_eq!(e.data().unwrap()["code"], json!("E_HELLO"));
        let e = testing::call::<fail>(json!({})).unwrap_err();
        assert_eq!(e.message(), "fail: this function always fails");
    }

    #[test]
    fn logs() {
        assert_eq!(testing::call::<chatty>(json!({"n": 3})), Ok(json!(3)));
        assert_eq!(testing::take_logs().len(), 3);
        assert_eq!(testing::call::<chatty>(json!({"n": 1001})), Ok(json!(1001)));
        let logs = testing::take_logs();
        assert_eq!(logs.len(), 256);
        assert!(logs[255].1.contains("Log overflow (maximum 256)"), "{:?}", logs[255]);
    }

    #[test]
    fn structs_and_options() {
        let r = testing::call::<describe>(json!({"tags": ["a", "b"], "point": {"x": 3, "y": 4}})).unwrap();
        assert_eq!(r["label"], json!("(none)"));
        assert_eq!(r["distance"], json!(5));
        assert_eq!(r["tag_count"], json!(2i64));
        assert_eq!(testing::metadata::<secret>()["visibility"], json!("internal"));
        assert_eq!(testing::metadata::<abi_version>()["path"], json!("hello:version"));
    }
}
