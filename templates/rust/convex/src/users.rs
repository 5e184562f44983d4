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

/// The newest users first (what the page shows, live).
#[query]
async fn list(db: Database) -> Result<Vec<Document>, ConvexError> {
    db.query("users").order(Order::Desc).take(100).await
}

/// Adds a user; the page calls it as `api.users.create`.
#[mutation]
async fn create(db: Database, name: String, email: String) -> Result<DocumentId, ConvexError> {
    if name.trim().is_empty() {
        return Err(ConvexError::app(json!({ "field": "name", "message": "a name is required" })));
    }
    db.insert("users", json!({ "name": name, "email": email })).await
}

/// Who is signed in: the caller's identity from the token the page sent,
/// or null for an anonymous caller.
#[query]
async fn me(auth: Auth) -> Result<Option<Value>, ConvexError> {
    let user = auth.user_identity().await?;
    Ok(user.map(|u| json!({ "name": u.name, "email": u.email, "tokenIdentifier": u.token_identifier })))
}
