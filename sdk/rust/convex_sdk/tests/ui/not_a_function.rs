use convex_sdk::*;

#[query]
struct Users;

#[mutation]
const LIMIT: u32 = 10;

fn main() {}
