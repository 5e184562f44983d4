//! Fixed sequences: one per difference found so far, and the known ones.

use super::*;

pub fn ins(value: Value) -> Value {
    json!({"op": "insert", "table": "docs", "value": value})
}

pub fn query(q: Value, mode: &str) -> Value {
    json!({"op": "query", "q": q, "mode": mode})
}

pub fn page(q: Value, n: f64, cursor: Value) -> Value {
    json!({"op": "page", "q": q, "n": n, "cursor": cursor})
}

pub fn op2(op: &str, x: Value, y: Value) -> Value {
    json!({"op": op, "args": [x, y]})
}

pub fn field(path: &str) -> Value {
    json!({"field": path})
}

pub fn lit(v: Value) -> Value {
    json!({"literal": v})
}

/// Sequences that once told the stores apart (each fixed in the fake store),
/// kept so that they always run.
pub fn regressions() -> Vec<(&'static str, Vec<Vec<Value>>)> {
    let docs = |more: Value| {
        let mut q = json!({"table": "docs"});
        for (k, v) in more.as_object().unwrap() {
            q.as_object_mut().unwrap().insert(k.clone(), v.clone());
        }
        q
    };
    let by_a = |range: Value| docs(json!({"index": "by_a", "range": range}));
    vec![
        (
            // `and` / `or` stop at the first argument that decides them.
            "and/or short-circuit",
            vec![vec![
                ins(json!({"a": "x"})),
                query(
                    docs(
                        json!({"filters": [{"op": "and", "args": [op2("eq", field("a"), lit(json!(1))), op2("gt", op2("add", field("a"), lit(json!(1))), lit(json!(0)))]}]}),
                    ),
                    "collect",
                ),
                query(
                    docs(
                        json!({"filters": [{"op": "or", "args": [op2("eq", field("a"), lit(json!("x"))), op2("gt", op2("add", field("a"), lit(json!(1))), lit(json!(0)))]}]}),
                    ),
                    "collect",
                ),
                query(
                    docs(
                        json!({"filters": [op2("eq", field("a"), lit(json!(1))), op2("gt", op2("add", field("a"), lit(json!(1))), lit(json!(0)))]}),
                    ),
                    "count",
                ),
            ]],
        ),
        (
            // The filter runs on the documents read, and a page stops reading
            // when it is full: a document after it cannot fail the query.
            "filter only up to the limit",
            vec![vec![
                ins(json!({"a": 1})),
                ins(json!({"a": "s"})),
                query(
                    docs(json!({"filters": [op2("gt", op2("add", field("a"), lit(json!(1))), lit(json!(0)))]})),
                    "first",
                ),
                query(
                    docs(json!({"filters": [op2("gt", op2("add", field("a"), lit(json!(1))), lit(json!(0)))]})),
                    "collect",
                ),
            ]],
        ),
        (
            // int64 arithmetic that overflows is an error, not a wrap-around.
            "int64 overflow",
            vec![vec![
                ins(json!({"i": i64::MAX, "j": i64::MIN})),
                query(
                    docs(json!({"filters": [op2("lt", op2("add", field("i"), lit(json!(1i64))), lit(json!(0i64)))]})),
                    "collect",
                ),
                query(
                    docs(json!({"filters": [op2("lt", json!({"op": "neg", "args": [field("j")]}), lit(json!(0i64)))]})),
                    "collect",
                ),
                query(
                    docs(json!({"filters": [op2("lt", op2("mod", field("j"), lit(json!(-1i64))), lit(json!(0i64)))]})),
                    "collect",
                ),
                query(
                    docs(json!({"filters": [op2("lt", op2("div", field("i"), lit(json!(0i64))), lit(json!(0i64)))]})),
                    "collect",
                ),
            ]],
        ),
        (
            // A full page is not done; the next, empty, is. An end cursor
            // stays at the end.
            "full pages and end cursors",
            vec![
                vec![
                    ins(json!({"a": 1})),
                    ins(json!({"a": 2})),
                    json!({"op": "paginate", "q": docs(json!({})), "n": 2}),
                    json!({"op": "paginate", "q": docs(json!({})), "n": 1}),
                    page(docs(json!({})), 5.0, Value::Null),
                ],
                vec![ins(json!({"a": 3})), page(docs(json!({})), 5.0, json!(0))],
            ],
        ),
        (
            // A cursor is a position in the index, not an offset: writes
            // before it do not move the next page.
            "cursors after writes",
            vec![
                vec![
                    ins(json!({"a": 1})),
                    ins(json!({"a": 2})),
                    ins(json!({"a": 3})),
                    ins(json!({"a": 4})),
                    page(by_a(json!([])), 2.0, Value::Null),
                    json!({"op": "delete", "h": 0}),
                    page(by_a(json!([])), 1.0, json!(0)),
                ],
                vec![
                    json!({"op": "patch", "h": 3, "value": {"a": 0}}),
                    ins(json!({"a": 2.5})),
                    page(by_a(json!([])), 5.0, json!(0)),
                    page(
                        docs(json!({"index": "by_a", "range": [], "order": "desc"})),
                        1.0,
                        Value::Null,
                    ),
                    json!({"op": "delete", "h": 2}),
                    page(
                        docs(json!({"index": "by_a", "range": [], "order": "desc"})),
                        5.0,
                        json!(3),
                    ),
                ],
            ],
        ),
        (
            // A cursor belongs to its table and index.
            "cursor of another index",
            vec![vec![
                ins(json!({"a": 1})),
                ins(json!({"a": 2})),
                page(by_a(json!([])), 1.0, Value::Null),
                page(docs(json!({})), 1.0, json!(0)),
                page(docs(json!({"index": "by_a_b", "range": []})), 1.0, json!(0)),
                page(json!({"table": "others", "index": "by_a", "range": []}), 1.0, json!(0)),
            ]],
        ),
        (
            // Equalities on every field of the index (the fake store panicked).
            "eq on every index field",
            vec![vec![
                ins(json!({"a": 1})),
                query(
                    by_a(
                        json!([{"field": "a", "op": "eq", "value": 1}, {"field": "_creationTime", "op": "eq", "ct": 0}, {"field": "_id", "op": "eq", "h": 0}]),
                    ),
                    "collect",
                ),
                query(
                    docs(json!({"index": "by_id", "range": [{"field": "_id", "op": "eq", "h": 0}]})),
                    "collect",
                ),
                query(
                    docs(
                        json!({"index": "by_creation_time", "range": [{"field": "_creationTime", "op": "eq", "ct": 0}, {"field": "_id", "op": "eq", "h": 0}]}),
                    ),
                    "collect",
                ),
            ]],
        ),
        (
            // With a schema, only its indexes exist (and by_id is the id
            // alone); a table that does not exist reads as empty.
            "indexes of the schema",
            vec![vec![
                ins(json!({"a": 1})),
                query(docs(json!({"index": "by_nothing", "range": []})), "collect"),
                query(
                    docs(
                        json!({"index": "by_id", "range": [{"field": "_id", "op": "eq", "h": 0}, {"field": "_creationTime", "op": "gt", "value": 0}]}),
                    ),
                    "collect",
                ),
                query(json!({"table": "others", "index": "by_a_b", "range": []}), "collect"),
                query(
                    json!({"table": "nothere", "index": "by_nothing", "range": [{"field": "zz", "op": "gt", "value": 1}]}),
                    "collect",
                ),
                query(json!({"table": "bad-name"}), "collect"),
                query(json!({"table": "_nothere"}), "count"),
            ]],
        ),
        (
            // Field names: `_` only for the system fields at the top level
            // (anywhere below it); the document is looked up first.
            "field names and order of checks",
            vec![vec![
                ins(json!({"a": 1, "o": {"_x": 1}})),
                ins(json!({"a": 2})),
                json!({"op": "insert", "table": "docs", "value": {"a": 1}, "extra": [["_a", 1]]}),
                json!({"op": "insert", "table": "_hidden", "value": {"a": 1}}),
                json!({"op": "insert", "table": "bad-name", "value": {"a": 1}, "extra": [["_a", 1]]}),
                json!({"op": "delete", "h": 1}),
                json!({"op": "patch", "h": 1, "value": {"b": 1}, "extra": [["_a", 1]]}),
                json!({"op": "patch", "h": 0, "value": {"b": 1}, "remove": ["_other", "zz"]}),
                json!({"op": "patch", "h": 0, "value": {}, "remove": ["_creationTime"]}),
                json!({"op": "replace", "h": 0, "value": {"c": 1}, "extra": [["_creationTime", 1]]}),
                json!({"op": "get", "h": 0}),
            ]],
        ),
        (
            // Convex's order at its edges: int64 before float64, -0 before
            // 0, NaN after every number, strings and bytes bytewise.
            "order of values",
            vec![vec![
                ins(json!({"a": f64::NAN})),
                ins(json!({"a": -f64::NAN})),
                ins(json!({"a": f64::INFINITY})),
                ins(json!({"a": -0.0})),
                ins(json!({"a": 0.0})),
                ins(json!({"a": i64::MIN})),
                ins(json!({"a": "é"})),
                ins(json!({"a": "z"})),
                ins(json!({"a": null})),
                ins(json!({"b": 1})),
                ins(json!({"a": [1, 2]})),
                ins(json!({"a": {"x": 1}})),
                query(by_a(json!([])), "collect"),
                query(
                    by_a(
                        json!([{"field": "a", "op": "gte", "value": -0.0}, {"field": "a", "op": "lt", "value": f64::NAN}]),
                    ),
                    "collect",
                ),
                query(
                    docs(json!({"filters": [op2("eq", field("a"), lit(json!(f64::NAN)))]})),
                    "collect",
                ),
                query(
                    docs(json!({"filters": [op2("lt", field("a"), lit(json!(null)))]})),
                    "collect",
                ),
            ]],
        ),
        (
            // The C store's index ranges once ended an eq / gt / lte bound
            // at the successor of the value's key, which a longer string
            // or bytes value whose next byte is NUL (escaped 0x00 0xff)
            // sorts before: "a\0b" matched eq "a".
            "nul: strings and bytes with NUL in index ranges",
            vec![vec![
                ins(json!({"a": "a"})),
                ins(json!({"a": "a\u{0}b"})),
                ins(json!({"a": Value::Bytes(vec![])})),
                ins(json!({"a": Value::Bytes(vec![0])})),
                query(by_a(json!([{"field": "a", "op": "eq", "value": "a"}])), "collect"),
                query(
                    by_a(json!([{"field": "a", "op": "gt", "value": "a"}, {"field": "a", "op": "lt", "value": "b"}])),
                    "collect",
                ),
                query(by_a(json!([{"field": "a", "op": "lte", "value": "a"}])), "collect"),
                query(
                    by_a(json!([{"field": "a", "op": "eq", "value": Value::Bytes(vec![])}])),
                    "collect",
                ),
            ]],
        ),
    ]
}

