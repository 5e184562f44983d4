//! [`FunctionKind`] and [`ConvexFunction`], the compile-time description of
//! a function that the macros attach to it.

/// Whether a function is a query, a mutation, an action or an HTTP action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FunctionKind {
    /// `#[query]`: reads the database at one snapshot; deterministic, cached
    /// and reactive.
    Query,
    /// `#[mutation]`: reads and writes the database in one atomic
    /// transaction; deterministic.
    Mutation,
    /// `#[action]`: may call the outside world (`fetch`) and run queries and
    /// mutations; not deterministic.
    Action,
    /// `#[http_action]`: an action that answers an HTTP request to
    /// `/http<route>` on the server instead of being called by path.
    HttpAction,
}

impl FunctionKind {
    /// `"query"`, `"mutation"`, `"action"` or `"httpAction"` (the
    /// metadata's `kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            FunctionKind::Query => "query",
            FunctionKind::Mutation => "mutation",
            FunctionKind::Action => "action",
            FunctionKind::HttpAction => "httpAction",
        }
    }

    /// Whether functions of this kind have the rights of an action (fetch,
    /// `ActionCtx`, no database): actions and HTTP actions.
    pub fn is_action(self) -> bool {
        matches!(self, FunctionKind::Action | FunctionKind::HttpAction)
    }
}

/// Implemented by the macros for each function, on a hidden type with the
/// function's name (types and functions live in different namespaces).
///
/// Name it with a turbofish where a type is expected, for example in native
/// tests:
///
/// ```text
/// let result = convex_sdk::testing::call::<get_user>(json!({ "id": id }));
/// ```
pub trait ConvexFunction {
    /// The Convex path, e.g. `"users:get_user"`.
    const PATH: &'static str;
    /// The function's kind.
    const KIND: FunctionKind;
    /// Whether clients may call it (`false` for `internal` functions).
    const PUBLIC: bool;
    /// The export the host calls (ABI §5).
    const EXPORT: extern "C" fn(i32) -> i32;
    /// The function's framed `cvx.fn` metadata record (ABI §4).
    const METADATA: &'static [u8];
}

/// Fails the build when a cron names a function that is not a mutation or
/// an action.
#[doc(hidden)]
pub const fn check_cron_target(kind: FunctionKind) {
    match kind {
        FunctionKind::Mutation | FunctionKind::Action => {}
        _ => panic!("a cron runs a #[mutation] or an #[action], not a query or an HTTP action"),
    }
}

/// The length of the Convex path for a function `name` in `module_path`.
#[doc(hidden)]
pub const fn path_len(module_path: &str, name: &str) -> usize {
    let (start, _) = module_start(module_path);
    module_path.len() - start - 2 * count_seps(module_path, start) + count_seps(module_path, start) + 1 + name.len()
}

/// The Convex path: module path without the crate name (`::` → `/`, the
/// crate name for the crate root), `:`, name. `N` must be [`path_len`].
#[doc(hidden)]
pub const fn path_bytes<const N: usize>(module_path: &str, name: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let (start, _) = module_start(module_path);
    let m = module_path.as_bytes();
    let mut i = start;
    let mut o = 0;
    while i < m.len() {
        if m[i] == b':' && i + 1 < m.len() && m[i + 1] == b':' {
            out[o] = b'/';
            i += 2;
        } else {
            out[o] = m[i];
            i += 1;
        }
        o += 1;
    }
    out[o] = b':';
    o += 1;
    let n = name.as_bytes();
    let mut j = 0;
    while j < n.len() {
        out[o] = n[j];
        o += 1;
        j += 1;
    }
    assert!(o == N, "path_bytes: N is not path_len");
    out
}

/// `bytes` as a `str` (they come from `str`s, so this cannot fail).
#[doc(hidden)]
pub const fn path_str(bytes: &'static [u8]) -> &'static str {
    match core::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(_) => panic!("path is not UTF-8"),
    }
}

/// Where the module part of the path starts: after the crate name and its
/// `::`, or 0 at the crate root.
const fn module_start(module_path: &str) -> (usize, bool) {
    let m = module_path.as_bytes();
    let mut i = 0;
    while i + 1 < m.len() {
        if m[i] == b':' && m[i + 1] == b':' {
            return (i + 2, true);
        }
        i += 1;
    }
    (0, false)
}

const fn count_seps(module_path: &str, start: usize) -> usize {
    let m = module_path.as_bytes();
    let mut i = start;
    let mut n = 0;
    while i + 1 < m.len() {
        if m[i] == b':' && m[i + 1] == b':' {
            n += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! path {
        ($module:literal, $name:literal) => {{
            const B: [u8; path_len($module, $name)] = path_bytes($module, $name);
            const S: &str = path_str(&B);
            S
        }};
    }

    #[test]
    fn derives_paths() {
        assert_eq!(path!("users", "get_user"), "users:get_user");
        assert_eq!(path!("app::admin::users", "list"), "admin/users:list");
        assert_eq!(path!("app::messages", "send"), "messages:send");
    }
}
