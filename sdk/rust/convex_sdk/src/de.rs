//! [`Value`] → serde: a `Deserializer` that reads a Convex value into any
//! `Deserialize` type, and the `Deserialize` impl of `Value` itself.
//!
//! Numbers are read leniently, because the same field may have been written
//! by TypeScript (always a float64) or by Rust (an int64 for `i64`): an
//! integer type accepts an `Int64` or a `Float64` holding an integer in
//! range, and a float type accepts either kind.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::Deserialize;

use crate::error::{ConvexError, ErrorCode};
use crate::value::{float_to_i64, Value};

/// Converts a [`Value`] into any `Deserialize` type.
///
/// ```
/// use convex_sdk::{from_value, json};
///
/// #[derive(serde::Deserialize, Debug, PartialEq)]
/// struct User { name: String, age: u32, nickname: Option<String> }
///
/// let user: User = from_value(json!({"name": "Ada", "age": 36})).unwrap();
/// assert_eq!(user, User { name: "Ada".into(), age: 36, nickname: None });
/// ```
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ConvexError> {
    T::deserialize(value)
}

fn invalid(msg: String) -> ConvexError {
    ConvexError::coded(ErrorCode::InvalidValue, msg)
}

impl Value {
    fn unexpected(&self) -> de::Unexpected<'_> {
        match self {
            Value::Null => de::Unexpected::Unit,
            Value::Int64(i) => de::Unexpected::Signed(*i),
            Value::Float64(f) => de::Unexpected::Float(*f),
            Value::Boolean(b) => de::Unexpected::Bool(*b),
            Value::String(s) => de::Unexpected::Str(s),
            Value::Bytes(b) => de::Unexpected::Bytes(b),
            Value::Array(_) => de::Unexpected::Seq,
            Value::Object(_) => de::Unexpected::Map,
        }
    }

    fn invalid_type<E: de::Error>(&self, exp: &dyn de::Expected) -> E {
        de::Error::invalid_type(self.unexpected(), exp)
    }
}

