#!/usr/bin/env python3
"""The cvx benchmark orchestrator (run through bench/run, which builds the tools first).

Seeds one data directory per system (cvx with the Rust bench app, "cvx";
the same server with the same functions in TypeScript, "cvx-ts"; the Node +
better-sqlite3 peer; the PocketBase peer), then runs --rounds paired rounds:
in each round every HTTP workload runs once on every selected system (and
the raw-SQLite loop), each run on a fresh server and a fresh copy of the
seeded data directory, the systems of a workload back to back in an order
rotated from round to round (round r starts at system r mod n), with the
random seed --seed + r for every system of the round. Write workloads are
followed by invariant checks. Reports per workload and system the median
and the min-max over rounds of throughput, p50/p99/p99.9, server CPU, requests
per server-core-second, CPU per request and the load generator's CPU; ratios
between systems are the median and min-max of per-round ratios. Then
fan-out, cold start, the native-call baseline and the idle memory per
deployed app; writes results.json, summary.md and chart.png (--out DIR).
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time

from openloop import open_loop
from special import cold_start, idle_memory
from systems import (BENCH, BUILD, CVX_SYSTEMS, N_USERS, NODE_VARIANTS, ROOT, app_file, call, check_invariants,
                     children_cpu, cleanup, cpu_seconds, family, http_spec, log, median, post, run_httpload, run_raw, seed,
                     start_cvx, start_node, start_pocketbase, start_system, tcp_retransmits)
import systems as system_defs
from targets import evaluate_targets

SYSTEMS = ["cvx", "cvx-ts", "node", "node-cluster", "node-batch", "pocketbase", "sqlite", "native"]

# workload id -> description; the HTTP request for each system is in http_spec().
WORKLOADS = [
    ("a_get", "(a) point query by id, cached (cvx query result cache on, the default)"),
    ("a_get_uncached", "(a) point query by id, uncached (cvx --query-cache 0: every call runs the query)"),
    ("b_range100", "(b) index range, 100 documents"),
    ("c_insert", "(c) insert mutation (durable)"),
    ("d_counter", "(d) contended counter mutation"),
    ("e_action", "(e) action calling a mutation"),
    ("f_fanout", "(f) subscription fan-out to 1000 WebSocket clients"),
    ("g_coldstart", "(g) cold start: first call after server start"),
    ("h_transfer_low", "(h) keynote-2 transfer, low contention (uniform)"),
    ("h_transfer_high", "(h) keynote-2 transfer, ~80% contention (Zipf 1.5)"),
    ("i_mix", "(i) 90/10 mix: 90% reads of one account by index, 10% keynote-2 transfers (uniform)"),
    ("j_get_1m", "(j) point query by id over 1,000,000 users, uniform (more data than the caches hold)"),
    ("j_get_1m_zipf", "(j) point query by id over 1,000,000 users, Zipf 1.0 over the ids"),
    ("o_open", "(o) open loop: p99 at fixed offered rates, and the highest rate with p99 < 20 ms"),
    ("call", "function-call overhead (no HTTP)"),
    ("m_idle_memory", "(m) resident memory of an idle server per deployed app"),
]
WORKLOAD_IDS = [w for w, _ in WORKLOADS]
# the HTTP workloads measured in paired rounds
HTTP_WORKLOADS = ("a_get", "a_get_uncached", "b_range100", "c_insert", "d_counter", "e_action", "h_transfer_low",
                  "h_transfer_high", "i_mix", "j_get_1m", "j_get_1m_zipf")
BIG_WORKLOADS = ("j_get_1m", "j_get_1m_zipf")  # on the 1M-user data set
N_BIG_USERS = 1_000_000
# The Node variants run only where they are the choice a user would make:
# a cluster for reads (writes still take SQLite's one lock in turn), batched
# commits for writes.
VARIANT_WORKLOADS = {
    "node-cluster": ("a_get", "a_get_uncached", "b_range100", "i_mix", "j_get_1m", "j_get_1m_zipf"),
    "node-batch": ("c_insert", "d_counter", "e_action", "h_transfer_low", "h_transfer_high", "i_mix"),
}
# the raw-SQLite loop for each HTTP workload (it has no result cache: a_get and a_get_uncached are the same loop)
RAW_MAP = {"a_get": "get", "a_get_uncached": "get", "b_range100": "range100", "c_insert": "insert",
           "d_counter": "incr", "h_transfer_low": "transfer", "h_transfer_high": "transfer"}
# the metrics summarised over rounds (median, min, max)
METRICS = ("rps", "p50_us", "p99_us", "p999_us", "server_cpu_cores", "req_per_core_s", "cpu_us_per_req",
           "loadgen_cpu_cores", "other_cpu_cores", "errors", "ok2", "t2_p50_us", "t2_p99_us")


def aggregate(rl):
    """One system's runs of one workload (one per round) -> the median and
    min-max of every metric over the rounds whose run succeeded and passed
    its invariants; the failed ones are listed, never dropped silently."""
    good = [r for r in rl if "rps" in r and r.get("invariants_ok") is not False]
    out = {"rounds": rl, "n_rounds": len(rl), "n_ok": len(good),
           "failed_rounds": [{"round": r.get("round"), "why": r.get("failed") or
                              "invariant failed: " + "; ".join(
                                  f"{k} ({v.get('what')}): expected {v.get('expected')}, found {v.get('found')}"
                                  for k, v in r.get("invariants", {}).items() if v.get("ok") is False)}
                             for r in rl if r not in good],
           "range": {}}
    for m in METRICS:
        vals = [r[m] for r in good if r.get(m) is not None]
        if vals:
            out[m] = round(median(vals), 3)
            out["range"][m] = [min(vals), max(vals)]
    if any(r.get("invariants") for r in rl):
        out["invariants_ok"] = all(r.get("invariants_ok") is not False for r in rl if "invariants" in r) and \
            all("invariants" in r for r in rl if "rps" in r)
        out["invariants_unknown"] = sum(1 for r in rl for v in r.get("invariants", {}).values() if v.get("ok") is None)
    if any("cvx_stats" in r for r in good):
        tot = {}
        for r in good:
            for k, v in r.get("cvx_stats", {}).items():
                tot[k] = tot.get(k, 0) + v
        out["cvx_stats"] = tot
    if not good and rl and "failed" in rl[-1]:
        out["failed"] = rl[-1]["failed"]
    elif not good and rl:
        out["failed"] = "; ".join(f"round {f['round'] + 1}: {f['why']}" for f in out["failed_rounds"])
    return out


def pair_ratio(ra, rb, key="rps"):
    per = []
    for x in ra:
        y = next((y for y in rb if y.get("round") == x.get("round")), None)
        ok = lambda r: r is not None and r.get(key) and r.get("invariants_ok") is not False
        if ok(x) and ok(y):
            per.append(round(x[key] / y[key], 4))
    if not per:
        return None
    return {"median": round(median(per), 4), "min": min(per), "max": max(per), "per_round": per, "rounds": len(per)}


def round_ratios(runs_w):
    """Throughput ratios between systems, from each round's pair of runs."""
    out = {}
    pairs = [(s, "node") for s in ("cvx", "cvx-ts", "pocketbase")] + [("cvx", "pocketbase"), ("cvx-ts", "cvx")] + \
        [("cvx", v) for v in NODE_VARIANTS] + [(v, "node") for v in NODE_VARIANTS] + \
        [(s, "sqlite") for s in ("cvx", "cvx-ts", "node", "pocketbase")] + [("cvx", "sqlite64")]
    for x, y in pairs:
        if x in runs_w and y in runs_w:
            r = pair_ratio(runs_w[x], runs_w[y])
            if r:
                out[f"{x}/{y}"] = r
    return out


