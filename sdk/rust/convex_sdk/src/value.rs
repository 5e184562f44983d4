//! [`Value`], a Convex value, and its conversions from Rust types.
//!
//! The one design decision to know: a Rust integer becomes an `Int64` (a
//! JavaScript `bigint`) only when its type is 64 bits wide (`i64`, `u64`,
//! `isize`, `usize`, `i128`, `u128`). Narrower integers (`i32`, `u8`, …)
//! become `Float64`, a JavaScript `number`, exactly as JSON would carry
//! them. So `Value::from(1)` (an `i32`), `json!({"n": 1})` and a struct field
//! `n: u32` all give `Float64(1.0)`, while `n: i64` gives `Int64(1)`. The
//! same rule holds for serde conversions ([`to_value`](crate::to_value)) and
//! for the type descriptors the function macros emit.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

/// A Convex value.
///
/// Objects keep their keys sorted (a [`BTreeMap`]), as Convex does. Build
/// values with [`json!`](crate::json!), with `From` conversions, or from any
/// `Serialize` type with [`to_value`](crate::to_value); read them with the
/// `as_*` accessors or into a `Deserialize` type with
/// [`from_value`](crate::from_value).
///
/// ```
/// use convex_sdk::Value;
///
/// let v = Value::from_json(r#"{"n": 1, "big": {"$integer": "AQAAAAAAAAA="}}"#).unwrap();
/// assert_eq!(v.get("n"), Some(&Value::Float64(1.0)));
/// assert_eq!(v.get("big"), Some(&Value::Int64(1)));
/// assert_eq!(v.to_json(), r#"{"big":{"$integer":"AQAAAAAAAAA="},"n":1}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    /// `null`.
    #[default]
    Null,
    /// A 64-bit signed integer (JavaScript `bigint`).
    Int64(i64),
    /// A 64-bit float (JavaScript `number`).
    Float64(f64),
    /// `true` or `false`.
    Boolean(bool),
    /// A UTF-8 string.
    String(String),
    /// A byte string (JavaScript `ArrayBuffer`).
    Bytes(Vec<u8>),
    /// An array.
    Array(Vec<Value>),
    /// An object with sorted keys.
    Object(BTreeMap<String, Value>),
}

impl Value {
    /// The Convex name of the value's type: `"null"`, `"int64"`,
    /// `"float64"`, `"boolean"`, `"string"`, `"bytes"`, `"array"` or
    /// `"object"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Int64(_) => "int64",
            Value::Float64(_) => "float64",
            Value::Boolean(_) => "boolean",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// Whether the value is `Null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The string, if this is a `String`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number as an `f64`, if this is a `Float64` or an `Int64`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float64(f) => Some(*f),
            Value::Int64(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The integer, if this is an `Int64` or a `Float64` holding an integer
    /// in `i64` range.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int64(i) => Some(*i),
            Value::Float64(f) => float_to_i64(*f),
            _ => None,
        }
    }

    /// The boolean, if this is a `Boolean`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The bytes, if this is `Bytes`.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if this is an `Array`.
    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The fields, if this is an `Object`.
    pub fn as_object(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The fields, mutably, if this is an `Object`.
    pub fn as_object_mut(&mut self) -> Option<&mut BTreeMap<String, Value>> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The field `key` of an object (`None` for a missing field or a value
    /// that is not an object).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object().and_then(|o| o.get(key))
    }

    /// Compares two values in Convex's total order, the order of indexes and
    /// of `order("asc")`: null < int64 < float64 < boolean < string < bytes
    /// < array < object, as the server orders index keys. Numbers compare
    /// by value, -0 before +0 (NaN after every other float, NaNs by their
    /// bits), strings by UTF-8 bytes, arrays and objects lexicographically
    /// (objects by their sorted `(key, value)` pairs).
    pub fn total_cmp(&self, other: &Value) -> Ordering {
        fn rank(v: &Value) -> u8 {
            match v {
                Value::Null => 0,
                Value::Int64(_) => 1,
                Value::Float64(_) => 2,
                Value::Boolean(_) => 3,
                Value::String(_) => 4,
                Value::Bytes(_) => 5,
                Value::Array(_) => 6,
                Value::Object(_) => 7,
            }
        }
        match (self, other) {
            (Value::Int64(a), Value::Int64(b)) => a.cmp(b),
            (Value::Float64(a), Value::Float64(b)) => match (a.is_nan(), b.is_nan()) {
                // As the server's index keys order them: by their bits.
                (true, true) => a.to_bits().cmp(&b.to_bits()),
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                // -0.0 and 0.0 are distinct values; order -0 first.
                (false, false) => a
                    .partial_cmp(b)
                    .unwrap()
                    .then(b.is_sign_positive().cmp(&a.is_sign_positive()).reverse()),
            },
            (Value::Boolean(a), Value::Boolean(b)) => a.cmp(b),
            (Value::String(a), Value::String(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Value::Bytes(a), Value::Bytes(b)) => a.cmp(b),
            (Value::Array(a), Value::Array(b)) => {
                for (x, y) in a.iter().zip(b) {
                    match x.total_cmp(y) {
                        Ordering::Equal => {}
                        o => return o,
                    }
                }
                a.len().cmp(&b.len())
            }
            (Value::Object(a), Value::Object(b)) => {
                for ((ka, va), (kb, vb)) in a.iter().zip(b) {
                    match ka.as_bytes().cmp(kb.as_bytes()).then_with(|| va.total_cmp(vb)) {
                        Ordering::Equal => {}
                        o => return o,
                    }
                }
                a.len().cmp(&b.len())
            }
            _ => rank(self).cmp(&rank(other)),
        }
    }
}

/// `f` as an `i64` when it is an integer in range.
pub(crate) fn float_to_i64(f: f64) -> Option<i64> {
    // 2^63 is exactly representable; everything below it that is integral fits.
    if f.fract() == 0.0 && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) {
        Some(f as i64)
    } else {
        None
    }
}

