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

#[query]
async fn query_schedules(_scheduler: Scheduler) {}

// Fine: every context a mutation may have, once each.
#[mutation]
async fn all_mutation_contexts(_db: Database, _scheduler: Scheduler, _storage: Storage) {}

#[action]
async fn two_storages(_ctx: ActionCtx, _a: Storage, _b: Storage) {}

// Fine: `Auth` in every kind.
#[query]
async fn query_auth(_db: Database, _auth: Auth, _storage: Storage) {}

#[action]
async fn borrowed_auth(_ctx: ActionCtx, _auth: &Auth) {}

#[mutation]
async fn request_in_mutation(_db: Database, _req: HttpRequest) {}

fn main() {}