/// Sequences on which the stores are known to differ (README.md): run only
/// with `CONFORMANCE_KNOWN`, and expected to fail until the difference is
/// fixed.
pub fn known_cases() -> Vec<(&'static str, Vec<Vec<Value>>)> {
    let mut cases = Vec::new();
    if known("names") {
        cases.push((
            // A field name that breaks the rules is INVALID_VALUE by
            // docs/abi.md §6; the C store refuses the whole request
            // (INVALID_ARGUMENT) before it looks at the document.
            "names: field names refused as a malformed request",
            vec![vec![
                ins(json!({"a": 1})),
                json!({"op": "insert", "table": "docs", "value": {"a": 1}, "extra": [["o.$a", 1]]}),
                json!({"op": "insert", "table": "docs", "value": {"a": 1}, "extra": [["é", 1]]}),
                json!({"op": "delete", "h": 0}),
                json!({"op": "patch", "h": 0, "value": {}, "extra": [["o.$a", 1]]}),
            ]],
        ));
    }
    if known("limit0") {
        cases.push((
            // A page of 0 documents: the C store answers isDone true and
            // an end cursor, though the range has documents left.
            "limit0: a page of no documents is done",
            vec![vec![
                ins(json!({"a": 1})),
                page(json!({"table": "docs"}), 0.0, Value::Null),
                page(json!({"table": "docs"}), 1.0, json!(0)),
            ]],
        ));
    }
    if known("ids") {
        cases.push((
            // The fake store takes any 31 to 37 characters of the id
            // alphabet for an id; the C store checks the format (table
            // number, checksum) and answers INVALID_VALUE where the fake one
            // answers null / NOT_FOUND.
            "ids: a string that looks like an id but is not one",
            vec![vec![
                ins(json!({"a": 1})),
                json!({"op": "get", "hbad": 0}),
                json!({"op": "patch", "hbad": 0, "value": {"b": 1}}),
                json!({"op": "get", "id": "0123456789abcdefghjkmnpqrstvwxyz"}),
            ]],
        ));
    }
    cases
}
