//! File storage: [`Storage`] and [`StorageId`].
//!
//! Host calls of ABI §3: `__convex_storage_store` (JSON metadata plus the
//! raw bytes), `__convex_storage_get` (answers the raw bytes, not JSON),
//! `__convex_storage_get_url`, `__convex_storage_delete` and
//! `__convex_storage_generate_upload_url`. The host enforces which kinds
//! may call what; a refused call is [`ErrorCode::Forbidden`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::document::DocumentId;
use crate::error::{ConvexError, ErrorCode};
use crate::rt::{Context, Kind};
use crate::sys::{self, imports};
use crate::value::Value;

/// The id of a stored file: a string, the `_id` of its metadata document
/// in the system table `_storage` (`{sha256, size, contentType?}`).
///
/// It serializes as that string, so it can be an argument, a result or a
/// field of a document. Read the metadata in a query or mutation with
/// `db.get(id.into())`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorageId(String);

impl StorageId {
    /// Wraps an id string (no validation: the host checks ids when used).
    pub fn new(id: impl Into<String>) -> StorageId {
        StorageId(id.into())
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl From<String> for StorageId {
    fn from(id: String) -> StorageId {
        StorageId(id)
    }
}

impl From<&str> for StorageId {
    fn from(id: &str) -> StorageId {
        StorageId(id.to_string())
    }
}

impl From<StorageId> for String {
    fn from(id: StorageId) -> String {
        id.0
    }
}

/// The id of the file's `_storage` metadata document.
impl From<StorageId> for DocumentId {
    fn from(id: StorageId) -> DocumentId {
        DocumentId::from(id.0)
    }
}

impl From<StorageId> for Value {
    fn from(id: StorageId) -> Value {
        Value::String(id.0)
    }
}

impl AsRef<str> for StorageId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StorageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for StorageId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StorageId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StorageId, D::Error> {
        String::deserialize(d).map(StorageId)
    }
}

/// File storage: store and read files (actions), delete them and hand out
/// upload URLs (mutations and actions), and get download URLs (any
/// function).
///
/// Take it as a parameter (type `Storage`, next to `db: Database` or
/// `ctx: ActionCtx`) or get it with
/// [`ActionCtx::storage`](crate::ActionCtx::storage).
///
/// ```no_run
/// use convex_sdk::*;
///
/// #[action]
/// async fn save_avatar(storage: Storage, url: String) -> Result<StorageId, ConvexError> {
///     let image = fetch(&url, FetchOptions::new()).await?;
///     storage.store(&image.body, image.header("Content-Type")).await
/// }
///
/// #[query]
/// async fn avatar_url(storage: Storage, id: StorageId) -> Result<Option<String>, ConvexError> {
///     storage.get_url(id).await
/// }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Storage {
    _private: (),
}

impl Context for Storage {
    fn __convex_new(_kind: Kind) -> Storage {
        Storage { _private: () }
    }
}

fn id_request(id: StorageId) -> Value {
    [("storageId", Value::from(id))].into_iter().collect()
}

fn string_response(what: &str, v: Value) -> Result<String, ConvexError> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(ConvexError::coded(
            ErrorCode::Internal,
            format!("{what} returned {} instead of a string", other.type_name()),
        )),
    }
}

impl Storage {
    #[cfg(not(target_arch = "wasm32"))]
    /// A handle for native tests, backed by [`crate::testing`]'s fake host.
    pub fn for_tests() -> Storage {
        Storage { _private: () }
    }

    /// Stores `data` as a new file (actions only) and returns its id.
    /// `content_type` (e.g. `Some("image/png")`) is kept in the file's
    /// metadata and served with it.
    pub async fn store(&self, data: impl AsRef<[u8]>, content_type: Option<&str>) -> Result<StorageId, ConvexError> {
        let meta: Value = content_type
            .map(|t| ("contentType", Value::from(t)))
            .into_iter()
            .collect();
        sys::storage_store(&meta, data.as_ref())
            .and_then(|v| string_response("storage store", v))
            .map(StorageId)
    }

    /// The contents of the file (actions only), or `None` if there is no
    /// such file.
    pub async fn get(&self, id: StorageId) -> Result<Option<Vec<u8>>, ConvexError> {
        match sys::call_raw(imports::__convex_storage_get, id_request(id).to_json().as_bytes()) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A URL that serves the file, or `None` if there is no such file.
    pub async fn get_url(&self, id: StorageId) -> Result<Option<String>, ConvexError> {
        match sys::call(imports::__convex_storage_get_url, &id_request(id))? {
            Value::Null => Ok(None),
            v => string_response("storage get_url", v).map(Some),
        }
    }

    /// Deletes the file and its metadata (mutations and actions; in a
    /// mutation, only if it commits). A missing file is
    /// [`ErrorCode::NotFound`].
    pub async fn delete(&self, id: StorageId) -> Result<(), ConvexError> {
        sys::call(imports::__convex_storage_delete, &id_request(id)).map(drop)
    }

    /// A short-lived URL a client can `POST` a file's bytes to (mutations
    /// and actions); the upload answers `{"storageId": ...}`.
    pub async fn generate_upload_url(&self) -> Result<String, ConvexError> {
        let req = Value::Object(Default::default());
        string_response(
            "storage generate_upload_url",
            sys::call(imports::__convex_storage_generate_upload_url, &req)?,
        )
    }
}
