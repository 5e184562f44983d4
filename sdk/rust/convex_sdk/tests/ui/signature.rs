use convex_sdk::*;

struct Service;

impl Service {
    #[query]
    fn method(&self, name: String) -> String {
        name
    }
}

#[query]
fn generic<T: serde::Serialize>(value: T) -> T {
    value
}

#[mutation]
unsafe fn dangerous() {}

fn main() {}
