use convex_sdk::*;

struct NotSerializable;
struct NotDeserializable;

#[query]
fn returns_unserializable() -> NotSerializable {
    NotSerializable
}

#[query]
fn takes_undeserializable(_input: NotDeserializable) {}

#[query]
fn wrong_error() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
