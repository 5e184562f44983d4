//! The database API of queries and mutations: [`Database`], the [`Query`]
//! builder, index ranges ([`IndexRange`]) and filter expressions
//! ([`Expr`], [`FilterBuilder`]).
//!
//! Every method maps onto one host call of ABI §3 with the JSON request
//! written there; the builders only assemble that JSON. The methods are
//! `async` for the familiar Convex shape (`db.get(id).await`), but host calls
//! are synchronous, so each future completes on its first poll.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::document::{Document, DocumentId};
use crate::error::{ConvexError, ErrorCode};
use crate::rt::{Context, Kind};
use crate::sys::{self, imports};
use crate::value::Value;

/// The database, as seen by a query (read-only) or a mutation (read-write,
/// one atomic transaction).
///
/// Take it as a parameter of a `#[query]` or `#[mutation]` function (any
/// name, type `Database`); it is not a client argument.
///
/// ```no_run
/// use convex_sdk::*;
///
/// #[mutation]
/// async fn rename(db: Database, id: DocumentId, name: String) -> Result<(), ConvexError> {
///     db.patch(id, json!({ "name": name })).await
/// }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Database {
    _private: (),
}

impl Context for Database {
    fn __convex_new(_kind: Kind) -> Database {
        Database { _private: () }
    }
}

/// Converts a value to the object a document body must be.
fn object(what: &str, value: &impl Serialize) -> Result<Value, ConvexError> {
    match crate::to_value(value)? {
        v @ Value::Object(_) => Ok(v),
        other => Err(ConvexError::coded(
            ErrorCode::InvalidValue,
            format!("{what}: a document must be an object, not {}", other.type_name()),
        )),
    }
}

fn request<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

impl Database {
    #[cfg(not(target_arch = "wasm32"))]
    /// A handle for native tests, backed by [`crate::testing`]'s fake host.
    pub fn for_tests() -> Database {
        Database { _private: () }
    }

    /// The document with this id, or `None`.
    pub async fn get(&self, id: DocumentId) -> Result<Option<Document>, ConvexError> {
        match sys::call(imports::__convex_db_get, &request([("id", id.into())]))? {
            Value::Null => Ok(None),
            v => Document::try_from(v).map(Some),
        }
    }

    /// The document with this id converted to `T` (e.g. a
    /// `#[derive(Deserialize)]` struct), or `None`.
    pub async fn get_as<T: DeserializeOwned>(&self, id: DocumentId) -> Result<Option<T>, ConvexError> {
        match self.get(id).await? {
            None => Ok(None),
            Some(doc) => doc.into_typed().map(Some),
        }
    }

    /// Inserts a document into `table` and returns its new id. `value` is
    /// anything that converts to an object: a [`json!`](crate::json!)
    /// object, a [`Value`], a `#[derive(Serialize)]` struct.
    pub async fn insert(&self, table: &str, value: impl Serialize) -> Result<DocumentId, ConvexError> {
        let req = request([("table", table.into()), ("value", object("insert", &value)?)]);
        match sys::call(imports::__convex_db_insert, &req)? {
            Value::String(id) => Ok(DocumentId::from(id)),
            other => Err(ConvexError::coded(
                ErrorCode::Internal,
                format!("insert returned {} instead of an id", other.type_name()),
            )),
        }
    }

    /// Shallow-merges the fields of `value` into the document: fields in
    /// `value` are set (a `None`/`null` field is set to `null`), the others
    /// are kept. Fails with [`ErrorCode::NotFound`] if there is no such
    /// document. To delete fields, use [`patch_remove`](Self::patch_remove).
    pub async fn patch(&self, id: DocumentId, value: impl Serialize) -> Result<(), ConvexError> {
        self.patch_remove(id, value, &[]).await
    }

    /// Like [`patch`](Self::patch), and also deletes the fields named in
    /// `remove` (JSON has no `undefined` to say so in `value`).
    pub async fn patch_remove(
        &self,
        id: DocumentId,
        value: impl Serialize,
        remove: &[&str],
    ) -> Result<(), ConvexError> {
        let mut req = request([("id", id.into()), ("value", object("patch", &value)?)]);
        if !remove.is_empty() {
            let names = remove.iter().map(|s| Value::from(*s)).collect();
            req.as_object_mut()
                .unwrap()
                .insert("remove".into(), Value::Array(names));
        }
        sys::call(imports::__convex_db_patch, &req).map(drop)
    }

