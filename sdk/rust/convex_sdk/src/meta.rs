//! Compile-time construction of the `cvx.fn` metadata records (ABI §4) and
//! of the `cvx.crons` record (ABI "Crons").
//!
//! The function macros cannot know the module path (only `module_path!()`
//! does, at the call site), so they emit an [`FnMeta`] of string pieces and
//! a `static` initialised by [`fn_meta_record`], a `const fn` that derives
//! the Convex path and writes the framed JSON record. Everything happens at
//! compile time: the record is plain bytes in a custom section, and nothing
//! runs in the guest. `crons!` works the same way with [`CronMeta`], since
//! a cron may name its function by type (`<f as ConvexFunction>::PATH`).

/// The pieces of one function's metadata record.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct FnMeta {
    /// `"query"`, `"mutation"`, `"action"` or `"httpAction"`.
    pub kind: &'static str,
    /// `"public"` or `"internal"`.
    pub visibility: &'static str,
    /// The function's Convex name (the Rust name unless renamed).
    pub name: &'static str,
    /// `module_path!()` at the function.
    pub module_path: &'static str,
    /// The export's name.
    pub export: &'static str,
    /// An HTTP action's method (`""` for other kinds).
    pub method: &'static str,
    /// An HTTP action's route (`""` for other kinds).
    pub route: &'static str,
    /// The JSON array of `{"name", "type"}` argument descriptors.
    pub args: &'static str,
    /// The JSON type descriptor of the result.
    pub returns: &'static str,
    /// `file!()` at the function.
    pub file: &'static str,
    /// `line!()` at the function.
    pub line: u32,
}

/// One cron of the `cvx.crons` record.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct CronMeta {
    /// The cron's name.
    pub name: &'static str,
    /// The Convex path of the function it runs.
    pub path: &'static str,
    /// The arguments, a JSON object.
    pub args: &'static str,
    /// The schedule, JSON: `{"every":{"ms":n}}` or `{"cron":"..."}`.
    pub schedule: &'static str,
}

/// A record to frame.
enum Record<'a> {
    Fn(&'a FnMeta),
    Crons(&'a [CronMeta]),
}

/// A cursor over a byte buffer that counts past its end instead of writing,
/// so the same code measures a record and then writes it.
struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    const fn byte(&mut self, b: u8) {
        if self.pos < self.buf.len() {
            self.buf[self.pos] = b;
        }
        self.pos += 1;
    }

    const fn raw(&mut self, s: &str) {
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            self.byte(bytes[i]);
            i += 1;
        }
    }

    /// Writes the bytes of `s` from `start` to `end`, JSON-escaped, with
    /// every `::` replaced by `/` when `slashes` is set.
    const fn escaped(&mut self, s: &str, start: usize, end: usize, slashes: bool) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let bytes = s.as_bytes();
        let mut i = start;
        while i < end {
            let b = bytes[i];
            if slashes && b == b':' && i + 1 < end && bytes[i + 1] == b':' {
                self.byte(b'/');
                i += 2;
                continue;
            }
            if b == b'"' || b == b'\\' {
                self.byte(b'\\');
                self.byte(b);
            } else if b < 0x20 {
                self.raw("\\u00");
                self.byte(HEX[(b >> 4) as usize]);
                self.byte(HEX[(b & 15) as usize]);
            } else {
                self.byte(b);
            }
            i += 1;
        }
    }

    const fn string(&mut self, s: &str) {
        self.byte(b'"');
        self.escaped(s, 0, s.len(), false);
        self.byte(b'"');
    }

    const fn number(&mut self, mut n: u32) {
        let mut digits = [0u8; 10];
        let mut count = 0;
        loop {
            digits[count] = b'0' + (n % 10) as u8;
            count += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        while count > 0 {
            count -= 1;
            self.byte(digits[count]);
        }
    }

    /// The Convex path: the module path without the crate name, `::` → `/`
    /// (the crate name itself for the crate root), then `:` and the name.
    const fn path(&mut self, module_path: &str, name: &str) {
        let bytes = module_path.as_bytes();
        let mut first_sep = bytes.len();
        let mut i = 0;
        while i + 1 < bytes.len() {
            if bytes[i] == b':' && bytes[i + 1] == b':' {
                first_sep = i;
                break;
            }
            i += 1;
        }
        self.byte(b'"');
        if first_sep == bytes.len() {
            self.escaped(module_path, 0, bytes.len(), false);
        } else {
            self.escaped(module_path, first_sep + 2, bytes.len(), true);
        }
        self.byte(b':');
        self.escaped(name, 0, name.len(), false);
        self.byte(b'"');
    }

    const fn record(&mut self, m: &FnMeta) {
        self.raw("{\"abi\":1,\"path\":");
        self.path(m.module_path, m.name);
        self.raw(",\"kind\":");
        self.string(m.kind);
        self.raw(",\"visibility\":");
        self.string(m.visibility);
        self.raw(",\"export\":");
        self.string(m.export);
        if !m.method.is_empty() {
            self.raw(",\"method\":");
            self.string(m.method);
            self.raw(",\"route\":");
            self.string(m.route);
        }
        self.raw(",\"args\":");
        self.raw(m.args);
        self.raw(",\"returns\":");
        self.raw(m.returns);
        self.raw(",\"file\":");
        self.string(m.file);
        self.raw(",\"line\":");
        self.number(m.line);
        self.byte(b'}');
    }

    const fn crons(&mut self, crons: &[CronMeta]) {
        self.raw("{\"abi\":1,\"crons\":[");
        let mut i = 0;
        while i < crons.len() {
            let c = &crons[i];
            if i > 0 {
                self.byte(b',');
            }
            self.raw("{\"name\":");
            self.string(c.name);
            self.raw(",\"path\":");
            self.string(c.path);
            self.raw(",\"args\":");
            self.raw(c.args);
            self.raw(",\"schedule\":");
            self.raw(c.schedule);
            self.byte(b'}');
            i += 1;
        }
        self.raw("]}");
    }

    const fn write(&mut self, r: &Record<'_>) {
        match r {
            Record::Fn(m) => self.record(m),
            Record::Crons(c) => self.crons(c),
        }
    }
}

