//! Convex-encoded JSON (`docs/protocol.md` §1), both ways.
//!
//! Written by hand rather than through serde_json for two reasons: the rules
//! differ from plain JSON (a JSON number is always a float64; `$integer`,
//! `$float` and `$bytes` objects are typed values), and float parsing must
//! round-trip exactly (`str::parse::<f64>` is correctly rounded).
//!
//! The same parser reads plain JSON too ([`parse_plain`]), for HTTP response
//! bodies, where `{"$integer": ..}` is just an object.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::base64;
use crate::error::{ConvexError, ErrorCode};
use crate::value::Value;

/// Values nested deeper than this are rejected (Convex allows 64).
const MAX_DEPTH: usize = 128;

impl Value {
    /// Formats the value as convex-encoded JSON: `Int64` as
    /// `{"$integer": base64}`, `Bytes` as `{"$bytes": base64}`, NaN, ±∞ and
    /// -0 as `{"$float": base64}` (8 bytes little-endian), object keys
    /// sorted.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        write_value(&mut out, self);
        out
    }

    /// Parses convex-encoded JSON. A JSON number is a `Float64`;
    /// `{"$integer": ..}`, `{"$float": ..}` and `{"$bytes": ..}` are decoded;
    /// any other field name starting with `$` is an error.
    pub fn from_json(text: &str) -> Result<Value, ConvexError> {
        Parser {
            text: text.as_bytes(),
            pos: 0,
            convex: true,
        }
        .parse_document()
    }
}