    /// Replaces the document's fields with `value` (its `_id` and
    /// `_creationTime` stay). Fails with [`ErrorCode::NotFound`] if there is
    /// no such document.
    pub async fn replace(&self, id: DocumentId, value: impl Serialize) -> Result<(), ConvexError> {
        let req = request([("id", id.into()), ("value", object("replace", &value)?)]);
        sys::call(imports::__convex_db_replace, &req).map(drop)
    }

    /// Deletes the document. Fails with [`ErrorCode::NotFound`] if there is
    /// no such document.
    pub async fn delete(&self, id: DocumentId) -> Result<(), ConvexError> {
        sys::call(imports::__convex_db_delete, &request([("id", id.into())])).map(drop)
    }

    /// Starts a query over `table` (in `_creationTime` order unless an index
    /// is chosen).
    ///
    /// ```no_run
    /// # use convex_sdk::*;
    /// # async fn f(db: Database) -> Result<(), ConvexError> {
    /// let adults = db
    ///     .query("users")
    ///     .with_index("by_age", |r| r.gte("age", 18))
    ///     .filter(|q| q.and(q.neq(q.field("banned"), true), q.field("name").neq("")))
    ///     .order(Order::Desc)
    ///     .take(10)
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn query(&self, table: &str) -> Query {
        Query {
            table: table.to_string(),
            index: None,
            range: Vec::new(),
            filter: None,
            order: Order::Asc,
            limit: None,
        }
    }
}

/// The direction of a query, by index key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// Ascending (the default).
    #[default]
    Asc,
    /// Descending.
    Desc,
}

impl Order {
    fn as_str(self) -> &'static str {
        match self {
            Order::Asc => "asc",
            Order::Desc => "desc",
        }
    }
}

/// A query under construction; run it with [`collect`](Self::collect),
/// [`take`](Self::take), [`first`](Self::first), [`unique`](Self::unique),
/// [`count`](Self::count) or [`paginate`](Self::paginate).
#[derive(Clone, Debug)]
#[must_use = "a query does nothing until it is run (collect, take, first, unique, count, paginate)"]
pub struct Query {
    table: String,
    index: Option<String>,
    range: Vec<Value>,
    filter: Option<Expr>,
    order: Order,
    limit: Option<usize>,
}

/// One page of a paginated query ([`Query::paginate`]).
///
/// It serializes as `{"page", "isDone", "continueCursor"}`, the shape the
/// JavaScript client's `usePaginatedQuery` expects, so a query can return it
/// directly.
#[derive(Clone, Debug, PartialEq)]
pub struct PaginationResult {
    /// The documents of this page.
    pub page: Vec<Document>,
    /// Where the next page starts; pass it to the next `paginate` call.
    pub continue_cursor: String,
    /// Whether the query's range is exhausted.
    pub is_done: bool,
    /// When a page kept its end while documents were added to it and has
    /// grown past twice its size: a cursor at its middle, where the client
    /// splits it (with `page_status` `"SplitRecommended"`).
    pub split_cursor: Option<String>,
    /// `"SplitRecommended"` with `split_cursor`, else `None`.
    pub page_status: Option<String>,
}

/// The `paginationOpts` argument that Convex's `usePaginatedQuery` sends: a
/// query that takes a parameter of this type (its name does not matter; it
/// is always the `paginationOpts` field of the arguments) passes it to
/// [`Query::paginate_with`].
///
/// ```no_run
/// # use convex_sdk::*;
/// #[query]
/// async fn list(db: Database, opts: PaginationOpts) -> Result<PaginationResult, ConvexError> {
///     db.query("messages").order(Order::Desc).paginate_with(opts).await
/// }
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PaginationOpts {
    /// How many documents the page should hold.
    pub num_items: usize,
    /// The previous page's `continue_cursor`; `None` for the first page.
    pub cursor: Option<String>,
    /// Where the page ends, when the client fixes it (it splits a page).
    pub end_cursor: Option<String>,
}

impl PaginationOpts {
    /// The first page of `num_items` documents.
    pub fn first(num_items: usize) -> PaginationOpts {
        PaginationOpts {
            num_items,
            ..PaginationOpts::default()
        }
    }
}

