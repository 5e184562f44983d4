//! serde → [`Value`]: a `Serializer` whose output is a Convex value.
//!
//! Mapping (see the module docs of `value` for the integer rule):
//! `bool` → Boolean; `i64`/`u64`/`i128`/`u128` (and so `isize`/`usize`) →
//! Int64, with an error when out of range; other integers and floats →
//! Float64; `char`/`str` → String; bytes (`serialize_bytes`, e.g.
//! [`Bytes`](crate::Bytes)) → Bytes; `None`/`()`/unit structs → Null;
//! sequences and tuples → Array; maps and structs → Object; enums as serde's
//! externally tagged form (`"Variant"` or `{"Variant": value}`).

use std::collections::BTreeMap;

use serde::ser::{self, Serialize};

use crate::error::{ConvexError, ErrorCode};
use crate::value::Value;

/// Converts any `Serialize` value to a [`Value`].
///
/// ```
/// use convex_sdk::{to_value, Value};
///
/// #[derive(serde::Serialize)]
/// struct User { name: String, age: u32, visits: i64 }
///
/// let v = to_value(&User { name: "Ada".into(), age: 36, visits: 7 }).unwrap();
/// assert_eq!(v["name"], Value::from("Ada"));
/// assert_eq!(v["age"], Value::Float64(36.0));
/// assert_eq!(v["visits"], Value::Int64(7));
/// ```
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, ConvexError> {
    value.serialize(ValueSerializer)
}

