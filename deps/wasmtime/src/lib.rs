//! Re-exports Wasmtime's C API so that cargo produces `libwasmtime.a` with
//! every `wasm_*` / `wasmtime_*` symbol the host links against, plus the one
//! setting cvx needs that the C API of this version does not expose.
pub use wasmtime_c_api::*;

/// Lets the pooling allocator find the pages a finished instance wrote with
/// the `PAGEMAP_SCAN` ioctl (Linux 6.7+) and reset only those. Without it,
/// every instance's release zeroes its whole `keep_resident` prefix: about
/// 1 MiB per call for a Rust guest (the shadow stack), a third of a call's
/// cost. "Auto" keeps the old behaviour where the ioctl is missing.
///
/// # Safety
/// `cfg` must be a live pointer from
/// `wasmtime_pooling_allocation_config_new`.
#[no_mangle]
pub unsafe extern "C" fn cvx_wasmtime_pooling_pagemap_scan_auto(cfg: *mut wasmtime_c_api::wasmtime_pooling_allocation_config_t) {
    // The C API's struct is `#[repr(C)]` with the Rust config as its only
    // field, so the pointers coincide; its field is private to that crate.
    let config = unsafe { &mut *cfg.cast::<wasmtime::PoolingAllocationConfig>() };
    config.pagemap_scan(wasmtime::Enabled::Auto);
}