impl<'de> serde::Deserialize<'de> for PaginationOpts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<PaginationOpts, D::Error> {
        use serde::de::Error;
        let Value::Object(o) = Value::deserialize(d)? else {
            return Err(D::Error::custom("paginationOpts must be an object"));
        };
        let text = |k: &str| match o.get(k) {
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(Value::String(_)) | Some(Value::Null) | None => Ok(None),
            Some(_) => Err(D::Error::custom(format!("paginationOpts.{k} must be a string or null"))),
        };
        let num_items = match o.get("numItems") {
            Some(Value::Float64(n)) if *n >= 0.0 && n.fract() == 0.0 => *n as usize,
            Some(Value::Int64(n)) if *n >= 0 => *n as usize,
            _ => return Err(D::Error::custom("paginationOpts.numItems must be a whole number >= 0")),
        };
        Ok(PaginationOpts {
            num_items,
            cursor: text("cursor")?,
            end_cursor: text("endCursor")?,
        })
    }
}

impl Serialize for PaginationResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("PaginationResult", 5)?;
        st.serialize_field("page", &self.page)?;
        st.serialize_field("isDone", &self.is_done)?;
        st.serialize_field("continueCursor", &self.continue_cursor)?;
        if let Some(c) = &self.split_cursor {
            st.serialize_field("splitCursor", c)?;
        }
        if let Some(p) = &self.page_status {
            st.serialize_field("pageStatus", p)?;
        }
        st.end()
    }
}

impl<'de> serde::Deserialize<'de> for PaginationResult {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<PaginationResult, D::Error> {
        let v = Value::deserialize(d)?;
        page_from(v).map_err(|e| serde::de::Error::custom(e.message()))
    }
}

fn page_from(v: Value) -> Result<PaginationResult, ConvexError> {
    let bad = |m: &str| ConvexError::coded(ErrorCode::Internal, format!("malformed query response: {m}"));
    let Value::Object(mut o) = v else {
        return Err(bad("not an object"));
    };
    let page = match o.remove("page") {
        Some(Value::Array(docs)) => docs
            .into_iter()
            .map(Document::try_from)
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(bad("no page")),
    };
    let is_done = o
        .get("isDone")
        .and_then(Value::as_bool)
        .ok_or_else(|| bad("no isDone"))?;
    let continue_cursor = match o.remove("continueCursor") {
        Some(Value::String(s)) => s,
        Some(Value::Null) | None => String::new(),
        Some(_) => return Err(bad("continueCursor is not a string")),
    };
    let text = |o: &mut BTreeMap<String, Value>, k: &str| match o.remove(k) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    Ok(PaginationResult {
        page,
        continue_cursor,
        is_done,
        split_cursor: text(&mut o, "splitCursor"),
        page_status: text(&mut o, "pageStatus"),
    })
}

