//! The SDK's fake store against the C store: random sequences of database
//! operations (fixed seeds) run through `conformance:run` natively (the
//! fake host of `convex_sdk::testing`) and through `cvx run` on the wasm
//! build (the real host and its SQLite store); every operation's result
//! must be the same. Error messages are not compared (each store words its
//! own), error codes are.
//!
//! `CVX_BIN` names the cvx binary (default `<repo>/build/cvx`);
//! `CONFORMANCE_SEQUENCES` the number of random sequences (default 200);
//! `CONFORMANCE_SEED` runs that one seed only; `CONFORMANCE_SHOW=1` prints
//! every operation with both results; `CONFORMANCE_KNOWN` (`all`, or some
//! of `names,limit0,ids`) adds the cases of the known differences, which
//! fail (README.md).

use std::path::{Path, PathBuf};
use std::process::Command;

use convex_sdk::{json, testing, Value};

#[path = "conformance/fixed.rs"]
mod fixed;
#[path = "conformance/sequences.rs"]
mod sequences;

use fixed::*;
use sequences::*;

// ---- running a sequence ------------------------------------------------------

/// The state a sequence carries from one call to the next.
struct Carry {
    ids: Value,
    cts: Value,
    cursors: Value,
}

impl Carry {
    fn new() -> Carry {
        Carry {
            ids: arr(vec![]),
            cts: arr(vec![]),
            cursors: arr(vec![]),
        }
    }

    fn args(&self, ops: &[Value]) -> Value {
        obj([
            ("ops", arr(ops.to_vec())),
            ("ids", self.ids.clone()),
            ("cts", self.cts.clone()),
            ("cursors", self.cursors.clone()),
        ])
    }

    /// Takes the tables out of a call's result and returns its results.
    fn absorb(&mut self, out: Value) -> Result<Vec<Value>, String> {
        let results = out["results"]
            .as_array()
            .cloned()
            .ok_or_else(|| format!("no results in {out}"))?;
        self.ids = out["ids"].clone();
        self.cts = out["cts"].clone();
        self.cursors = out["cursors"].clone();
        Ok(results)
    }
}

/// The sequence through the fake store.
fn run_native(calls: &[Vec<Value>]) -> Result<Vec<Value>, String> {
    testing::reset();
    testing::use_schema(conformance::__CONVEX_SCHEMA_JSON);
    let mut carry = Carry::new();
    let mut results = Vec::new();
    for ops in calls {
        let out = testing::call::<conformance::run>(carry.args(ops))
            .map_err(|e| format!("fake store: conformance:run failed: {e}"))?;
        results.extend(carry.absorb(out)?);
    }
    Ok(results)
}

struct Cvx {
    bin: PathBuf,
    crate_dir: PathBuf,
    /// The wasm module after the first build.
    wasm: Option<PathBuf>,
    tmp: PathBuf,
    /// Time spent in `cvx run`.
    busy: std::time::Duration,
}

