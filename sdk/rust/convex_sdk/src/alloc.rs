//! The guest's global allocator: the system allocator, plus a report to the
//! host when an allocation fails.
//!
//! When a function outgrows its memory limit, `memory.grow` fails, the
//! allocator returns null and std aborts — a bare trap the host could not
//! tell from any other. Reporting the failed size first (through
//! `__convex_panic` with `"kind": "oom"`) lets the host say "function
//! exceeded its memory limit". The report is written without allocating.
//!
//! A crate that installs its own `#[global_allocator]` cannot link with the
//! SDK on wasm; it would lose this report anyway.

use std::alloc::{GlobalAlloc, Layout, System};

struct ReportingAllocator;

fn report(size: usize) {
    // `{"message":"out of memory","kind":"oom","size":<n>}` in a stack buffer.
    let mut buf = [0u8; 96];
    let head = br#"{"message":"out of memory","kind":"oom","size":"#;
    let mut n = head.len();
    buf[..n].copy_from_slice(head);
    let mut digits = [0u8; 20];
    let mut d = 0;
    let mut v = size;
    loop {
        digits[d] = b'0' + (v % 10) as u8;
        d += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    while d > 0 {
        d -= 1;
        buf[n] = digits[d];
        n += 1;
    }
    buf[n] = b'}';
    n += 1;
    crate::sys::panic_record(&buf[..n]);
}

// SAFETY: every method forwards to `System` unchanged; the report neither
// allocates nor touches the returned memory.
unsafe impl GlobalAlloc for ReportingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if p.is_null() {
            report(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if p.is_null() {
            report(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if p.is_null() {
            report(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: ReportingAllocator = ReportingAllocator;
