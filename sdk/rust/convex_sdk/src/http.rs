//! HTTP from actions: [`fetch`], [`FetchOptions`], [`HttpResponse`].
//!
//! One host call, `__convex_http_fetch` (ABI §3), with the request and
//! response as JSON; bodies travel as `$bytes`. Only actions may fetch: in a
//! query or mutation the host answers [`ErrorCode::Forbidden`].

use crate::error::{ConvexError, ErrorCode};
use crate::sys::{self, imports};
use crate::value::Value;

/// The method, headers and body of a [`fetch`] request (default: a `GET`
/// with no headers and no body).
///
/// ```
/// use convex_sdk::FetchOptions;
///
/// let options = FetchOptions::new()
///     .method("POST")
///     .header("Content-Type", "application/json")
///     .body(r#"{"hello":"world"}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchOptions {
    method: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl Default for FetchOptions {
    fn default() -> FetchOptions {
        FetchOptions {
            method: "GET".to_string(),
            headers: Vec::new(),
            body: None,
        }
    }
}

impl FetchOptions {
    /// A `GET` with no headers and no body.
    pub fn new() -> FetchOptions {
        FetchOptions::default()
    }

    /// Sets the method (`"GET"`, `"POST"`, …).
    pub fn method(mut self, method: impl Into<String>) -> FetchOptions {
        self.method = method.into();
        self
    }

    /// Adds a header (repeated names are sent repeatedly).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> FetchOptions {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body (`Vec<u8>`, `String` or `&str`).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> FetchOptions {
        self.body = Some(body.into());
        self
    }

    /// Sets the body to `value` as plain JSON text and the `Content-Type` to
    /// `application/json`.
    pub fn json(self, value: &Value) -> FetchOptions {
        self.header("Content-Type", "application/json").body(plain_json(value))
    }
}

/// Writes `v` as plain JSON (int64 as a number, bytes as base64 text), for
/// other services that do not speak convex-encoded JSON.
fn plain_json(v: &Value) -> String {
    fn walk(v: &Value) -> Value {
        match v {
            Value::Int64(i) => Value::Float64(*i as f64),
            Value::Bytes(b) => Value::String(crate::base64::encode(b)),
            Value::Float64(f) if !f.is_finite() => Value::Null,
            Value::Array(a) => Value::Array(a.iter().map(walk).collect()),
            Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), walk(v))).collect()),
            other => other.clone(),
        }
    }
    let mut text = walk(v).to_json();
    // -0 is the only float that to_json still writes as {"$float"}.
    if text.contains("{\"$float\"") {
        text = text.replace("{\"$float\":\"AAAAAAAAAIA=\"}", "-0");
    }
    text
}

/// The response to a [`fetch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code, e.g. 200.
    pub status: u16,
    /// The headers, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced by U+FFFD).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as plain JSON (numbers are float64).
    pub fn json(&self) -> Result<Value, ConvexError> {
        let text = std::str::from_utf8(&self.body)
            .map_err(|_| ConvexError::coded(ErrorCode::InvalidValue, "response body is not UTF-8"))?;
        crate::json::parse_plain(text)
    }
}

/// Sends an HTTP request (actions only) and waits for the response.
///
/// A response with any status is `Ok`; `Err` means no response (DNS,
/// connection, timeout, a body over the size limit: [`ErrorCode::Http`]) or
/// a function kind that may not fetch ([`ErrorCode::Forbidden`]).
///
/// ```no_run
/// use convex_sdk::*;
///
/// #[action]
/// async fn ping(url: String) -> Result<u16, ConvexError> {
///     let response = fetch(&url, FetchOptions::new()).await?;
///     Ok(response.status)
/// }
/// ```
pub async fn fetch(url: &str, options: FetchOptions) -> Result<HttpResponse, ConvexError> {
    let mut req = std::collections::BTreeMap::new();
    req.insert("url".to_string(), Value::from(url));
    req.insert("method".to_string(), Value::from(options.method));
    let headers = options
        .headers
        .into_iter()
        .map(|(k, v)| Value::Array(vec![k.into(), v.into()]))
        .collect();
    req.insert("headers".to_string(), Value::Array(headers));
    if let Some(body) = options.body {
        req.insert("body".to_string(), Value::Bytes(body));
    }
    let resp = sys::call(imports::__convex_http_fetch, &Value::Object(req))?;
    response_from(resp)
}

fn response_from(v: Value) -> Result<HttpResponse, ConvexError> {
    let bad = |m: &str| ConvexError::coded(ErrorCode::Internal, format!("malformed fetch response: {m}"));
    let status = v
        .get("status")
        .and_then(Value::as_i64)
        .and_then(|s| u16::try_from(s).ok())
        .ok_or_else(|| bad("status"))?;
    let headers = match v.get("headers") {
        None | Some(Value::Null) => Vec::new(),
        // [[name, value], ...]
        Some(Value::Array(pairs)) => pairs
            .iter()
            .map(|p| match (p[0].as_str(), p[1].as_str()) {
                (Some(k), Some(v)) => Ok((k.to_string(), v.to_string())),
                _ => Err(bad("headers")),
            })
            .collect::<Result<_, _>>()?,
        // {"name": "value", ...}
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| {
                v.as_str()
                    .map(|v| (k.clone(), v.to_string()))
                    .ok_or_else(|| bad("headers"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad("headers")),
    };
    let body = match v.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Bytes(b)) => b.clone(),
        Some(Value::String(s)) => s.clone().into_bytes(),
        Some(_) => return Err(bad("body")),
    };
    Ok(HttpResponse { status, headers, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_shapes() {
        let r = response_from(
            Value::from_json(r#"{"status":201,"headers":[["Content-Type","text/plain"]],"body":{"$bytes":"aGk="}}"#)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (r.status, r.text().as_str(), r.header("content-type")),
            (201, "hi", Some("text/plain"))
        );
        assert!(r.ok());
        let r = response_from(Value::from_json(r#"{"status":404,"headers":{"x":"y"}}"#).unwrap()).unwrap();
        assert_eq!((r.status, r.header("X"), r.body.len()), (404, Some("y"), 0));
        assert!(response_from(Value::from_json(r#"{"headers":[]}"#).unwrap()).is_err());
    }

    #[test]
    fn plain_json_for_other_services() {
        let v = crate::json!({"a": 1i64, "b": b"hi", "c": [1.5, -0.0]});
        assert_eq!(plain_json(&v), r#"{"a":1,"b":"aGk=","c":[1.5,-0]}"#);
    }
}