def cache_ratios(runs):
    """cvx's cached point query over its uncached one, per round (same round, two workloads)."""
    out = {}
    for s in CVX_SYSTEMS:
        a, b = runs.get("a_get", {}).get(s), runs.get("a_get_uncached", {}).get(s)
        if a and b:
            r = pair_ratio(a, b)
            if r:
                out[s] = r
    return out


def prepare_template(system, datas, size, n_users, n_accounts, cvx_bin):
    """Starts `system` on a new data directory, deploys its app, seeds it and
    stops it: the template every run copies. Returns (directory, ids file)."""
    d = os.path.join(datas, f"tpl-{system}{size}")
    os.makedirs(d)
    log(f"preparing {system}{' with ' + format(n_users, ',') + ' users' if size else ''}: start, deploy, seed, stop")
    t0 = time.time()
    if system in CVX_SYSTEMS:
        srv = start_cvx(d, cvx_bin, app_file(system), name=system)
        if system == "cvx-ts":
            log(f"    deployed the TypeScript app (the server builds its snapshot) in {time.time() - t0:.1f} s")
    elif system == "node":
        srv = start_node(d)
    else:
        srv = start_pocketbase(d)
    try:
        return d, seed(system, srv, n_accounts, n_users, tag=size)
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short windows and 2 rounds")
    ap.add_argument("--workloads", default=",".join(WORKLOAD_IDS),
                    help="comma-separated subset of: " + ",".join(WORKLOAD_IDS) + " (prefixes work: a,b,h)")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset of: " + ",".join(SYSTEMS))
    ap.add_argument("--duration", type=float, help="measurement window per run, seconds (default 8, quick 2)")
    ap.add_argument("--warmup", type=float, help="warm-up per run, seconds (default 2, quick 0.5)")
    ap.add_argument("--rounds", type=int, help="paired rounds: each runs every workload once on every system, on a "
                    "fresh server and data directory, systems in an order rotated per round; medians and min-max "
                    "over rounds are reported (default 5, quick 2)")
    ap.add_argument("--seed", type=int, default=12345, help="base seed of the random keys: round r uses SEED + r, the "
                    "same for every system of the round (default 12345)")
    ap.add_argument("--repeat", type=int, help="deprecated: an alias of --rounds (the best-of-N it used to report "
                    "is gone)")
    ap.add_argument("--conns", type=int, default=32, help="HTTP connections for (a)-(e) (default 32)")
    ap.add_argument("--transfer-conns", type=int, default=64, help="HTTP connections for (h) (default 64)")
    ap.add_argument("--accounts", type=int, help="accounts for (h) (default 100000, quick 20000)")
    ap.add_argument("--fanout-clients", type=int, default=1000)
    ap.add_argument("--big-users", type=int, default=N_BIG_USERS, help="users in the (j) data set (default "
                    "1,000,000; quick 100,000)")
    ap.add_argument("--open-rounds", type=int, default=3, help="rounds of the open-loop ladders (o), at most "
                    "--rounds (default 3)")
    ap.add_argument("--open-duration", type=float, default=4.0, help="measurement window of each open-loop rate, "
                    "seconds (default 4)")
    ap.add_argument("--cvx", default=os.path.join(BUILD, "cvx"), help="cvx binary (default: bench/.build/cvx, "
                    "a copy of build/cvx taken by bench/run)")
    ap.add_argument("--out", default=system_defs.RESULTS, help="results directory")
    a = ap.parse_args()

    quick = a.quick
    dur = a.duration or (2.0 if quick else 8.0)
    warm = a.warmup if a.warmup is not None else (0.5 if quick else 2.0)
    n_accounts = a.accounts or (20000 if quick else 100000)
    big_users = 100_000 if quick and a.big_users == N_BIG_USERS else a.big_users
    if a.repeat is not None:
        print("bench/run: --repeat is deprecated; it is now an alias of --rounds (medians and ranges over paired "
              "rounds, not the best run)", file=sys.stderr)
        if a.rounds is None:
            a.rounds = a.repeat
    rounds = a.rounds or (2 if quick else 5)
    if rounds < 1:
        sys.exit("bench/run: --rounds must be at least 1")
    # 100 rounds of 1000 clients: a p99 is then the tail of 100 commits, not
    # the worst of a handful (a single TCP retransmission costs >= 200 ms)
    fan_rounds = 10 if quick else 100
    cold_reps = 3 if quick else 7
    sel = [w.strip() for w in a.workloads.split(",") if w.strip()]
    workloads = [w for w in WORKLOAD_IDS if any(w == s or w.split("_")[0] == s for s in sel)]
    systems = [s.strip() for s in a.systems.split(",") if s.strip()]
    for s in systems:
        if s not in SYSTEMS:
            sys.exit(f"bench/run: unknown system {s} (known: {', '.join(SYSTEMS)})")
    system_defs.RESULTS = out_dir = a.out
    tmp = os.path.join(out_dir, "tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    datas = os.path.join(tmp, "data")
    os.makedirs(datas)
    wasm_dir = os.path.join(BUILD, "bench.wasm")

    def sh(*cmd):
        try:
            return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
        except Exception:
            return ""

    started = time.time()
    res = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "mode": "quick" if quick else "full",
        "machine": {
            "cpus": os.cpu_count(),
            "cpu_model": sh("sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip(),
            "kernel": platform.release(),
            "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
        },
        "versions": {
            "cvx_commit": sh("git", "-C", ROOT, "rev-parse", "--short", "HEAD"),
            "cvx_worktree_dirty": bool(sh("git", "-C", ROOT, "status", "--porcelain", "--", "src")),
            "node": sh("node", "--version"),
            "sqlite_c": "",
            "pocketbase": "v0.36.8",
            "convex_npm": sh("node", "-p", "require(process.argv[1]).version",
                             os.path.join(BENCH, "apps", "bench-ts", "node_modules", "convex", "package.json")),
        },
        "settings": {"warmup_s": warm, "duration_s": dur, "conns": a.conns, "transfer_conns": a.transfer_conns,
                     "users": N_USERS, "big_users": big_users, "accounts": n_accounts, "fanout_clients": a.fanout_clients,
                     "fanout_rounds": fan_rounds, "cold_start_reps": cold_reps, "rounds": rounds,
                     "seed": a.seed, "round_seeds": [a.seed + r for r in range(rounds)]},
        "workloads": {},
        "ratios": {},
        "targets": {},
        "notes": [],
    }
    http_systems = [s for s in ("cvx", "cvx-ts", "node", "node-cluster", "node-batch", "pocketbase") if s in systems]
    servers = {}
    ids, templates = {}, {}  # per system: the seeded data directory and its users' ids ("big": 1M users)
    try:
        small = [w for w in workloads if w in HTTP_WORKLOADS + ("f_fanout", "o_open") and w not in BIG_WORKLOADS]
        big = [w for w in workloads if w in BIG_WORKLOADS]
        for size, wanted, n_users, n_acc in (("", small, N_USERS, n_accounts), ("big", big, big_users, 0)):
            if not wanted:
                continue
            # One seeded data directory per system (a template): every run
            # starts a fresh server on a fresh copy of it. The Node variants
            # share Node's.
            for f in dict.fromkeys(family(s) for s in http_systems):
                try:
                    d, i = prepare_template(f, datas, size, n_users, n_acc, a.cvx)
                except Exception as e:  # one broken system must not lose the rest of the run
                    log(f"    FAILED: {e}")
                    res["notes"].append(f"{f} did not start or seed{' (1M users)' if size else ''}: {e}")
                    if not size:  # without its 1M-user data it still runs everything else
                        http_systems = [s for s in http_systems if family(s) != f]
                    continue
                for s in http_systems:
                    if family(s) == f:
                        templates[(s, size)], ids[(s, size)] = d, i
        raw_tpl = None
        if "sqlite" in systems and any(w in RAW_MAP for w in workloads):
            raw_tpl = os.path.join(datas, "tpl-raw")
            os.makedirs(raw_tpl)
            run_raw("get", raw_tpl, 0, 0.05)  # creates and seeds raw.sqlite3

        # ---- (a)-(e), (h): HTTP workloads in paired rounds -------------------------------
        # Round-major: in each round every workload runs once on every system,
        # the systems of a workload back to back (a pair of runs minutes apart
        # at most), in an order rotated by one system from round to round.
        runs = {}  # workload -> system -> [one result per round]
        http_ws = [w for w in workloads if w in HTTP_WORKLOADS]
        run_no = [0]

        def one_run(w, s, rnd, seed_r):
            run_no[0] += 1
            conns = a.transfer_conns if w.startswith("h_") else a.conns
            if s == "sqlite":
                out = []
                for rw in ([RAW_MAP[w], "insert64"] if w == "c_insert" else [RAW_MAP[w]]):
                    d = os.path.join(datas, f"run-{run_no[0]}-raw")
                    shutil.copytree(raw_tpl, d)
                    try:
                        r = run_raw(rw, d, warm, dur, alpha=1.5 if w == "h_transfer_high" else None, seed=seed_r)
                        res["versions"]["sqlite_c"] = r.get("sqlite", "")
                    except Exception as e:
                        r = {"failed": str(e)}
                    finally:
                        shutil.rmtree(d, ignore_errors=True)
                    r["round"], r["seed"] = rnd, seed_r
                    out.append(("sqlite" if rw != "insert64" else "sqlite64", r))
                    if "rps" in r:
                        log(f"    {'sqlite64' if rw == 'insert64' else 'sqlite'}: {r['rps']:.0f}/s  p50 {r['p50_us']:.1f} us  "
                            f"p99 {r['p99_us']:.1f} us  ({r['cpu_us_per_req']:.1f} CPU us/op)")
                    else:
                        log(f"    raw SQLite FAILED: {r['failed']}")
                return out
            d = os.path.join(datas, f"run-{run_no[0]}-{s}")
            key = (s, "big" if w in BIG_WORKLOADS else "")
            shutil.copytree(templates[key], d)
            srv = None
            try:
                extra = ["--query-cache", "0"] if (w == "a_get_uncached" and s in CVX_SYSTEMS) else []
                srv = start_system(s, d, a.cvx, extra)
                r = run_httpload(srv, http_spec(w, s, ids[key], n_accounts), conns, warm, dur, seed=seed_r)
                r["server_args"] = extra
                r["invariants"] = check_invariants(w, s, srv, r, n_accounts)
                r["invariants_ok"] = all(v.get("ok") is not False for v in r["invariants"].values())
                inv = "; ".join(f"{k} {'pass' if v.get('ok') else ('FAIL' if v.get('ok') is False else 'unknown')}"
                                for k, v in r["invariants"].items())
                log(f"    {s}: {r['rps']:.0f}/s  p50 {r['p50_us'] / 1000:.2f} ms  p99 {r['p99_us'] / 1000:.2f} ms  "
                    f"p99.9 {r['p999_us'] / 1000:.2f} ms  errors {r['errors']}  server {r['server_cpu_cores']:.2f} cores "
                    f"({r['cpu_us_per_req']:.0f} CPU us/req), loadgen {r['loadgen_cpu_cores']:.2f}, other "
                    f"{r['other_cpu_cores']:.2f}{'; invariants: ' + inv if inv else ''}")
                if r["invariants_ok"] is False:
                    log(f"    INVARIANT FAILED: {json.dumps(r['invariants'])}")
            except Exception as e:  # keep going: one broken peer must not lose the run
                r = {"failed": str(e)}
                log(f"    {s} FAILED: {e}")
            finally:
                if srv:
                    srv.stop()
                shutil.rmtree(d, ignore_errors=True)
            r["round"], r["seed"] = rnd, seed_r
            return [(s, r)]

        for rnd in range(rounds):
            seed_r = a.seed + rnd
            for w in http_ws:
                order = [s for s in http_systems if w in VARIANT_WORKLOADS.get(s, HTTP_WORKLOADS)
                         and (s, "big" if w in BIG_WORKLOADS else "") in templates]
                order += ["sqlite"] if raw_tpl and w in RAW_MAP else []
                if not order:
                    continue
                k = rnd % len(order)
                order = order[k:] + order[:k]
                conns = a.transfer_conns if w.startswith("h_") else a.conns
                log(f"round {rnd + 1}/{rounds}, {w} (seed {seed_r}, {conns} connections, {warm:g}+{dur:g} s): "
                    + " → ".join(order))
                for s in order:
                    for name, r in one_run(w, s, rnd, seed_r):
                        runs.setdefault(w, {}).setdefault(name, []).append(r)
        for w in http_ws:
            res["workloads"][w] = {s: aggregate(rl) for s, rl in runs.get(w, {}).items()}
            res["ratios"][w] = round_ratios(runs.get(w, {}))
        if runs:
            res["ratios"]["a_get_cached/uncached"] = cache_ratios(runs)

        # ---- (o) open loop --------------------------------------------------------------------
        if "o_open" in workloads:
            open_rounds = min(rounds, a.open_rounds)
            res["settings"]["open_rounds"] = open_rounds
            res["workloads"]["o_open"] = open_loop(
                http_systems, lambda w, s: w in VARIANT_WORKLOADS.get(s, HTTP_WORKLOADS), templates, ids, datas,
                a.cvx, n_accounts, min(warm, 1.0), a.open_duration, open_rounds, a.seed)

        # ---- (f) fan-out --------------------------------------------------------------------
        if "f_fanout" in workloads:
            res["workloads"]["f_fanout"] = out = {}
            for s in ("cvx", "node"):
                if (s, "") not in templates:
                    continue
                log(f"f_fanout: {s} ({a.fanout_clients} clients, {fan_rounds} rounds)")
                d = os.path.join(datas, f"fan-{s}")
                shutil.copytree(templates[(s, "")], d)
                srv = None
                try:
                    srv = start_system(s, d, a.cvx, [])
                    c0, l0, t0, rt0 = cpu_seconds(srv.pid), children_cpu(), time.time(), tcp_retransmits()
                    p = subprocess.run([os.path.join(BUILD, "wsfan"), "--url", srv.url, "--proto", s, "-n",
                                        str(a.fanout_clients), "-r", str(fan_rounds)],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
                    wall = time.time() - t0
                    c1, l1, rt1 = cpu_seconds(srv.pid), children_cpu(), tcp_retransmits()
                    if p.returncode:
                        raise RuntimeError(p.stderr.decode(errors="replace")[-500:])
                    out[s] = json.loads(p.stdout)
                    # over the whole wsfan run (connecting the clients included)
                    out[s]["server_cpu_cores"] = round((c1 - c0) / wall, 3)
                    out[s]["loadgen_cpu_cores"] = round((l1 - l0) / wall, 3)
                    out[s]["wall_s"] = round(wall, 2)
                    # the machine's TCP segments retransmitted meanwhile (what `nstat` shows as
                    # TcpRetransSegs): on loopback each one is a drop that costs >= 200 ms
                    out[s]["tcp_retransmits"] = None if rt0 is None or rt1 is None else rt1 - rt0
                    log(f"    from send: p50 {out[s]['from_send_p50_ms']:.1f} ms  p99 {out[s]['from_send_p99_ms']:.1f} ms;"
                        f" from commit response: p50 {out[s]['p50_ms']:.1f} ms  p99 {out[s]['p99_ms']:.1f} ms; server "
                        f"{out[s]['server_cpu_cores']:.2f} cores, wsfan {out[s]['loadgen_cpu_cores']:.2f}")
                except Exception as e:
                    out[s] = {"failed": str(e)}
                    log(f"    FAILED: {e}")
                finally:
                    if srv:
                        srv.stop()
                    shutil.rmtree(d, ignore_errors=True)
            if "pocketbase" in http_systems:
                out["pocketbase"] = {"skipped": "PocketBase pushes over Server-Sent Events, not WebSocket; not measured"}

        # ---- (g) cold start -----------------------------------------------------------------
        if "g_coldstart" in workloads:
            res["workloads"]["g_coldstart"] = out = {}
            for s in [s for s in http_systems if s in ("cvx", "node", "pocketbase")]:
                # one seeded template data dir, copied per repetition
                tdir = os.path.join(datas, f"cold-{s}")
                os.makedirs(tdir)
                srv = {"cvx": lambda: start_cvx(tdir, a.cvx, wasm_dir), "node": lambda: start_node(tdir),
                       "pocketbase": lambda: start_pocketbase(tdir)}[s]()
                if s == "pocketbase":
                    uid = post(f"{srv.url}/api/bench/seed_users", {"start": 0, "count": 100})[0]
                else:
                    uid = call(srv.url, "mutation", "bench:seed_users", {"start": 0, "count": 100})[0]
                srv.stop()
                counter = [0]

                def make(tdir=tdir, uid=uid, s=s):
                    counter[0] += 1
                    d = os.path.join(datas, f"cold-{s}-{counter[0]}")
                    shutil.copytree(tdir, d)
                    return d, uid

                variants = [("cvx_cached", True), ("cvx_nocache", False)] if s == "cvx" else [(s, True)]
                for name, cache in variants:
                    log(f"g_coldstart: {name} ({cold_reps} starts)")
                    try:
                        out[name] = cold_start(s, make, cold_reps, cvx_bin=a.cvx, with_cache=cache)
                        log(f"    listening after {out[name]['listen_ms']:.1f} ms, first call "
                            f"{out[name]['first_call_ms']:.1f} ms, total {out[name]['total_ms']:.1f} ms")
                    except Exception as e:
                        out[name] = {"failed": str(e)}
                        log(f"    FAILED: {e}")

        # ---- function-call overhead -------------------------------------------------------------
        if "call" in workloads and ("native" in systems or "cvx" in systems or "cvx-ts" in systems):
            cb = os.path.join(BUILD, "callbench")
            if os.path.exists(cb):
                log("call: native C call vs cvx_abi_invoke vs cvx_exec_call (no HTTP)")
                cdir = os.path.join(datas, "callbench")
                os.makedirs(cdir)
                argv = [cb, os.path.join(BUILD, "hello.wasm"), os.path.join(BUILD, "bench.wasm"), cdir,
                        "-d", str(max(1.0, dur / 2))]
                if ("cvx-ts" in systems or "native" in systems) and os.path.exists(app_file("cvx-ts")):
                    argv += ["--ts", app_file("cvx-ts")]  # ts_build, ts_empty, ts_exec_get
                elif "cvx-ts" in systems:
                    res["notes"].append("bench/.build/bench-ts.pkg missing: TypeScript call overhead not measured")
                p = subprocess.run(argv, stdout=subprocess.PIPE, timeout=300)
                out = res["workloads"]["call"] = {}
                for line in p.stdout.decode().splitlines():
                    r = json.loads(line)
                    out[r.pop("name")] = r
                for k, v in out.items():
                    log(f"    {k}: {json.dumps(v)}")
            else:
                res["notes"].append("callbench was not built (libcvx.a missing or failed to link); call overhead not measured")

        # ---- (m) idle memory per deployed app ------------------------------------------------------
        if "m_idle_memory" in workloads and any(s in systems for s in CVX_SYSTEMS):
            idle_s = 3.0 if quick else 5.0
            log(f"m_idle_memory: cvx serve with nothing deployed, then with each app ({idle_s:g} s idle each)")
            try:
                out = res["workloads"]["m_idle_memory"] = idle_memory(a.cvx, datas, systems, idle_s)
                for k, v in out.items():
                    log(f"    {k}: VmRSS {v['VmRSS'] / 1024:.1f} MiB, Pss {v.get('Pss', 0) / 1024:.1f} MiB"
                        + (f"; +{v['delta_VmRSS'] / 1024:.1f} MiB RSS, +{v.get('delta_Pss', 0) / 1024:.1f} MiB PSS"
                           if "delta_VmRSS" in v else ""))
            except Exception as e:
                res["workloads"]["m_idle_memory"] = {"failed": str(e)}
                log(f"    FAILED: {e}")
    finally:
        for s in list(servers):
            servers.pop(s).stop()
        cleanup()

    res["elapsed_s"] = round(time.time() - started, 1)
    res["machine"]["loadavg_at_end"] = open("/proc/loadavg").read().split()[:3]
    evaluate_targets(res)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    from report import write_summary, write_chart
    write_summary(res, os.path.join(out_dir, "summary.md"))
    try:
        write_chart(res, os.path.join(out_dir, "chart.png"))
    except Exception as e:
        log(f"chart not written: {e}")
    shutil.rmtree(datas, ignore_errors=True)  # keep the server logs in results/tmp (gitignored)
    log(f"done in {res['elapsed_s']:.0f} s: {out_dir}/results.json, summary.md, chart.png")




if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        main()
    except KeyboardInterrupt:
        cleanup()
        sys.exit(130)