impl Query {
    /// Reads through the index `name` (every table has `by_id` and
    /// `by_creation_time`; others come from the schema), restricted to the
    /// range `range` builds: zero or more [`eq`](IndexRange::eq) on the
    /// index's fields in order, then optionally a lower and/or an upper
    /// bound on the next field.
    ///
    /// ```no_run
    /// # use convex_sdk::*;
    /// # async fn f(db: Database) -> Result<(), ConvexError> {
    /// let ada = db
    ///     .query("users")
    ///     .with_index("by_email", |r| r.eq("email", "ada@example.com"))
    ///     .unique()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn with_index(mut self, name: &str, range: impl FnOnce(IndexRange) -> IndexRange) -> Query {
        self.index = Some(name.to_string());
        self.range = range(IndexRange { conditions: Vec::new() }).conditions;
        self
    }

    /// Reads through the index `name` over its whole range (for its order).
    pub fn index(self, name: &str) -> Query {
        self.with_index(name, |r| r)
    }

    /// Keeps only the documents for which the expression is true. The
    /// closure gets a [`FilterBuilder`] (`q.eq(q.field("a"), 1)`, as in
    /// TypeScript); the [`Expr`] methods chain too
    /// (`q.field("a").eq(1)`). Calling `filter` again ANDs the conditions.
    ///
    /// A filter does not narrow what is read (an index range does); it
    /// drops documents after reading them.
    pub fn filter(mut self, f: impl FnOnce(FilterBuilder) -> Expr) -> Query {
        let e = f(FilterBuilder { _private: () });
        self.filter = Some(match self.filter.take() {
            None => e,
            Some(prev) => prev.and(e),
        });
        self
    }

    /// Sets the direction (default [`Order::Asc`]).
    pub fn order(mut self, order: Order) -> Query {
        self.order = order;
        self
    }

    /// Returns at most `n` documents when run.
    pub fn limit(mut self, n: usize) -> Query {
        self.limit = Some(n);
        self
    }

    /// The request JSON of ABI §3 for this query.
    fn to_request(&self, cursor: Option<&str>, limit: Option<usize>) -> Value {
        let mut r = BTreeMap::new();
        r.insert("table".to_string(), Value::from(self.table.as_str()));
        if let Some(index) = &self.index {
            r.insert("index".to_string(), Value::from(index.as_str()));
        }
        if !self.range.is_empty() {
            r.insert("range".to_string(), Value::Array(self.range.clone()));
        }
        if let Some(f) = &self.filter {
            r.insert("filter".to_string(), f.to_value());
        }
        r.insert("order".to_string(), Value::from(self.order.as_str()));
        if let Some(n) = limit {
            r.insert("limit".to_string(), Value::Float64(n as f64));
        }
        r.insert("cursor".to_string(), cursor.map_or(Value::Null, Value::from));
        Value::Object(r)
    }

    fn page(&self, cursor: Option<&str>, limit: Option<usize>) -> Result<PaginationResult, ConvexError> {
        page_from(sys::call(imports::__convex_db_query, &self.to_request(cursor, limit))?)
    }

    /// Runs the query and returns every document (up to the
    /// [`limit`](Self::limit), if one was set).
    pub async fn collect(self) -> Result<Vec<Document>, ConvexError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let want = self.limit.map(|n| n - out.len());
            let page = self.page(cursor.as_deref(), want)?;
            out.extend(page.page);
            let stuck = cursor.as_deref() == Some(page.continue_cursor.as_str());
            if page.is_done || self.limit.is_some_and(|n| out.len() >= n) || page.continue_cursor.is_empty() || stuck {
                return Ok(out);
            }
            cursor = Some(page.continue_cursor);
        }
    }

    /// Runs the query and converts every document to `T`.
    pub async fn collect_as<T: DeserializeOwned>(self) -> Result<Vec<T>, ConvexError> {
        self.collect().await?.into_iter().map(Document::into_typed).collect()
    }

    /// Runs the query and returns its first `n` documents.
    pub async fn take(self, n: usize) -> Result<Vec<Document>, ConvexError> {
        self.limit(n).collect().await
    }

    /// Runs the query and returns its first document, if any.
    pub async fn first(self) -> Result<Option<Document>, ConvexError> {
        Ok(self.take(1).await?.into_iter().next())
    }

    /// Runs the query and returns its only document, or `None`; more than
    /// one document is an error.
    pub async fn unique(self) -> Result<Option<Document>, ConvexError> {
        let table = self.table.clone();
        let mut docs = self.take(2).await?;
        if docs.len() > 1 {
            return Err(ConvexError::new(format!(
                "unique() query on table \"{table}\" returned more than one document: {} and {}",
                docs[0].id(),
                docs[1].id()
            )));
        }
        Ok(docs.pop())
    }

    /// Counts the documents the query matches (ignoring any limit).
    pub async fn count(self) -> Result<u64, ConvexError> {
        let v = sys::call(imports::__convex_db_count, &self.to_request(None, None))?;
        v.as_f64()
            .filter(|n| *n >= 0.0)
            .map(|n| n as u64)
            .ok_or_else(|| ConvexError::coded(ErrorCode::Internal, format!("count returned {}", v.type_name())))
    }

    /// Runs the query for one page of at most `num_items` documents,
    /// starting at `cursor` (`None` for the first page; afterwards the
    /// previous page's [`continue_cursor`](PaginationResult::continue_cursor)).
    ///
    /// As in Convex, a page keeps its end while the query's result is live:
    /// when a subscribed query re-runs, the page ends where it ended before,
    /// however many documents were added or removed in it, so the next page
    /// (a query of its own) neither overlaps it nor leaves a gap.
    pub async fn paginate(self, num_items: usize, cursor: Option<String>) -> Result<PaginationResult, ConvexError> {
        self.paginate_with(PaginationOpts {
            num_items,
            cursor,
            end_cursor: None,
        })
        .await
    }

    /// [`paginate`](Self::paginate) with the options `usePaginatedQuery`
    /// sends ([`PaginationOpts`]).
    pub async fn paginate_with(self, opts: PaginationOpts) -> Result<PaginationResult, ConvexError> {
        let cursor = opts.cursor.as_deref().filter(|c| !c.is_empty());
        let mut req = self.to_request(cursor, Some(opts.num_items));
        if let Value::Object(r) = &mut req {
            r.insert("paginate".to_string(), Value::Boolean(true));
            if let Some(end) = &opts.end_cursor {
                r.insert("endCursor".to_string(), Value::from(end.as_str()));
            }
        }
        page_from(sys::call(imports::__convex_db_query, &req)?)
    }
}