impl Serialize for Value {
    fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use ser::{SerializeMap, SerializeSeq};
        match self {
            Value::Null => s.serialize_unit(),
            Value::Int64(i) => s.serialize_i64(*i),
            Value::Float64(f) => s.serialize_f64(*f),
            Value::Boolean(b) => s.serialize_bool(*b),
            Value::String(v) => s.serialize_str(v),
            Value::Bytes(b) => s.serialize_bytes(b),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Object(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

fn out_of_range(what: impl std::fmt::Display) -> ConvexError {
    ConvexError::coded(
        ErrorCode::InvalidValue,
        format!("integer {what} does not fit in an int64"),
    )
}

/// The serializer behind [`to_value`].
pub(crate) struct ValueSerializer;

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = ConvexError;
    type SerializeSeq = SeqSerializer;
    type SerializeTuple = SeqSerializer;
    type SerializeTupleStruct = SeqSerializer;
    type SerializeTupleVariant = VariantSerializer<SeqSerializer>;
    type SerializeMap = MapSerializer;
    type SerializeStruct = MapSerializer;
    type SerializeStructVariant = VariantSerializer<MapSerializer>;

    fn serialize_bool(self, v: bool) -> Result<Value, ConvexError> {
        Ok(Value::Boolean(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, ConvexError> {
        Ok(Value::Float64(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, ConvexError> {
        Ok(Value::Float64(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, ConvexError> {
        Ok(Value::Float64(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<Value, ConvexError> {
        Ok(Value::Int64(v))
    }
    fn serialize_i128(self, v: i128) -> Result<Value, ConvexError> {
        i64::try_from(v).map(Value::Int64).map_err(|_| out_of_range(v))
    }
    fn serialize_u8(self, v: u8) -> Result<Value, ConvexError> {
        Ok(Value::Float64(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, ConvexError> {
        Ok(Value::Float64(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, ConvexError> {
        Ok(Value::Float64(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, ConvexError> {
        i64::try_from(v).map(Value::Int64).map_err(|_| out_of_range(v))
    }
    fn serialize_u128(self, v: u128) -> Result<Value, ConvexError> {
        i64::try_from(v).map(Value::Int64).map_err(|_| out_of_range(v))
    }
    fn serialize_f32(self, v: f32) -> Result<Value, ConvexError> {
        Ok(Value::Float64(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, ConvexError> {
        Ok(Value::Float64(v))
    }
    fn serialize_char(self, v: char) -> Result<Value, ConvexError> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, ConvexError> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, ConvexError> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn serialize_none(self) -> Result<Value, ConvexError> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Value, ConvexError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, ConvexError> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, ConvexError> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, ConvexError> {
        Ok(Value::String(variant.to_string()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, v: &T) -> Result<Value, ConvexError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Value, ConvexError> {
        let mut obj = BTreeMap::new();
        obj.insert(variant.to_string(), v.serialize(self)?);
        Ok(Value::Object(obj))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqSerializer, ConvexError> {
        Ok(SeqSerializer(Vec::with_capacity(len.unwrap_or(0))))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqSerializer, ConvexError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<SeqSerializer, ConvexError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, ConvexError> {
        Ok(VariantSerializer {
            variant,
            inner: SeqSerializer(Vec::with_capacity(len)),
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapSerializer, ConvexError> {
        Ok(MapSerializer {
            fields: BTreeMap::new(),
            key: None,
        })
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<MapSerializer, ConvexError> {
        self.serialize_map(None)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, ConvexError> {
        Ok(VariantSerializer {
            variant,
            inner: MapSerializer {
                fields: BTreeMap::new(),
                key: None,
            },
        })
    }
}

/// Collects the elements of a sequence or tuple.
pub(crate) struct SeqSerializer(Vec<Value>);

impl ser::SerializeSeq for SeqSerializer {
    type Ok = Value;
    type Error = ConvexError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ConvexError> {
        self.0.push(v.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value, ConvexError> {
        Ok(Value::Array(self.0))
    }
}

impl ser::SerializeTuple for SeqSerializer {
    type Ok = Value;
    type Error = ConvexError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ConvexError> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Value, ConvexError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for SeqSerializer {
    type Ok = Value;
    type Error = ConvexError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ConvexError> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Value, ConvexError> {
        ser::SerializeSeq::end(self)
    }
}

/// Collects the fields of a map or struct.
pub(crate) struct MapSerializer {
    fields: BTreeMap<String, Value>,
    key: Option<String>,
}

/// Map keys must be strings; numbers and booleans are written as text, as
/// serde_json does, so `HashMap<u32, T>` works.
fn key_string(key: Value) -> Result<String, ConvexError> {
    match key {
        Value::String(s) => Ok(s),
        Value::Int64(i) => Ok(i.to_string()),
        Value::Float64(f) => Ok(f.to_string()),
        Value::Boolean(b) => Ok(b.to_string()),
        other => Err(ConvexError::coded(
            ErrorCode::InvalidValue,
            format!("object keys must be strings, not {}", other.type_name()),
        )),
    }
}

impl ser::SerializeMap for MapSerializer {
    type Ok = Value;
    type Error = ConvexError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ConvexError> {
        self.key = Some(key_string(key.serialize(ValueSerializer)?)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ConvexError> {
        let key = self.key.take().expect("serialize_value called before serialize_key");
        self.fields.insert(key, v.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value, ConvexError> {
        Ok(Value::Object(self.fields))
    }
}

impl ser::SerializeStruct for MapSerializer {
    type Ok = Value;
    type Error = ConvexError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<(), ConvexError> {
        self.fields.insert(key.to_string(), v.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value, ConvexError> {
        Ok(Value::Object(self.fields))
    }
}

/// Wraps a tuple or struct variant's body as `{"Variant": body}`.
pub(crate) struct VariantSerializer<S> {
    variant: &'static str,
    inner: S,
}

impl<S> VariantSerializer<S> {
    fn wrap(variant: &'static str, body: Value) -> Value {
        let mut obj = BTreeMap::new();
        obj.insert(variant.to_string(), body);
        Value::Object(obj)
    }
}

impl ser::SerializeTupleVariant for VariantSerializer<SeqSerializer> {
    type Ok = Value;
    type Error = ConvexError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ConvexError> {
        ser::SerializeSeq::serialize_element(&mut self.inner, v)
    }
    fn end(self) -> Result<Value, ConvexError> {
        Ok(Self::wrap(self.variant, ser::SerializeSeq::end(self.inner)?))
    }
}

impl ser::SerializeStructVariant for VariantSerializer<MapSerializer> {
    type Ok = Value;
    type Error = ConvexError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<(), ConvexError> {
        ser::SerializeStruct::serialize_field(&mut self.inner, key, v)
    }
    fn end(self) -> Result<Value, ConvexError> {
        Ok(Self::wrap(self.variant, ser::SerializeStruct::end(self.inner)?))
    }
}
