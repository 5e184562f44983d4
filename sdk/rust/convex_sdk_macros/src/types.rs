//! Rust types → ABI type descriptors (`docs/abi.md` §4), by syntax.
//!
//! A proc macro sees type *names*, not types, so the mapping is by the last
//! path segment: `String` → string, `Vec<T>` → array, and so on. A name it
//! does not know (a user struct, a type alias) is `any`, which the host does
//! not check; the SDK's serde conversion still checks the value when the
//! function runs. Only 64-bit integer types are int64; every other number
//! is float64, matching the SDK's serde mapping.

use syn::{GenericArgument, PathArguments, Type};

/// A type descriptor as JSON text.
pub(crate) fn descriptor(ty: &Type) -> String {
    match ty {
        Type::Reference(r) => descriptor(&r.elem),
        Type::Paren(p) => descriptor(&p.elem),
        Type::Group(g) => descriptor(&g.elem),
        Type::Tuple(t) if t.elems.is_empty() => simple("null"),
        Type::Tuple(_) => array(&simple("any")),
        Type::Slice(s) => array(&descriptor(&s.elem)),
        Type::Array(a) => array(&descriptor(&a.elem)),
        Type::Path(p) if p.qself.is_none() => {
            let Some(last) = p.path.segments.last() else {
                return simple("any");
            };
            let args: Vec<String> = match &last.arguments {
                PathArguments::AngleBracketed(a) => a
                    .args
                    .iter()
                    .filter_map(|g| match g {
                        GenericArgument::Type(t) => Some(descriptor(t)),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            named(&last.ident.to_string(), &args)
        }
        _ => simple("any"),
    }
}

/// The descriptor of the type named `name` with generic arguments whose
/// descriptors are `args`.
pub(crate) fn named(name: &str, args: &[String]) -> String {
    match (name, args) {
        ("String" | "str" | "char", []) => simple("string"),
        ("f64" | "f32" | "i32" | "i16" | "i8" | "u32" | "u16" | "u8", []) => simple("float64"),
        ("i64" | "u64" | "i128" | "u128" | "isize" | "usize", []) => simple("int64"),
        ("bool", []) => simple("boolean"),
        ("Value", []) => simple("any"),
        ("Document", []) => simple("document"),
        ("DocumentId" | "StorageId", []) => simple("string"),
        ("Bytes", []) => simple("bytes"),
        ("Vec" | "VecDeque" | "LinkedList" | "HashSet" | "BTreeSet", [t]) => array(t),
        ("Option", [t]) => format!(r#"{{"type":"optional","inner":{t}}}"#),
        ("Box" | "Rc" | "Arc" | "Cow", [t]) => t.clone(),
        ("HashMap" | "BTreeMap", [_, v]) => format!(r#"{{"type":"record","values":{v}}}"#),
        ("Result", [t, ..]) => t.clone(),
        ("PaginationResult", []) => concat!(
            r#"{"type":"object","fields":{"page":{"type":"array","items":{"type":"document"}},"#,
            r#""isDone":{"type":"boolean"},"continueCursor":{"type":"string"},"#,
            r#""splitCursor":{"type":"optional","inner":{"type":"string"}},"#,
            r#""pageStatus":{"type":"optional","inner":{"type":"string"}}}}"#
        )
        .to_string(),
        // Convex's paginationOptsValidator.
        ("PaginationOpts", []) => concat!(
            r#"{"type":"object","fields":{"numItems":{"type":"float64"},"#,
            r#""cursor":{"type":"union","variants":[{"type":"string"},{"type":"null"}]},"#,
            r#""endCursor":{"type":"optional","inner":{"type":"union","variants":[{"type":"string"},{"type":"null"}]}},"#,
            r#""id":{"type":"optional","inner":{"type":"float64"}},"#,
            r#""maximumRowsRead":{"type":"optional","inner":{"type":"float64"}},"#,
            r#""maximumBytesRead":{"type":"optional","inner":{"type":"float64"}}}}"#
        )
        .to_string(),
        _ => simple("any"),
    }
}

/// The `args` of an HTTP action's record: the request object (ABI "HTTP
/// actions").
pub(crate) const HTTP_REQUEST_ARGS: &str = concat!(
    r#"[{"name":"method","type":{"type":"string"}},"#,
    r#"{"name":"url","type":{"type":"string"}},"#,
    r#"{"name":"path","type":{"type":"string"}},"#,
    r#"{"name":"query","type":{"type":"string"}},"#,
    r#"{"name":"headers","type":{"type":"array","items":{"type":"array","items":{"type":"string"}}}},"#,
    r#"{"name":"body","type":{"type":"optional","inner":{"type":"bytes"}}}]"#
);

/// The `returns` of an HTTP action's record: the response the SDK writes.
pub(crate) const HTTP_RESPONSE: &str = concat!(
    r#"{"type":"object","fields":{"status":{"type":"float64"},"#,
    r#""headers":{"type":"array","items":{"type":"array","items":{"type":"string"}}},"#,
    r#""body":{"type":"bytes"}}}"#
);

pub(crate) fn simple(t: &str) -> String {
    format!(r#"{{"type":"{t}"}}"#)
}

pub(crate) fn array(items: &str) -> String {
    format!(r#"{{"type":"array","items":{items}}}"#)
}

/// `s` as a JSON string literal.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> String {
        descriptor(&syn::parse_str(s).unwrap())
    }

    #[test]
    fn mapping() {
        assert_eq!(d("String"), r#"{"type":"string"}"#);
        assert_eq!(d("&str"), r#"{"type":"string"}"#);
        assert_eq!(d("i32"), r#"{"type":"float64"}"#);
        assert_eq!(d("i64"), r#"{"type":"int64"}"#);
        assert_eq!(
            d("Option<Document>"),
            r#"{"type":"optional","inner":{"type":"document"}}"#
        );
        assert_eq!(
            d("Vec<Vec<bool>>"),
            r#"{"type":"array","items":{"type":"array","items":{"type":"boolean"}}}"#
        );
        assert_eq!(
            d("std::collections::BTreeMap<String, f64>"),
            r#"{"type":"record","values":{"type":"float64"}}"#
        );
        assert_eq!(d("Result<(), ConvexError>"), r#"{"type":"null"}"#);
        assert_eq!(d("MyStruct"), r#"{"type":"any"}"#);
        assert_eq!(d("convex_sdk::Value"), r#"{"type":"any"}"#);
        assert_eq!(d("(i64, String)"), r#"{"type":"array","items":{"type":"any"}}"#);
    }
}
