//! The fake host's in-memory database: tables of documents, the requests of
//! ABI §3, index ranges, filter expressions, order, limits and cursors; and
//! the host-written system tables `_scheduled_functions` and `_storage`
//! with the files' bytes.
//!
//! Queries scan the table, keep the documents inside the index range, sort
//! them by index key (the index's fields, then `_creationTime`, `_id`) and
//! then, like the real store, read them in order from the cursor on,
//! evaluating the filter on each one read until the page is full. A cursor
//! is the key of the last document of its page, so a page continues after
//! it whatever was written in between. Fine for tests; nothing here is
//! fast.
//!
//! The C store is the reference: `tests/conformance` runs the same
//! operations against both and compares the results.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};

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
    /// The tables of the schema, once one is declared
    /// ([`use_schema`](super::use_schema)): from then on an index that is
    /// not declared is an error, as on the server.
    pub(crate) schema_tables: Option<HashSet<String>>,
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

/// A table name (letters, digits and `_`, not starting with a digit, at
/// most 64 bytes; names starting with `_` are the system's).
fn valid_table_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

/// The longest field name.
const MAX_FIELD_NAME: usize = 1024;

/// Checks the field names of a value (ABI, docs/protocol.md §1: non-empty,
/// at most 1024 bytes of ASCII 32..126, not starting with `$`).
fn check_names(v: &Value) -> Result<(), ConvexError> {
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                if k.is_empty()
                    || k.len() > MAX_FIELD_NAME
                    || k.starts_with('$')
                    || k.bytes().any(|b| !(32..=126).contains(&b))
                {
                    return Err(invalid_value(format!(
                        "field name \"{k}\" must be 1 to {MAX_FIELD_NAME} characters of ASCII 32..126, not starting with '$'"
                    )));
                }
                check_names(v)?;
            }
            Ok(())
        }
        Value::Array(a) => a.iter().try_for_each(check_names),
        _ => Ok(()),
    }
}

