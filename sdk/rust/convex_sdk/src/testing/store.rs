//! The fake host's in-memory database: tables of documents, the requests of
//! ABI §3, index ranges, filter expressions, order, limits and cursors; and
//! the host-written system tables `_scheduled_functions` and `_storage`
//! with the files' bytes.
//!
//! Queries scan the table, keep the documents inside the index range and
//! passing the filter, and sort them by index key (the index's fields, then
//! `_creationTime`, `_id`). Fine for tests; nothing here is fast.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use crate::error::{ConvexError, ErrorCode};
use crate::value::Value;
use crate::Document;

/// A missing field is `undefined`, which sorts before every value.
type Key = Vec<Option<Value>>;

#[derive(Clone, Default)]
pub(crate) struct Store {
    /// table → id → document (an object with `_id` and `_creationTime`).
    tables: BTreeMap<String, BTreeMap<String, BTreeMap<String, Value>>>,
    /// id → table.
    id_table: HashMap<String, String>,
    /// Declared index fields, by (table, index).
    pub(crate) indexes: HashMap<(String, String), Vec<String>>,
    /// Stored files: storage id → bytes (metadata in `_storage`).
    pub(crate) files: HashMap<String, Vec<u8>>,
    next_id: u64,
    last_creation: f64,
}

fn invalid_arg(msg: impl Into<String>) -> ConvexError {
    ConvexError::coded(ErrorCode::InvalidArgument, msg)
}

fn invalid_value(msg: impl Into<String>) -> ConvexError {
    ConvexError::coded(ErrorCode::InvalidValue, msg)
}

fn str_field<'a>(req: &'a Value, name: &str) -> Result<&'a str, ConvexError> {
    req.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_arg(format!("request needs a string \"{name}\"")))
}

fn obj_field<'a>(req: &'a Value, name: &str) -> Result<&'a BTreeMap<String, Value>, ConvexError> {
    req.get(name)
        .and_then(Value::as_object)
        .ok_or_else(|| invalid_arg(format!("request needs an object \"{name}\"")))
}

const ID_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

fn valid_table_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
        && !name.starts_with('_')
}

/// Checks the field names of a document body (ABI: no `$` anywhere, no `_`
/// at the top level except the system fields).
fn check_fields(value: &BTreeMap<String, Value>) -> Result<(), ConvexError> {
    fn nested(v: &Value) -> Result<(), ConvexError> {
        match v {
            Value::Object(o) => {
                for (k, v) in o {
                    if k.is_empty() || k.starts_with('$') {
                        return Err(invalid_value(format!(
                            "field name \"{k}\" must be non-empty and not start with '$'"
                        )));
                    }
                    nested(v)?;
                }
                Ok(())
            }
            Value::Array(a) => a.iter().try_for_each(nested),
            _ => Ok(()),
        }
    }
    for (k, v) in value {
        if k.starts_with('_') && k != "_id" && k != "_creationTime" {
            return Err(invalid_value(format!("field name \"{k}\" must not start with '_'")));
        }
        if k.is_empty() || k.starts_with('$') {
            return Err(invalid_value(format!(
                "field name \"{k}\" must be non-empty and not start with '$'"
            )));
        }
        nested(v)?;
    }
    Ok(())
}

impl Store {
    fn new_id(&mut self, table: &str) -> String {
        self.next_id += 1;
        // Mix the table name and a counter into 20 bytes, written as 32
        // base32 characters like a real id (the real format also encodes
        // the table number; here the id → table map does that job).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in table.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let mut bits: u128 = (u128::from(h) << 64) | u128::from(self.next_id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut out = String::with_capacity(32);
        for i in 0..32 {
            let extra = if i >= 25 { self.next_id >> ((i - 25) * 5) } else { 0 };
            out.push(ID_ALPHABET[((bits as u64 ^ extra) & 31) as usize] as char);
            bits >>= 5;
        }
        out
    }

    /// The table of an id, or an error for a string that is not an id.
    fn lookup(&self, id: &str) -> Result<Option<&String>, ConvexError> {
        if id.len() < 31 || id.len() > 37 || !id.bytes().all(|b| ID_ALPHABET.contains(&b)) {
            return Err(invalid_value(format!("invalid document id \"{id}\"")));
        }
        Ok(self.id_table.get(id))
    }

