//! Random operation sequences: the values they use and their generator.

use super::*;

// ---- a small PRNG (splitmix64) ---------------------------------------------

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// 0..n
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// true with probability `p` percent.
    pub fn chance(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }

    pub fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

// ---- values ----------------------------------------------------------------

pub fn obj<const N: usize>(fields: [(&str, Value); N]) -> Value {
    fields.into_iter().collect()
}

pub fn arr(items: Vec<Value>) -> Value {
    Value::Array(items)
}

pub fn s(text: &str) -> Value {
    Value::from(text)
}

pub fn f(x: f64) -> Value {
    Value::Float64(x)
}

pub fn i(x: i64) -> Value {
    Value::Int64(x)
}

/// The values documents, ranges and filters draw from: few enough that
/// equal values are common, of every type, with the edge cases of Convex's
/// order (int64 vs float64 of the same number, -0 vs 0, infinities, NaN,
/// extremes, strings by UTF-8 bytes, bytes, arrays and objects compared
/// element by element).
pub fn pool() -> Vec<Value> {
    vec![
        Value::Null,
        i(0),
        i(1),
        i(-1),
        i(2),
        i(i64::MAX),
        i(i64::MIN),
        i(1 << 53),
        f(0.0),
        f(-0.0),
        f(1.0),
        f(-1.0),
        f(2.0),
        f(0.5),
        f(1.5),
        f(1e300),
        f(-1e300),
        f(f64::MAX),
        f(5e-324),
        f(f64::INFINITY),
        f(f64::NEG_INFINITY),
        f(f64::NAN),
        f(-f64::NAN),
        f(9_007_199_254_740_992.0),
        Value::Boolean(false),
        Value::Boolean(true),
        s(""),
        s("a"),
        s("A"),
        s("ab"),
        s("b"),
        s("a b"),
        s("10"),
        s("9"),
        s("é"),
        s("ß"),
        s("日本"),
        s("🦀"),
        s("\u{ffff}"),
        Value::Bytes(vec![]),
        Value::Bytes(vec![1]),
        Value::Bytes(vec![1, 2]),
        Value::Bytes(vec![255]),
        arr(vec![]),
        arr(vec![f(1.0)]),
        arr(vec![f(1.0), f(2.0)]),
        arr(vec![i(1)]),
        arr(vec![s("a")]),
        arr(vec![Value::Null]),
        arr(vec![arr(vec![])]),
        obj([]),
        obj([("x", f(1.0))]),
        obj([("x", s("a"))]),
        obj([("y", f(1.0))]),
        obj([("x", f(1.0)), ("y", f(2.0))]),
        obj([("x", obj([("z", Value::Boolean(true))]))]),
    ]
}

/// Whether `CONFORMANCE_KNOWN` (`all`, or a comma-separated list of
/// `names`, `limit0`, `ids`) asks for the cases of a known difference
/// between the stores, which the test leaves out otherwise (README.md):
/// bugs of the C store, and `ids`, where the fake store is knowingly
/// lenient.
pub fn known(name: &str) -> bool {
    std::env::var("CONFORMANCE_KNOWN").is_ok_and(|v| v.split(',').any(|b| b == name || b == "all"))
}

/// Strings and bytes with a NUL (0x00) after a prefix that is another
/// value of the pool: the C store's index ranges once took them for that
/// value.
pub fn nul_values() -> Vec<Value> {
    vec![
        s("a\u{0}"),
        s("a\u{0}b"),
        s("\u{0}"),
        Value::Bytes(vec![0]),
        Value::Bytes(vec![1, 0, 2]),
    ]
}

// ---- operation sequences ---------------------------------------------------

pub const TABLES: [&str; 2] = ["docs", "others"];

