use convex_sdk::*;

#[query]
fn destructured((x, y): (f64, f64)) -> f64 {
    x + y
}

#[query]
fn unnamed(_: String) {}

#[query]
fn borrowed(name: &str) -> String {
    name.to_string()
}

#[query]
fn opaque(_value: impl serde::Serialize) {}

fn main() {}
