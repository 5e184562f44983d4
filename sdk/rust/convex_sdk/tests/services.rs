//! Scheduling, file storage, HTTP actions and crons end to end against the
//! fake host: functions called through their exports, their records
//! checked against the ABI.
//!
//! What these prove is the SDK's side (the requests it sends, the records
//! it writes, how it reads the answers) and the behaviour of the fake host
//! in `convex_sdk::testing`, not the server's: the fake is not the server
//! (its messages differ, it runs nothing by itself). Each test names the
//! tests that check the same guarantee against the real server, where
//! there are any.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use convex_sdk::*;

// ---- scheduling -------------------------------------------------------------

#[mutation]
async fn bump(db: Database, name: String) -> Result<DocumentId, ConvexError> {
    db.insert("bumps", json!({ "name": name })).await
}

#[mutation]
async fn bump_later(
    db: Database,
    scheduler: Scheduler,
    name: String,
    delay_ms: f64,
) -> Result<DocumentId, ConvexError> {
    db.insert("requests", json!({ "name": name.clone() })).await?;
    scheduler
        .run_after(delay_ms, <bump as ConvexFunction>::PATH, json!({ "name": name }))
        .await
}

#[mutation]
async fn bump_later_then_fail(scheduler: Scheduler) -> Result<(), ConvexError> {
    scheduler
        .run_after(Duration::ZERO, "services:bump", json!({ "name": "never" }))
        .await?;
    Err(ConvexError::new("changed my mind"))
}

#[mutation]
async fn cancel_job(scheduler: Scheduler, id: DocumentId) -> Result<(), ConvexError> {
    scheduler.cancel(id).await
}

#[action]
async fn bump_at(ctx: ActionCtx, at_ms: f64) -> Result<DocumentId, ConvexError> {
    let at = UNIX_EPOCH + Duration::from_millis(at_ms as u64);
    ctx.scheduler()
        .run_at(at, "services:bump", json!({ "name": "at" }))
        .await
}

#[mutation]
async fn schedule_a_query() -> Result<DocumentId, ConvexError> {
    Scheduler::for_tests().run_after(0, "services:job", ()).await
}

#[query]
async fn job(db: Database, id: DocumentId) -> Result<Option<Document>, ConvexError> {
    db.get(id).await
}

// The real server: a job committed with its mutation and run exactly once
// across crashes, tests/e2e/platform.test.js "scheduled mutations run
// exactly once across kill -9 at random moments; cancel works"; deterministic
// mutations, tests/exec/hello_test.c test_determinism. No test against the
// real server schedules from a mutation that then fails.
#[test]
fn fake_host_records_a_mutations_job_and_drops_it_on_failure() {
    testing::register::<bump>();
    testing::set_now_ms(1_000_000.0);
    let id = testing::call::<bump_later>(json!({ "name": "a", "delay_ms": 500 })).unwrap();
    let job = testing::call::<job>(json!({ "id": id.clone() })).unwrap();
    assert_eq!(job["name"], json!("services:bump"));
    assert_eq!(job["args"], json!([{ "name": "a" }]));
    assert_eq!(job["scheduledTime"], json!(1_000_500.0), "now (frozen) + delay");
    assert_eq!(job["state"], json!({ "kind": "pending" }));

    // A failed mutation schedules nothing.
    assert!(testing::call::<bump_later_then_fail>(json!({})).is_err());
    assert_eq!(testing::documents("_scheduled_functions").len(), 1);

    assert_eq!(testing::run_scheduled(), 0, "not due yet");
    testing::set_now_ms(1_000_500.0);
    assert_eq!(testing::run_scheduled(), 1);
    assert_eq!(testing::documents("bumps").len(), 1);
    let job = testing::call::<job>(json!({ "id": id.clone() })).unwrap();
    assert_eq!(job["state"], json!({ "kind": "success" }));
    assert_eq!(job["completedTime"], json!(1_000_500.0));

    // Canceling a job that ran is not an error, and changes nothing.
    testing::call::<cancel_job>(json!({ "id": id.clone() })).unwrap();
    assert_eq!(
        testing::call::<job>(json!({ "id": id })).unwrap()["state"]["kind"],
        json!("success")
    );
}

