// The impl crate installs its headers (with a generated conf.h) into its
// OUT_DIR and publishes the path as DEP_WASMTIME_C_API_INCLUDE; copy them to
// a stable place next to the library so the C build can find them.
use std::{env, fs, path::Path};

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

fn main() {
    let include = env::var("DEP_WASMTIME_C_API_INCLUDE")
        .expect("wasmtime-c-api-impl did not publish its include directory");
    let dest = env::var("CVX_WASMTIME_INCLUDE_OUT").unwrap_or_else(|_| {
        let out = env::var("OUT_DIR").unwrap();
        format!("{out}/include")
    });
    copy_dir(Path::new(&include), Path::new(&dest));
    println!("cargo:rerun-if-env-changed=CVX_WASMTIME_INCLUDE_OUT");
}