    /// A user document to write (system tables are the host's).
    fn doc_mut(&mut self, id: &str) -> Result<&mut BTreeMap<String, Value>, ConvexError> {
        let table = self
            .lookup(id)?
            .cloned()
            .ok_or_else(|| ConvexError::coded(ErrorCode::NotFound, format!("document \"{id}\" not found")))?;
        if table.starts_with('_') {
            return Err(ConvexError::coded(
                ErrorCode::Forbidden,
                format!("system table {table} is written only by the host"),
            ));
        }
        self.system_doc_mut(&table, id)
            .ok_or_else(|| ConvexError::coded(ErrorCode::NotFound, format!("document \"{id}\" not found")))
    }

    /// A document of `table` (any table, system tables included).
    pub(crate) fn system_doc_mut(&mut self, table: &str, id: &str) -> Option<&mut BTreeMap<String, Value>> {
        self.tables.get_mut(table).and_then(|t| t.get_mut(id))
    }

    /// The table of `id`, if it is a valid id of an existing document.
    pub(crate) fn table_of(&self, id: &str) -> Result<Option<&str>, ConvexError> {
        Ok(self.lookup(id)?.map(String::as_str))
    }

    /// Removes a document of any table (the host's own deletes).
    pub(crate) fn remove(&mut self, id: &str) {
        if let Some(t) = self.id_table.remove(id).and_then(|table| self.tables.get_mut(&table)) {
            t.remove(id);
        }
    }

    pub(crate) fn all(&self, table: &str) -> Vec<Document> {
        let mut docs: Vec<Document> = self
            .tables
            .get(table)
            .into_iter()
            .flat_map(|t| t.values())
            .map(|d| Document::try_from(Value::Object(d.clone())).unwrap())
            .collect();
        docs.sort_by(|a, b| a.creation_time().total_cmp(&b.creation_time()));
        docs
    }

    pub(crate) fn get(&self, req: &Value) -> Result<Value, ConvexError> {
        let id = str_field(req, "id")?;
        Ok(match self.lookup(id)? {
            Some(table) => Value::Object(self.tables[table][id].clone()),
            None => Value::Null,
        })
    }

    pub(crate) fn insert(&mut self, req: &Value, now: f64) -> Result<Value, ConvexError> {
        let table = str_field(req, "table")?;
        if !valid_table_name(table) {
            return Err(invalid_arg(format!("invalid table name \"{table}\"")));
        }
        let value = obj_field(req, "value")?.clone();
        check_fields(&value)?;
        if value.contains_key("_id") || value.contains_key("_creationTime") {
            return Err(invalid_value(
                "insert: system fields _id and _creationTime are set by the database",
            ));
        }
        Ok(Value::String(self.insert_doc(table, value, now)))
    }

    /// Inserts a document into any table (system tables included) and
    /// returns its id.
    pub(crate) fn insert_doc(&mut self, table: &str, mut value: BTreeMap<String, Value>, now: f64) -> String {
        let id = self.new_id(table);
        // Creation times are unique and increasing, like the real ones.
        let t = if now > self.last_creation {
            now
        } else {
            self.last_creation + 0.001
        };
        self.last_creation = t;
        value.insert("_id".into(), Value::from(id.as_str()));
        value.insert("_creationTime".into(), Value::Float64(t));
        self.tables
            .entry(table.to_string())
            .or_default()
            .insert(id.clone(), value);
        self.id_table.insert(id.clone(), table.to_string());
        id
    }

    /// Applies the system-field rule: equal to the document's own → ignored,
    /// otherwise an error.
    fn strip_system(doc: &BTreeMap<String, Value>, value: &mut BTreeMap<String, Value>) -> Result<(), ConvexError> {
        for f in ["_id", "_creationTime"] {
            if let Some(v) = value.remove(f) {
                if doc.get(f) != Some(&v) {
                    return Err(invalid_value(format!("system field {f} cannot be changed")));
                }
            }
        }
        Ok(())
    }

    pub(crate) fn patch(&mut self, req: &Value) -> Result<Value, ConvexError> {
        let id = str_field(req, "id")?.to_string();
        let mut value = obj_field(req, "value")?.clone();
        let remove: Vec<String> = match req.get("remove") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(names)) => names
                .iter()
                .map(|n| {
                    n.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| invalid_arg("remove must list field names"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid_arg("remove must be an array")),
        };
        check_fields(&value)?;
        let doc = self.doc_mut(&id)?;
        Self::strip_system(doc, &mut value)?;
        if let Some(f) = remove.iter().find(|f| f.starts_with('_')) {
            return Err(invalid_value(format!("cannot remove field {f}")));
        }
        doc.extend(value);
        for f in remove {
            doc.remove(&f);
        }
        Ok(Value::Null)
    }

