//! `conformance:run`, a mutation that applies a list of database operations
//! through the SDK and returns what each one gave, in a form that does not
//! depend on the store: the same list gives the same answer from the SDK's
//! fake store (native `cargo test`) and from the C store (`cvx run` on the
//! wasm build). `tests/conformance.rs` generates the lists and compares.
//!
//! An operation is an object with an `"op"`:
//!
//! | op | fields | result |
//! |---|---|---|
//! | `insert` | `table`, `value`, `extra`? | the new document's handle |
//! | `get` | `h` (a handle), `hbad` (a handle's id with a character changed) or `id` (any string) | the document or `null` |
//! | `patch` | `h`, `value`, `extra`?, `remove`?: [field] | `null` |
//! | `replace` | `h`, `value`, `extra`? | `null` |
//! | `delete` | `h` | `null` |
//! | `query` | `q`, `mode`: `collect` \| `take` \| `first` \| `unique` \| `count`, `n` (take) | documents, a document or `null`, or a count |
//! | `paginate` | `q`, `n` | every page to the end: `[{page, isDone}]` |
//! | `page` | `q`, `n`, `cursor`: a cursor handle or `null` | `{page, isDone, cursor}` (`cursor`: the handle of `continueCursor`; a failed page gets a handle of the cursor it was given) |
//!
//! `extra` is a list of `[name, value]` fields to add to `value`, for
//! field names that arguments cannot carry (`"$a"`, `"é"`, ``""``); a name
//! `"o.<name>"` goes into the object `o` (made if missing).
//!
//! A query `q` is `{table, index?, range?: [{field, op, value | h | ct}],
//! filters?: [expr], order?}`; a range bound or a filter leaf may name a
//! document's id (`h` / `{"idof": h}`) or its creation time (`ct` /
//! `{"ctof": h}`) by handle. Filter expressions are the ABI's
//! (`{"field"}`, `{"literal"}`, `{"op", "args"}`), built here with the
//! SDK's `FilterBuilder`.
//!
//! Ids and creation times differ between stores, so the result replaces
//! them: a document's `_id` becomes `"h<k>"` and `_creationTime` `"ct<k>"`,
//! where `k` is the document's handle (its insert number, counted over the
//! whole sequence); any other string equal to a known id becomes
//! `"id<k>"`, and a creation time that belongs to no handle stays a number
//! (and shows up as a difference). An error is `{"error": CODE, "message"}`.
//!
//! A sequence may span several calls (so that the C store also reads
//! committed documents, not only the transaction's own writes): the caller
//! passes back the `ids`, `cts` and `cursors` of the previous call.

use std::collections::HashMap;

use convex_sdk::*;

schema! {
    // No field rules: any documents.
    docs;
    index by_a(a);
    index by_a_b(a, b);
    index by_ox("o.x");

    others;
    index by_a(a);
}

/// The handle tables of one sequence.
struct Handles {
    ids: Vec<String>,
    cts: Vec<f64>,
    cursors: Vec<String>,
    by_id: HashMap<String, usize>,
    by_ct: HashMap<u64, usize>,
}

fn bad(msg: impl Into<String>) -> ConvexError {
    ConvexError::coded(ErrorCode::InvalidArgument, format!("conformance: {}", msg.into()))
}

/// An error as a result: `{"error": CODE, "message"}`.
fn error_value(e: &ConvexError) -> Value {
    [
        ("error", Value::from(e.code().name())),
        ("message", Value::from(e.message())),
    ]
    .into_iter()
    .collect()
}

impl Handles {
    fn new(ids: Vec<String>, cts: Vec<f64>, cursors: Vec<String>) -> Handles {
        let by_id = ids.iter().enumerate().map(|(k, id)| (id.clone(), k)).collect();
        let by_ct = cts.iter().enumerate().map(|(k, ct)| (ct.to_bits(), k)).collect();
        Handles {
            ids,
            cts,
            cursors,
            by_id,
            by_ct,
        }
    }

    fn add(&mut self, id: String, ct: f64) -> usize {
        let k = self.ids.len();
        self.by_id.insert(id.clone(), k);
        self.by_ct.insert(ct.to_bits(), k);
        self.ids.push(id);
        self.cts.push(ct);
        k
    }