/// Checks a document body to insert: no `_` at the top level (the system
/// fields included), then the field names.
fn check_insert(value: &BTreeMap<String, Value>) -> Result<(), ConvexError> {
    if let Some(k) = value.keys().find(|k| k.starts_with('_')) {
        return Err(invalid_value(format!(
            "field name \"{k}\" must not start with '_' (reserved for system fields)"
        )));
    }
    check_names(&Value::Object(value.clone()))
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
        let value = obj_field(req, "value")?.clone();
        // As the server: the document first, then the table.
        check_insert(&value)?;
        if !valid_table_name(table) {
            return Err(invalid_arg(format!("invalid table name \"{table}\"")));
        }
        if table.starts_with('_') {
            return Err(ConvexError::coded(
                ErrorCode::Forbidden,
                format!("table \"{table}\" is a system table; functions cannot write to it"),
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
    /// otherwise an error; any other name starting with `_` is an error.
    fn strip_system(doc: &BTreeMap<String, Value>, value: &mut BTreeMap<String, Value>) -> Result<(), ConvexError> {
        for f in ["_id", "_creationTime"] {
            if let Some(v) = value.remove(f) {
                if doc.get(f).is_none_or(|own| cmp_values(own, &v).is_ne()) {
                    return Err(invalid_value(format!("system field {f} cannot be changed")));
                }
            }
        }
        if let Some(k) = value.keys().find(|k| k.starts_with('_')) {
            return Err(invalid_value(format!(
                "field \"{k}\": field names starting with '_' are reserved for system fields"
            )));
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
        // As the server: the document, then the system fields, then the
        // result.
        let doc = self.doc_mut(&id)?;
        Self::strip_system(doc, &mut value)?;
        if let Some(f) = remove.iter().find(|f| *f == "_id" || *f == "_creationTime") {
            return Err(invalid_value(format!("system field {f} cannot be removed")));
        }
        let mut next = doc.clone();
        next.extend(value);
        for f in remove {
            next.remove(&f);
        }
        check_names(&Value::Object(next.clone()))?;
        *doc = next;
        Ok(Value::Null)
    }

    pub(crate) fn replace(&mut self, req: &Value) -> Result<Value, ConvexError> {
        let id = str_field(req, "id")?.to_string();
        let mut value = obj_field(req, "value")?.clone();
        let doc = self.doc_mut(&id)?;
        Self::strip_system(doc, &mut value)?;
        check_names(&Value::Object(value.clone()))?;
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

    /// The documents of a query request's index range, in scan order (the
    /// filter, cursor and limit are applied as they are read), or `None`
    /// for a table that does not exist.
    fn scan<'a>(&'a self, req: &'a Value) -> Result<Option<Scan<'a>>, ConvexError> {
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

        // A table that does not exist reads as empty, whatever the index
        // and range (as on the server, where a later insert creates it).
        let declared = self.schema_tables.as_ref().is_some_and(|t| t.contains(table));
        let Some(docs) = self.tables.get(table) else {
            if !valid_table_name(table) {
                return Err(invalid_arg(format!("invalid table name \"{table}\"")));
            }
            if !declared {
                return Ok(None);
            }
            return self.scan_docs(table, index, range, descending, filter, &EMPTY);
        };
        self.scan_docs(table, index, range, descending, filter, docs)
    }

    fn scan_docs<'a>(
        &self,
        table: &str,
        index: &str,
        range: &[Value],
        descending: bool,
        filter: Option<&'a Value>,
        docs: &'a BTreeMap<String, BTreeMap<String, Value>>,
    ) -> Result<Option<Scan<'a>>, ConvexError> {
        let fields: Vec<String> = match index {
            "by_creation_time" => vec!["_creationTime".into(), "_id".into()],
            // The id alone: ids are unique.
            "by_id" => vec!["_id".into()],
            name => match self.indexes.get(&(table.to_string(), name.to_string())) {
                Some(f) => f
                    .iter()
                    .cloned()
                    .chain(["_creationTime".into(), "_id".into()])
                    .collect(),
                None if self.schema_tables.is_some() => {
                    let mut names: Vec<&str> = self
                        .indexes
                        .keys()
                        .filter(|(t, _)| t == table)
                        .map(|(_, n)| n.as_str())
                        .chain(["by_id", "by_creation_time"])
                        .collect();
                    names.sort_unstable();
                    return Err(invalid_arg(format!(
                        "table \"{table}\" has no index \"{name}\" (it has: {})",
                        names.join(", ")
                    )));
                }
                // No schema: the range names the index's leading fields.
                None => {
                    let mut f = Vec::new();
                    for c in range {
                        let field = c.get("field").and_then(Value::as_str).unwrap_or_default().to_string();
                        if !f.contains(&field) {
                            f.push(field);
                        }
                    }
                    f.extend(["_creationTime".into(), "_id".into()]);
                    f
                }
            },
        };
        let bounds = Bounds::parse(&fields, range)?;

        let mut rows: Vec<(Key, &BTreeMap<String, Value>)> = docs
            .values()
            .map(|doc| {
                (
                    fields.iter().map(|f| lookup_path(doc, f).cloned()).collect::<Key>(),
                    doc,
                )
            })
            .filter(|(key, _)| bounds.contains(key))
            .collect();
        rows.sort_by(|a, b| cmp_keys(&a.0, &b.0));
        if descending {
            rows.reverse();
        }
        Ok(Some(Scan {
            rows,
            filter,
            descending,
            index: Value::Array(vec![Value::from(table), Value::from(index)]),
            width: fields.len(),
        }))
    }

    pub(crate) fn query(&self, req: &Value) -> Result<Value, ConvexError> {
        let limit = match req.get("limit") {
            None | Some(Value::Null) => usize::MAX,
            Some(v) => v
                .as_f64()
                .filter(|n| *n >= 0.0 && n.fract() == 0.0)
                .map(|n| n as usize)
                .ok_or_else(|| invalid_arg("limit must be a non-negative integer"))?,
        };
        let cursor = match req.get("cursor") {
            None | Some(Value::Null) => None,
            Some(Value::String(c)) if c.is_empty() => None,
            Some(Value::String(c)) => Some(c.as_str()),
            Some(_) => return Err(invalid_arg("cursor must be a string or null")),
        };
        let page = |docs: Vec<Value>, is_done: bool, cursor: String| -> Value {
            [
                ("page", Value::Array(docs)),
                ("isDone", Value::Boolean(is_done)),
                ("continueCursor", Value::String(cursor)),
            ]
            .into_iter()
            .collect()
        };
        let Some(scan) = self.scan(req)? else {
            return Ok(page(Vec::new(), true, String::new()));
        };
        let after: Option<Key> = match cursor {
            None => None,
            Some(c) => match scan.read_cursor(c)? {
                // The previous page was the last.
                None => return Ok(page(Vec::new(), true, scan.end_cursor())),
                Some(key) => Some(key),
            },
        };
        // No room on the page: nothing is read, and the query goes on
        // where it was.
        if limit == 0 {
            return Ok(page(Vec::new(), false, cursor.unwrap_or_default().to_string()));
        }
        let mut docs = Vec::new();
        for (key, doc) in &scan.rows {
            if let Some(after) = &after {
                let o = cmp_keys(key, after);
                if (!scan.descending && o.is_le()) || (scan.descending && o.is_ge()) {
                    continue;
                }
            }
            if !matches(scan.filter, doc)? {
                continue;
            }
            docs.push(Value::Object((*doc).clone()));
            // A full page is not done, even when nothing follows (the next
            // page, empty, is).
            if docs.len() >= limit {
                let cursor = scan.cursor_after(key);
                return Ok(page(docs, false, cursor));
            }
        }
        Ok(page(docs, true, scan.end_cursor()))
    }

    pub(crate) fn count(&self, req: &Value) -> Result<Value, ConvexError> {
        let mut n = 0;
        if let Some(scan) = self.scan(req)? {
            for (_, doc) in scan.rows {
                if matches(scan.filter, doc)? {
                    n += 1;
                }
            }
        }
        Ok(Value::Float64(n as f64))
    }
}

static EMPTY: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();

/// A query's index range in scan order, with its keys, before the filter.
struct Scan<'a> {
    rows: Vec<(Key, &'a BTreeMap<String, Value>)>,
    filter: Option<&'a Value>,
    descending: bool,
    /// `[table, index]`, which a cursor names.
    index: Value,
    /// Fields per key.
    width: usize,
}

impl Scan<'_> {
    /// The cursor after `key`: JSON `[table, index, key]`, each part of the
    /// key `[]` for a missing field or `[value]`.
    fn cursor_after(&self, key: &Key) -> String {
        let parts = key.iter().map(|c| Value::Array(c.iter().cloned().collect())).collect();
        Value::Array(vec![self.index[0].clone(), self.index[1].clone(), Value::Array(parts)]).to_json()
    }

    /// The cursor of the page that reached the end of the range:
    /// `[table, index]`.
    fn end_cursor(&self) -> String {
        self.index.to_json()
    }

    /// The key a cursor continues after, or `None` for an end cursor. A
    /// cursor of another table or index is an error, as on the server.
    fn read_cursor(&self, cursor: &str) -> Result<Option<Key>, ConvexError> {
        let bad = || invalid_arg(format!("invalid pagination cursor \"{cursor}\""));
        let Ok(Value::Array(mut parts)) = Value::from_json(cursor) else {
            return Err(bad());
        };
        let key = match parts.len() {
            2 => None,
            3 => parts.pop(),
            _ => return Err(bad()),
        };
        if parts[..] != self.index.as_array().unwrap()[..] {
            return Err(invalid_arg(
                "pagination cursor belongs to a different query (another index or table)",
            ));
        }
        let key = match key {
            None => None,
            Some(Value::Array(key)) if key.len() == self.width => Some(key),
            Some(_) => return Err(bad()),
        };
        key.map(|key| {
            key.into_iter()
                .map(|p| match p {
                    Value::Array(mut a) if a.len() <= 1 => Ok(a.pop()),
                    _ => Err(bad()),
                })
                .collect()
        })
        .transpose()
    }
}

/// Whether `doc` passes the filter (an error of the filter is the query's).
fn matches(filter: Option<&Value>, doc: &BTreeMap<String, Value>) -> Result<bool, ConvexError> {
    match filter {
        None => Ok(true),
        Some(f) => Ok(truthy(&eval(f, doc, 0)?)),
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

/// Convex's total order, as the server's store compares
/// (`src/value/order.c`): [`Value::total_cmp`].
fn cmp_values(a: &Value, b: &Value) -> Ordering {
    a.total_cmp(b)
}

fn cmp_opt(a: &Option<Value>, b: &Option<Value>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => cmp_values(a, b),
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
    eq: Vec<Option<Value>>,
    lower: Option<(Option<Value>, bool)>,
    upper: Option<(Option<Value>, bool)>,
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
            // `{"undefined": true}` in place of a value: the field is missing.
            let value = match (c.get("value"), c.get("undefined")) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(_)) => None,
                (None, None) => return Err(invalid_arg("range condition needs a value")),
            };
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
        if self.eq.iter().zip(key).any(|(want, have)| cmp_opt(have, want).is_ne()) {
            return false;
        }
        // Equalities on every field leave nothing to bound.
        let Some(next) = key.get(self.eq.len()) else {
            return true;
        };
        if let Some((v, inclusive)) = &self.lower {
            let o = cmp_opt(next, v);
            if o.is_lt() || (o.is_eq() && !inclusive) {
                return false;
            }
        }
        if let Some((v, inclusive)) = &self.upper {
            let o = cmp_opt(next, v);
            if o.is_gt() || (o.is_eq() && !inclusive) {
                return false;
            }
        }
        true
    }
}

fn truthy(v: &Option<Value>) -> bool {
    matches!(v, Some(Value::Boolean(true)))
}

fn type_name(v: &Option<Value>) -> &'static str {
    v.as_ref().map_or("undefined", Value::type_name)
}