/// The conditions of an index range, built in [`Query::with_index`].
#[derive(Clone, Debug)]
pub struct IndexRange {
    conditions: Vec<Value>,
}

impl IndexRange {
    fn cond(mut self, field: &str, op: &str, value: impl Into<Value>) -> IndexRange {
        self.conditions.push(request([
            ("field", field.into()),
            ("op", op.into()),
            ("value", value.into()),
        ]));
        self
    }

    /// `field == value`.
    pub fn eq(self, field: &str, value: impl Into<Value>) -> IndexRange {
        self.cond(field, "eq", value)
    }
    /// `field > value` (a lower bound).
    pub fn gt(self, field: &str, value: impl Into<Value>) -> IndexRange {
        self.cond(field, "gt", value)
    }
    /// `field >= value` (a lower bound).
    pub fn gte(self, field: &str, value: impl Into<Value>) -> IndexRange {
        self.cond(field, "gte", value)
    }
    /// `field < value` (an upper bound).
    pub fn lt(self, field: &str, value: impl Into<Value>) -> IndexRange {
        self.cond(field, "lt", value)
    }
    /// `field <= value` (an upper bound).
    pub fn lte(self, field: &str, value: impl Into<Value>) -> IndexRange {
        self.cond(field, "lte", value)
    }
}

/// A filter expression, evaluated by the host on each document.
///
/// Leaves are fields ([`FilterBuilder::field`], a dotted path such as
/// `"address.city"`; a missing field is `undefined`, less than every value)
/// and literals (anything that converts to a [`Value`]: `"x"`, `1`, `true`,
/// `5i64` …). Comparisons use Convex's total order, so `1` (a float64) and
/// `1i64` (an int64) are different values. Arithmetic works with methods or
/// with the operators `+ - * / %` and unary `-` (or [`FilterBuilder`]'s `add`,
/// `sub`, … methods), logic with `and`/`or` or `!`.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A document field (dotted path).
    Field(String),
    /// A constant.
    Literal(Value),
    /// An operator applied to arguments.
    Op(&'static str, Vec<Expr>),
}

impl<T: Into<Value>> From<T> for Expr {
    fn from(v: T) -> Expr {
        Expr::Literal(v.into())
    }
}

macro_rules! binary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:literal;)*) => {
        impl FilterBuilder {
            $( $(#[$doc])* pub fn $name(self, a: impl Into<Expr>, b: impl Into<Expr>) -> Expr {
                Expr::Op($op, vec![a.into(), b.into()])
            } )*
        }
    };
}