impl Cvx {
    fn new() -> Cvx {
        let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let repo = crate_dir.join("../..").canonicalize().expect("the repository root");
        let bin = std::env::var_os("CVX_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo.join("build/cvx"));
        assert!(
            bin.is_file(),
            "the cvx binary {} is missing: build it with ./setup (or set CVX_BIN); this test compares the SDK's fake \
             store with the C store and cannot run without it",
            bin.display()
        );
        // One directory per instance (the tests of this file run in
        // parallel in one process).
        static INSTANCES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = std::env::temp_dir().join(format!("cvx-conformance-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&tmp).expect("a temporary directory");
        Cvx {
            bin,
            crate_dir,
            wasm: None,
            tmp,
            busy: std::time::Duration::ZERO,
        }
    }

    /// One call of `conformance:run` with `args` on the database in `data`.
    fn call(&mut self, args: &Value, data: &Path) -> Result<Value, String> {
        let started = std::time::Instant::now();
        let r = self.call_inner(args, data);
        self.busy += started.elapsed();
        r
    }

    fn call_inner(&mut self, args: &Value, data: &Path) -> Result<Value, String> {
        // Arguments go on the command line; keep each well under the
        // kernel's limit for one argument (128 KiB).
        let json = args.to_json();
        assert!(
            json.len() < 120_000,
            "a call's arguments are {} bytes; cut the sequence finer",
            json.len()
        );
        let mut cmd = Command::new(&self.bin);
        cmd.arg("run")
            .arg(&self.crate_dir)
            .arg("conformance:run")
            .arg(&json)
            .arg("--data")
            .arg(data);
        cmd.arg("--json");
        if let Some(wasm) = &self.wasm {
            cmd.arg("--wasm").arg(wasm);
        }
        // The first call builds the crate for wasm: one job (the machine is
        // shared).
        cmd.env("CARGO_BUILD_JOBS", "1");
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let response = Value::from_json(stdout.trim()).map_err(|e| {
            format!(
                "cvx run exited with {} and printed no JSON response ({e}):\nstdout: {stdout}\nstderr: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        if response["status"].as_str() != Some("success") {
            return Err(format!("cvx run: conformance:run failed: {response}"));
        }
        if self.wasm.is_none() {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| self.crate_dir.join("target"));
            let wasm = target.join("wasm32-wasip1/release/conformance.wasm");
            if wasm.is_file() {
                self.wasm = Some(wasm);
            }
        }
        Ok(response["value"].clone())
    }

    /// The sequence through the C store, on a fresh database.
    fn run(&mut self, name: &str, calls: &[Vec<Value>]) -> Result<Vec<Value>, String> {
        let dir: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let data = self.tmp.join(dir);
        let _ = std::fs::remove_dir_all(&data);
        let mut carry = Carry::new();
        let mut results = Vec::new();
        for ops in calls {
            let out = self.call(&carry.args(ops), &data)?;
            results.extend(carry.absorb(out)?);
        }
        let _ = std::fs::remove_dir_all(&data);
        Ok(results)
    }
}

impl Drop for Cvx {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

/// A result without error messages (each store words its own).
fn comparable(v: &Value) -> Value {
    match v {
        Value::Object(o) if o.contains_key("error") && o.contains_key("message") => {
            obj([("error", o["error"].clone())])
        }
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), comparable(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(comparable).collect()),
        v => v.clone(),
    }
}

/// Compares the results of `calls`; on a difference, a report with the
/// sequence and the first differing operation.
fn compare(name: &str, calls: &[Vec<Value>], fake: &[Value], real: &[Value]) -> Result<(), String> {
    let ops: Vec<&Value> = calls.iter().flatten().collect();
    if fake.len() != ops.len() || real.len() != ops.len() {
        return Err(format!(
            "{name}: {} operations, {} results from the fake store, {} from the C store",
            ops.len(),
            fake.len(),
            real.len()
        ));
    }
    let Some(at) = (0..ops.len()).find(|&k| comparable(&fake[k]).to_json() != comparable(&real[k]).to_json()) else {
        return Ok(());
    };
    let mut report =
        format!("{name}: the stores disagree at operation {at}\n\nthe sequence (calls separated by ---):\n");
    let mut k = 0;
    for (c, call) in calls.iter().enumerate() {
        if c > 0 {
            report.push_str("---\n");
        }
        for op in call {
            report.push_str(&format!("{k:4} {}{op}\n", if k == at { ">" } else { " " }));
            k += 1;
        }
    }
    report.push_str(&format!(
        "\noperation {at}: {}\n  fake store: {}\n  C store:    {}\n{}",
        ops[at],
        fake[at],
        real[at],
        diff(&comparable(&fake[at]), &comparable(&real[at]), "$")
    ));
    Err(report)
}

/// Where two values first differ (a path and both sides).
fn diff(a: &Value, b: &Value, path: &str) -> String {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            for (k, (p, q)) in x.iter().zip(y).enumerate() {
                if p.to_json() != q.to_json() {
                    return diff(p, q, &format!("{path}[{k}]"));
                }
            }
            format!("  first difference at {path}: {} items vs {} items\n", x.len(), y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys()) {
                match (x.get(key), y.get(key)) {
                    (Some(p), Some(q)) if p.to_json() == q.to_json() => {}
                    (Some(p), Some(q)) => return diff(p, q, &format!("{path}.{key}")),
                    (p, q) => {
                        return format!(
                            "  first difference at {path}.{key}: {} vs {}\n",
                            p.map_or("(missing)".to_string(), Value::to_json),
                            q.map_or("(missing)".to_string(), Value::to_json)
                        )
                    }
                }
            }
            format!("  first difference at {path}\n")
        }
        _ => format!("  first difference at {path}: fake {a} vs C {b}\n"),
    }
}

fn check(cvx: &mut Cvx, name: &str, calls: &[Vec<Value>]) -> Result<usize, String> {
    let fake = run_native(calls)?;
    let real = cvx.run(name, calls)?;
    if std::env::var_os("CONFORMANCE_SHOW").is_some() {
        eprintln!("{name}:");
        for (k, op) in calls.iter().flatten().enumerate() {
            eprintln!("{k:4} {op}\n  fake: {}\n  C:    {}", fake[k], real[k]);
        }
    }
    compare(name, calls, &fake, &real)?;
    Ok(fake.len())
}

/// Shorthands for the fixed cases.
#[test]
fn regressions_and_known_differences() {
    let mut cvx = Cvx::new();
    let mut failures = Vec::new();
    let known = known_cases();
    let n_known = known.len();
    for (k, (name, calls)) in regressions().into_iter().chain(known).enumerate() {
        if let Err(report) = check(&mut cvx, &format!("fixed {k} ({name})"), &calls) {
            failures.push(report);
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixed sequences differ between the fake store and the C store ({n_known} cases of known differences \
         were asked for):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}"))
    })
}

#[test]
fn fake_store_matches_the_c_store() {
    let mut cvx = Cvx::new();
    let seeds: Vec<u64> = match env_number("CONFORMANCE_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_number("CONFORMANCE_SEQUENCES").unwrap_or(200)).collect(),
    };
    let started = std::time::Instant::now();
    let (mut ops, mut calls, mut failures) = (0, 0, Vec::new());
    for seed in &seeds {
        let mut gen = Gen::new(*seed);
        let len = 40 + gen.rng.below(80);
        let sequence = gen.sequence(len);
        calls += sequence.len();
        match check(&mut cvx, &format!("seed {seed}"), &sequence) {
            Ok(n) => ops += n,
            Err(report) => failures.push(report),
        }
    }
    eprintln!(
        "conformance: {} sequences, {ops} operations in {calls} calls, {} failed, {:.1} s ({:.1} s in cvx run)",
        seeds.len(),
        failures.len(),
        started.elapsed().as_secs_f64(),
        cvx.busy.as_secs_f64()
    );
    if let Some(first) = failures.first() {
        // One line per failing sequence: its operation and first difference.
        let summary: Vec<String> = failures
            .iter()
            .map(|r| {
                let line = |prefix: &str| {
                    r.lines()
                        .find(|l| l.trim_start().starts_with(prefix))
                        .unwrap_or("")
                        .trim()
                };
                format!("  {}\n    {}", r.lines().next().unwrap_or(""), line("first difference"))
            })
            .collect();
        panic!(
            "{} of {} sequences differ between the fake store and the C store (rerun one with \
             CONFORMANCE_SEED=<seed>):\n{}\n\nthe first:\n\n{first}",
            failures.len(),
            seeds.len(),
            summary.join("\n")
        );
    }
}