    pub(crate) fn replace(&mut self, req: &Value) -> Result<Value, ConvexError> {
        let id = str_field(req, "id")?.to_string();
        let mut value = obj_field(req, "value")?.clone();
        check_fields(&value)?;
        let doc = self.doc_mut(&id)?;
        Self::strip_system(doc, &mut value)?;
        value.insert("_id".into(), doc["_id"].clone());
        value.insert("_creationTime".into(), doc["_creationTime"].clone());
        *doc = value;
        Ok(Value::Null)
    }

    pub(crate) fn delete(&mut self, req: &Value) -> Result<Value, ConvexError> {
        let id = str_field(req, "id")?.to_string();
        self.doc_mut(&id)?;
        let table = self.id_table.remove(&id).unwrap();
        self.tables.get_mut(&table).unwrap().remove(&id);
        Ok(Value::Null)
    }

    /// The documents a query request selects, in order (before limit and
    /// cursor).
    fn select(&self, req: &Value) -> Result<Vec<&BTreeMap<String, Value>>, ConvexError> {
        let table = str_field(req, "table")?;
        let index = match req.get("index") {
            None | Some(Value::Null) => "by_creation_time",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(invalid_arg("index must be a string")),
        };
        let range: &[Value] = match req.get("range") {
            None | Some(Value::Null) => &[],
            Some(Value::Array(a)) => a,
            Some(_) => return Err(invalid_arg("range must be an array")),
        };
        let descending = match req.get("order") {
            None | Some(Value::Null) => false,
            Some(v) if v.as_str() == Some("asc") => false,
            Some(v) if v.as_str() == Some("desc") => true,
            Some(_) => return Err(invalid_arg("order must be \"asc\" or \"desc\"")),
        };
        let filter = req.get("filter").filter(|f| !f.is_null());

        let mut fields: Vec<String> = match index {
            "by_creation_time" => vec![],
            "by_id" => vec!["_id".into()],
            name => match self.indexes.get(&(table.to_string(), name.to_string())) {
                Some(f) => f.clone(),
                // Undeclared: the range names the index's leading fields.
                None => {
                    let mut f = Vec::new();
                    for c in range {
                        let field = c.get("field").and_then(Value::as_str).unwrap_or_default().to_string();
                        if !f.contains(&field) {
                            f.push(field);
                        }
                    }
                    f
                }
            },
        };
        fields.push("_creationTime".into());
        fields.push("_id".into());
        let bounds = Bounds::parse(&fields, range)?;

        let mut docs: Vec<(Key, &BTreeMap<String, Value>)> = Vec::new();
        for doc in self.tables.get(table).into_iter().flat_map(|t| t.values()) {
            let key: Key = fields.iter().map(|f| lookup_path(doc, f).cloned()).collect();
            if !bounds.contains(&key) {
                continue;
            }
            if let Some(f) = filter {
                if eval(f, doc)? != Some(Value::Boolean(true)) {
                    continue;
                }
            }
            docs.push((key, doc));
        }
        docs.sort_by(|a, b| cmp_keys(&a.0, &b.0));
        if descending {
            docs.reverse();
        }
        Ok(docs.into_iter().map(|(_, d)| d).collect())
    }

    pub(crate) fn query(&self, req: &Value) -> Result<Value, ConvexError> {
        let docs = self.select(req)?;
        let start = match req.get("cursor") {
            None | Some(Value::Null) => 0,
            Some(Value::String(c)) if c.is_empty() => 0,
            Some(Value::String(c)) => c
                .parse::<usize>()
                .map_err(|_| invalid_arg(format!("invalid cursor \"{c}\"")))?,
            Some(_) => return Err(invalid_arg("cursor must be a string or null")),
        };
        let limit = match req.get("limit") {
            None | Some(Value::Null) => usize::MAX,
            Some(v) => v
                .as_f64()
                .filter(|n| *n >= 0.0)
                .map(|n| n as usize)
                .ok_or_else(|| invalid_arg("limit must be a non-negative number"))?,
        };
        let start = start.min(docs.len());
        let end = start.saturating_add(limit).min(docs.len());
        let page: Vec<Value> = docs[start..end].iter().map(|d| Value::Object((*d).clone())).collect();
        Ok([
            ("page", Value::Array(page)),
            ("isDone", Value::Boolean(end == docs.len())),
            ("continueCursor", Value::String(end.to_string())),
        ]
        .into_iter()
        .collect())
    }