impl fmt::Display for Value {
    /// Formats the value as convex-encoded JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

impl std::str::FromStr for Value {
    type Err = crate::ConvexError;

    /// Parses convex-encoded JSON (same as [`Value::from_json`]).
    fn from_str(s: &str) -> Result<Value, crate::ConvexError> {
        Value::from_json(s)
    }
}

impl std::ops::Index<&str> for Value {
    type Output = Value;

    /// The field `key` of an object, or `Null` if it is missing or this is
    /// not an object (like JavaScript's `undefined`, read as `null`).
    fn index(&self, key: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.get(key).unwrap_or(&NULL)
    }
}

impl std::ops::Index<usize> for Value {
    type Output = Value;

    /// The element at `i` of an array, or `Null` when out of range or not
    /// an array.
    fn index(&self, i: usize) -> &Value {
        static NULL: Value = Value::Null;
        self.as_array().and_then(|a| a.get(i)).unwrap_or(&NULL)
    }
}

macro_rules! from_float {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            /// A `Float64` (the value fits an `f64` exactly).
            fn from(n: $t) -> Value {
                Value::Float64(n as f64)
            }
        }
    )*};
}
from_float!(f64, f32, i32, i16, i8, u32, u16, u8);

impl From<i64> for Value {
    /// An `Int64`.
    fn from(n: i64) -> Value {
        Value::Int64(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Boolean(b)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_string())
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::String(s.clone())
    }
}

impl From<Vec<u8>> for Value {
    /// `Bytes` (not an array of numbers).
    fn from(b: Vec<u8>) -> Value {
        Value::Bytes(b)
    }
}

impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Value {
        Value::Array(a)
    }
}

impl From<BTreeMap<String, Value>> for Value {
    fn from(o: BTreeMap<String, Value>) -> Value {
        Value::Object(o)
    }
}

impl From<()> for Value {
    /// `Null`.
    fn from(_: ()) -> Value {
        Value::Null
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    /// `None` is `Null`.
    fn from(o: Option<T>) -> Value {
        o.map_or(Value::Null, Into::into)
    }
}

impl From<crate::DocumentId> for Value {
    fn from(id: crate::DocumentId) -> Value {
        Value::String(id.into_string())
    }
}

impl From<&crate::DocumentId> for Value {
    fn from(id: &crate::DocumentId) -> Value {
        Value::String(id.as_str().to_string())
    }
}

impl From<crate::Document> for Value {
    fn from(doc: crate::Document) -> Value {
        doc.into_value()
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Value {
    /// An object from `(key, value)` pairs.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Value {
        Value::Object(iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_widths() {
        assert_eq!(Value::from(1), Value::Float64(1.0));
        assert_eq!(Value::from(1u8), Value::Float64(1.0));
        assert_eq!(Value::from(1i64), Value::Int64(1));
    }

    #[test]
    fn total_order() {
        let ordered = [
            Value::Null,
            Value::Int64(-5),
            Value::Int64(3),
            Value::Float64(f64::NEG_INFINITY),
            Value::Float64(-0.0),
            Value::Float64(0.0),
            Value::Float64(2.5),
            Value::Float64(f64::NAN),
            Value::Boolean(false),
            Value::Boolean(true),
            Value::from(""),
            Value::from("a"),
            Value::from("b"),
            Value::Bytes(vec![]),
            Value::Array(vec![]),
            Value::Array(vec![Value::Null]),
            Value::Object(BTreeMap::new()),
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(a.total_cmp(b), i.cmp(&j), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn index_and_accessors() {
        let v: Value = [("a", Value::from(1)), ("b", Value::from("x"))].into_iter().collect();
        assert_eq!(v["a"].as_f64(), Some(1.0));
        assert_eq!(v["a"].as_i64(), Some(1));
        assert_eq!(v["b"].as_str(), Some("x"));
        assert!(v["missing"].is_null());
        assert_eq!(Value::Float64(1.5).as_i64(), None);
    }
}