pub struct Gen {
    pub rng: Rng,
    pub pool: Vec<Value>,
    /// Handles inserted so far, with their table and whether deleted.
    pub docs: Vec<(&'static str, bool)>,
    /// Cursor handles of `page` operations, with the query and page size
    /// they belong to.
    pub cursors: Vec<(Value, usize)>,
    /// Whether to generate the cases of known differences too (see
    /// [`known`]): field names the C store refuses as a malformed request,
    /// ids with a character changed.
    pub bad_names: bool,
    pub bad_ids: bool,
}

impl Gen {
    pub fn new(seed: u64) -> Gen {
        let mut pool = pool();
        pool.extend(nul_values());
        Gen {
            rng: Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed),
            pool,
            docs: Vec::new(),
            cursors: Vec::new(),
            bad_names: known("names"),
            bad_ids: known("ids"),
        }
    }

    /// A value of the pool; often one of a few, so that documents, ranges
    /// and filters meet.
    pub fn value(&mut self) -> Value {
        if self.rng.chance(35) {
            return self.rng.pick(&[
                Value::Null,
                i(1),
                f(1.0),
                f(0.0),
                f(-0.0),
                s("a"),
                s("b"),
                Value::Boolean(true),
            ]);
        }
        self.rng.pick(&self.pool)
    }

    /// A small number, as Convex numbers go (float64 or int64).
    pub fn number(&mut self) -> Value {
        match self.rng.below(6) {
            0 => i(self.rng.below(4) as i64 - 1),
            1 => i(self.rng.pick(&[i64::MAX, i64::MIN, 1 << 62])),
            2 => f(self.rng.pick(&[0.0, -0.0, 1.0, 2.0, 0.5, -1.5, 1e300, f64::INFINITY])),
            _ => self.value(),
        }
    }

    /// A document body: fields a, b, c from the pool, a nested `o` (an
    /// object with x / y, or not an object at all), sometimes an array.
    pub fn body(&mut self) -> Value {
        let mut fields = Vec::new();
        for name in ["a", "b", "c"] {
            if self.rng.chance(70) {
                fields.push((name.to_string(), self.value()));
            }
        }
        if self.rng.chance(60) {
            let o = if self.rng.chance(75) {
                let mut o = Vec::new();
                for name in ["x", "y"] {
                    if self.rng.chance(70) {
                        o.push((name.to_string(), self.value()));
                    }
                }
                Value::Object(o.into_iter().collect())
            } else {
                self.value()
            };
            fields.push(("o".to_string(), o));
        }
        if self.rng.chance(15) {
            let n = self.rng.below(3);
            let items = (0..n).map(|_| self.value()).collect();
            fields.push(("tags".to_string(), Value::Array(items)));
        }
        Value::Object(fields.into_iter().collect())
    }

    /// Sometimes a field name the stores must refuse, as `extra` (see
    /// src/lib.rs): `[[name, value]]`, or nothing.
    pub fn extra(&mut self) -> Option<Value> {
        if !self.rng.chance(5) {
            return None;
        }
        let mut names = vec!["_a", "_id", "_creationTime", "a.b", "a b", "~"];
        if self.bad_names {
            // Names the C store's request parser refuses as a malformed
            // request (INVALID_ARGUMENT, not INVALID_VALUE): README.md.
            names.extend(["$a", "", "é", "a\u{1}"]);
        }
        let name = self.rng.pick(&names);
        let v = if name == "_creationTime" { f(5.0) } else { f(1.0) };
        let path = if name.starts_with('_') || self.rng.chance(50) {
            name.to_string()
        } else {
            format!("o.{name}")
        };
        Some(arr(vec![arr(vec![s(&path), v])]))
    }

    pub fn live(&self) -> Vec<usize> {
        (0..self.docs.len()).filter(|k| !self.docs[*k].1).collect()
    }

    /// The target of get/patch/replace/delete: mostly a live document,
    /// sometimes a deleted one or a string that is no id.
    pub fn target(&mut self, op: &str) -> Vec<(String, Value)> {
        let live = self.live();
        let dead: Vec<usize> = (0..self.docs.len()).filter(|k| self.docs[*k].1).collect();
        let r = self.rng.below(100);
        if r < 5 || self.docs.is_empty() {
            let bad = self.rng.pick(&["nope", "", "0123456789"]);
            return vec![("op".into(), s(op)), ("id".into(), s(bad))];
        }
        let k = if (r < 20 && !dead.is_empty()) || live.is_empty() {
            self.rng.pick(&dead)
        } else {
            self.rng.pick(&live)
        };
        // An id with a character changed: well-formed as text, not an id.
        let how = if self.bad_ids && (20..25).contains(&r) {
            "hbad"
        } else {
            "h"
        };
        vec![("op".into(), s(op)), (how.into(), f(k as f64))]
    }