    pub(crate) fn count(&self, req: &Value) -> Result<Value, ConvexError> {
        Ok(Value::Float64(self.select(req)?.len() as f64))
    }
}

/// `doc` at a dotted path, or `None` (undefined).
fn lookup_path<'a>(doc: &'a BTreeMap<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut cur = doc.get(parts.next()?)?;
    for p in parts {
        cur = cur.get(p)?;
    }
    Some(cur)
}

fn cmp_opt(a: &Option<Value>, b: &Option<Value>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => a.total_cmp(b),
    }
}

fn cmp_keys(a: &Key, b: &Key) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| cmp_opt(x, y))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// An index range: equalities on a prefix of the fields, then bounds on the
/// next one.
struct Bounds {
    eq: Vec<Value>,
    lower: Option<(Value, bool)>,
    upper: Option<(Value, bool)>,
}

impl Bounds {
    fn parse(fields: &[String], range: &[Value]) -> Result<Bounds, ConvexError> {
        let mut b = Bounds {
            eq: Vec::new(),
            lower: None,
            upper: None,
        };
        let mut bound_field: Option<&str> = None;
        for c in range {
            let field = c
                .get("field")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid_arg("range condition needs a field"))?;
            let op = c
                .get("op")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid_arg("range condition needs an op"))?;
            let value = c
                .get("value")
                .cloned()
                .ok_or_else(|| invalid_arg("range condition needs a value"))?;
            let pos = b.eq.len();
            let out_of_order = || invalid_arg(format!("index range: condition on \"{field}\" is out of index order"));
            match op {
                "eq" => {
                    if bound_field.is_some() || fields.get(pos).map(String::as_str) != Some(field) {
                        return Err(out_of_order());
                    }
                    b.eq.push(value);
                }
                "gt" | "gte" | "lt" | "lte" => {
                    if fields.get(pos).map(String::as_str) != Some(field) || bound_field.is_some_and(|f| f != field) {
                        return Err(out_of_order());
                    }
                    bound_field = Some(field);
                    let slot = if op.starts_with('g') {
                        &mut b.lower
                    } else {
                        &mut b.upper
                    };
                    if slot.is_some() {
                        return Err(invalid_arg(format!(
                            "index range: two {} bounds on \"{field}\"",
                            if op.starts_with('g') { "lower" } else { "upper" }
                        )));
                    }
                    *slot = Some((value, op.ends_with('e')));
                }
                other => {
                    return Err(invalid_arg(format!(
                        "index range: unknown op \"{other}\" on \"{field}\""
                    )))
                }
            }
        }
        Ok(b)
    }

    fn contains(&self, key: &Key) -> bool {
        for (i, want) in self.eq.iter().enumerate() {
            if key[i].as_ref().is_none_or(|v| v.total_cmp(want).is_ne()) {
                return false;
            }
        }
        let next = &key[self.eq.len()];
        if let Some((v, inclusive)) = &self.lower {
            let o = cmp_opt(next, &Some(v.clone()));
            if o.is_lt() || (o.is_eq() && !inclusive) {
                return false;
            }
        }
        if let Some((v, inclusive)) = &self.upper {
            let o = cmp_opt(next, &Some(v.clone()));
            if o.is_gt() || (o.is_eq() && !inclusive) {
                return false;
            }
        }
        true
    }
}

