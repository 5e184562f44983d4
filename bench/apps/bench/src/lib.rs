//! Benchmark functions for `bench/run` (see bench/README.md). Every
//! workload has the same shape in the peers (bench/peers/*): the Node and
//! PocketBase servers do the same reads and writes on SQLite directly.
use convex_sdk::*;

schema! {
    users {
        name: String,
        email: String,
        n: f64,
    }
    index by_n(n);

    events {
        kind: String,
        n: f64,
        payload: String,
    }

    counters {
        name: String,
        count: f64,
    }
    index by_name(name);

    accounts {
        n: f64,
        balance: f64,
    }
    index by_n(n);
}

// ---- setup ------------------------------------------------------------------

/// Inserts users n = start .. start+count; returns their ids in n order.
#[mutation]
async fn seed_users(db: Database, start: f64, count: f64) -> Result<Vec<DocumentId>, ConvexError> {
    let mut ids = Vec::with_capacity(count as usize);
    for i in 0..count as u64 {
        let n = start + i as f64;
        ids.push(
            db.insert("users", json!({ "name": format!("user {n}"), "email": format!("user{n}@example.com"), "n": n }))
                .await?,
        );
    }
    Ok(ids)
}

/// Inserts accounts n = start .. start+count with `balance` each.
#[mutation]
async fn seed_accounts(
    db: Database,
    start: f64,
    count: f64,
    balance: f64,
) -> Result<f64, ConvexError> {
    for i in 0..count as u64 {
        db.insert(
            "accounts",
            json!({ "n": start + i as f64, "balance": balance }),
        )
        .await?;
    }
    Ok(count)
}

/// Accounts n in [start, start+count), for the invariant checks.
async fn accounts_between(
    db: &Database,
    start: f64,
    count: f64,
) -> Result<Vec<Document>, ConvexError> {
    db.query("accounts")
        .with_index("by_n", |r| r.gte("n", start).lt("n", start + count))
        .collect()
        .await
}

/// Sum of the balances of accounts n in [start, start+count) (a check that
/// transfers conserve money).
#[query]
async fn balance_sum(db: Database, start: f64, count: f64) -> Result<f64, ConvexError> {
    let mut sum = 0.0;
    for d in accounts_between(&db, start, count).await? {
        sum += d.get_as::<f64>("balance")?;
    }
    Ok(sum)
}

/// Sum of n × (balance - base) over accounts n in [start, start+count): the
/// harness compares it with the sum of (to - from) over every acknowledged
/// transfer, so an acknowledged transfer that did not move (or an
/// unacknowledged one that did) shows. Read-only; run after the timed window.
#[query]
async fn balance_wsum(db: Database, start: f64, count: f64, base: f64) -> Result<f64, ConvexError> {
    let mut sum = 0.0;
    for d in accounts_between(&db, start, count).await? {
        sum += d.get_as::<f64>("n")? * (d.get_as::<f64>("balance")? - base);
    }
    Ok(sum)
}

// ---- (a) point query, (b) index range -----------------------------------------

/// (a) One document by id.
#[query]
async fn get(db: Database, id: String) -> Result<Option<Document>, ConvexError> {
    db.get(id.into()).await
}

/// (b) 100 users from `by_n`, starting at n >= start.
#[query]
async fn range100(db: Database, start: f64) -> Result<Vec<Document>, ConvexError> {
    db.query("users")
        .with_index("by_n", |r| r.gte("n", start))
        .take(100)
        .await
}

/// (i) The read of the 90/10 mix: one account found through `by_n`, the
/// lookup a transfer makes, so the mix's writes change what it reads.
#[query]
async fn account(db: Database, n: f64) -> Result<Option<Document>, ConvexError> {
    db.query("accounts").with_index("by_n", |r| r.eq("n", n)).first().await
}

// ---- (c) insert, (d) counter, (e) action -----------------------------------------

/// (c) One small document, one durable transaction.
#[mutation]
async fn insert(db: Database, n: f64) -> Result<DocumentId, ConvexError> {
    db.insert(
        "events",
        json!({ "kind": "bench", "n": n, "payload": "0123456789abcdef0123456789abcdef" }),
    )
    .await
}

/// (d) Read-modify-write of one counter found through an index; every
/// client hits the same counter, so concurrent calls conflict and retry.
#[mutation]
async fn incr(db: Database, name: String) -> Result<f64, ConvexError> {
    let found = db
        .query("counters")
        .with_index("by_name", |r| r.eq("name", name.clone()))
        .first()
        .await?;
    match found {
        Some(doc) => {
            let count = doc.get_as::<f64>("count")? + 1.0;
            db.patch(doc.id(), json!({ "count": count })).await?;
            Ok(count)
        }
        None => {
            db.insert("counters", json!({ "name": name, "count": 1.0 }))
                .await?;
            Ok(1.0)
        }
    }
}

/// The counter's value (the subscription of the fan-out workload (f)).
#[query]
async fn counter(db: Database, name: String) -> Result<f64, ConvexError> {
    let found = db
        .query("counters")
        .with_index("by_name", |r| r.eq("name", name))
        .first()
        .await?;
    match found {
        Some(doc) => doc.get_as::<f64>("count"),
        None => Ok(0.0),
    }
}

/// (e) An action that runs the insert mutation.
#[action]
async fn act_insert(ctx: ActionCtx, n: f64) -> Result<DocumentId, ConvexError> {
    ctx.run_mutation("bench:insert", json!({ "n": n })).await
}

// ---- (h) keynote-2 transfer ----------------------------------------------------------

/// Moves `amount` from account `from` to account `to` (found through
/// `by_n`), unless the source lacks funds: the keynote-2 transaction.
/// Returns whether it moved money.
#[mutation]
async fn transfer(db: Database, from: f64, to: f64, amount: f64) -> Result<bool, ConvexError> {
    if from == to || amount <= 0.0 {
        return Ok(false);
    }
    let a = db
        .query("accounts")
        .with_index("by_n", |r| r.eq("n", from))
        .first()
        .await?;
    let b = db
        .query("accounts")
        .with_index("by_n", |r| r.eq("n", to))
        .first()
        .await?;
    let (Some(a), Some(b)) = (a, b) else {
        return Ok(false);
    };
    let (ab, bb) = (a.get_as::<f64>("balance")?, b.get_as::<f64>("balance")?);
    if ab < amount {
        return Ok(false);
    }
    db.patch(a.id(), json!({ "balance": ab - amount })).await?;
    db.patch(b.id(), json!({ "balance": bb + amount })).await?;
    Ok(true)
}

/// Pure computation for the metering benchmark (fuel vs epoch-only): the
/// total Collatz steps of 1..=n, a branchy loop like interpreter code.
#[query]
async fn work(n: f64) -> Result<f64, ConvexError> {
    let mut total: u64 = 0;
    for start in 1..=(n as u64) {
        let mut x = start;
        while x != 1 {
            x = if x % 2 == 0 { x / 2 } else { 3 * x + 1 };
            total += 1;
        }
    }
    Ok(total as f64)
}
