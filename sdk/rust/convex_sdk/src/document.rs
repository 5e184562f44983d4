//! [`Document`], [`DocumentId`] and [`Bytes`].

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeOwned};
use serde::{Deserialize, Serialize};

use crate::de::Missing;
use crate::error::{ConvexError, ErrorCode};
use crate::value::Value;

/// The id of a document: its `_id` field, a string such as
/// `"jd7f8k2m9q4w1e3r5t6y8u0i2o4p6a8s"`.
///
/// Convert from a string with `From` (`let id: DocumentId = s.into()`); it
/// serializes as that string, so it can be a function argument, a result or
/// a field of a document.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentId(String);

impl DocumentId {
    /// Wraps an id string (no validation: the host checks ids when used).
    pub fn new(id: impl Into<String>) -> DocumentId {
        DocumentId(id.into())
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

impl From<String> for DocumentId {
    fn from(id: String) -> DocumentId {
        DocumentId(id)
    }
}

impl From<&str> for DocumentId {
    fn from(id: &str) -> DocumentId {
        DocumentId(id.to_string())
    }
}

impl From<&String> for DocumentId {
    fn from(id: &String) -> DocumentId {
        DocumentId(id.clone())
    }
}

impl From<DocumentId> for String {
    fn from(id: DocumentId) -> String {
        id.0
    }
}

impl AsRef<str> for DocumentId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for DocumentId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for DocumentId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for DocumentId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DocumentId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<DocumentId, D::Error> {
        String::deserialize(d).map(DocumentId)
    }
}

/// A stored document: an object whose `_id` is a string and whose
/// `_creationTime` is a number (milliseconds since the Unix epoch).
///
/// Read fields with [`get`](Self::get) (a [`Value`]) or
/// [`get_as`](Self::get_as) (any `Deserialize` type), or the whole document
/// into a struct with [`to_typed`](Self::to_typed) /
/// [`into_typed`](Self::into_typed):
///
/// ```
/// use convex_sdk::*;
///
/// #[derive(serde::Deserialize)]
/// struct User { name: String, #[serde(rename = "_id")] id: DocumentId }
///
/// let doc = Document::try_from(json!({
///     "_id": "abc", "_creationTime": 1700000000000.0, "name": "Ada", "age": 36,
/// })).unwrap();
/// assert_eq!(doc.id(), "abc");
/// assert_eq!(doc.get("name").and_then(Value::as_str), Some("Ada"));
/// assert_eq!(doc.get_as::<u32>("age").unwrap(), 36);
/// assert_eq!(doc.get_as::<Option<String>>("nickname").unwrap(), None);
/// let user: User = doc.into_typed().unwrap();
/// assert_eq!((user.name.as_str(), user.id.as_str()), ("Ada", "abc"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    fields: BTreeMap<String, Value>,
}

impl Document {
    /// The document's id (`_id`).
    pub fn id(&self) -> DocumentId {
        match self.fields.get("_id") {
            Some(Value::String(s)) => DocumentId(s.clone()),
            _ => unreachable!("Document invariant: _id is a string"),
        }
    }

    /// When the document was created (`_creationTime`), in milliseconds since
    /// the Unix epoch.
    pub fn creation_time(&self) -> f64 {
        self.fields
            .get("_creationTime")
            .and_then(Value::as_f64)
            .unwrap_or_default()
    }

    /// The field `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }

    /// The field `name` converted to `T`. A missing field reads as `None`
    /// for an `Option<T>` and is an error otherwise.
    pub fn get_as<T: DeserializeOwned>(&self, name: &str) -> Result<T, ConvexError> {
        let result = match self.fields.get(name) {
            Some(v) => T::deserialize(v.clone()),
            None => T::deserialize(Missing(name)),
        };
        result.map_err(|e| ConvexError::coded(ErrorCode::InvalidValue, format!("field \"{name}\": {}", e.message())))
    }

    /// All fields, including `_id` and `_creationTime`.
    pub fn fields(&self) -> &BTreeMap<String, Value> {
        &self.fields
    }

    /// The document converted to `T` (e.g. a `#[derive(Deserialize)]`
    /// struct). Fields the struct does not name are ignored unless it says
    /// `#[serde(deny_unknown_fields)]`.
    pub fn to_typed<T: DeserializeOwned>(&self) -> Result<T, ConvexError> {
        crate::from_value(Value::Object(self.fields.clone()))
    }

    /// Like [`to_typed`](Self::to_typed), consuming the document.
    pub fn into_typed<T: DeserializeOwned>(self) -> Result<T, ConvexError> {
        crate::from_value(self.into_value())
    }

    /// The document as an object [`Value`].
    pub fn into_value(self) -> Value {
        Value::Object(self.fields)
    }

    /// The user fields (everything but `_id` and `_creationTime`), e.g. to
    /// pass to [`Database::replace`](crate::Database::replace).
    pub fn user_fields(&self) -> Value {
        Value::Object(
            self.fields
                .iter()
                .filter(|(k, _)| !k.starts_with('_'))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }
}

impl TryFrom<Value> for Document {
    type Error = ConvexError;

    /// Accepts an object with a string `_id` and a numeric `_creationTime`.
    fn try_from(v: Value) -> Result<Document, ConvexError> {
        let bad = |msg: &str| ConvexError::coded(ErrorCode::InvalidValue, format!("not a document: {msg}"));
        let Value::Object(fields) = v else {
            return Err(bad(&format!("expected an object, got {}", v.type_name())));
        };
        if !matches!(fields.get("_id"), Some(Value::String(_))) {
            return Err(bad("_id is missing or not a string"));
        }
        if !matches!(fields.get("_creationTime"), Some(Value::Float64(_) | Value::Int64(_))) {
            return Err(bad("_creationTime is missing or not a number"));
        }
        Ok(Document { fields })
    }
}

impl std::ops::Index<&str> for Document {
    type Output = Value;

    /// The field `name`, or `Null` if it is missing.
    fn index(&self, name: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.fields.get(name).unwrap_or(&NULL)
    }
}

impl Serialize for Document {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.fields.len()))?;
        for (k, v) in &self.fields {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Document, D::Error> {
        let v = Value::deserialize(d)?;
        Document::try_from(v).map_err(|e| de::Error::custom(e.message()))
    }
}

/// A byte string: serializes as Convex `bytes` (an `ArrayBuffer` in
/// JavaScript), where a plain `Vec<u8>` would be an array of numbers.
///
/// ```
/// use convex_sdk::{to_value, Bytes, Value};
/// assert_eq!(to_value(&Bytes(vec![1, 2])).unwrap(), Value::Bytes(vec![1, 2]));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bytes(pub Vec<u8>);

impl From<Vec<u8>> for Bytes {
    fn from(b: Vec<u8>) -> Bytes {
        Bytes(b)
    }
}

impl std::ops::Deref for Bytes {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(Bytes(out))
            }
        }
        d.deserialize_byte_buf(V)
    }
}
