//! [`ActionCtx`]: what an action uses instead of the database.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::auth::Auth;
use crate::error::{ConvexError, ErrorCode};
use crate::rt::{Context, Kind};
use crate::scheduler::Scheduler;
use crate::storage::Storage;
use crate::sys::{self, imports, HostFn};
use crate::value::Value;

/// The context of an action: it runs queries, mutations and other actions
/// by path (each in its own transaction), since an action has no database
/// of its own; [`scheduler`](Self::scheduler),
/// [`storage`](Self::storage) and [`auth`](Self::auth) reach the
/// scheduler, file storage and the caller's identity.
///
/// Take it as a parameter of an `#[action]` function (type `ActionCtx`); it
/// is not a client argument.
///
/// ```no_run
/// use convex_sdk::*;
///
/// #[action]
/// async fn signup(ctx: ActionCtx, name: String, email: String) -> Result<DocumentId, ConvexError> {
///     let existing: Option<Document> =
///         ctx.run_query("users:by_email", json!({ "email": email.clone() })).await?;
///     if existing.is_some() {
///         return Err(ConvexError::app(json!({ "code": "EMAIL_TAKEN" })));
///     }
///     ctx.run_mutation("users:create_user", json!({ "name": name, "email": email })).await
/// }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ActionCtx {
    _private: (),
}

impl Context for ActionCtx {
    fn __convex_new(_kind: Kind) -> ActionCtx {
        ActionCtx { _private: () }
    }
}

/// Converts the arguments of a call by path to the object the host wants
/// (`()` and `None` are `{}`).
pub(crate) fn args_object(path: &str, args: &impl Serialize) -> Result<Value, ConvexError> {
    match crate::to_value(args)? {
        Value::Null => Ok(Value::Object(Default::default())),
        v @ Value::Object(_) => Ok(v),
        other => Err(ConvexError::coded(
            ErrorCode::InvalidArgument,
            format!("arguments of {path} must be an object, not {}", other.type_name()),
        )),
    }
}

impl ActionCtx {
    #[cfg(not(target_arch = "wasm32"))]
    /// A handle for native tests, backed by [`crate::testing`]'s fake host.
    pub fn for_tests() -> ActionCtx {
        ActionCtx { _private: () }
    }

    fn run<T: DeserializeOwned>(&self, f: HostFn, path: &str, args: impl Serialize) -> Result<T, ConvexError> {
        let mut req = std::collections::BTreeMap::new();
        req.insert("path".to_string(), Value::from(path));
        req.insert("args".to_string(), args_object(path, &args)?);
        let result = sys::call(f, &Value::Object(req))?;
        crate::from_value(result).map_err(|e| {
            ConvexError::coded(
                ErrorCode::InvalidValue,
                format!("result of {path} has an unexpected type: {}", e.message()),
            )
        })
    }

    /// Runs the query at `path` (e.g. `"users:get_user"`) with `args` (an
    /// object, or `()` for none) and converts its result to `T` (use
    /// [`Value`] to keep it as is).
    ///
    /// A failure of the query is an `Err` carrying its message, and its data
    /// for an application error.
    pub async fn run_query<T: DeserializeOwned>(&self, path: &str, args: impl Serialize) -> Result<T, ConvexError> {
        self.run(imports::__convex_run_query, path, args)
    }

    /// Runs the mutation at `path` in its own transaction; see
    /// [`run_query`](Self::run_query).
    pub async fn run_mutation<T: DeserializeOwned>(&self, path: &str, args: impl Serialize) -> Result<T, ConvexError> {
        self.run(imports::__convex_run_mutation, path, args)
    }

    /// Runs the action at `path`; see [`run_query`](Self::run_query).
    pub async fn run_action<T: DeserializeOwned>(&self, path: &str, args: impl Serialize) -> Result<T, ConvexError> {
        self.run(imports::__convex_run_action, path, args)
    }

    /// The [`Scheduler`], to run functions later (same as taking a
    /// `scheduler: Scheduler` parameter).
    pub fn scheduler(&self) -> Scheduler {
        Scheduler::__convex_new(Kind::Action)
    }

    /// The file [`Storage`] (same as taking a `storage: Storage` parameter).
    pub fn storage(&self) -> Storage {
        Storage::__convex_new(Kind::Action)
    }

    /// The caller's [`Auth`] (same as taking an `auth: Auth` parameter):
    /// `ctx.auth().user_identity().await?`. Queries, mutations and actions
    /// this action runs by path see the same caller.
    pub fn auth(&self) -> Auth {
        Auth::__convex_new(Kind::Action)
    }
}