    pub fn op_value(fields: Vec<(String, Value)>) -> Value {
        Value::Object(fields.into_iter().collect())
    }

    pub fn insert(&mut self) -> Value {
        let table = if self.rng.chance(80) { "docs" } else { "others" };
        let table = if self.rng.chance(1) { "bad-name" } else { table };
        let mut op = vec![
            ("op".to_string(), s("insert")),
            ("table".to_string(), s(table)),
            ("value".to_string(), self.body()),
        ];
        let extra = self.extra();
        // A refused insert makes no handle (the function counts handles
        // by successful inserts).
        if table != "bad-name" && !extra.as_ref().is_some_and(has_bad_name) {
            self.docs.push((table_static(table), false));
        }
        op.extend(extra.map(|e| ("extra".to_string(), e)));
        Value::Object(op.into_iter().collect())
    }

    pub fn patch(&mut self) -> Value {
        let mut op = self.target("patch");
        let mut value = Vec::new();
        for name in ["a", "b", "c", "o", "d"] {
            if self.rng.chance(30) {
                value.push((name.to_string(), self.value()));
            }
        }
        if self.rng.chance(20) {
            let o = obj([("x", self.value())]);
            value.push(("o".to_string(), o));
        }
        op.push(("value".into(), Value::Object(value.into_iter().collect())));
        op.extend(self.extra().map(|e| ("extra".to_string(), e)));
        if self.rng.chance(30) {
            let mut remove = vec![s(self.rng.pick(&["a", "b", "o", "tags", "zz"]))];
            if self.rng.chance(5) {
                remove.push(s(self.rng.pick(&["_id", "_creationTime"])));
            }
            op.push(("remove".into(), arr(remove)));
        }
        Self::op_value(op)
    }

    pub fn replace(&mut self) -> Value {
        let mut op = self.target("replace");
        let body = self.body();
        op.push(("value".into(), body));
        op.extend(self.extra().map(|e| ("extra".to_string(), e)));
        Self::op_value(op)
    }

    pub fn delete(&mut self) -> Value {
        let op = self.target("delete");
        if let Some(k) = op.iter().find(|(n, _)| n == "h").and_then(|(_, h)| h.as_f64()) {
            self.docs[k as usize].1 = true;
        }
        Self::op_value(op)
    }

    pub fn get(&mut self) -> Value {
        Self::op_value(self.target("get"))
    }

    /// A handle of some document that was inserted (live or not), for
    /// references to ids and creation times.
    pub fn some_handle(&mut self) -> Option<usize> {
        (!self.docs.is_empty()).then(|| self.rng.below(self.docs.len()))
    }

    pub fn filter_leaf(&mut self) -> Value {
        let path = self.rng.pick(&[
            "a",
            "b",
            "c",
            "o",
            "o.x",
            "o.y",
            "o.x.z",
            "tags",
            "tags.0",
            "a.b",
            "missing",
            "_id",
            "_creationTime",
        ]);
        let field = obj([("field", s(path))]);
        let other = match (path, self.some_handle()) {
            ("_id", Some(k)) if self.rng.chance(70) => obj([("idof", f(k as f64))]),
            ("_creationTime", Some(k)) if self.rng.chance(70) => obj([("ctof", f(k as f64))]),
            _ if self.rng.chance(10) => obj([("field", s(self.rng.pick(&["a", "b", "o.x"])))]),
            _ => obj([("literal", self.value())]),
        };
        // Ids differ between the stores, and so does their order: only
        // (in)equality on `_id`.
        let cmp = if path == "_id" {
            self.rng.pick(&["eq", "neq"])
        } else {
            self.rng.pick(&["eq", "neq", "lt", "lte", "gt", "gte"])
        };
        let (x, y) = if self.rng.chance(80) {
            (field, other)
        } else {
            (other, field)
        };
        if self.rng.chance(8) {
            // Arithmetic: fails on a value of another type, which must fail
            // the query in both stores alike (and only when a document that
            // is read reaches it).
            let arith = self.rng.pick(&["add", "sub", "mul", "div", "mod"]);
            let n = self.number();
            let mut lhs = obj([("op", s(arith)), ("args", arr(vec![x, obj([("literal", n)])]))]);
            if self.rng.chance(20) {
                lhs = obj([("op", s("neg")), ("args", arr(vec![lhs]))]);
            }
            let rhs = obj([("literal", self.number())]);
            return obj([("op", s(cmp)), ("args", arr(vec![lhs, rhs]))]);
        }
        obj([("op", s(cmp)), ("args", arr(vec![x, y]))])
    }