macro_rules! deserialize_integer {
    ($($method:ident => $visit:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvexError> {
            match self {
                Value::Int64(i) => visitor.$visit(i),
                Value::Float64(f) => match float_to_i64(f) {
                    Some(i) => visitor.$visit(i),
                    None => Err(Value::Float64(f).invalid_type(&visitor)),
                },
                other => Err(other.invalid_type(&visitor)),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Value {
    type Error = ConvexError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvexError> {
        match self {
            Value::Null => visitor.visit_unit(),
            Value::Int64(i) => visitor.visit_i64(i),
            Value::Float64(f) => visitor.visit_f64(f),
            Value::Boolean(b) => visitor.visit_bool(b),
            Value::String(s) => visitor.visit_string(s),
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            Value::Array(items) => visit_array(items, visitor),
            Value::Object(fields) => visit_object(fields, visitor),
        }
    }

    deserialize_integer!(
        deserialize_i8 => visit_i64, deserialize_i16 => visit_i64, deserialize_i32 => visit_i64,
        deserialize_i64 => visit_i64, deserialize_i128 => visit_i64,
        deserialize_u8 => visit_i64, deserialize_u16 => visit_i64, deserialize_u32 => visit_i64,
        deserialize_u64 => visit_i64, deserialize_u128 => visit_i64
    );

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvexError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvexError> {
        match self {
            Value::Float64(f) => visitor.visit_f64(f),
            Value::Int64(i) => visitor.visit_f64(i as f64),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvexError> {
        match self {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ConvexError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ConvexError> {
        match self {
            Value::String(variant) => visitor.visit_enum(EnumAccess { variant, body: None }),
            Value::Object(fields) if fields.len() == 1 => {
                let (variant, body) = fields.into_iter().next().unwrap();
                visitor.visit_enum(EnumAccess {
                    variant,
                    body: Some(body),
                })
            }
            other => Err(invalid(format!(
                "invalid type: {}, expected an enum variant (a string or an object with one field)",
                other.type_name()
            ))),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvexError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvexError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvexError> {
        drop(self);
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool char str string unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

fn visit_array<'de, V: Visitor<'de>>(items: Vec<Value>, visitor: V) -> Result<V::Value, ConvexError> {
    let len = items.len();
    let mut seq = de::value::SeqDeserializer::new(items.into_iter());
    let out = visitor.visit_seq(&mut seq)?;
    seq.end()
        .map_err(|_| invalid(format!("array has {len} elements, more than expected")))?;
    Ok(out)
}

fn visit_object<'de, V: Visitor<'de>>(fields: BTreeMap<String, Value>, visitor: V) -> Result<V::Value, ConvexError> {
    let mut map = de::value::MapDeserializer::new(fields.into_iter());
    let out = visitor.visit_map(&mut map)?;
    map.end()?;
    Ok(out)
}

impl IntoDeserializer<'_, ConvexError> for Value {
    type Deserializer = Value;
    fn into_deserializer(self) -> Value {
        self
    }
}

struct EnumAccess {
    variant: String,
    body: Option<Value>,
}

impl<'de> de::EnumAccess<'de> for EnumAccess {
    type Error = ConvexError;
    type Variant = VariantAccess;

    fn variant_seed<S: de::DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, VariantAccess), ConvexError> {
        let variant = seed.deserialize(IntoDeserializer::<ConvexError>::into_deserializer(self.variant))?;
        Ok((variant, VariantAccess(self.body)))
    }
}

struct VariantAccess(Option<Value>);

impl<'de> de::VariantAccess<'de> for VariantAccess {
    type Error = ConvexError;

    fn unit_variant(self) -> Result<(), ConvexError> {
        match self.0 {
            None | Some(Value::Null) => Ok(()),
            Some(other) => Err(invalid(format!("unit variant given a {}", other.type_name()))),
        }
    }

    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, ConvexError> {
        seed.deserialize(self.0.unwrap_or(Value::Null))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, ConvexError> {
        match self.0 {
            Some(Value::Array(items)) => visit_array(items, visitor),
            other => Err(invalid(format!(
                "tuple variant expects an array, got {}",
                type_of(&other)
            ))),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ConvexError> {
        match self.0 {
            Some(Value::Object(fields)) => visit_object(fields, visitor),
            other => Err(invalid(format!(
                "struct variant expects an object, got {}",
                type_of(&other)
            ))),
        }
    }
}

fn type_of(v: &Option<Value>) -> &'static str {
    v.as_ref().map_or("nothing", Value::type_name)
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Convex value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Boolean(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int64(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float64(v as f64), Value::Int64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float64(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v))
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = BTreeMap::new();
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            fields.insert(k, v);
        }
        Ok(Value::Object(fields))
    }
}

/// Deserializes a missing argument or field: `Option<T>` becomes `None`,
/// anything else is a "missing" error naming the field.
pub(crate) struct Missing<'a>(pub(crate) &'a str);

impl<'de> de::Deserializer<'de> for Missing<'_> {
    type Error = ConvexError;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, ConvexError> {
        Err(invalid(format!("missing required field \"{}\"", self.0)))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvexError> {
        visitor.visit_none()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{json, to_value};
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum Shape {
        Dot,
        Circle(f64),
        Rect { w: f64, h: f64 },
        Pair(i64, String),
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Everything {
        b: bool,
        small: i32,
        big: i64,
        unsigned: u64,
        f: f64,
        s: String,
        c: char,
        opt: Option<String>,
        list: Vec<u8>,
        bytes: crate::Bytes,
        shapes: Vec<Shape>,
        map: BTreeMap<String, i64>,
        tuple: (String, f64),
        unit: (),
        value: Value,
    }

    #[test]
    fn struct_round_trip() {
        let e = Everything {
            b: true,
            small: -3,
            big: 1 << 60,
            unsigned: 7,
            f: 0.5,
            s: "hi".into(),
            c: 'x',
            opt: None,
            list: vec![1, 2],
            bytes: crate::Bytes(vec![0, 255]),
            shapes: vec![
                Shape::Dot,
                Shape::Circle(1.0),
                Shape::Rect { w: 1.0, h: 2.0 },
                Shape::Pair(1, "a".into()),
            ],
            map: [("k".to_string(), 5)].into_iter().collect(),
            tuple: ("t".into(), 2.0),
            unit: (),
            value: json!({"any": [1, "thing"]}),
        };
        let v = to_value(&e).unwrap();
        assert_eq!(v["small"], Value::Float64(-3.0));
        assert_eq!(v["big"], Value::Int64(1 << 60));
        assert_eq!(v["unsigned"], Value::Int64(7));
        assert_eq!(v["bytes"], Value::Bytes(vec![0, 255]));
        assert_eq!(v["list"], Value::Array(vec![Value::Float64(1.0), Value::Float64(2.0)]));
        assert_eq!(v["opt"], Value::Null);
        assert_eq!(v["shapes"][0], Value::from("Dot"));
        assert_eq!(v["shapes"][1]["Circle"], Value::Float64(1.0));
        // Through JSON text and back.
        let text = v.to_json();
        let back: Everything = from_value(Value::from_json(&text).unwrap()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn lenient_numbers() {
        assert_eq!(from_value::<i64>(Value::Float64(3.0)).unwrap(), 3);
        assert_eq!(from_value::<u8>(Value::Int64(255)).unwrap(), 255);
        assert_eq!(from_value::<f64>(Value::Int64(2)).unwrap(), 2.0);
        assert!(from_value::<i32>(Value::Float64(1.5)).is_err());
        assert!(from_value::<u8>(Value::Int64(256)).is_err());
        assert!(from_value::<u32>(Value::Int64(-1)).is_err());
        assert!(to_value(&u64::MAX).is_err());
    }

    #[test]
    fn errors_name_the_problem() {
        let e = from_value::<String>(Value::Float64(1.0)).unwrap_err();
        assert!(e.message().contains("expected a string"), "{e}");
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Needs {
            name: String,
        }
        let e = from_value::<Needs>(json!({})).unwrap_err();
        assert!(e.message().contains("missing field `name`"), "{e}");
        let e = from_value::<(f64,)>(json!([1, 2])).unwrap_err();
        assert!(e.message().contains("array"), "{e}");
    }

    #[test]
    fn missing() {
        assert_eq!(Option::<String>::deserialize(Missing("x")).unwrap(), None);
        let e = String::deserialize(Missing("x")).unwrap_err();
        assert_eq!(e.message(), "missing required field \"x\"");
    }
}