// The real server: cancel, tests/e2e/platform.test.js (as above); a job
// of a function that is not deployed is not tested against it.
#[test]
fn fake_host_cancels_jobs_and_fails_jobs_of_unregistered_functions() {
    testing::register::<bump>();
    let first = testing::call::<bump_later>(json!({ "name": "a", "delay_ms": 10 })).unwrap();
    testing::call::<bump_later>(json!({ "name": "b", "delay_ms": -5 })).unwrap();
    testing::call::<cancel_job>(json!({ "id": first.clone() })).unwrap();
    assert_eq!(testing::run_scheduled(), 1, "the negative delay is due now");
    testing::set_now_ms(now_ms() + 10.0);
    assert_eq!(testing::run_scheduled(), 0, "the other was canceled");
    let first = testing::call::<job>(json!({ "id": first })).unwrap();
    assert_eq!(first["state"]["kind"], json!("canceled"));
    let bumps = testing::documents("bumps");
    assert_eq!((bumps.len(), &bumps[0]["name"]), (1, &json!("b")));

    // An unregistered function fails its job.
    let id = testing::call::<schedule_a_query>(json!({})).unwrap();
    assert_eq!(testing::run_scheduled(), 1);
    let state = &testing::call::<job>(json!({ "id": id })).unwrap()["state"];
    assert_eq!(state["kind"], json!("failed"));
    assert!(state["error"].as_str().unwrap().contains("Could not find function"));

    let e = testing::call::<cancel_job>(json!({ "id": bumps[0].id() })).unwrap_err();
    assert_eq!(
        e.message(),
        "no scheduled function with id \"".to_string() + bumps[0].id().as_str() + "\""
    );
}

#[test]
fn run_at_from_an_action_records_its_time_in_the_fake_host() {
    testing::register::<bump>();
    let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as f64 + 3_600_000.0;
    let id = testing::call::<bump_at>(json!({ "at_ms": at })).unwrap();
    let jobs = testing::documents("_scheduled_functions");
    assert_eq!(
        (jobs[0].id(), &jobs[0]["scheduledTime"]),
        (DocumentId::from(id.as_str().unwrap()), &json!(at))
    );
}

#[test]
fn schedule_delays_and_times() {
    assert_eq!(Duration::from_millis(1500).delay_ms(), 1500.0);
    assert_eq!(250i32.delay_ms(), 250.0);
    assert_eq!((UNIX_EPOCH + Duration::from_secs(2)).epoch_ms(), 2000.0);
    assert_eq!((UNIX_EPOCH - Duration::from_secs(2)).epoch_ms(), -2000.0);
    let s = Scheduler::for_tests();
    let e = testing::block_on(s.run_after(f64::NAN, "a:b", ())).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    let e = testing::block_on(s.run_after(1, "a:b", json!([1]))).unwrap_err();
    assert_eq!(e.message(), "arguments of a:b must be an object, not array");
}

// ---- file storage -------------------------------------------------------------

#[action]
async fn save(storage: Storage, text: String) -> Result<StorageId, ConvexError> {
    storage.store(text.as_bytes(), Some("text/plain")).await
}

#[action]
async fn load(ctx: ActionCtx, id: StorageId) -> Result<Option<Bytes>, ConvexError> {
    Ok(ctx.storage().get(id).await?.map(Bytes))
}

#[query]
async fn url_and_meta(db: Database, storage: Storage, id: StorageId) -> Result<Value, ConvexError> {
    let url = storage.get_url(id.clone()).await?;
    let meta = db.get(id.into()).await?;
    Ok(json!({ "url": url, "meta": meta }))
}

#[mutation]
async fn remove_file(storage: Storage, id: StorageId) -> Result<(), ConvexError> {
    storage.delete(id).await
}

#[mutation]
async fn remove_file_then_fail(storage: Storage, id: StorageId) -> Result<(), ConvexError> {
    storage.delete(id).await?;
    Err(ConvexError::new("no"))
}

#[mutation]
async fn upload_url(storage: Storage) -> Result<String, ConvexError> {
    storage.generate_upload_url().await
}

#[mutation]
async fn read_in_mutation(storage: Storage, id: StorageId) -> Result<Option<Bytes>, ConvexError> {
    Ok(storage.get(id).await?.map(Bytes))
}

#[query]
async fn store_in_query(storage: Storage) -> Result<StorageId, ConvexError> {
    storage.store(b"x", None).await
}

#[mutation]
async fn patch_storage_doc(db: Database, id: StorageId) -> Result<(), ConvexError> {
    db.patch(id.into(), json!({ "size": 0 })).await
}