macro_rules! comparison_methods {
    ($($(#[$doc:meta])* $name:ident => $op:literal;)*) => {
        impl Expr {
            $( $(#[$doc])* pub fn $name(self, other: impl Into<Expr>) -> Expr {
                Expr::Op($op, vec![self, other.into()])
            } )*
        }
        binary_methods! { $( $(#[$doc])* $name => $op; )* }
    };
}

comparison_methods! {
    /// Equal.
    eq => "eq";
    /// Not equal.
    neq => "neq";
    /// Less than.
    lt => "lt";
    /// Less than or equal.
    lte => "lte";
    /// Greater than.
    gt => "gt";
    /// Greater than or equal.
    gte => "gte";
}

// On `Expr` these are the operators `+ - * / %`.
binary_methods! {
    /// Sum.
    add => "add";
    /// Difference.
    sub => "sub";
    /// Product.
    mul => "mul";
    /// Quotient.
    div => "div";
    /// Remainder.
    rem => "mod";
}

impl Expr {
    /// Both this and `other` (more are chained: `a.and(b).and(c)`).
    pub fn and(self, other: impl Into<Expr>) -> Expr {
        match self {
            Expr::Op("and", mut args) => {
                args.push(other.into());
                Expr::Op("and", args)
            }
            e => Expr::Op("and", vec![e, other.into()]),
        }
    }

    /// This or `other`.
    pub fn or(self, other: impl Into<Expr>) -> Expr {
        match self {
            Expr::Op("or", mut args) => {
                args.push(other.into());
                Expr::Op("or", args)
            }
            e => Expr::Op("or", vec![e, other.into()]),
        }
    }

    /// The expression as the ABI's JSON (`{"op", "args"}`, `{"field"}`,
    /// `{"literal"}`).
    pub fn to_value(&self) -> Value {
        match self {
            Expr::Field(path) => request([("field", path.as_str().into())]),
            Expr::Literal(v) => request([("literal", v.clone())]),
            Expr::Op(op, args) => request([
                ("op", (*op).into()),
                ("args", Value::Array(args.iter().map(Expr::to_value).collect())),
            ]),
        }
    }
}

/// Builds filter expressions in [`Query::filter`]: `|q| q.eq(q.field("a"), 1)`.
#[derive(Clone, Copy, Debug)]
pub struct FilterBuilder {
    _private: (),
}

impl FilterBuilder {
    /// The document field at `path` (dots reach into nested objects).
    pub fn field(self, path: &str) -> Expr {
        Expr::Field(path.to_string())
    }

    /// A constant.
    pub fn literal(self, value: impl Into<Value>) -> Expr {
        Expr::Literal(value.into())
    }

    /// True when every expression is.
    pub fn and(self, a: impl Into<Expr>, b: impl Into<Expr>) -> Expr {
        Expr::Op("and", vec![a.into(), b.into()])
    }

    /// True when every expression in `all` is (true for none).
    pub fn all(self, all: impl IntoIterator<Item = Expr>) -> Expr {
        Expr::Op("and", all.into_iter().collect())
    }

    /// True when either expression is.
    pub fn or(self, a: impl Into<Expr>, b: impl Into<Expr>) -> Expr {
        Expr::Op("or", vec![a.into(), b.into()])
    }

    /// True when some expression in `any` is (false for none).
    pub fn any(self, any: impl IntoIterator<Item = Expr>) -> Expr {
        Expr::Op("or", any.into_iter().collect())
    }

    /// Logical negation.
    pub fn not(self, e: impl Into<Expr>) -> Expr {
        Expr::Op("not", vec![e.into()])
    }

    /// Arithmetic negation.
    pub fn neg(self, e: impl Into<Expr>) -> Expr {
        Expr::Op("neg", vec![e.into()])
    }
}

macro_rules! operator {
    ($($trait:ident $method:ident $op:literal;)*) => {$(
        impl<T: Into<Expr>> std::ops::$trait<T> for Expr {
            type Output = Expr;
            fn $method(self, other: T) -> Expr {
                Expr::Op($op, vec![self, other.into()])
            }
        }
    )*};
}

operator! {
    Add add "add";
    Sub sub "sub";
    Mul mul "mul";
    Div div "div";
    Rem rem "mod";
}

impl std::ops::Neg for Expr {
    type Output = Expr;
    fn neg(self) -> Expr {
        Expr::Op("neg", vec![self])
    }
}

impl std::ops::Not for Expr {
    type Output = Expr;
    fn not(self) -> Expr {
        Expr::Op("not", vec![self])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_request_matches_abi_example() {
        let db = Database::for_tests();
        let q = db
            .query("users")
            .with_index("by_email", |r| r.eq("email", "ada@example.com").gte("age", 18))
            .filter(|q| q.eq(q.field("name"), "Ada"))
            .filter(|q| !q.field("banned").eq(true))
            .order(Order::Desc);
        let expected = Value::from_json(
            r#"{
              "table": "users",
              "index": "by_email",
              "range": [{"field": "email", "op": "eq", "value": "ada@example.com"},
                        {"field": "age", "op": "gte", "value": 18}],
              "filter": {"op": "and", "args": [
                  {"op": "eq", "args": [{"field": "name"}, {"literal": "Ada"}]},
                  {"op": "not", "args": [{"op": "eq", "args": [{"field": "banned"}, {"literal": true}]}]}]},
              "order": "desc",
              "limit": 10,
              "cursor": null
            }"#,
        )
        .unwrap();
        assert_eq!(q.to_request(None, Some(10)), expected);
    }

    #[test]
    fn arithmetic_operators() {
        let q = FilterBuilder { _private: () };
        let e = (q.field("a") + 1) * 2i64 % 3 - -q.field("b");
        assert_eq!(
            e.to_value().to_json(),
            Value::from_json(
                r#"{"op":"sub","args":[{"op":"mod","args":[{"op":"mul","args":[{"op":"add","args":[{"field":"a"},{"literal":1}]},{"literal":{"$integer":"AgAAAAAAAAA="}}]},{"literal":3}]},{"op":"neg","args":[{"field":"b"}]}]}"#
            )
            .unwrap()
            .to_json()
        );
    }
}
