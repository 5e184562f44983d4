use convex_sdk::*;

#[action]
async fn action_with_db(_db: Database) -> Result<(), ConvexError> {
    Ok(())
}

#[query]
async fn query_with_action_ctx(_ctx: ActionCtx) -> Result<(), ConvexError> {
    Ok(())
}

#[mutation]
async fn borrowed_db(_db: &Database) -> Result<(), ConvexError> {
    Ok(())
}

#[query]
async fn two_dbs(_a: Database, _b: Database) {}

fn main() {}