    pub fn filter(&mut self, depth: usize) -> Value {
        if depth >= 3 || self.rng.chance(55) {
            return self.filter_leaf();
        }
        match self.rng.below(3) {
            0 => obj([("op", s("not")), ("args", arr(vec![self.filter(depth + 1)]))]),
            k => {
                let n = self.rng.pick(&[0, 1, 2, 2, 2, 3]);
                let args = (0..n).map(|_| self.filter(depth + 1)).collect();
                obj([("op", s(if k == 1 { "and" } else { "or" })), ("args", arr(args))])
            }
        }
    }

    pub fn bound(&mut self, field: &str, op: &str) -> Value {
        let v = if field == "_creationTime" {
            match self.some_handle() {
                Some(k) if self.rng.chance(85) => {
                    return obj([("field", s(field)), ("op", s(op)), ("ct", f(k as f64))])
                }
                _ => self.value(),
            }
        } else if field == "_id" {
            match self.some_handle() {
                Some(k) => return obj([("field", s(field)), ("op", s(op)), ("h", f(k as f64))]),
                None => s("nope"),
            }
        } else {
            self.value()
        };
        obj([("field", s(field)), ("op", s(op)), ("value", v)])
    }

    /// Range conditions over `fields` (the index's, `_creationTime` and
    /// `_id` included): eq on a prefix, then lower and/or upper bounds on
    /// the next; rarely out of order.
    pub fn range(&mut self, fields: &[&str]) -> Vec<Value> {
        let mut out = Vec::new();
        let neq = self.rng.below(fields.len().min(3) + 1).min(fields.len());
        for field in &fields[..neq] {
            out.push(self.bound(field, "eq"));
        }
        if neq < fields.len() && self.rng.chance(60) {
            let field = fields[neq];
            if self.rng.chance(70) {
                let op = self.rng.pick(&["gt", "gte"]);
                out.push(self.bound(field, op));
            }
            if self.rng.chance(60) {
                let op = self.rng.pick(&["lt", "lte"]);
                out.push(self.bound(field, op));
            }
        }
        if self.rng.chance(3) {
            // Out of index order, or two lower bounds: an error.
            let field = self.rng.pick(fields);
            let op = self.rng.pick(&["eq", "gt", "lte"]);
            out.push(self.bound(field, op));
        }
        out
    }

    pub fn query(&mut self) -> Value {
        let r = self.rng.below(100);
        let table = match r {
            0 => "nothere",
            1 => "bad-name",
            _ if r < 85 => "docs",
            _ => "others",
        };
        let mut q = vec![("table".to_string(), s(table))];
        let index = match self.rng.below(12) {
            0..=2 => None,
            3 => Some("by_creation_time"),
            4 => Some("by_id"),
            5..=6 => Some("by_a"),
            7..=9 => Some("by_a_b"),
            10 => Some("by_ox"),
            _ if self.rng.chance(20) => Some("by_nothing"),
            _ => Some("by_a"),
        };
        // Indexes of `others`: by_a only.
        let index = match (table, index) {
            ("others", Some("by_a_b" | "by_ox")) => Some("by_a"),
            (_, index) => index,
        };
        if let Some(index) = index {
            q.push(("index".to_string(), s(index)));
            let fields: &[&str] = match index {
                "by_creation_time" => &["_creationTime", "_id"],
                // By id, only equality: ids differ between the stores, and
                // so does their order.
                "by_id" => &["_id"],
                "by_a" => &["a", "_creationTime", "_id"],
                "by_a_b" => &["a", "b", "_creationTime", "_id"],
                "by_ox" => &["o.x", "_creationTime", "_id"],
                _ => &["a"],
            };
            let range = if index == "by_id" {
                vec![self.bound("_id", "eq")]
            } else if self.rng.chance(75) {
                self.range(fields)
            } else {
                vec![]
            };
            // A bound on `_id` orders by id, which differs between the
            // stores: keep only eq on it.
            let range: Vec<Value> = range
                .into_iter()
                .filter(|c| c["field"].as_str() != Some("_id") || c["op"].as_str() == Some("eq"))
                .collect();
            q.push(("range".to_string(), arr(range)));
        }
        if self.rng.chance(55) {
            let n = if self.rng.chance(15) { 2 } else { 1 };
            let filters = (0..n).map(|_| self.filter(0)).collect();
            q.push(("filters".to_string(), arr(filters)));
        }
        if self.rng.chance(45) {
            q.push(("order".to_string(), s("desc")));
        }
        Value::Object(q.into_iter().collect())
    }

