//! HTTP: [`fetch`] from actions ([`FetchOptions`] in, [`HttpResponse`]
//! out), and the request and response of HTTP actions ([`HttpRequest`] in,
//! [`HttpResponse`] out).
//!
//! `fetch` is one host call, `__convex_http_fetch` (ABI §3), with the
//! request and response as JSON; bodies travel as `$bytes`. Only actions
//! may fetch: in a query or mutation the host answers
//! [`ErrorCode::Forbidden`]. An HTTP action receives its request as its
//! argument object and returns its response as its result (ABI "HTTP
//! actions"), in the same JSON shapes.

use serde::de::DeserializeOwned;

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
    timeout: Option<std::time::Duration>,
}

impl Default for FetchOptions {
    fn default() -> FetchOptions {
        FetchOptions {
            method: "GET".to_string(),
            headers: Vec::new(),
            body: None,
            timeout: None,
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

    /// Gives up after `timeout` (whole request, including the body) with an
    /// [`ErrorCode::Http`] error. The server caps it at 60 seconds, its
    /// default.
    pub fn timeout(mut self, timeout: std::time::Duration) -> FetchOptions {
        self.timeout = Some(timeout);
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

/// An HTTP response: what [`fetch`] returns, and what an
/// [`#[http_action]`](crate::http_action) answers.
///
/// Read one with [`ok`](Self::ok), [`header`](Self::header),
/// [`text`](Self::text) and [`json`](Self::json); build one with
/// [`new`](Self::new), [`from_text`](Self::from_text) or
/// [`from_json`](Self::from_json) and the `with_*` methods:
///
/// ```
/// use convex_sdk::*;
///
/// let created = HttpResponse::from_json(&json!({ "id": "abc" })).with_status(201);
/// assert_eq!(created.header("content-type"), Some("application/json"));
/// let teapot = HttpResponse::new(418).with_header("X-Reason", "short and stout").with_body("no coffee");
/// assert_eq!((teapot.status, teapot.text().as_str()), (418, "no coffee"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code, e.g. 200.
    pub status: u16,
    /// The headers, in order (a name may repeat).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with this status, no headers and an empty body.
    pub fn new(status: u16) -> HttpResponse {
        HttpResponse {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `200` response with `text` as its body and the `Content-Type`
    /// `text/plain; charset=utf-8`.
    pub fn from_text(text: impl Into<String>) -> HttpResponse {
        HttpResponse::new(200)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(text.into())
    }

    /// A `200` response with `value` as plain JSON (int64 as a number,
    /// bytes as base64, as [`FetchOptions::json`]) and the `Content-Type`
    /// `application/json`.
    pub fn from_json(value: &Value) -> HttpResponse {
        HttpResponse::new(200)
            .with_header("Content-Type", "application/json")
            .with_body(plain_json(value))
    }

    /// Sets the status.
    pub fn with_status(mut self, status: u16) -> HttpResponse {
        self.status = status;
        self
    }

    /// Adds a header (a name given twice is sent twice).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> HttpResponse {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body (`Vec<u8>`, `String` or `&str`).
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> HttpResponse {
        self.body = body.into();
        self
    }

    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
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
    req.insert("headers".to_string(), headers_value(options.headers));
    if let Some(body) = options.body {
        req.insert("body".to_string(), Value::Bytes(body));
    }
    if let Some(timeout) = options.timeout {
        req.insert(
            "timeoutMs".to_string(),
            Value::Float64(timeout.as_millis().max(1) as f64),
        );
    }
    let resp = sys::call(imports::__convex_http_fetch, &Value::Object(req))?;
    response_from(resp)
}

/// Reads `[[name, value], ...]` (or `{"name": "value", ...}`).
fn headers_from(v: Option<&Value>) -> Option<Vec<(String, String)>> {
    match v {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(pairs)) => pairs
            .iter()
            .map(|p| match (p[0].as_str(), p[1].as_str()) {
                (Some(k), Some(v)) => Some((k.to_string(), v.to_string())),
                _ => None,
            })
            .collect(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
            .collect(),
        Some(_) => None,
    }
}

/// Reads a body: `$bytes`, a string, or nothing.
fn body_from(v: Option<&Value>) -> Option<Vec<u8>> {
    match v {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Bytes(b)) => Some(b.clone()),
        Some(Value::String(s)) => Some(s.clone().into_bytes()),
        Some(_) => None,
    }
}

fn headers_value(headers: Vec<(String, String)>) -> Value {
    Value::Array(
        headers
            .into_iter()
            .map(|(k, v)| Value::Array(vec![k.into(), v.into()]))
            .collect(),
    )
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

pub(crate) fn response_from(v: Value) -> Result<HttpResponse, ConvexError> {
    let bad = |m: &str| ConvexError::coded(ErrorCode::Internal, format!("malformed HTTP response: {m}"));
    let status = v
        .get("status")
        .and_then(Value::as_i64)
        .and_then(|s| u16::try_from(s).ok())
        .ok_or_else(|| bad("status"))?;
    let headers = headers_from(v.get("headers")).ok_or_else(|| bad("headers"))?;
    let body = body_from(v.get("body")).ok_or_else(|| bad("body"))?;
    Ok(HttpResponse { status, headers, body })
}

impl HttpResponse {
    /// The response as an HTTP action's result (ABI "HTTP actions").
    pub(crate) fn into_value(self) -> Value {
        [
            ("status", Value::Float64(self.status.into())),
            ("headers", headers_value(self.headers)),
            ("body", Value::Bytes(self.body)),
        ]
        .into_iter()
        .collect()
    }
}

/// The request an [`#[http_action]`](crate::http_action) handles.
///
/// ```
/// use convex_sdk::*;
///
/// let req = HttpRequest::new("POST", "/webhook?source=github")
///     .with_header("Content-Type", "application/json")
///     .with_body(r#"{"name": "Ada"}"#);
/// assert_eq!((req.path.as_str(), req.query.as_str()), ("/webhook", "source=github"));
/// assert_eq!(req.query_param("source").as_deref(), Some("github"));
/// assert_eq!(req.header("content-type"), Some("application/json"));
///
/// #[derive(serde::Deserialize)]
/// struct Body { name: String }
/// assert_eq!(req.json::<Body>().unwrap().name, "Ada");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method, e.g. `"POST"`.
    pub method: String,
    /// The request target as the server received it (path and query),
    /// e.g. `"/http/webhook?source=github"`.
    pub url: String,
    /// The path the route matched, without the server's `/http` prefix
    /// and without the query, e.g. `"/webhook"` (not percent-decoded).
    pub path: String,
    /// The query string without the `?` (`""` when there is none), e.g.
    /// `"source=github"`. See [`query_param`](Self::query_param).
    pub query: String,
    /// The headers, in order (a name may repeat).
    pub headers: Vec<(String, String)>,
    /// The body (empty when there is none).
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// A request with no headers and no body, for tests: `path_and_query`
    /// is what follows `/http` in the URL, e.g. `"/webhook?x=1"`.
    pub fn new(method: impl Into<String>, path_and_query: &str) -> HttpRequest {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        HttpRequest {
            method: method.into(),
            url: format!("/http{path_and_query}"),
            path: path.to_string(),
            query: query.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> HttpRequest {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body (`Vec<u8>`, `String` or `&str`).
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> HttpRequest {
        self.body = body.into();
        self
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The body as text (invalid UTF-8 replaced by U+FFFD).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as plain JSON and converted to `T` (a
    /// `#[derive(Deserialize)]` struct, or [`Value`]). A malformed body is
    /// an [`ErrorCode::InvalidArgument`] error.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ConvexError> {
        let bad = |m: String| ConvexError::coded(ErrorCode::InvalidArgument, format!("request body: {m}"));
        let text = std::str::from_utf8(&self.body).map_err(|_| bad("not UTF-8".into()))?;
        let value = crate::json::parse_plain(text).map_err(|e| bad(e.message()))?;
        crate::from_value(value).map_err(|e| bad(e.message()))
    }

    /// The first query parameter named `name`, percent-decoded (`+` is a
    /// space); `Some("")` for a bare `?name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query
            .split('&')
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .find(|(k, _)| percent_decode(k) == name)
            .map(|(_, v)| percent_decode(v))
    }

    /// Reads the request from an HTTP action's argument object.
    pub(crate) fn from_value(v: Value) -> Result<HttpRequest, ConvexError> {
        let bad = |m: &str| ConvexError::coded(ErrorCode::Args, format!("malformed HTTP request: {m}"));
        let text = |name: &str| match v.get(name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(bad(name)),
        };
        Ok(HttpRequest {
            method: text("method")?,
            url: text("url")?,
            path: text("path")?,
            query: text("query")?,
            headers: headers_from(v.get("headers")).ok_or_else(|| bad("headers"))?,
            body: body_from(v.get("body")).ok_or_else(|| bad("body"))?,
        })
    }

    /// The request as an HTTP action's argument object (for tests).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn into_value(self) -> Value {
        [
            ("method", Value::from(self.method)),
            ("url", Value::from(self.url)),
            ("path", Value::from(self.path)),
            ("query", Value::from(self.query)),
            ("headers", headers_value(self.headers)),
            ("body", Value::Bytes(self.body)),
        ]
        .into_iter()
        .collect()
    }
}

/// Decodes `%XX` escapes and `+`; an invalid escape stays as it is.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |i: usize| b.get(i).and_then(|c| (*c as char).to_digit(16));
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
            (b'+', _, _) => out.push(b' '),
            (c, _, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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
