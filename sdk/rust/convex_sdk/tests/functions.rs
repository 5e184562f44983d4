//! The macros end to end, natively: functions defined here are called
//! through their generated exports against the fake host, exactly as the
//! cvx host calls them (arguments in, outcome out), and their metadata
//! records are checked against ABI §4.

use convex_sdk::*;
use serde::{Deserialize, Serialize};

// A glob import of the SDK must not make built-in attributes ambiguous.
#[warn(unused_variables)]
#[allow(dead_code)]
fn uses_builtin_attributes() {}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Task {
    title: String,
    done: bool,
    priority: i64,
}

#[mutation]
async fn add_task(db: Database, title: String, priority: Option<i64>) -> Result<DocumentId, ConvexError> {
    let task = Task {
        title,
        done: false,
        priority: priority.unwrap_or(0),
    };
    db.insert("tasks", &task).await
}

#[query]
async fn get_task(db: Database, id: DocumentId) -> Result<Option<Task>, ConvexError> {
    db.get_as::<Task>(id).await
}

#[mutation]
async fn complete(db: Database, id: DocumentId) -> Result<(), ConvexError> {
    db.patch(id, json!({ "done": true })).await
}

#[mutation]
async fn retitle(db: Database, id: DocumentId, title: String) -> Result<(), ConvexError> {
    let doc = db
        .get(id.clone())
        .await?
        .ok_or_else(|| ConvexError::new("no such task"))?;
    let mut task: Task = doc.into_typed()?;
    task.title = title;
    db.replace(id, task).await
}

#[mutation]
async fn drop_priority(db: Database, id: DocumentId) -> Result<(), ConvexError> {
    db.patch_remove(id, json!({}), &["priority"]).await
}

#[mutation]
async fn remove(db: Database, id: DocumentId) -> Result<(), ConvexError> {
    db.delete(id).await
}

#[query]
async fn open_tasks(db: Database, min_priority: i64) -> Result<Vec<Task>, ConvexError> {
    db.query("tasks")
        .with_index("by_priority", |r| r.gte("priority", min_priority))
        .filter(|q| q.eq(q.field("done"), false))
        .order(Order::Desc)
        .collect_as()
        .await
}

#[query]
async fn count_tasks(db: Database) -> Result<u64, ConvexError> {
    db.query("tasks").count().await
}

#[query]
async fn first_task(db: Database) -> Result<Option<Document>, ConvexError> {
    db.query("tasks").first().await
}

#[query]
async fn the_only(db: Database, title: String) -> Result<Option<Document>, ConvexError> {
    db.query("tasks").filter(|q| q.field("title").eq(title)).unique().await
}

#[query]
async fn sneaky_write(db: Database) -> Result<DocumentId, ConvexError> {
    db.insert("tasks", json!({ "title": "from a query" })).await
}

/// A mutation that writes and then fails: nothing may be kept.
#[mutation]
async fn write_then_fail(db: Database) -> Result<(), ConvexError> {
    db.insert("tasks", json!({ "title": "doomed", "done": false, "priority": 0i64 }))
        .await?;
    Err(ConvexError::app(json!({ "code": "ROLLBACK" })))
}

#[mutation]
async fn write_then_panic(db: Database) -> Result<(), ConvexError> {
    db.insert("tasks", json!({ "title": "doomed", "done": false, "priority": 0i64 }))
        .await?;
    panic!("changed my mind")
}

#[action]
async fn tasks_via_action(ctx: ActionCtx, title: String) -> Result<Value, ConvexError> {
    let id: DocumentId = ctx
        .run_mutation("functions:add_task", json!({ "title": title }))
        .await?;
    let task: Option<Task> = ctx.run_query("functions:get_task", json!({ "id": id })).await?;
    Ok(json!({ "task": task }))
}

#[action]
async fn action_touches_db(ctx: ActionCtx) -> Result<Value, ConvexError> {
    // Database::for_tests exists only natively; the macro forbids a Database
    // parameter in actions, so reach the host the only other way.
    let _ = ctx;
    Database::for_tests()
        .query("tasks")
        .count()
        .await
        .map(|n| json!(n as f64))
}

#[action(name = "fetch_status")]
async fn fetch_it(url: String) -> Result<Value, ConvexError> {
    let r = fetch(&url, FetchOptions::new().header("X-Test", "1")).await?;
    Ok(json!({ "status": r.status as f64, "body": r.text(), "json": r.json().unwrap_or(Value::Null) }))
}

#[query]
async fn fetch_in_query(url: String) -> Result<u16, ConvexError> {
    Ok(fetch(&url, FetchOptions::new()).await?.status)
}

#[query]
#[allow(clippy::too_many_arguments)]
fn many_args(
    s: String,
    f: f64,
    i: i64,
    small: u8,
    b: bool,
    list: Vec<f64>,
    opt: Option<String>,
    v: Value,
    bytes: Bytes,
    id: DocumentId,
    task: Task,
) -> Value {
    json!({
        "s": s, "f": f, "i": i, "small": small, "b": b, "list": list, "opt": opt,
        "v": v, "bytes": bytes, "id": id, "task": task,
    })
}

