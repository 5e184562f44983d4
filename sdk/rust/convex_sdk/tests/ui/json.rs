use convex_sdk::json;

fn main() {
    let _ = json!({ name: "Ada" });
    let _ = json!({ "a": 1 "b": 2 });
    let _ = json!([1, 2] 3);
    let _ = json!(1e999);
}