/// Parses plain JSON: numbers are `Float64`, objects are objects whatever
/// their keys.
pub(crate) fn parse_plain(text: &str) -> Result<Value, ConvexError> {
    Parser {
        text: text.as_bytes(),
        pos: 0,
        convex: false,
    }
    .parse_document()
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int64(i) => {
            out.push_str("{\"$integer\":\"");
            out.push_str(&base64::encode(&i.to_le_bytes()));
            out.push_str("\"}");
        }
        Value::Float64(f) => write_float(out, *f),
        Value::String(s) => write_string(out, s),
        Value::Bytes(b) => {
            out.push_str("{\"$bytes\":\"");
            out.push_str(&base64::encode(b));
            out.push_str("\"}");
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            out.push('{');
            for (i, (k, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

fn write_float(out: &mut String, f: f64) {
    if !f.is_finite() || (f == 0.0 && f.is_sign_negative()) {
        out.push_str("{\"$float\":\"");
        out.push_str(&base64::encode(&f.to_le_bytes()));
        out.push_str("\"}");
    } else if f != 0.0 && (f.abs() >= 1e21 || f.abs() < 1e-6) {
        // Shortest round-trip digits in exponent form, e.g. 1e21, 1.5e-7.
        let _ = write!(out, "{f:e}");
    } else {
        // Shortest round-trip digits; integral values print without ".0".
        let _ = write!(out, "{f}");
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
    convex: bool,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> ConvexError {
        ConvexError::coded(
            ErrorCode::InvalidArgument,
            format!("invalid JSON at byte {}: {what}", self.pos),
        )
    }

    fn parse_document(mut self) -> Result<Value, ConvexError> {
        let v = self.parse_value(0)?;
        self.skip_ws();
        if self.pos != self.text.len() {
            return Err(self.error("trailing characters"));
        }
        Ok(v)
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.text.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn expect_literal(&mut self, lit: &str, v: Value) -> Result<Value, ConvexError> {
        if self.text[self.pos..].starts_with(lit.as_bytes()) {
            self.pos += lit.len();
            Ok(v)
        } else {
            Err(self.error("unexpected token"))
        }
    }

    fn parse_value(&mut self, depth: usize) -> Result<Value, ConvexError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.skip_ws();
        match self.peek() {
            None => Err(self.error("unexpected end of input")),
            Some(b'n') => self.expect_literal("null", Value::Null),
            Some(b't') => self.expect_literal("true", Value::Boolean(true)),
            Some(b'f') => self.expect_literal("false", Value::Boolean(false)),
            Some(b'"') => self.parse_string().map(Value::String),
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                loop {
                    items.push(self.parse_value(depth + 1)?);
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Value::Array(items));
                        }
                        _ => return Err(self.error("expected ',' or ']'")),
                    }
                }
            }
            Some(b'{') => {
                self.pos += 1;
                let mut fields = BTreeMap::new();
                self.skip_ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(Value::Object(fields));
                }
                loop {
                    self.skip_ws();
                    if self.peek() != Some(b'"') {
                        return Err(self.error("expected a field name"));
                    }
                    let key = self.parse_string()?;
                    self.skip_ws();
                    if self.peek() != Some(b':') {
                        return Err(self.error("expected ':'"));
                    }
                    self.pos += 1;
                    let v = self.parse_value(depth + 1)?;
                    fields.insert(key, v);
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            break;
                        }
                        _ => return Err(self.error("expected ',' or '}'")),
                    }
                }
                if self.convex {
                    self.decode_special(fields)
                } else {
                    Ok(Value::Object(fields))
                }
            }
            Some(b'-' | b'0'..=b'9') => self.parse_number(),
            Some(_) => Err(self.error("unexpected character")),
        }
    }

    /// Turns `{"$integer": ..}` and friends into typed values.
    fn decode_special(&self, mut fields: BTreeMap<String, Value>) -> Result<Value, ConvexError> {
        let Some(first) = fields.keys().next() else {
            return Ok(Value::Object(fields));
        };
        if !first.starts_with('$') && !fields.keys().any(|k| k.starts_with('$')) {
            return Ok(Value::Object(fields));
        }
        let bad = |msg: String| ConvexError::coded(ErrorCode::InvalidValue, msg);
        if fields.len() != 1 {
            let k = fields.keys().find(|k| k.starts_with('$')).unwrap();
            return Err(bad(format!("field name \"{k}\" must not start with '$'")));
        }
        let (key, v) = fields.pop_first().unwrap();
        let Value::String(b64) = v else {
            return Err(bad(format!("\"{key}\" must hold a base64 string")));
        };
        let bytes = base64::decode(&b64).ok_or_else(|| bad(format!("\"{key}\" holds invalid base64")))?;
        match key.as_str() {
            "$bytes" => Ok(Value::Bytes(bytes)),
            "$integer" => {
                let arr: [u8; 8] = bytes
                    .try_into()
                    .map_err(|_| bad("\"$integer\" must be 8 bytes".into()))?;
                Ok(Value::Int64(i64::from_le_bytes(arr)))
            }
            "$float" => {
                let arr: [u8; 8] = bytes.try_into().map_err(|_| bad("\"$float\" must be 8 bytes".into()))?;
                Ok(Value::Float64(f64::from_le_bytes(arr)))
            }
            _ => Err(bad(format!("field name \"{key}\" must not start with '$'"))),
        }
    }

    fn parse_number(&mut self) -> Result<Value, ConvexError> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            let s = p.pos;
            while let Some(b'0'..=b'9') = p.peek() {
                p.pos += 1;
            }
            p.pos - s
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let n = digits(self);
        if n == 0 || (n > 1 && self.text[int_start] == b'0') {
            return Err(self.error("invalid number"));
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if digits(self) == 0 {
                return Err(self.error("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return Err(self.error("invalid number"));
            }
        }
        let s = std::str::from_utf8(&self.text[start..self.pos]).unwrap();
        s.parse::<f64>()
            .map(Value::Float64)
            .map_err(|_| self.error("invalid number"))
    }

    fn parse_hex4(&mut self) -> Result<u32, ConvexError> {
        let hex = self
            .text
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.error("truncated \\u escape"))?;
        let s = std::str::from_utf8(hex).map_err(|_| self.error("invalid \\u escape"))?;
        let n = u32::from_str_radix(s, 16).map_err(|_| self.error("invalid \\u escape"))?;
        self.pos += 4;
        Ok(n)
    }

    fn parse_string(&mut self) -> Result<String, ConvexError> {
        self.pos += 1; // opening quote
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error("unterminated string"));
            };
            self.pos += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return Err(self.error("unterminated string"));
                    };
                    self.pos += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{08}',
                        b'f' => '\u{0c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.parse_hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if !self.text[self.pos..].starts_with(b"\\u") {
                                    return Err(self.error("unpaired surrogate"));
                                }
                                self.pos += 2;
                                let lo = self.parse_hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.error("unpaired surrogate"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(code).ok_or_else(|| self.error("unpaired surrogate"))?
                        }
                        _ => return Err(self.error("invalid escape")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1f => return Err(self.error("control character in string")),
                _ => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| self.error("invalid UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: &Value) {
        let text = v.to_json();
        let back = Value::from_json(&text).unwrap();
        assert_eq!(back.total_cmp(v), std::cmp::Ordering::Equal, "{text}");
    }

    #[test]
    fn numbers_are_floats() {
        assert_eq!(Value::from_json("1").unwrap(), Value::Float64(1.0));
        assert_eq!(Value::from_json("-2.5e3").unwrap(), Value::Float64(-2500.0));
        assert_eq!(
            Value::from_json("12345678901234567890").unwrap(),
            Value::Float64(12345678901234567890.0)
        );
        assert!(Value::from_json("01").is_err());
        assert!(Value::from_json("1.").is_err());
        assert!(Value::from_json("+1").is_err());
    }

    #[test]
    fn special_encodings() {
        assert_eq!(Value::Int64(1).to_json(), r#"{"$integer":"AQAAAAAAAAA="}"#);
        assert_eq!(Value::Int64(-1).to_json(), r#"{"$integer":"//////////8="}"#);
        assert_eq!(Value::Bytes(b"hi".to_vec()).to_json(), r#"{"$bytes":"aGk="}"#);
        assert_eq!(Value::Float64(f64::INFINITY).to_json(), r#"{"$float":"AAAAAAAA8H8="}"#);
        assert_eq!(Value::Float64(-0.0).to_json(), r#"{"$float":"AAAAAAAAAIA="}"#);
        assert_eq!(Value::Float64(0.0).to_json(), "0");
        assert_eq!(Value::Float64(1.0).to_json(), "1");
        assert_eq!(Value::Float64(0.1).to_json(), "0.1");
        assert_eq!(Value::Float64(1e21).to_json(), "1e21");
        assert_eq!(Value::Float64(1.5e-7).to_json(), "1.5e-7");
        let nan = Value::from_json(r#"{"$float":"AAAAAAAA+H8="}"#).unwrap();
        assert!(nan.as_f64().unwrap().is_nan());
        assert!(Value::from_json(r#"{"$integer":"AQ=="}"#).is_err());
        assert!(Value::from_json(r#"{"$foo":"AQ=="}"#).is_err());
        assert!(Value::from_json(r#"{"a":1,"$integer":"AQAAAAAAAAA="}"#).is_err());
        assert_eq!(
            parse_plain(r#"{"$integer":"x"}"#)
                .unwrap()
                .get("$integer")
                .unwrap()
                .as_str(),
            Some("x")
        );
    }

    #[test]
    fn strings() {
        let v = Value::from_json(r#""a\"b\\c\n\u00e9\ud83d\ude00/\/""#).unwrap();
        assert_eq!(v.as_str(), Some("a\"b\\c\né😀//"));
        assert_eq!(Value::from("\u{1}é\"").to_json(), "\"\\u0001é\\\"\"");
        assert!(Value::from_json(r#""\ud83d""#).is_err());
        assert!(Value::from_json("\"a\nb\"").is_err());
    }

    #[test]
    fn round_trips() {
        for f in [
            0.1,
            1.0 / 3.0,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            -123.456,
            1e20,
            1e21,
            9007199254740993.0,
        ] {
            round_trip(&Value::Float64(f));
        }
        for i in [0, 1, -1, i64::MIN, i64::MAX] {
            round_trip(&Value::Int64(i));
        }
        let v = Value::from_json(r#"{"b":[1,true,null,"x",{"$bytes":""}],"a":{"c":{}}}"#).unwrap();
        assert_eq!(v.to_json(), r#"{"a":{"c":{}},"b":[1,true,null,"x",{"$bytes":""}]}"#);
        round_trip(&v);
    }

    #[test]
    fn errors() {
        for bad in ["", "[1,]", "{\"a\"}", "{\"a\":1,}", "nul", "[1] x", "\"abc", "{1:2}"] {
            assert!(Value::from_json(bad).is_err(), "{bad:?}");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(Value::from_json(&deep).is_err());
    }
}