// The real server: tests/e2e/platform.test.js "actions store and read
// files; HTTP actions serve them; deletes remove them" and "upload → store
// → download".
#[test]
fn storage_calls_round_trip_through_the_fake_host() {
    let id = testing::call::<save>(json!({ "text": "hello" })).unwrap();
    let id_str = id.as_str().unwrap().to_string();
    assert_eq!(
        testing::call::<load>(json!({ "id": id_str.clone() })),
        Ok(json!(b"hello"))
    );
    assert_eq!(testing::file(&StorageId::new(id_str.clone())), Some(b"hello".to_vec()));

    let info = testing::call::<url_and_meta>(json!({ "id": id_str.clone() })).unwrap();
    assert_eq!(
        info["url"].as_str().unwrap(),
        format!("http://127.0.0.1:3210/api/storage/{id_str}")
    );
    let meta = &info["meta"];
    assert_eq!(meta["size"], json!(5));
    assert_eq!(meta["contentType"], json!("text/plain"));
    // SHA-256("hello") in hex
    assert_eq!(
        meta["sha256"],
        json!("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
    );

    // Deleting in a failed mutation keeps the file.
    assert!(testing::call::<remove_file_then_fail>(json!({ "id": id_str.clone() })).is_err());
    assert_eq!(testing::file(&StorageId::new(id_str.clone())), Some(b"hello".to_vec()));

    testing::call::<remove_file>(json!({ "id": id_str.clone() })).unwrap();
    assert_eq!(testing::call::<load>(json!({ "id": id_str.clone() })), Ok(Value::Null));
    assert_eq!(
        testing::call::<url_and_meta>(json!({ "id": id_str.clone() })),
        Ok(json!({ "url": null, "meta": null }))
    );
    let e = testing::call::<remove_file>(json!({ "id": id_str })).unwrap_err();
    assert!(e.message().contains("not found"), "{e}");
}

// The real host answers these kind rules with other messages
// (src/abi/storage.c); no test checks them against it.
#[test]
fn fake_host_upload_urls_and_storage_kind_rules() {
    let url = testing::call::<upload_url>(json!({})).unwrap();
    assert!(url
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:3210/api/storage/upload?token="));
    let id = testing::store_file(b"\x00\x01".to_vec(), None);
    let info = testing::call::<url_and_meta>(json!({ "id": id.clone() })).unwrap();
    assert_eq!(info["meta"]["size"], json!(2));
    assert!(info["meta"].get("contentType").is_none());

    let e = testing::call::<read_in_mutation>(json!({ "id": id.clone() })).unwrap_err();
    assert_eq!(e.message(), "reading a file is not allowed in a mutation");
    let e = testing::call::<store_in_query>(json!({})).unwrap_err();
    assert_eq!(e.message(), "storing a file is not allowed in a query");
    let e = testing::call::<patch_storage_doc>(json!({ "id": id })).unwrap_err();
    assert_eq!(e.message(), "system table _storage is written only by the host");
    let e = testing::call::<load>(json!({ "id": "not an id" })).unwrap_err();
    assert!(e.message().contains("invalid document id"), "{e}");
}

#[test]
fn storage_ids_are_strings() {
    let id = StorageId::new("kg2abc");
    assert_eq!(to_value(&id).unwrap(), json!("kg2abc"));
    assert_eq!(from_value::<StorageId>(json!("kg2abc")).unwrap(), id);
    assert_eq!(DocumentId::from(id.clone()).as_str(), "kg2abc");
    assert_eq!(id.to_string(), "kg2abc");
}

// ---- HTTP actions -------------------------------------------------------------

#[derive(serde::Deserialize)]
struct Signup {
    name: String,
}

#[http_action(method = "POST", route = "/signup")]
async fn signup(ctx: ActionCtx, req: HttpRequest) -> Result<HttpResponse, ConvexError> {
    if req.header("authorization") != Some("Bearer secret") {
        return Ok(HttpResponse::from_text("who are you?").with_status(401));
    }
    let body: Signup = req.json()?;
    let id: DocumentId = ctx.run_mutation("services:bump", json!({ "name": body.name })).await?;
    Ok(HttpResponse::from_json(&json!({ "id": id, "source": req.query_param("source") })).with_status(201))
}

#[http_action(method = "GET", route = "/files/")]
async fn download(storage: Storage, req: HttpRequest) -> Result<HttpResponse, ConvexError> {
    let id = req.path.rsplit('/').next().unwrap_or_default();
    Ok(match storage.get(id.into()).await? {
        Some(bytes) => HttpResponse::new(200).with_body(bytes),
        None => HttpResponse::new(404),
    })
}

#[http_action(method = "GET", route = "/panic")]
fn panics() -> HttpResponse {
    panic!("no handler")
}

// The real server: tests/e2e/platform.test.js "HTTP actions are routed by
// method and path and see the request", tests/e2e/http.test.js "the users
// example's HTTP action creates a user from a webhook".
#[test]
fn http_actions_answer_requests_through_the_fake_host() {
    testing::register::<bump>();
    let req = HttpRequest::new("POST", "/signup?source=test%20suite")
        .with_header("Authorization", "Bearer secret")
        .with_body(r#"{"name": "Ada"}"#);
    let resp = testing::call_http::<signup>(req.clone()).unwrap();
    assert_eq!(resp.status, 201);
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
    let body = resp.json().unwrap();
    assert_eq!(body["source"], json!("test suite"));
    assert_eq!(body["id"].as_str(), Some(testing::documents("bumps")[0].id().as_str()));

    let resp = testing::call_http::<signup>(HttpRequest::new("POST", "/signup")).unwrap();
    assert_eq!((resp.status, resp.text().as_str()), (401, "who are you?"));

    let e = testing::call_http::<signup>(req.with_body("{")).unwrap_err();
    assert!(e.message().starts_with("request body: "), "{e}");

    let id = testing::store_file("contents", None);
    let resp = testing::call_http::<download>(HttpRequest::new("GET", &format!("/files/{id}"))).unwrap();
    assert_eq!((resp.status, resp.text().as_str()), (200, "contents"));
    let resp =
        testing::call_http::<download>(HttpRequest::new("GET", "/files/kg2aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")).unwrap();
    assert_eq!(resp.status, 404);

    let e = testing::call_http::<panics>(HttpRequest::new("GET", "/panic")).unwrap_err();
    assert_eq!(e.message(), "Uncaught Error: no handler");
}

#[test]
fn http_action_exchange_follows_the_abi() {
    // The request exactly as the host sends it, the response as it reads it.
    let req = Value::from_json(
        r#"{"method": "GET", "url": "/http/files/abc?x=1", "path": "/files/abc",
            "query": "x=1", "headers": [["Accept", "*/*"]], "body": {"$bytes": ""}}"#,
    )
    .unwrap();
    let resp = testing::call::<download>(req).unwrap_err();
    assert!(resp.message().contains("invalid document id \"abc\""), "{resp}");
    let id = testing::store_file("hi", None);
    let resp = testing::call::<download>(json!({ "method": "GET", "path": format!("/files/{id}") })).unwrap();
    assert_eq!(resp, json!({ "status": 200, "headers": [], "body": b"hi" }));
}

#[test]
fn http_action_metadata() {
    let m = testing::metadata::<signup>();
    assert_eq!(m["kind"], json!("httpAction"));
    assert_eq!(
        (m["method"].as_str(), m["route"].as_str()),
        (Some("POST"), Some("/signup"))
    );
    assert_eq!(m["path"], json!("services:signup"));
    assert_eq!(m["export"], json!("cvx:services::signup"));
    assert_eq!(m["visibility"], json!("public"));
    let args: Vec<&str> = m["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(args, ["method", "url", "path", "query", "headers", "body"]);
    assert_eq!(m["returns"]["fields"]["status"], json!({ "type": "float64" }));
    assert_eq!(<signup as ConvexFunction>::KIND, FunctionKind::HttpAction);
    assert!(testing::metadata::<bump>().get("method").is_none());
}

#[test]
fn http_request_helpers() {
    let req = HttpRequest::new("GET", "/q?a=1&b=x+y&c=%E2%9C%93&d&a=2&bad=%zz");
    assert_eq!(req.url, "/http/q?a=1&b=x+y&c=%E2%9C%93&d&a=2&bad=%zz");
    assert_eq!(req.query_param("a").as_deref(), Some("1"));
    assert_eq!(req.query_param("b").as_deref(), Some("x y"));
    assert_eq!(req.query_param("c").as_deref(), Some("✓"));
    assert_eq!(req.query_param("d").as_deref(), Some(""));
    assert_eq!(req.query_param("bad").as_deref(), Some("%zz"));
    assert_eq!(req.query_param("e"), None);
    assert_eq!(HttpRequest::new("GET", "/plain").query, "");
    let r = HttpResponse::from_json(&json!({ "n": 1i64, "b": b"hi" }));
    assert_eq!(r.text(), r#"{"b":"aGk=","n":1}"#);
}

// ---- crons ----------------------------------------------------------------------

crons! {
    "bump every minute" every 1 minute => bump { "name": "cron" };
    "nightly report"    cron "0 3 * * 1-5" => "reports:nightly" { "kind": "full", "limit": 10i64, "tags": ["a", null] };
    "hourly"            every 1.5 hours => "reports:hourly";
}

#[test]
fn crons_record() {
    let v = Value::from_json(__CONVEX_CRONS_JSON).unwrap();
    assert_eq!(
        v,
        Value::from_json(
            r#"{"abi": 1, "crons": [
                {"name": "bump every minute", "path": "services:bump", "args": {"name": "cron"},
                 "schedule": {"every": {"ms": 60000}}},
                {"name": "nightly report", "path": "reports:nightly",
                 "args": {"kind": "full", "limit": {"$integer": "CgAAAAAAAAA="}, "tags": ["a", null]},
                 "schedule": {"cron": "0 3 * * 1-5"}},
                {"name": "hourly", "path": "reports:hourly", "args": {}, "schedule": {"every": {"ms": 5400000}}}]}"#
        )
        .unwrap()
    );
    testing::register::<bump>();
    let id = testing::run_cron(__CONVEX_CRONS_JSON, "bump every minute").unwrap();
    assert_eq!(testing::documents("bumps")[0].id().as_str(), id.as_str().unwrap());
    let e = testing::run_cron(__CONVEX_CRONS_JSON, "hourly").unwrap_err();
    assert_eq!(e.code(), ErrorCode::NoFunction);
}

// ---- environment variables --------------------------------------------------

#[query]
async fn read_env(name: String) -> Result<Value, ConvexError> {
    Ok(json!({ "value": env::var(&name)?, "names": env::vars()?.into_keys().collect::<Vec<_>>() }))
}

// The same against the real server: tests/e2e/env.test.js.
#[test]
fn env_var_reads_what_set_env_set() {
    testing::reset();
    assert_eq!(
        testing::call::<read_env>(json!({ "name": "KEY" })).unwrap(),
        json!({ "value": null, "names": [] })
    );
    testing::set_env("KEY", Some("secret"));
    testing::set_env("B", Some("2"));
    assert_eq!(
        testing::call::<read_env>(json!({ "name": "KEY" })).unwrap(),
        json!({ "value": "secret", "names": ["B", "KEY"] })
    );
    testing::set_env("KEY", None);
    assert_eq!(
        testing::call::<read_env>(json!({ "name": "KEY" })).unwrap()["value"],
        json!(null)
    );
}

// ---- authentication ---------------------------------------------------------

#[query]
async fn whoami(auth: Auth) -> Result<Option<UserIdentity>, ConvexError> {
    auth.user_identity().await
}

#[mutation]
async fn whoami_mutation(auth: Auth) -> Result<Option<UserIdentity>, ConvexError> {
    auth.user_identity().await
}

/// The action's own caller, and the caller a query it runs sees.
#[action]
async fn whoami_action(ctx: ActionCtx) -> Result<Value, ConvexError> {
    let own = ctx.auth().user_identity().await?;
    let nested: Value = ctx.run_query(<whoami as ConvexFunction>::PATH, ()).await?;
    Ok(json!({ "own": own, "nested": nested }))
}

#[http_action(method = "GET", route = "/whoami")]
async fn whoami_http(auth: Auth) -> Result<HttpResponse, ConvexError> {
    let user = auth.user_identity().await?;
    Ok(HttpResponse::from_text(
        user.map_or("anonymous".to_string(), |u| u.subject),
    ))
}

/// Records its caller's subject (null when anonymous).
#[mutation]
async fn record_caller(db: Database, auth: Auth) -> Result<DocumentId, ConvexError> {
    let subject = auth.user_identity().await?.map(|u| u.subject);
    db.insert("callers", json!({ "subject": subject })).await
}

#[mutation]
async fn schedule_record_caller(scheduler: Scheduler) -> Result<DocumentId, ConvexError> {
    scheduler
        .run_after(0, <record_caller as ConvexFunction>::PATH, ())
        .await
}

fn ada() -> UserIdentity {
    UserIdentity {
        name: Some("Ada Lovelace".into()),
        email: Some("ada@example.com".into()),
        email_verified: Some(true),
        ..UserIdentity::new("https://issuer.example", "user_1")
    }
    .with_claim("org", json!({ "id": "acme", "roles": ["admin"] }))
}

// The same against the real server: tests/e2e (whoami, whoami_mutation and
// whoami_action of tests/fixtures/guest).
#[test]
fn anonymous_caller_has_no_identity() {
    testing::reset();
    testing::register::<whoami>();
    assert_eq!(testing::call::<whoami>(json!({})).unwrap(), json!(null));
    assert_eq!(testing::call::<whoami_mutation>(json!({})).unwrap(), json!(null));
    assert_eq!(
        testing::call::<whoami_action>(json!({})).unwrap(),
        json!({ "own": null, "nested": null })
    );
    let response = testing::call_http::<whoami_http>(HttpRequest::new("GET", "/whoami")).unwrap();
    assert_eq!(response.text(), "anonymous");
    assert_eq!(testing::block_on(Auth::for_tests().user_identity()).unwrap(), None);
}

#[test]
fn set_identity_is_what_every_kind_sees() {
    testing::reset();
    testing::register::<whoami>();
    testing::set_identity(ada());
    let expected = json!({
        "tokenIdentifier": "https://issuer.example|user_1",
        "subject": "user_1",
        "issuer": "https://issuer.example",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "emailVerified": true,
        "org": { "id": "acme", "roles": ["admin"] },
    });
    assert_eq!(testing::call::<whoami>(json!({})).unwrap(), expected);
    assert_eq!(testing::call::<whoami_mutation>(json!({})).unwrap(), expected);
    assert_eq!(
        testing::call::<whoami_action>(json!({})).unwrap(),
        json!({ "own": expected.clone(), "nested": expected.clone() })
    );
    let response = testing::call_http::<whoami_http>(HttpRequest::new("GET", "/whoami")).unwrap();
    assert_eq!(response.text(), "user_1");

    // Read directly: the fields and the custom claim.
    let user = testing::block_on(Auth::for_tests().user_identity()).unwrap().unwrap();
    assert_eq!(user, ada());
    assert_eq!(user.token_identifier, "https://issuer.example|user_1");
    assert_eq!(user.email.as_deref(), Some("ada@example.com"));
    assert_eq!(user.email_verified, Some(true));
    assert_eq!(user.given_name, None);
    assert_eq!(user.claim("org").unwrap()["roles"][0], json!("admin"));
    assert_eq!(user.claim("missing"), None);

    testing::set_identity(None);
    assert_eq!(testing::call::<whoami>(json!({})).unwrap(), json!(null));
}

#[test]
fn scheduled_functions_run_anonymously() {
    testing::reset();
    testing::register::<record_caller>();
    testing::set_identity(ada());
    testing::call::<record_caller>(json!({})).unwrap();
    testing::call::<schedule_record_caller>(json!({})).unwrap();
    assert_eq!(testing::run_scheduled(), 1);
    let subjects: Vec<Value> = testing::documents("callers")
        .iter()
        .map(|d| d["subject"].clone())
        .collect();
    assert_eq!(subjects, [json!("user_1"), json!(null)]);
    // The caller's identity is back after the job.
    assert_eq!(testing::call::<whoami>(json!({})).unwrap()["subject"], json!("user_1"));
}

mod auth_providers {
    convex_sdk::auth_config! {
        providers: [
            { domain: env("AUTH_ISSUER"), application_id: "my-app" },
            {
                custom_jwt: {
                    issuer: "https://x",
                    jwks: "https://x/jwks.json",
                    algorithm: "ES256",
                    application_id: "my-app",
                },
            },
            { custom_jwt: { issuer: "https://y", jwks: "https://y/jwks.json", algorithm: "RS256" } },
        ]
    }

    #[test]
    fn auth_config_record() {
        assert_eq!(
            __CONVEX_AUTH_JSON,
            concat!(
                r#"{"abi":1,"providers":["#,
                r#"{"domain":{"env":"AUTH_ISSUER"},"applicationID":"my-app"},"#,
                r#"{"type":"customJwt","issuer":"https://x","jwks":"https://x/jwks.json","algorithm":"ES256","applicationID":"my-app"},"#,
                r#"{"type":"customJwt","issuer":"https://y","jwks":"https://y/jwks.json","algorithm":"RS256"}"#,
                r#"]}"#
            )
        );
        // The section's framing (ABI §4): a u32 length, then the JSON.
        let json = __CONVEX_AUTH_JSON.as_bytes();
        assert_eq!(__CONVEX_AUTH[..4], (json.len() as u32).to_le_bytes());
        assert_eq!(&__CONVEX_AUTH[4..], json);
        convex_sdk::Value::from_json(__CONVEX_AUTH_JSON).unwrap();
    }
}
