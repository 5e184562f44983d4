//! Re-exports Wasmtime's C API so that cargo produces `libwasmtime.a` with
//! every `wasm_*` / `wasmtime_*` symbol the host links against.
pub use wasmtime_c_api::*;