/// Evaluates a filter expression on `doc`; `None` is undefined. As the
/// server does: `and` / `or` stop at the first argument that decides them,
/// other operators check their name and arity before their arguments, and
/// int64 arithmetic that overflows is an error.
fn eval(e: &Value, doc: &BTreeMap<String, Value>, depth: usize) -> Result<Option<Value>, ConvexError> {
    if depth > 64 {
        return Err(invalid_arg("filter expression nests deeper than 64"));
    }
    let Some(obj) = e.as_object() else {
        return Err(invalid_arg("filter expression must be an object"));
    };
    if let Some(path) = obj.get("field") {
        let path = path.as_str().ok_or_else(|| invalid_arg("field must be a string"))?;
        return Ok(lookup_path(doc, path).cloned());
    }
    if let Some(v) = obj.get("literal") {
        return Ok(Some(v.clone()));
    }
    if obj.contains_key("undefined") {
        return Ok(None);
    }
    let (Some(Value::String(op)), Some(Value::Array(args))) = (obj.get("op"), obj.get("args")) else {
        return Err(invalid_arg(format!("bad filter expression {e}")));
    };
    let op = op.as_str();
    let b = |x: bool| Ok(Some(Value::Boolean(x)));
    if op == "and" || op == "or" {
        let decides = op == "or";
        for a in args {
            if truthy(&eval(a, doc, depth + 1)?) == decides {
                return b(decides);
            }
        }
        return b(!decides);
    }
    let arity = match op {
        "not" | "neg" => 1,
        "eq" | "neq" | "lt" | "lte" | "gt" | "gte" | "add" | "sub" | "mul" | "div" | "mod" => 2,
        other => return Err(invalid_arg(format!("unknown filter operator \"{other}\""))),
    };
    if args.len() != arity {
        return Err(invalid_arg(format!(
            "filter \"{op}\" takes {arity} argument(s), got {}",
            args.len()
        )));
    }
    let vals = args
        .iter()
        .map(|a| eval(a, doc, depth + 1))
        .collect::<Result<Vec<_>, _>>()?;
    match op {
        "not" => b(!truthy(&vals[0])),
        "neg" => match &vals[0] {
            Some(Value::Int64(i)) if *i != i64::MIN => Ok(Some(Value::Int64(-i))),
            Some(Value::Float64(f)) => Ok(Some(Value::Float64(-f))),
            other => Err(invalid_arg(format!("filter \"neg\" of {}", type_name(other)))),
        },
        "add" | "sub" | "mul" | "div" | "mod" => match (&vals[0], &vals[1]) {
            (Some(Value::Int64(x)), Some(Value::Int64(y))) => {
                if (op == "div" || op == "mod") && *y == 0 {
                    return Err(invalid_arg(format!("filter \"{op}\": int64 division by zero")));
                }
                let r = match op {
                    "add" => x.checked_add(*y),
                    "sub" => x.checked_sub(*y),
                    "mul" => x.checked_mul(*y),
                    "div" => x.checked_div(*y),
                    _ => x.checked_rem(*y),
                };
                r.map(|r| Some(Value::Int64(r)))
                    .ok_or_else(|| invalid_arg(format!("filter \"{op}\": int64 overflow")))
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
                type_name(x),
                type_name(y)
            ))),
        },
        _ => {
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
            (vec!["c".to_string(), "d".to_string()], json!(false)),
            "a full page is not done, as on the server"
        );
        let r = q(json!({"table": "t", "limit": 2, "cursor": r["continueCursor"].clone()}));
        assert_eq!((names(&r), r["isDone"].clone()), (Vec::<String>::new(), json!(true)));
        let end = q(json!({"table": "t", "cursor": r["continueCursor"].clone()}));
        assert_eq!(
            (names(&end), end["isDone"].clone()),
            (Vec::<String>::new(), json!(true))
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
    fn pages_follow_their_cursor_and_filters_stop_at_the_limit() {
        let (mut s, ids) = store_with(&[
            json!({"n": "a", "x": 1}),
            json!({"n": "b", "x": "text"}),
            json!({"n": "c", "x": 3}),
        ]);
        let r = s.query(&json!({"table": "t", "limit": 1})).unwrap();
        assert_eq!(names(&r), ["a"]);
        // A cursor is a position, not an offset: deleting what came before
        // it does not skip a document.
        s.delete(&json!({"id": ids[0]})).unwrap();
        let r = s
            .query(&json!({"table": "t", "limit": 1, "cursor": r["continueCursor"].clone()}))
            .unwrap();
        assert_eq!(names(&r), ["b"]);
        let other = s.query(&json!({"table": "t", "index": "by_id", "cursor": r["continueCursor"].clone()}));
        assert!(other.unwrap_err().message().contains("different query"));

        // `x * 2` fails on "text": only when the query reads that document.
        let f = json!({"op": "gt", "args": [{"op": "mul", "args": [{"field": "x"}, {"literal": 2}]}, {"literal": 0}]});
        let r = s
            .query(&json!({"table": "t", "filter": f, "order": "desc", "limit": 1}))
            .unwrap();
        assert_eq!(names(&r), ["c"]);
        assert!(s.query(&json!({"table": "t", "filter": f})).is_err());
        // `and` stops at its first false argument, `or` at its first true one.
        let guarded = |op: &str, first: bool| json!({"op": op, "args": [{"literal": first}, f]});
        assert_eq!(
            s.count(&json!({"table": "t", "filter": guarded("and", false)}))
                .unwrap(),
            json!(0)
        );
        assert_eq!(
            s.count(&json!({"table": "t", "filter": guarded("or", true)})).unwrap(),
            json!(2)
        );
        // int64 arithmetic does not wrap.
        let (s, _) = store_with(&[json!({"i": i64::MAX})]);
        let f = json!({"op": "gt", "args": [{"op": "add", "args": [{"field": "i"}, {"literal": 1i64}]}, {"literal": 0i64}]});
        assert_eq!(
            s.count(&json!({"table": "t", "filter": f})).unwrap_err().code(),
            ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn a_schema_declares_the_indexes() {
        let (mut s, _) = store_with(&[json!({"n": "a", "g": 1})]);
        s.indexes.insert(("t".into(), "by_g".into()), vec!["g".into()]);
        s.schema_tables = Some(["t".to_string(), "empty".to_string()].into_iter().collect());
        let q = |req: Value| s.query(&req);
        assert_eq!(names(&q(json!({"table": "t", "index": "by_g"})).unwrap()), ["a"]);
        assert!(q(json!({"table": "t", "index": "by_h"}))
            .unwrap_err()
            .message()
            .contains("has no index"));
        assert!(q(json!({"table": "empty", "index": "by_h"})).is_err());
        // A table that does not exist is empty, whatever the index.
        assert_eq!(
            names(&q(json!({"table": "nothere", "index": "by_h"})).unwrap()),
            Vec::<String>::new()
        );
        assert_eq!(
            q(json!({"table": "bad-name"})).unwrap_err().code(),
            ErrorCode::InvalidArgument
        );
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
            ("_system", json!({})),
            ("t", json!({"_x": 1})),
            ("t", json!({"a": {"$b": 1}})),
            ("t", json!({"a": {"é": 1}})),
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
