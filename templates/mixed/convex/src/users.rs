use convex_sdk::*;

// The Rust half of the `users` module: `api.users.create` and `api.users.me`.
// The TypeScript half, `api.users.list`, is in convex/users.ts; the notes of
// signed-in users are in TypeScript too, in convex/notes.ts.

/// Adds a user; the page calls it as `api.users.create`.
#[mutation]
async fn create(db: Database, name: String, email: String) -> Result<DocumentId, ConvexError> {
    if name.trim().is_empty() {
        return Err(ConvexError::app(json!({ "field": "name", "message": "a name is required" })));
    }
    db.insert("users", json!({ "name": name, "email": email })).await
}

/// Who is signed in: the caller's identity from the token the page sent,
/// or null for an anonymous caller. (Who may sign in is declared in
/// convex/auth.config.ts.)
#[query]
async fn me(auth: Auth) -> Result<Option<Value>, ConvexError> {
    let user = auth.user_identity().await?;
    Ok(user.map(|u| json!({ "name": u.name, "email": u.email, "tokenIdentifier": u.token_identifier })))
}