const fn framed_len(r: &Record<'_>) -> usize {
    let mut w = Writer { buf: &mut [], pos: 0 };
    w.write(r);
    4 + w.pos
}

const fn framed<const N: usize>(r: &Record<'_>) -> [u8; N] {
    let mut buf = [0u8; N];
    let mut w = Writer { buf: &mut buf, pos: 4 };
    w.write(r);
    assert!(w.pos == N, "record: N is not the record's length");
    let le = ((N - 4) as u32).to_le_bytes();
    buf[0] = le[0];
    buf[1] = le[1];
    buf[2] = le[2];
    buf[3] = le[3];
    buf
}

/// The size of `m`'s framed record: 4 length bytes plus the JSON.
#[doc(hidden)]
pub const fn fn_meta_len(m: &FnMeta) -> usize {
    framed_len(&Record::Fn(m))
}

/// `m`'s framed record: a little-endian `u32` length, then the JSON.
/// `N` must be [`fn_meta_len`]`(m)`.
#[doc(hidden)]
pub const fn fn_meta_record<const N: usize>(m: &FnMeta) -> [u8; N] {
    framed(&Record::Fn(m))
}

/// The size of the framed `cvx.crons` record of `crons`.
#[doc(hidden)]
pub const fn crons_len(crons: &[CronMeta]) -> usize {
    framed_len(&Record::Crons(crons))
}

/// The framed `cvx.crons` record of `crons`. `N` must be [`crons_len`].
#[doc(hidden)]
pub const fn crons_record<const N: usize>(crons: &[CronMeta]) -> [u8; N] {
    framed(&Record::Crons(crons))
}

