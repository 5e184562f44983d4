use convex_sdk::*;

// The Rust half of the `users` module: `api.users.create`. The TypeScript
// half, `api.users.list`, is in convex/users.ts.

/// Adds a user; the page calls it as `api.users.create`.
#[mutation]
async fn create(db: Database, name: String, email: String) -> Result<DocumentId, ConvexError> {
    if name.trim().is_empty() {
        return Err(ConvexError::app(json!({ "field": "name", "message": "a name is required" })));
    }
    db.insert("users", json!({ "name": name, "email": email })).await
}