/// Evaluates a filter expression on `doc`; `None` is undefined.
fn eval(e: &Value, doc: &BTreeMap<String, Value>) -> Result<Option<Value>, ConvexError> {
    if let Some(path) = e.get("field") {
        let path = path.as_str().ok_or_else(|| invalid_arg("field must be a string"))?;
        return Ok(lookup_path(doc, path).cloned());
    }
    if let Some(obj) = e.as_object() {
        if let Some(v) = obj.get("literal") {
            return Ok(Some(v.clone()));
        }
    }
    let op = e
        .get("op")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_arg(format!("bad filter expression {e}")))?;
    let args = e
        .get("args")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid_arg(format!("filter \"{op}\" needs args")))?;
    let vals = args.iter().map(|a| eval(a, doc)).collect::<Result<Vec<_>, _>>()?;
    let arity = |n: usize| {
        if vals.len() == n {
            Ok(())
        } else {
            Err(invalid_arg(format!(
                "filter \"{op}\" takes {n} argument(s), got {}",
                vals.len()
            )))
        }
    };
    let truthy = |v: &Option<Value>| matches!(v, Some(Value::Boolean(true)));
    let b = |x: bool| Ok(Some(Value::Boolean(x)));
    match op {
        "eq" | "neq" | "lt" | "lte" | "gt" | "gte" => {
            arity(2)?;
            let o = cmp_opt(&vals[0], &vals[1]);
            b(match op {
                "eq" => o.is_eq(),
                "neq" => o.is_ne(),
                "lt" => o.is_lt(),
                "lte" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        "and" => b(vals.iter().all(truthy)),
        "or" => b(vals.iter().any(truthy)),
        "not" => {
            arity(1)?;
            b(!truthy(&vals[0]))
        }
        "neg" => {
            arity(1)?;
            match &vals[0] {
                Some(Value::Int64(i)) => Ok(Some(Value::Int64(i.wrapping_neg()))),
                Some(Value::Float64(f)) => Ok(Some(Value::Float64(-f))),
                other => Err(invalid_arg(format!(
                    "neg of {}",
                    other.as_ref().map_or("undefined", Value::type_name)
                ))),
            }
        }
        "add" | "sub" | "mul" | "div" | "mod" => {
            arity(2)?;
            match (&vals[0], &vals[1]) {
                (Some(Value::Int64(x)), Some(Value::Int64(y))) => {
                    let (x, y) = (*x, *y);
                    if (op == "div" || op == "mod") && y == 0 {
                        return Err(invalid_arg("int64 division by zero"));
                    }
                    Ok(Some(Value::Int64(match op {
                        "add" => x.wrapping_add(y),
                        "sub" => x.wrapping_sub(y),
                        "mul" => x.wrapping_mul(y),
                        "div" => x.wrapping_div(y),
                        _ => x.wrapping_rem(y),
                    })))
                }
                (Some(Value::Float64(x)), Some(Value::Float64(y))) => Ok(Some(Value::Float64(match op {
                    "add" => x + y,
                    "sub" => x - y,
                    "mul" => x * y,
                    "div" => x / y,
                    _ => x % y,
                }))),
                (x, y) => Err(invalid_arg(format!(
                    "filter \"{op}\" needs two int64s or two float64s, got {} and {}",
                    x.as_ref().map_or("undefined", Value::type_name),
                    y.as_ref().map_or("undefined", Value::type_name)
                ))),
            }
        }
        other => Err(invalid_arg(format!("unknown filter operator \"{other}\""))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    fn store_with(docs: &[Value]) -> (Store, Vec<String>) {
        let mut s = Store::default();
        let ids = docs
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let id = s
                    .insert(&json!({ "table": "t", "value": d.clone() }), 1000.0 + i as f64)
                    .unwrap();
                id.as_str().unwrap().to_string()
            })
            .collect();
        (s, ids)
    }

    fn names(v: &Value) -> Vec<String> {
        v["page"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["n"].as_str().unwrap_or("?").to_string())
            .collect()
    }

    #[test]
    fn index_ranges_order_and_cursors() {
        let (mut s, _) = store_with(&[
            json!({"n": "a", "g": 1, "age": 30}),
            json!({"n": "b", "g": 1, "age": 20}),
            json!({"n": "c", "g": 2, "age": 25}),
            json!({"n": "d", "g": 1}),
        ]);
        s.indexes
            .insert(("t".into(), "by_g_age".into()), vec!["g".into(), "age".into()]);
        let q = |req: Value| s.query(&req).unwrap();
        let r = q(json!({"table": "t", "index": "by_g_age", "range": [{"field": "g", "op": "eq", "value": 1}]}));
        assert_eq!(names(&r), ["d", "b", "a"], "missing field sorts first");
        let r = q(json!({"table": "t", "index": "by_g_age", "order": "desc",
            "range": [{"field": "g", "op": "eq", "value": 1}, {"field": "age", "op": "gt", "value": 20}]}));
        assert_eq!(names(&r), ["a"]);
        let r = q(json!({"table": "t", "limit": 2}));
        assert_eq!(
            (names(&r), r["isDone"].clone()),
            (vec!["a".to_string(), "b".to_string()], json!(false))
        );
        let r = q(json!({"table": "t", "limit": 2, "cursor": r["continueCursor"].clone()}));
        assert_eq!(
            (names(&r), r["isDone"].clone()),
            (vec!["c".to_string(), "d".to_string()], json!(true))
        );
        assert_eq!(s.count(&json!({"table": "t", "limit": 1})).unwrap(), json!(4));
        assert_eq!(names(&q(json!({"table": "missing"}))), Vec::<String>::new());

        let bad =
            s.query(&json!({"table": "t", "index": "by_g_age", "range": [{"field": "age", "op": "eq", "value": 1}]}));
        assert!(bad.unwrap_err().message().contains("\"age\" is out of index order"));
        let bad = s.query(&json!({"table": "t", "index": "by_g_age",
            "range": [{"field": "g", "op": "gt", "value": 1}, {"field": "age", "op": "eq", "value": 1}]}));
        assert_eq!(bad.unwrap_err().code(), ErrorCode::InvalidArgument);
    }

    #[test]
    fn filters() {
        let (s, _) = store_with(&[
            json!({"n": "a", "x": 1, "i": 5i64, "o": {"deep": true}}),
            json!({"n": "b", "x": 4, "i": 6i64}),
        ]);
        let f = |filter: Value| names(&s.query(&json!({"table": "t", "filter": filter})).unwrap());
        let field = |p: &str| json!({"field": p});
        let lit = |v: Value| json!({"literal": v});
        let op = |o: &str, args: Vec<Value>| json!({"op": o, "args": args});
        assert_eq!(
            f(op(
                "gt",
                vec![op("mul", vec![field("x"), lit(json!(2))]), lit(json!(5))]
            )),
            ["b"]
        );
        assert_eq!(
            f(op(
                "eq",
                vec![op("mod", vec![field("i"), lit(json!(2i64))]), lit(json!(0i64))]
            )),
            ["b"]
        );
        assert_eq!(f(op("eq", vec![field("o.deep"), lit(json!(true))])), ["a"]);
        assert_eq!(
            f(op("not", vec![op("eq", vec![field("o.deep"), lit(json!(true))])])),
            ["b"]
        );
        assert_eq!(
            f(op(
                "or",
                vec![
                    op("eq", vec![field("n"), lit(json!("a"))]),
                    op("eq", vec![field("n"), lit(json!("b"))])
                ]
            )),
            ["a", "b"]
        );
        assert_eq!(
            f(op("lt", vec![field("missing"), lit(Value::Null)])),
            ["a", "b"],
            "undefined < null"
        );
        assert_eq!(
            f(op("eq", vec![field("x"), lit(json!(1i64))])),
            Vec::<String>::new(),
            "int64 1 is not float64 1"
        );
        let mixed = s.query(&json!({"table": "t", "filter": op("add", vec![field("x"), field("i")])}));
        assert_eq!(mixed.unwrap_err().code(), ErrorCode::InvalidArgument);
    }

    #[test]
    fn writes() {
        let (mut s, ids) = store_with(&[json!({"n": "a", "keep": 1, "drop": 2})]);
        let id = &ids[0];
        s.patch(&json!({"id": id, "value": {"n": "b", "_id": id}, "remove": ["drop"]}))
            .unwrap();
        let doc = s.get(&json!({"id": id})).unwrap();
        assert_eq!(
            (doc["n"].clone(), doc["keep"].clone(), doc.get("drop")),
            (json!("b"), json!(1), None)
        );
        let e = s.patch(&json!({"id": id, "value": {"_creationTime": 5}})).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidValue);
        s.replace(&json!({"id": id, "value": {"only": true}})).unwrap();
        let doc = s.get(&json!({"id": id})).unwrap();
        assert_eq!(doc.as_object().unwrap().len(), 3, "_id, _creationTime, only");
        assert_eq!(doc["_creationTime"], json!(1000));
        s.delete(&json!({"id": id})).unwrap();
        assert_eq!(s.get(&json!({"id": id})).unwrap(), Value::Null);
        assert_eq!(s.delete(&json!({"id": id})).unwrap_err().code(), ErrorCode::NotFound);
        assert_eq!(
            s.get(&json!({"id": "not an id"})).unwrap_err().code(),
            ErrorCode::InvalidValue
        );
        for (table, value) in [
            ("bad-name", json!({})),
            ("t", json!({"_x": 1})),
            ("t", json!({"a": {"$b": 1}})),
            ("t", json!({"_id": "x"})),
        ] {
            assert!(
                s.insert(&json!({"table": table, "value": value}), 0.0).is_err(),
                "{table} {value}"
            );
        }
        let a = s.insert(&json!({"table": "t", "value": {}}), 0.0).unwrap();
        let b = s.insert(&json!({"table": "t", "value": {}}), 0.0).unwrap();
        assert_ne!(a, b);
        let t = |id: &Value| s.get(&json!({"id": id})).unwrap()["_creationTime"].as_f64().unwrap();
        assert!(t(&b) > t(&a), "creation times increase");
    }
}