/// The JSON of a framed record (its bytes after the length).
#[doc(hidden)]
pub const fn record_json(record: &'static [u8]) -> &'static str {
    match core::str::from_utf8(record.split_at(4).1) {
        Ok(s) => s,
        Err(_) => panic!("record is not UTF-8"),
    }
}

/// Splits a `cvx.fn` section (or any concatenation of framed records) into
/// the JSON texts of its records.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn split_records(section: &[u8]) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = section;
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err("truncated record length".into());
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let body = rest.get(4..4 + len).ok_or("record longer than the section")?;
        out.push(std::str::from_utf8(body).map_err(|_| "record is not UTF-8")?);
        rest = &rest[4 + len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;

    const META: FnMeta = FnMeta {
        kind: "query",
        visibility: "public",
        name: "get_user",
        module_path: "users",
        export: "cvx:users::get_user",
        method: "",
        route: "",
        args: r#"[{"name":"id","type":{"type":"string"}}]"#,
        returns: r#"{"type":"optional","inner":{"type":"document"}}"#,
        file: "src\\lib.rs",
        line: 4,
    };
    static RECORD: [u8; fn_meta_len(&META)] = fn_meta_record(&META);

    #[test]
    fn record_is_framed_json() {
        let records = split_records(&RECORD).unwrap();
        assert_eq!(records.len(), 1);
        let v = Value::from_json(records[0]).unwrap();
        assert_eq!(v["path"].as_str(), Some("users:get_user"));
        assert_eq!(v["abi"], Value::Float64(1.0));
        assert_eq!(v["file"].as_str(), Some("src\\lib.rs"));
        assert_eq!(v["line"], Value::Float64(4.0));
        assert_eq!(v["args"][0]["name"].as_str(), Some("id"));
        assert_eq!(v["returns"]["inner"]["type"].as_str(), Some("document"));
    }

    #[test]
    fn http_action_record() {
        const HTTP: FnMeta = FnMeta {
            kind: "httpAction",
            method: "POST",
            route: "/hook",
            ..META
        };
        static RECORD: [u8; fn_meta_len(&HTTP)] = fn_meta_record(&HTTP);
        let v = Value::from_json(split_records(&RECORD).unwrap()[0]).unwrap();
        assert_eq!(
            (v["kind"].as_str(), v["method"].as_str(), v["route"].as_str()),
            (Some("httpAction"), Some("POST"), Some("/hook"))
        );
        assert!(Value::from_json(split_records(&super::tests::RECORD).unwrap()[0])
            .unwrap()
            .get("method")
            .is_none());
    }

    #[test]
    fn crons_record_is_framed_json() {
        const CRONS: &[CronMeta] = &[
            CronMeta {
                name: "tick \"1\"",
                path: "jobs:tick",
                args: "{}",
                schedule: r#"{"every":{"ms":1000}}"#,
            },
            CronMeta {
                name: "nightly",
                path: "jobs:report",
                args: r#"{"kind":"full"}"#,
                schedule: r#"{"cron":"0 3 * * *"}"#,
            },
        ];
        const BYTES: [u8; crons_len(CRONS)] = crons_record(CRONS);
        const JSON: &str = record_json(&BYTES);
        assert_eq!(split_records(&BYTES).unwrap(), [JSON]);
        let v = Value::from_json(JSON).unwrap();
        assert_eq!(v["crons"][0]["name"].as_str(), Some("tick \"1\""));
        assert_eq!(v["crons"][0]["schedule"]["every"]["ms"], Value::Float64(1000.0));
        assert_eq!(v["crons"][1]["args"]["kind"].as_str(), Some("full"));
        const NONE: [u8; crons_len(&[])] = crons_record(&[]);
        assert_eq!(record_json(&NONE), r#"{"abi":1,"crons":[]}"#);
    }

    #[test]
    fn paths() {
        let path = |module_path: &'static str, name: &'static str| {
            let m = FnMeta {
                module_path,
                name,
                ..META
            };
            let mut buf = vec![0u8; fn_meta_len(&m)];
            let mut w = Writer { buf: &mut buf, pos: 0 };
            w.path(module_path, name);
            let n = w.pos;
            String::from_utf8(buf[..n].to_vec()).unwrap()
        };
        assert_eq!(path("users", "get_user"), "\"users:get_user\"");
        assert_eq!(path("app::admin::users", "list"), "\"admin/users:list\"");
        assert_eq!(path("app::messages", "send"), "\"messages:send\"");
    }

    #[test]
    fn numbers() {
        for n in [0u32, 7, 10, 1234567890, u32::MAX] {
            let mut buf = [0u8; 16];
            let mut w = Writer { buf: &mut buf, pos: 0 };
            w.number(n);
            let len = w.pos;
            assert_eq!(std::str::from_utf8(&buf[..len]).unwrap(), n.to_string());
        }
    }
}
