use convex_sdk::*;

#[query(public)]
fn a() {}

#[query(name = "has space")]
fn b() {}

#[mutation(internal, internal)]
fn c() {}

#[action(name = 5)]
fn d() {}

fn main() {}