    fn handle(&self, v: &Value) -> Result<usize, ConvexError> {
        v.as_f64()
            .map(|n| n as usize)
            .filter(|k| *k < self.ids.len())
            .ok_or_else(|| bad(format!("no handle {v}")))
    }

    fn id(&self, v: &Value) -> Result<DocumentId, ConvexError> {
        Ok(DocumentId::new(self.ids[self.handle(v)?].clone()))
    }

    /// The id an operation names: `h` (a handle), `hbad` (a handle's id
    /// with one character changed: no longer an id), or `id` (a string as
    /// is).
    fn target(&self, op: &Value) -> Result<DocumentId, ConvexError> {
        match (op.get("h"), op.get("hbad"), op.get("id")) {
            (Some(h), _, _) => self.id(h),
            (None, Some(h), _) => {
                let mut id: Vec<char> = self.ids[self.handle(h)?].chars().collect();
                id[10] = if id[10] == 'x' { 'y' } else { 'x' };
                Ok(DocumentId::new(id.into_iter().collect::<String>()))
            }
            (None, None, Some(Value::String(s))) => Ok(DocumentId::new(s.clone())),
            _ => Err(bad("operation needs \"h\", \"hbad\" or \"id\"")),
        }
    }

    /// A value with every known id replaced by `"id<k>"`.
    fn norm_value(&self, v: Value) -> Value {
        match v {
            Value::String(s) => match self.by_id.get(&s) {
                Some(k) => Value::String(format!("id{k}")),
                None => Value::String(s),
            },
            Value::Array(a) => Value::Array(a.into_iter().map(|v| self.norm_value(v)).collect()),
            Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, self.norm_value(v))).collect()),
            v => v,
        }
    }

    /// A document with its system fields replaced by handles.
    fn norm_doc(&self, doc: Document) -> Value {
        let Value::Object(fields) = doc.into_value() else {
            unreachable!("a document is an object")
        };
        let fields = fields
            .into_iter()
            .map(|(name, v)| {
                let v = match (name.as_str(), v) {
                    ("_id", Value::String(id)) => match self.by_id.get(&id) {
                        Some(k) => Value::String(format!("h{k}")),
                        None => Value::String(id),
                    },
                    ("_creationTime", Value::Float64(t)) => match self.by_ct.get(&t.to_bits()) {
                        Some(k) => Value::String(format!("ct{k}")),
                        None => Value::Float64(t),
                    },
                    (_, v) => self.norm_value(v),
                };
                (name, v)
            })
            .collect();
        Value::Object(fields)
    }

    fn norm_docs(&self, docs: Vec<Document>) -> Value {
        Value::Array(docs.into_iter().map(|d| self.norm_doc(d)).collect())
    }

    /// A range bound or filter literal: `value`, or the id (`h`) or
    /// creation time (`ct`) of a handle.
    fn bound_value(&self, c: &Value) -> Result<Value, ConvexError> {
        if let Some(v) = c.get("value") {
            Ok(v.clone())
        } else if let Some(h) = c.get("h") {
            Ok(Value::String(self.ids[self.handle(h)?].clone()))
        } else if let Some(h) = c.get("ct") {
            Ok(Value::Float64(self.cts[self.handle(h)?]))
        } else {
            Err(bad(format!("range condition {c} has no value")))
        }
    }

    /// The filter expression `e` (ABI JSON) built with the SDK's builder.
    fn expr(&self, b: FilterBuilder, e: &Value) -> Result<Expr, ConvexError> {
        if let Some(path) = e.get("field") {
            return Ok(b.field(path.as_str().ok_or_else(|| bad("field must be a string"))?));
        }
        if let Some(v) = e.get("literal") {
            return Ok(b.literal(v.clone()));
        }
        if let Some(h) = e.get("idof") {
            return Ok(b.literal(self.ids[self.handle(h)?].as_str()));
        }
        if let Some(h) = e.get("ctof") {
            return Ok(b.literal(self.cts[self.handle(h)?]));
        }
        let op = e["op"].as_str().ok_or_else(|| bad(format!("bad expression {e}")))?;
        let args = e["args"]
            .as_array()
            .ok_or_else(|| bad(format!("bad expression {e}")))?
            .iter()
            .map(|a| self.expr(b, a))
            .collect::<Result<Vec<Expr>, _>>()?;
        let two = |args: Vec<Expr>| -> Result<(Expr, Expr), ConvexError> {
            let [x, y]: [Expr; 2] = args
                .try_into()
                .map_err(|_| bad(format!("\"{op}\" takes 2 arguments")))?;
            Ok((x, y))
        };
        Ok(match op {
            // Both spellings of the comparisons: the builder's and Expr's.
            "eq" => two(args).map(|(x, y)| b.eq(x, y))?,
            "neq" => two(args).map(|(x, y)| x.neq(y))?,
            "lt" => two(args).map(|(x, y)| b.lt(x, y))?,
            "lte" => two(args).map(|(x, y)| x.lte(y))?,
            "gt" => two(args).map(|(x, y)| b.gt(x, y))?,
            "gte" => two(args).map(|(x, y)| x.gte(y))?,
            "add" => two(args).map(|(x, y)| x + y)?,
            "sub" => two(args).map(|(x, y)| b.sub(x, y))?,
            "mul" => two(args).map(|(x, y)| x * y)?,
            "div" => two(args).map(|(x, y)| b.div(x, y))?,
            "mod" => two(args).map(|(x, y)| x % y)?,
            "and" if args.len() == 2 => two(args).map(|(x, y)| b.and(x, y))?,
            "and" => b.all(args),
            "or" if args.len() == 2 => two(args).map(|(x, y)| x.or(y))?,
            "or" => b.any(args),
            "not" if args.len() == 1 => b.not(args.into_iter().next().unwrap()),
            "neg" if args.len() == 1 => -args.into_iter().next().unwrap(),
            _ => return Err(bad(format!("bad expression {e}"))),
        })
    }

    /// The SDK query `q` describes.
    fn query(&self, db: &Database, q: &Value) -> Result<Query, ConvexError> {
        let table = q["table"].as_str().ok_or_else(|| bad("query needs a table"))?;
        let mut query = db.query(table);
        if let Some(index) = q["index"].as_str() {
            let mut conds = Vec::new();
            for c in q["range"].as_array().into_iter().flatten() {
                let field = c["field"]
                    .as_str()
                    .ok_or_else(|| bad("range condition needs a field"))?;
                conds.push((
                    field.to_string(),
                    c["op"].as_str().unwrap_or("").to_string(),
                    self.bound_value(c)?,
                ));
            }
            query = query.with_index(index, |mut r| {
                for (field, op, v) in conds {
                    r = match op.as_str() {
                        "eq" => r.eq(&field, v),
                        "gt" => r.gt(&field, v),
                        "gte" => r.gte(&field, v),
                        "lt" => r.lt(&field, v),
                        _ => r.lte(&field, v),
                    };
                }
                r
            });
        }
        for f in q["filters"].as_array().into_iter().flatten() {
            let mut built = Err(bad("unreachable"));
            query = query.filter(|b| {
                built = self.expr(b, f);
                built.clone().unwrap_or_else(|_| b.literal(false))
            });
            built?;
        }
        if q["order"].as_str() == Some("desc") {
            query = query.order(Order::Desc);
        }
        Ok(query)
    }

    /// An operation's `value` with its `extra` fields.
    fn body(op: &Value) -> Value {
        let mut value = op["value"].clone();
        for pair in op["extra"].as_array().into_iter().flatten() {
            let (Some(name), Some(v), Some(fields)) = (
                pair[0].as_str(),
                pair.as_array().and_then(|p| p.get(1)),
                value.as_object_mut(),
            ) else {
                continue;
            };
            match name.strip_prefix("o.") {
                Some(inner) => {
                    let o = fields
                        .entry("o".to_string())
                        .or_insert_with(|| Value::Object(Default::default()));
                    if let Some(o) = o.as_object_mut() {
                        o.insert(inner.to_string(), v.clone());
                    }
                }
                None => {
                    fields.insert(name.to_string(), v.clone());
                }
            }
        }
        value
    }

    fn page_value(&self, page: PaginationResult) -> Value {
        [
            ("page", self.norm_docs(page.page)),
            ("isDone", Value::Boolean(page.is_done)),
        ]
        .into_iter()
        .collect()
    }

    async fn apply(&mut self, db: &Database, op: &Value) -> Result<Value, ConvexError> {
        let count = |v: &Value| v.as_f64().map(|n| n as usize).ok_or_else(|| bad("needs a count \"n\""));
        match op["op"].as_str().unwrap_or("") {
            "insert" => {
                let table = op["table"].as_str().ok_or_else(|| bad("insert needs a table"))?;
                let id = db.insert(table, Self::body(op)).await?;
                let doc = db
                    .get(id.clone())
                    .await?
                    .ok_or_else(|| bad("inserted document is missing"))?;
                Ok(Value::from(self.add(id.into_string(), doc.creation_time()) as f64))
            }
            "get" => {
                let doc = db.get(self.target(op)?).await?;
                Ok(doc.map_or(Value::Null, |d| self.norm_doc(d)))
            }
            "patch" => {
                let remove: Vec<&str> = op["remove"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                db.patch_remove(self.target(op)?, Self::body(op), &remove).await?;
                Ok(Value::Null)
            }
            "replace" => {
                db.replace(self.target(op)?, Self::body(op)).await?;
                Ok(Value::Null)
            }
            "delete" => {
                db.delete(self.target(op)?).await?;
                Ok(Value::Null)
            }
            "query" => {
                let q = self.query(db, &op["q"])?;
                Ok(match op["mode"].as_str().unwrap_or("collect") {
                    "take" => self.norm_docs(q.take(count(&op["n"])?).await?),
                    "first" => q.first().await?.map_or(Value::Null, |d| self.norm_doc(d)),
                    "unique" => q.unique().await?.map_or(Value::Null, |d| self.norm_doc(d)),
                    "count" => Value::Float64(q.count().await? as f64),
                    _ => self.norm_docs(q.collect().await?),
                })
            }
            "paginate" => {
                let n = count(&op["n"])?;
                let mut pages = Vec::new();
                let mut cursor = None;
                // A guard against a cursor that never ends.
                for _ in 0..200 {
                    let page = self.query(db, &op["q"])?.paginate(n, cursor).await?;
                    let done = page.is_done;
                    cursor = Some(page.continue_cursor.clone());
                    pages.push(self.page_value(page));
                    if done {
                        return Ok(Value::Array(pages));
                    }
                }
                Err(bad("paginate: still not done after 200 pages"))
            }
            "page" => {
                let cursor = match &op["cursor"] {
                    Value::Null => None,
                    c => Some(
                        c.as_f64()
                            .and_then(|k| self.cursors.get(k as usize))
                            .ok_or_else(|| bad(format!("no cursor {c}")))?
                            .clone(),
                    ),
                };
                // A failed page gets a cursor handle too (the one it was
                // given, so that continuing it fails or succeeds alike), to
                // keep the handles of both stores in step.
                let page = self
                    .query(db, &op["q"])
                    .map(|q| q.paginate(count(&op["n"]).unwrap_or(0), cursor.clone()));
                let page = match page {
                    Ok(page) => page.await,
                    Err(e) => Err(e),
                };
                let page = match page {
                    Ok(page) => page,
                    Err(e) => {
                        self.cursors.push(cursor.unwrap_or_default());
                        return Err(e);
                    }
                };
                self.cursors.push(page.continue_cursor.clone());
                let mut v = self.page_value(page);
                v.as_object_mut()
                    .unwrap()
                    .insert("cursor".into(), Value::from((self.cursors.len() - 1) as f64));
                Ok(v)
            }
            other => Err(bad(format!("unknown op \"{other}\""))),
        }
    }
}

/// Applies `ops` in order and returns `{"results": [...], "ids", "cts",
/// "cursors"}`: one result per operation, and the handle tables to pass to
/// the next call of the same sequence.
#[mutation]
pub async fn run(
    db: Database,
    ops: Vec<Value>,
    ids: Vec<String>,
    cts: Vec<f64>,
    cursors: Vec<String>,
) -> Result<Value, ConvexError> {
    let mut h = Handles::new(ids, cts, cursors);
    let mut results = Vec::with_capacity(ops.len());
    for op in &ops {
        let r = h.apply(&db, op).await.unwrap_or_else(|e| error_value(&e));
        results.push(r);
    }
    Ok([
        ("results", Value::Array(results)),
        ("ids", Value::Array(h.ids.into_iter().map(Value::String).collect())),
        ("cts", Value::Array(h.cts.into_iter().map(Value::Float64).collect())),
        (
            "cursors",
            Value::Array(h.cursors.into_iter().map(Value::String).collect()),
        ),
    ]
    .into_iter()
    .collect())
}
