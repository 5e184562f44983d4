// convex/src/lib.rs
use convex_sdk::*;

#[query]
async fn get_user(db: Database, id: String) -> Result<Option<Document>, ConvexError> {
    db.get(id.into()).await
}

#[mutation]
async fn create_user(
    db: Database,
    name: String,
    email: String,
) -> Result<DocumentId, ConvexError> {
    db.insert("users", json!({ "name": name, "email": email })).await
}

#[action]
async fn send_webhook(url: String, data: String) -> Result<(), ConvexError> {
    let response = fetch(&url, FetchOptions::new()
        .method("POST")
        .header("Content-Type", "application/json")
        .body(data.into_bytes())).await?;

    if response.status == 200 {
        Ok(())
    } else {
        Err(ConvexError::Unknown("Webhook failed".to_string()))
    }
}

// ---------------------------------------------------------------------------
// Everything above is the usage example of the system description, verbatim.
// Below: more of the same crate, for a fuller demo (`api.users.list`, ...).
// ---------------------------------------------------------------------------

use serde::{Deserialize, Serialize};

schema! {
    users {
        name: String,
        email: String,
    }
    index by_email(email);
}

/// A user document's fields, for typed access.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct User {
    /// Display name.
    pub name: String,
    /// Email address (unique by convention, see `by_email`).
    pub email: String,
}

/// The newest users first, at most `limit` (default 100).
#[query]
async fn list(db: Database, limit: Option<f64>) -> Result<Vec<Document>, ConvexError> {
    let limit = limit.unwrap_or(100.0).clamp(0.0, 1000.0) as usize;
    db.query("users").order(Order::Desc).take(limit).await
}

/// The user with this email, through the `by_email` index.
#[query]
async fn by_email(db: Database, email: String) -> Result<Option<Document>, ConvexError> {
    db.query("users").with_index("by_email", |r| r.eq("email", email)).unique().await
}

/// Every user's email, in creation order (typed access through serde).
#[query]
async fn emails(db: Database) -> Result<Vec<String>, ConvexError> {
    let users: Vec<User> = db.query("users").collect_as().await?;
    Ok(users.into_iter().map(|u| u.email).collect())
}

/// How many users there are.
#[query]
async fn count(db: Database) -> Result<f64, ConvexError> {
    Ok(db.query("users").count().await? as f64)
}

/// One page of users for `usePaginatedQuery` (oldest first): its
/// `paginationOpts` argument arrives as `opts`.
#[query]
async fn page(db: Database, opts: PaginationOpts) -> Result<PaginationResult, ConvexError> {
    db.query("users").paginate_with(opts).await
}

/// Changes a user's email. A missing user is an application error with
/// data `{"code": "NO_SUCH_USER", "id": ...}`.
#[mutation]
async fn update_email(db: Database, id: DocumentId, email: String) -> Result<User, ConvexError> {
    let Some(mut user) = db.get_as::<User>(id.clone()).await? else {
        return Err(ConvexError::app(json!({ "code": "NO_SUCH_USER", "id": id })));
    };
    user.email = email;
    db.patch(id, &user).await?;
    Ok(user)
}

/// Deletes a user.
#[mutation]
async fn delete_user(db: Database, id: DocumentId) -> Result<(), ConvexError> {
    db.delete(id).await
}

/// Creates a user unless the email is taken, from an action: runs a query
/// and a mutation through `ActionCtx`.
#[action]
async fn signup(ctx: ActionCtx, name: String, email: String) -> Result<DocumentId, ConvexError> {
    let existing: Option<Document> = ctx.run_query("users:by_email", json!({ "email": email.clone() })).await?;
    if existing.is_some() {
        return Err(ConvexError::app(json!({ "code": "EMAIL_TAKEN", "email": email })));
    }
    ctx.run_mutation("users:create_user", json!({ "name": name, "email": email })).await
}