#[query]
fn logs_and_time(n: u32) -> Value {
    for i in 0..n {
        log!("line {}", i);
    }
    warn!("careful");
    json!({ "now": now_ms(), "random": random_f64() })
}

#[query(internal)]
fn hidden() -> &'static str {
    "internal"
}

mod nested {
    pub mod deeper {
        use convex_sdk::*;

        #[query]
        pub fn where_am_i() -> String {
            module_path!().to_string()
        }
    }
}

schema! {
    tasks {
        title: String,
        done: bool,
        priority: Option<i64>,
    }
    index by_priority(priority);
}

fn add(title: &str, priority: i64) -> String {
    let id = testing::call::<add_task>(json!({ "title": title, "priority": priority })).unwrap();
    id.as_str().unwrap().to_string()
}

#[test]
fn crud() {
    let id = add("write tests", 2);
    let task = testing::call::<get_task>(json!({ "id": id.clone() })).unwrap();
    assert_eq!(task, json!({ "title": "write tests", "done": false, "priority": 2i64 }));

    testing::call::<complete>(json!({ "id": id.clone() })).unwrap();
    testing::call::<retitle>(json!({ "id": id.clone(), "title": "tested" })).unwrap();
    let task = testing::call::<get_task>(json!({ "id": id.clone() })).unwrap();
    assert_eq!(task, json!({ "title": "tested", "done": true, "priority": 2i64 }));

    testing::call::<drop_priority>(json!({ "id": id.clone() })).unwrap();
    let doc = &testing::documents("tasks")[0];
    assert_eq!(doc.get("priority"), None);
    assert_eq!(doc.id(), id.as_str());
    assert!(doc.creation_time() > 0.0);

    testing::call::<remove>(json!({ "id": id.clone() })).unwrap();
    assert_eq!(testing::call::<get_task>(json!({ "id": id.clone() })), Ok(Value::Null));
    let e = testing::call::<remove>(json!({ "id": id.clone() })).unwrap_err();
    assert_eq!(e.message(), format!("document \"{id}\" not found"));
}

#[test]
fn queries() {
    testing::use_schema(__CONVEX_SCHEMA_JSON);
    let a = add("a", 1);
    add("b", 5);
    add("c", 3);
    add("d", 9);
    testing::call::<complete>(json!({ "id": a })).unwrap();
    let open = testing::call::<open_tasks>(json!({ "min_priority": 3i64 })).unwrap();
    let titles: Vec<&str> = open
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["d", "b", "c"]);
    assert_eq!(testing::call::<count_tasks>(json!({})), Ok(json!(4i64)));
    assert_eq!(testing::call::<first_task>(json!({})).unwrap()["title"], json!("a"));
    assert_eq!(
        testing::call::<the_only>(json!({ "title": "c" })).unwrap()["title"],
        json!("c")
    );
    assert_eq!(testing::call::<the_only>(json!({ "title": "zzz" })), Ok(Value::Null));
    add("c", 4);
    let e = testing::call::<the_only>(json!({ "title": "c" })).unwrap_err();
    assert!(e.message().contains("more than one document"), "{e}");
}

// What the fake host does; the real host's kind rules and rollback are
// tests/abi/abi_test.c test_db_permissions and tests/exec/db_test.c
// test_bad_input_changes_nothing (sneaky_write, write_then_fail,
// write_then_panic).
#[test]
fn fake_host_enforces_kind_rules_and_rolls_back_failed_mutations() {
    let e = testing::call::<sneaky_write>(json!({})).unwrap_err();
    assert_eq!(e.message(), "queries cannot write; use a mutation");

    let e = testing::call::<write_then_fail>(json!({})).unwrap_err();
    assert_eq!(e, ConvexError::Application(json!({ "code": "ROLLBACK" })));
    let e = testing::call::<write_then_panic>(json!({})).unwrap_err();
    assert_eq!(
        (e.code(), e.message().as_str()),
        (ErrorCode::Panic, "Uncaught Error: changed my mind")
    );
    let panic = testing::last_panic().unwrap();
    assert_eq!(panic["file"], json!(file!()));
    assert!(panic["line"].as_f64().unwrap() > 0.0);
    assert!(
        testing::documents("tasks").is_empty(),
        "failed mutations keep no writes"
    );

    let e = testing::call::<action_touches_db>(json!({})).unwrap_err();
    assert!(e.message().starts_with("actions cannot use the database"), "{e}");
    let e = testing::call::<fetch_in_query>(json!({ "url": "https://example.com" })).unwrap_err();
    assert_eq!(e.message(), "fetch is not allowed in a query");
}

#[test]
fn actions() {
    testing::register::<add_task>();
    testing::register::<get_task>();
    let out = testing::call::<tasks_via_action>(json!({ "title": "from an action" })).unwrap();
    assert_eq!(out["task"]["title"], json!("from an action"));
    // Errors of nested functions come back with their data.
    testing::register::<write_then_fail>();
    let ctx = ActionCtx::for_tests();
    let e = testing::block_on(ctx.run_mutation::<Value>("functions:write_then_fail", ())).unwrap_err();
    assert_eq!(
        (e.code(), e.data()),
        (ErrorCode::Application, Some(&json!({ "code": "ROLLBACK" })))
    );
    let e = testing::block_on(ctx.run_query::<Value>("functions:nope", ())).unwrap_err();
    assert_eq!(e.code(), ErrorCode::NoFunction);
}

