//! Compile-fail tests: each file under `ui/` must fail to compile with the
//! message in its `.stderr` file, pointing at the user's code.
//! Regenerate after an intended change with `TRYBUILD=overwrite cargo test --test ui`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