/// `POST /http/webhook` with a JSON body `{"name": ..., "email": ...}`:
/// creates the user with `users:create_user` and answers `201` with
/// `{"id": ...}`. A body that is not such an object is a `400` with
/// `{"error": ...}`.
#[http_action(method = "POST", route = "/webhook")]
async fn webhook(ctx: ActionCtx, req: HttpRequest) -> Result<HttpResponse, ConvexError> {
    let user: User = match req.json() {
        Ok(user) => user,
        Err(e) => return Ok(HttpResponse::from_json(&json!({ "error": e.message() })).with_status(400)),
    };
    let id: DocumentId = ctx.run_mutation("users:create_user", &user).await?;
    Ok(HttpResponse::from_json(&json!({ "id": id })).with_status(201))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_get_list_update() {
        let id = testing::call::<create_user>(json!({"name": "Ada", "email": "ada@example.com"})).unwrap();
        let id = id.as_str().unwrap().to_string();
        let doc = testing::call::<get_user>(json!({ "id": id.clone() })).unwrap();
        assert_eq!(doc["name"], json!("Ada"));
        assert_eq!(doc["_id"], json!(id.clone()));

        testing::call::<create_user>(json!({"name": "Grace", "email": "grace@example.com"})).unwrap();
        let list = testing::call::<list>(json!({})).unwrap();
        assert_eq!(list[0]["name"], json!("Grace"), "newest first");
        assert_eq!(testing::call::<count>(json!({})), Ok(json!(2)));
        assert_eq!(testing::call::<emails>(json!({})), Ok(json!(["ada@example.com", "grace@example.com"])));

        let updated = testing::call::<update_email>(json!({"id": id.clone(), "email": "ada@lovelace.org"})).unwrap();
        assert_eq!(updated, json!({"name": "Ada", "email": "ada@lovelace.org"}));
        testing::use_schema(__CONVEX_SCHEMA_JSON);
        let found = testing::call::<by_email>(json!({"email": "ada@lovelace.org"})).unwrap();
        assert_eq!(found["_id"], json!(id.clone()));

        testing::call::<delete_user>(json!({ "id": id.clone() })).unwrap();
        assert_eq!(testing::call::<get_user>(json!({ "id": id.clone() })), Ok(Value::Null));
        let e = testing::call::<update_email>(json!({"id": id, "email": "x"})).unwrap_err();
        assert_eq!(e.data().unwrap()["code"], json!("NO_SUCH_USER"));
    }

    #[test]
    fn pages() {
        for i in 0..5 {
            testing::call::<create_user>(json!({"name": format!("u{i}"), "email": format!("u{i}@x")})).unwrap();
        }
        let first = testing::call::<page>(json!({"paginationOpts": {"numItems": 3, "cursor": null}})).unwrap();
        assert_eq!(first["page"].as_array().unwrap().len(), 3);
        assert_eq!(first["isDone"], json!(false));
        let next = json!({"paginationOpts": {"numItems": 3, "cursor": first["continueCursor"].clone()}});
        let rest = testing::call::<page>(next).unwrap();
        assert_eq!(rest["page"][1]["name"], json!("u4"));
        assert_eq!(rest["isDone"], json!(true));
    }

    #[test]
    fn webhook() {
        testing::set_fetch_handler(|req| {
            assert_eq!((req.method.as_str(), req.body.as_deref()), ("POST", Some(&b"{}"[..])));
            let status = if req.url.ends_with("/ok") { 200 } else { 500 };
            Ok(HttpResponse { status, headers: vec![], body: vec![] })
        });
        assert_eq!(testing::call::<send_webhook>(json!({"url": "https://hook/ok", "data": "{}"})), Ok(Value::Null));
        let e = testing::call::<send_webhook>(json!({"url": "https://hook/bad", "data": "{}"})).unwrap_err();
        assert_eq!(e.message(), "Webhook failed");
    }

    #[test]
    fn signup_runs_query_and_mutation() {
        testing::register::<by_email>();
        testing::register::<create_user>();
        testing::use_schema(__CONVEX_SCHEMA_JSON);
        let id = testing::call::<signup>(json!({"name": "Ada", "email": "ada@example.com"})).unwrap();
        assert!(id.as_str().is_some());
        let e = testing::call::<signup>(json!({"name": "Ada", "email": "ada@example.com"})).unwrap_err();
        assert_eq!(e.data().unwrap()["code"], json!("EMAIL_TAKEN"));
        assert_eq!(testing::documents("users").len(), 1);
    }

    #[test]
    fn webhook_inserts_a_user() {
        testing::register::<create_user>();
        let req = HttpRequest::new("POST", "/webhook")
            .with_header("Content-Type", "application/json")
            .with_body(r#"{"name": "Ada", "email": "ada@example.com"}"#);
        let resp = testing::call_http::<webhook>(req).unwrap();
        assert_eq!(resp.status, 201);
        let id = resp.json().unwrap()["id"].clone();
        let users = testing::documents("users");
        assert_eq!((users.len(), json!(users[0].id())), (1, id));
        assert_eq!(users[0]["email"], json!("ada@example.com"));

        let resp = testing::call_http::<webhook>(HttpRequest::new("POST", "/webhook").with_body(r#"{"name": "Ada"}"#)).unwrap();
        assert_eq!(resp.status, 400);
        assert!(resp.json().unwrap()["error"].as_str().unwrap().contains("email"), "{}", resp.text());

        let m = testing::metadata::<webhook>();
        assert_eq!((m["kind"].as_str(), m["method"].as_str(), m["route"].as_str()), (Some("httpAction"), Some("POST"), Some("/webhook")));
    }

    #[test]
    fn metadata_matches_the_abi_example() {
        let m = testing::metadata::<get_user>();
        assert_eq!(
            m,
            Value::from_json(
                r#"{"abi": 1, "path": "users:get_user", "kind": "query", "visibility": "public",
                    "export": "cvx:users::get_user",
                    "args": [{"name": "id", "type": {"type": "string"}}],
                    "returns": {"type": "optional", "inner": {"type": "document"}},
                    "file": "src/lib.rs", "line": 4}"#
            )
            .unwrap()
        );
    }
}