#[test]
fn fetch_through_the_handler() {
    let e = testing::call::<fetch_it>(json!({ "url": "https://example.com" })).unwrap_err();
    assert!(e.message().contains("no network in tests"), "{e}");
    testing::set_fetch_handler(|req| {
        assert_eq!(req.headers, vec![("X-Test".to_string(), "1".to_string())]);
        Ok(HttpResponse {
            status: 201,
            headers: vec![],
            body: br#"{"n": 1}"#.to_vec(),
        })
    });
    let out = testing::call::<fetch_it>(json!({ "url": "https://example.com" })).unwrap();
    assert_eq!(out, json!({ "status": 201, "body": r#"{"n": 1}"#, "json": { "n": 1 } }));
}

#[test]
fn arguments_of_every_kind() {
    let args = json!({
        "s": "text", "f": 1.5, "i": 7i64, "small": 3, "b": true, "list": [1, 2],
        "v": { "any": ["thing"] }, "bytes": b"\x01\x02", "id": "abc",
        "task": { "title": "t", "done": false, "priority": 1i64 },
    });
    let out = testing::call::<many_args>(args.clone()).unwrap();
    let mut expected = args;
    expected.as_object_mut().unwrap().insert("opt".into(), Value::Null);
    assert_eq!(out, expected);

    let e = testing::call::<many_args>(json!({ "s": "x" })).unwrap_err();
    assert_eq!(e.message(), "missing required argument \"f\"");
    let e = testing::call::<get_task>(json!({ "id": 5 })).unwrap_err();
    assert_eq!(
        e.message(),
        "argument \"id\": invalid type: floating point `5.0`, expected a string"
    );
}

#[test]
fn logs_time_random() {
    testing::set_now_ms(1234.5);
    let a = testing::call::<logs_and_time>(json!({ "n": 2 })).unwrap();
    assert_eq!(a["now"], json!(1234.5));
    let logs = testing::take_logs();
    assert_eq!(
        logs,
        vec![
            (LogLevel::Log, "line 0".to_string()),
            (LogLevel::Log, "line 1".to_string()),
            (LogLevel::Warn, "careful".to_string()),
        ]
    );
    testing::set_seed(1);
    let x = testing::call::<logs_and_time>(json!({ "n": 0 })).unwrap();
    testing::set_seed(1);
    let y = testing::call::<logs_and_time>(json!({ "n": 0 })).unwrap();
    assert_eq!(x["random"], y["random"], "same seed, same numbers");
    let r = x["random"].as_f64().unwrap();
    assert!((0.0..1.0).contains(&r));
}

#[test]
fn metadata_records() {
    let m = testing::metadata::<add_task>();
    assert_eq!(
        m,
        Value::from_json(&format!(
            r#"{{"abi":1,"path":"functions:add_task","kind":"mutation","visibility":"public",
                "export":"cvx:functions::add_task",
                "args":[{{"name":"title","type":{{"type":"string"}}}},
                        {{"name":"priority","type":{{"type":"optional","inner":{{"type":"int64"}}}}}}],
                "returns":{{"type":"string"}},"file":{},"line":{}}}"#,
            json!(file!()),
            m["line"].as_f64().unwrap()
        ))
        .unwrap()
    );
    assert_eq!(testing::metadata::<hidden>()["visibility"], json!("internal"));
    assert_eq!(testing::metadata::<fetch_it>()["path"], json!("functions:fetch_status"));
    assert_eq!(
        testing::metadata::<fetch_it>()["export"],
        json!("cvx:functions::fetch_it")
    );
    assert_eq!(<fetch_it as ConvexFunction>::PATH, "functions:fetch_status");
    assert_eq!(
        <nested::deeper::where_am_i as ConvexFunction>::PATH,
        "nested/deeper:where_am_i"
    );
    assert_eq!(
        testing::call::<nested::deeper::where_am_i>(json!({})),
        Ok(json!("functions::nested::deeper"))
    );
    assert_eq!(
        testing::metadata::<many_args>()["args"][9],
        json!({ "name": "id", "type": { "type": "string" } })
    );
    assert_eq!(
        testing::metadata::<many_args>()["args"][3]["type"],
        json!({ "type": "float64" })
    );
    assert_eq!(testing::metadata::<complete>()["returns"], json!({ "type": "null" }));
}

#[test]
fn schema_record() {
    let schema = Value::from_json(__CONVEX_SCHEMA_JSON).unwrap();
    assert_eq!(
        schema,
        json!({
            "abi": 1, "strict": true,
            "tables": [{
                "name": "tasks",
                "fields": {
                    "done": { "type": "boolean" },
                    "priority": { "type": "optional", "inner": { "type": "int64" } },
                    "title": { "type": "string" },
                },
                "indexes": [{ "name": "by_priority", "fields": ["priority"] }],
            }],
        })
    );
}
