use convex_sdk::*;

#[query]
async fn a_query(_db: Database) {}

mod zero {
    convex_sdk::crons! { "tick" every 0 seconds => "jobs:tick"; }
}

mod unit {
    convex_sdk::crons! { "tick" every 2 fortnights => "jobs:tick"; }
}

mod fraction {
    convex_sdk::crons! { "tick" every 0.5 ms => "jobs:tick"; }
}

mod four_fields {
    convex_sdk::crons! { "nightly" cron "0 3 * *" => "jobs:report"; }
}

mod out_of_range {
    convex_sdk::crons! { "nightly" cron "0 24 * * *" => "jobs:report"; }
}

mod names {
    convex_sdk::crons! { "nightly" cron "0 3 * * MON" => "jobs:report"; }
}

mod duplicate {
    convex_sdk::crons! {
        "tick" every 1 second => "jobs:tick";
        "tick" every 2 seconds => "jobs:tick";
    }
}

mod bad_path {
    convex_sdk::crons! { "tick" every 1 second => "tick"; }
}

mod expression_args {
    const N: f64 = 1.0;
    convex_sdk::crons! { "tick" every 1 second => "jobs:tick" { "n": N }; }
}

mod missing_semicolon {
    convex_sdk::crons! {
        "a" every 1 second => "jobs:a"
        "b" every 1 second => "jobs:b"
    }
}

mod query_target {
    convex_sdk::crons! { "tick" every 1 minute => super::a_query; }
}

fn main() {}
