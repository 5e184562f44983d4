//! Generates `$OUT_DIR/host_fns.rs` from the host's one list of `cvx_1`
//! host functions, `src/abi/host_fns.def` in the cvx source tree: a macro,
//! `host_fns!`, that hands every entry to the macro named in its argument
//! (`sys.rs` turns them into the wasm imports, and into forwards to the fake
//! host of native builds).
//!
//! The list is read where it lives, not copied into this crate: the SDK is
//! built from the cvx source tree (`cvx init` writes a path dependency on
//! `<cvx source>/sdk/rust/convex_sdk`; the examples and test fixtures use
//! relative paths), and a vendored copy would be the second list this file
//! exists to avoid. A copy of the crate built elsewhere (published alone,
//! say) must set `CVX_HOST_FNS_DEF` to the file; without it the build stops
//! here and says so.

use std::fmt::Write as _;
use std::path::PathBuf;

/// One `CVX_HOSTFN(name, (params), RESULT, "doc")` entry.
struct HostFn {
    name: String,
    /// (kind, name): kind is IN, OUT, LEN or I32.
    params: Vec<(String, String)>,
    result: String,
    doc: String,
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CVX_HOST_FNS_DEF");
    let path = match std::env::var_os("CVX_HOST_FNS_DEF") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../../../src/abi/host_fns.def"),
    };
    println!("cargo:rerun-if-changed={}", path.display());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "convex_sdk: cannot read the list of host functions at {}: {e}\n\
             convex_sdk is built from the cvx source tree (sdk/rust/convex_sdk); \
             elsewhere, set CVX_HOST_FNS_DEF to cvx's src/abi/host_fns.def",
            path.display()
        )
    });
    let fns = parse(&text).unwrap_or_else(|(line, msg)| panic!("{}:{line}: {msg}", path.display()));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("host_fns.rs");
    std::fs::write(&out, generate(&fns, &path.display().to_string()))
        .unwrap_or_else(|e| panic!("convex_sdk: cannot write {}: {e}", out.display()));
}

/// The entries of the .def, in order; an error names its line (1-based).
fn parse(text: &str) -> Result<Vec<HostFn>, (usize, String)> {
    let mut fns: Vec<HostFn> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(rest) = line.trim().strip_prefix("CVX_HOSTFN(") else {
            continue;
        };
        let f = parse_entry(rest).map_err(|m| (i + 1, m))?;
        if fns.iter().any(|g| g.name == f.name) {
            return Err((i + 1, format!("{} is listed twice", f.name)));
        }
        fns.push(f);
    }
    if fns.is_empty() {
        return Err((0, "no CVX_HOSTFN entries".into()));
    }
    Ok(fns)
}

/// `name, (K(a) K(b)), RESULT, "doc")`
fn parse_entry(s: &str) -> Result<HostFn, String> {
    let (name, s) = s.split_once(',').ok_or("expected `name,`")?;
    let name = ident(name.trim())?;
    let s = s.trim_start().strip_prefix('(').ok_or("expected `(params)`")?;
    let (list, s) = split_params(s)?;
    let mut params = Vec::new();
    let mut rest = list.trim();
    while !rest.is_empty() {
        let (kind, after) = rest
            .split_once('(')
            .ok_or_else(|| format!("expected KIND(name) at `{rest}`"))?;
        let (pname, after) = after.split_once(')').ok_or_else(|| format!("unclosed `{kind}(`"))?;
        let kind = kind.trim();
        if !matches!(kind, "IN" | "OUT" | "LEN" | "I32") {
            return Err(format!("unknown parameter kind {kind} (IN, OUT, LEN or I32)"));
        }
        params.push((kind.to_string(), ident(pname.trim())?));
        rest = after.trim_start();
    }
    let s = s
        .trim_start()
        .strip_prefix(',')
        .ok_or("expected `,` after the parameters")?;
    let (result, s) = s.split_once(',').ok_or("expected `RESULT,`")?;
    let result = result.trim();
    if !matches!(result, "I32" | "I64" | "F64") {
        return Err(format!("unknown result {result} (I32, I64 or F64)"));
    }
    let s = s.trim().strip_prefix('"').ok_or("expected a \"doc\" string")?;
    let (doc, s) = s.split_once('"').ok_or("unclosed doc string")?;
    if doc.contains('\\') {
        return Err("the doc string may not contain a backslash".into());
    }
    if s.trim() != ")" {
        return Err(format!("expected `)` after the doc string, found `{}`", s.trim()));
    }
    Ok(HostFn {
        name,
        params,
        result: result.to_string(),
        doc: doc.to_string(),
    })
}

/// Splits `K(a) K(b)), rest` at the `)` that closes the list.
fn split_params(s: &str) -> Result<(&str, &str), String> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Ok((&s[..i], &s[i + 1..])),
            ')' => depth -= 1,
            _ => {}
        }
    }
    Err("unclosed `(params)`".into())
}

fn ident(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("`{s}` is not a name"))
    }
}

fn rust_type(kind: &str) -> &'static str {
    match kind {
        "IN" => "*const u8",
        "OUT" => "*mut u8",
        "LEN" | "I32" => "i32",
        "I64" => "i64",
        "F64" => "f64",
        _ => unreachable!("checked by parse_entry"),
    }
}

fn generate(fns: &[HostFn], source: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "// Generated by convex_sdk's build.rs from {source}. Do not edit.");
    s.push_str(
        "/// Hands every `cvx_1` host function to `$m!` as \
         `#[doc = ..] fn __convex_<name>(param: type, ..) -> type;`.\n",
    );
    s.push_str("macro_rules! host_fns {\n    ($m:ident) => {\n        $m! {\n");
    for f in fns {
        let params: Vec<String> = f.params.iter().map(|(k, n)| format!("{n}: {}", rust_type(k))).collect();
        let _ = writeln!(s, "            #[doc = \"{}\"]", f.doc);
        let _ = writeln!(
            s,
            "            fn __convex_{}({}) -> {};",
            f.name,
            params.join(", "),
            rust_type(&f.result)
        );
    }
    s.push_str("        }\n    };\n}\n");
    s
}
