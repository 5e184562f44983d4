use convex_sdk::*;

// Per-user data: each note belongs to the user who added it, keyed by the
// user's token_identifier (unique across providers). See README.md,
// "Signing in".

/// The caller's notes, newest first; none for an anonymous caller.
#[query]
async fn mine(db: Database, auth: Auth) -> Result<Vec<Document>, ConvexError> {
    let Some(user) = auth.user_identity().await? else {
        return Ok(vec![]);
    };
    db.query("notes")
        .with_index("by_owner", |r| r.eq("owner", user.token_identifier.as_str()))
        .order(Order::Desc)
        .take(100)
        .await
}

/// Adds a note of the caller's; the page calls it as `api.notes.add`.
#[mutation]
async fn add(db: Database, auth: Auth, text: String) -> Result<DocumentId, ConvexError> {
    let user = auth
        .user_identity()
        .await?
        .ok_or_else(|| ConvexError::app("sign in to add notes"))?;
    db.insert("notes", json!({ "owner": user.token_identifier, "text": text })).await
}