    pub fn query_op(&mut self) -> Value {
        let q = self.query();
        let mode = self
            .rng
            .pick(&["collect", "collect", "take", "take", "first", "unique", "count"]);
        let mut op = vec![
            ("op".to_string(), s("query")),
            ("q".to_string(), q),
            ("mode".to_string(), s(mode)),
        ];
        if mode == "take" {
            op.push(("n".to_string(), f(self.rng.below(6) as f64)));
        }
        Value::Object(op.into_iter().collect())
    }

    pub fn paginate(&mut self) -> Value {
        let q = self.query();
        obj([
            ("op", s("paginate")),
            ("q", q),
            ("n", f(1.0 + self.rng.below(5) as f64)),
        ])
    }

    /// One page: a new query, or the next page of an earlier one (with the
    /// same query and size), possibly after writes in between.
    pub fn page(&mut self) -> Value {
        let (q, n, cursor) = if !self.cursors.is_empty() && self.rng.chance(70) {
            let k = self.rng.below(self.cursors.len());
            let (q, n) = self.cursors[k].clone();
            (q, n, f(k as f64))
        } else {
            (self.query(), 1 + self.rng.below(4), Value::Null)
        };
        self.cursors.push((q.clone(), n));
        obj([("op", s("page")), ("q", q), ("n", f(n as f64)), ("cursor", cursor)])
    }

    pub fn op(&mut self) -> Value {
        let r = self.rng.below(100);
        if self.docs.len() < 4 || r < 30 {
            return self.insert();
        }
        match r {
            30..=37 => self.get(),
            38..=45 => self.patch(),
            46..=49 => self.replace(),
            50..=55 => self.delete(),
            56..=83 => self.query_op(),
            84..=91 => self.paginate(),
            _ => self.page(),
        }
    }

    /// A sequence of `len` operations, cut into calls (each call is one
    /// mutation; later calls read what earlier ones committed).
    pub fn sequence(&mut self, len: usize) -> Vec<Vec<Value>> {
        let mut calls = vec![Vec::new()];
        for _ in 0..len {
            if !calls.last().unwrap().is_empty() && self.rng.chance(4) {
                calls.push(Vec::new());
            }
            let op = self.op();
            calls.last_mut().unwrap().push(op);
        }
        calls
    }
}

pub fn table_static(t: &str) -> &'static str {
    TABLES.into_iter().find(|n| *n == t).expect("a known table")
}

/// Whether `extra` fields (see [`Gen::extra`]) have a name the stores
/// refuse: empty, starting with `$`, outside ASCII 32..126, or starting with
/// `_` at the top level.
pub fn has_bad_name(extra: &Value) -> bool {
    extra.as_array().into_iter().flatten().any(|pair| {
        let path = pair[0].as_str().unwrap_or_default();
        let name = path.strip_prefix("o.").unwrap_or(path);
        name.is_empty()
            || name.starts_with('$')
            || name.bytes().any(|b| !(32..=126).contains(&b))
            || (name == path && name.starts_with('_'))
    })
}
