"""summary.md and chart.png from results.json (bench/lib/bench.py calls these;
`python3 bench/lib/report.py bench/results/results.json` redraws them)."""
import json
import os
import sys

LABEL = {
    "cvx": "cvx",
    "cvx-ts": "cvx, TypeScript app",
    "node": "Node + better-sqlite3",
    "node-cluster": "Node, 2-process cluster",
    "node-batch": "Node, micro-batched commits",
    "pocketbase": "PocketBase",
    "sqlite": "raw SQLite (C loop, 1 thread)",
    "sqlite64": "raw SQLite, 64 inserts/txn",
}
HTTP_WORKLOADS = [
    ("a_get", "(a) point query, cached"),
    ("a_get_uncached", "(a) point query, uncached, --query-cache 0"),
    ("b_range100", "(b) index range, 100 docs"),
    ("c_insert", "(c) insert (durable)"),
    ("d_counter", "(d) contended counter"),
    ("e_action", "(e) action → mutation"),
    ("h_transfer_low", "(h) keynote-2, low contention"),
    ("h_transfer_high", "(h) keynote-2, ~80% contention"),
    ("i_mix", "(i) 90/10 reads/transfers"),
    ("j_get_1m", "(j) point query, 1M users, uniform"),
    ("j_get_1m_zipf", "(j) point query, 1M users, Zipf 1.0"),
]
ORDER = ["cvx", "cvx-ts", "node", "node-cluster", "node-batch", "pocketbase", "sqlite", "sqlite64"]


def fmt_rate(x):
    if x is None:
        return "–"
    return f"{x:,.0f}"


def fmt_ms(us):
    if us is None:
        return "–"
    ms = us / 1000
    if ms < 0.1:
        return f"{ms:.4f}"
    if ms < 10:
        return f"{ms:.2f}"
    return f"{ms:.1f}"


def ratio(a, b):
    if not a or not b:
        return "–"
    r = a / b
    return f"{r:.2f}×" if r >= 0.1 else f"{r:.3f}×"


def fx(r):
    return "–" if r is None else (f"{r:.2f}×" if r >= 0.1 else f"{r:.3f}×")


def fnum(x, kind):
    if x is None:
        return "–"
    if kind == "rate":
        return f"{x:,.0f}"
    if kind == "ms":
        return fmt_ms(x)
    if kind == "cores":
        return f"{x:.2f}"
    if kind == "us":
        return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"
    return f"{x:g}"


def cell(r, m, kind):
    """median [min–max] of metric m over the rounds."""
    if r.get(m) is None:
        return "–"
    rg = r.get("range", {}).get(m)
    med = fnum(r[m], kind)
    if not rg or r.get("n_ok", 1) < 2 or rg[0] == rg[1]:
        return med
    return f"{med} [{fnum(rg[0], kind)}–{fnum(rg[1], kind)}]"


def rcell(x):
    """a per-round ratio: median [min–max]"""
    if not x:
        return "–"
    if x["rounds"] < 2:
        return fx(x["median"])
    return f"{fx(x['median'])} [{fx(x['min'])}–{fx(x['max'])}]"


def inv_cell(r):
    """invariants over the rounds: pass / FAIL / unknown, and failed rounds."""
    rounds = r.get("rounds", [])
    parts = []
    if "invariants_ok" in r:
        fails = sum(1 for x in rounds if x.get("invariants_ok") is False)
        unk = r.get("invariants_unknown", 0)
        checked = sum(1 for x in rounds if "invariants" in x)
        parts.append(f"**FAIL** in {fails} of {checked}" if fails else
                     (f"pass ({unk} undecided)" if unk else f"pass ({checked} of {checked})"))
    nf = len(r.get("failed_rounds", []))
    if nf and not any("invariant" in f["why"] for f in r["failed_rounds"]):
        parts.append(f"**{nf} run(s) failed**")
    return ", ".join(parts) if parts else "–"


def write_summary(res, path):
    L = []
    st = res["settings"]
    m = res["machine"]
    L.append("# cvx benchmark results")
    L.append("")
    L.append(f"Run {res['started']} ({res['mode']} mode, {res.get('elapsed_s', 0):.0f} s), "
             f"{m['cpus']} CPUs ({m['cpu_model']}), Linux {m['kernel']}, load average "
             f"{' '.join(m['loadavg_at_start'])} at start and {' '.join(m.get('loadavg_at_end', []))} at end. "
             f"cvx {res['versions']['cvx_commit']}"
             f"{' (with uncommitted changes in src/)' if res['versions'].get('cvx_worktree_dirty') else ''}, "
             f"PocketBase {res['versions']['pocketbase']}, Node {res['versions']['node']}, "
             f"SQLite {res['versions'].get('sqlite_c') or '?'} (C, cvx) / better-sqlite3's bundled SQLite (Node).")
    L.append("")
    L.append(f"Every HTTP figure: {st['conns']} keep-alive connections ({st['transfer_conns']} for keynote-2), "
             f"closed loop (one request in flight per connection), {st['warmup_s']:g} s warm-up then a "
             f"{st['duration_s']:g} s window; p50/p99/p99.9 are exact percentiles of every request in the window. "
             "The server under test and the load generator share the same 2 cores (one server runs at a time); "
             "`other CPU` is what every other process on the machine used meanwhile (0 on an idle machine; more means "
             "the figure is disturbed). "
             "Durable = fsync'd before the answer (cvx: WAL, fdatasync'd before the answer as synchronous=FULL would; "
             "peers set to synchronous=FULL).")
    L.append("")
    if "rounds" in st:
        L.append(f"**Rounds.** {st['rounds']} paired round(s): in each round every workload ran once on every system, "
                 "each run on a fresh server and a fresh copy of the seeded data directory, the systems of a workload "
                 "back to back in an order rotated by one system per round (round r starts at system r mod n); round r "
                 f"used the random seed {st.get('seed', '?')} + r for every system (keys, ranges, accounts). Every "
                 "cell is the **median over the rounds [min–max]**; ratios are the median [min–max] of the per-round "
                 "ratios (each from that round's pair of runs). A run that failed or failed an invariant is left out of "
                 "the medians and listed under the table; it is never dropped silently. All CPU figures cover exactly "
                 "the measurement window: `server CPU` is the server process's CPU time (all threads, "
                 "/proc/PID/stat) in cores, `req / core-s` = throughput ÷ server cores, `CPU µs / req` = server CPU "
                 "time ÷ successful requests, `loadgen` the load generator's own CPU (getrusage) in cores, `other` "
                 "everything else on the machine (/proc/stat) in cores.")
    L.append("")
    if any("cvx-ts" in res["workloads"].get(w, {}) for w, _ in HTTP_WORKLOADS):
        L.append("`cvx` runs the Rust bench app (bench/apps/bench); `cvx, TypeScript app` is the same server binary "
                 "with the same functions written in TypeScript (bench/apps/bench-ts, `convex` "
                 f"{res['versions'].get('convex_npm') or '?'} from npm, run by the QuickJS-ng engine compiled to wasm), "
                 "sent the same requests.")
        L.append("")
    L.append("## Throughput and latency")
    L.append("")
    L.append("`cached`: cvx with its query result cache (the default, 64 MiB); `uncached, --query-cache 0`: cvx started "
             "with `--query-cache 0`, every call runs the query. The peers have no result cache: they get the same "
             "requests in both rows (and raw SQLite runs the same loop).")
    L.append("")
    L.append("| workload | system | req/s | p50 ms | p99 ms | p99.9 ms | errors | invariants | rounds ok |")
    L.append("|---|---|---:|---:|---:|---:|---:|---|---:|")
    failures = []
    for w, title in HTTP_WORKLOADS:
        rs = res["workloads"].get(w)
        if not rs:
            continue
        t = title
        for s in ORDER:
            r = rs.get(s)
            if not r:
                continue
            for f in r.get("failed_rounds", []):
                failures.append(f"{title}, {LABEL[s]}, round {f['round'] + 1 if f.get('round') is not None else '?'}: "
                                f"{f['why'][:300]}")
            if "rps" not in r:
                L.append(f"| {t} | {LABEL[s]} | **failed**: {str(r.get('failed', ''))[:80]} | | | | | {inv_cell(r)} | "
                         f"0 of {r.get('n_rounds', '?')} |")
                t = ""
                continue
            L.append(f"| {t} | {LABEL[s]} | {cell(r, 'rps', 'rate')} | {cell(r, 'p50_us', 'ms')} | "
                     f"{cell(r, 'p99_us', 'ms')} | {cell(r, 'p999_us', 'ms')} | {cell(r, 'errors', 'rate')} | "
                     f"{inv_cell(r) if s not in ('sqlite', 'sqlite64') else 'not checked'} | "
                     f"{r.get('n_ok', 1)} of {r.get('n_rounds', 1)} |")
            t = ""
    L.append("")
    if failures:
        L.append("**Failed runs** (left out of the medians and ratios):")
        L.append("")
        for f in failures:
            L.append(f"- {f}")
        L.append("")
    L.append("## CPU")
    L.append("")
    L.append("Over the measurement window. Raw SQLite is one process with no load generator: its CPU is the loop's own.")
    L.append("")
    L.append("| workload | system | req/s | server CPU, cores | req / server-core-s | server CPU µs / req | "
             "loadgen CPU, cores | other CPU, cores |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for w, title in HTTP_WORKLOADS:
        rs = res["workloads"].get(w)
        if not rs:
            continue
        t = title
        for s in ORDER:
            r = rs.get(s)
            if not r or "rps" not in r:
                continue
            raw = s in ("sqlite", "sqlite64")
            L.append(f"| {t} | {LABEL[s]} | {fnum(r['rps'], 'rate')} | {cell(r, 'server_cpu_cores', 'cores')} | "
                     f"{cell(r, 'req_per_core_s', 'rate')} | {cell(r, 'cpu_us_per_req', 'us')} | "
                     f"{'–' if raw else cell(r, 'loadgen_cpu_cores', 'cores')} | "
                     f"{'–' if raw else cell(r, 'other_cpu_cores', 'cores')} |")
            t = ""
    L.append("")
    ratios = res.get("ratios", {})
    if any(ratios.get(w) for w, _ in HTTP_WORKLOADS):
        L.append("## Ratios (throughput, per round)")
        L.append("")
        L.append("Each ratio is computed per round from that round's two runs (same seed, minutes apart at most); "
                 "the median [min–max] over the rounds, with every round's value.")
        L.append("")
        L.append("| workload | ratio | median [min–max] | rounds | per round |")
        L.append("|---|---|---:|---:|---|")
        for w, title in HTTP_WORKLOADS:
            t = title
            for pair, x in ratios.get(w, {}).items():
                a, b = pair.split("/")
                L.append(f"| {t} | {LABEL.get(a, a)} ÷ {LABEL.get(b, b)} | {rcell(x)} | {x['rounds']} | "
                         f"{', '.join(fx(v) for v in x['per_round'])} |")
                t = ""
        for s, x in ratios.get("a_get_cached/uncached", {}).items():
            L.append(f"| (a) cached ÷ uncached | {LABEL.get(s, s)}, query cache on ÷ `--query-cache 0` | {rcell(x)} | "
                     f"{x['rounds']} | {', '.join(fx(v) for v in x['per_round'])} |")
        L.append("")
    for sysname, who in (("cvx", "cvx's"), ("cvx-ts", "cvx's (TypeScript app)")):
        retries = []
        for w, title in HTTP_WORKLOADS:
            cs = res["workloads"].get(w, {}).get(sysname, {}).get("cvx_stats")
            if cs and cs.get("mutations"):
                more = f", {cs['groups']:,} groups written, {cs['syncs']:,} fsyncs" if cs.get("syncs") else ""
                retries.append(f"{title}: {cs['mutations']:,} mutation runs, {cs['mutationRetries']:,} retries, "
                               f"{cs['commits']:,} commits, {cs['conflicts']:,} conflicts{more}")
        if retries:
            L.append(f"{who} own counters over the same runs (`/api/admin/stats`): " + "; ".join(retries) + ".")
            L.append("")
    ts_vs = []
    for w, title in HTTP_WORKLOADS:
        x = res.get("ratios", {}).get(w, {}).get("cvx-ts/cvx")
        if x:
            ts_vs.append(f"{title} {rcell(x)}")
    if ts_vs:
        L.append("TypeScript app / Rust app on the same server: " + ", ".join(ts_vs) + ".")
        L.append("")
    if "h_transfer_low" in res["workloads"]:
        L.append("Keynote-2 as published (24-thread desktop, 50-64 clients): self-hosted Convex 1,140 TPS (p99 62 ms); "
                 "SpacetimeDB 279k TPS with 40 requests pipelined per client. The table's figures are closed-loop, one "
                 "request in flight per connection, on 2 cores shared with the load generator.")
        L.append("")
    if any(w in res["workloads"] for w in ("i_mix", "j_get_1m", "j_get_1m_zipf")):
        L.append("(i) 90/10: 90% `bench:account` (one account found through `by_n`, the lookup a transfer makes) and "
                 "10% keynote-2 transfers between uniformly chosen accounts, so the writes change what the reads read "
                 "(cvx's query cache on). (j) the point query on a second data set of 1,000,000 users, more than the "
                 "caches hold (cvx's 64 MiB query cache, its document cache, SQLite's page cache), ids uniform or Zipf "
                 "1.0 by rank (the 1% most popular ids get about 68% of the requests).")
        L.append("")
        mix = res["workloads"].get("i_mix", {})
        parts = [f"{LABEL.get(sn, sn)} {fmt_ms(r['t2_p50_us'])} / {fmt_ms(r['t2_p99_us'])}" for sn in ORDER
                 for r in [mix.get(sn)] if r and r.get("t2_p99_us") is not None]
        if parts:
            L.append("(i) the transfers alone, p50 / p99 ms (medians over the rounds): " + "; ".join(parts) + ".")
            L.append("")
    if any(s in res["workloads"].get(w, {}) for w, _ in HTTP_WORKLOADS for s in ("node-cluster", "node-batch")):
        L.append("Node as a user would also run it (bench/peers/node/server.js): `Node, 2-process cluster` is two "
                 "processes (node:cluster) sharing the port and the database, on the read workloads and the mix "
                 "(its server CPU counts both workers and the primary); `Node, micro-batched commits` runs the writes "
                 "that arrive in one turn of its event loop in one transaction (a savepoint each) with one fsync, on "
                 "the write workloads and the mix.")
        L.append("")
    if any(w in res["workloads"] for w in ("d_counter", "h_transfer_low", "h_transfer_high")):
        L.append("**Invariants**, checked after every run of a write workload, outside the timed window: (d) the "
                 "counter equals 1 (the seed's increment) + the acknowledged increments; (h) the sum of all balances is "
                 "unchanged, and Σ n·(balance − initial) over all accounts equals Σ (to − from) over the acknowledged "
                 "transfers, so every acknowledged transfer moved and no unacknowledged one did. A transfer answered "
                 "without moving (`\"value\":false`, whatever the HTTP status) counts as an error. `undecided`: "
                 "requests were lost in flight, so exact equality cannot be required. (c) and (e) are not checked. (i) "
                 "is checked as (h), over its transfers.")
        L.append("")

    open_section(res, L)

    f = res["workloads"].get("f_fanout")
    if f:
        L.append(f"## (f) Subscription fan-out ({st['fanout_clients']} WebSocket clients, {st['fanout_rounds']} rounds)")
        L.append("")
        L.append("One writer commits `bench:incr` over HTTP; every client is subscribed to `bench:counter` (cvx: the "
                 "Convex sync protocol; Node: a `ws` broadcast after the write). Latency per client and round.")
        L.append("")
        L.append("| system | from send p50 ms | from send p99 ms | from commit response p50 ms | p99 ms | last client (p50 of rounds) ms | mutation ms | server CPU, cores | wsfan CPU, cores | TCP retransmits |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for s in ("cvx", "node", "pocketbase"):
            r = f.get(s)
            if not r:
                continue
            if "from_send_p50_ms" not in r:
                L.append(f"| {LABEL[s]} | {r.get('skipped') or 'failed: ' + r.get('failed', '')[:100]} | | | | | | | | |")
                continue
            L.append(f"| {LABEL[s]} | {r['from_send_p50_ms']:.2f} | {r['from_send_p99_ms']:.2f} | {r['p50_ms']:.2f} | "
                     f"{r['p99_ms']:.2f} | {r['all_delivered_p50_ms']:.2f} | {r['mutation_p50_ms']:.2f} | "
                     f"{r.get('server_cpu_cores', '–')} | {r.get('loadgen_cpu_cores', '–')} | {r.get('tcp_retransmits', '–')} |")
        L.append("")

    gcs = res["workloads"].get("g_coldstart")
    if gcs:
        L.append(f"## (g) Cold start (median of {st['cold_start_reps']} starts)")
        L.append("")
        L.append("From spawning the server process (data directory with the app deployed and 100 users) to its port "
                 "accepting, then the first point query's answer.")
        L.append("")
        L.append("| system | process start → listening ms | first call ms | total ms |")
        L.append("|---|---:|---:|---:|")
        names = {"cvx_cached": "cvx, compiled-module cache present", "cvx_nocache": "cvx, no cache (compiles the module)",
                 "node": LABEL["node"], "pocketbase": LABEL["pocketbase"]}
        for k, r in gcs.items():
            if "total_ms" in r:
                L.append(f"| {names.get(k, k)} | {r['listen_ms']:.1f} | {r['first_call_ms']:.2f} | {r['total_ms']:.1f} |")
            else:
                L.append(f"| {names.get(k, k)} | failed: {r.get('failed', '')[:100]} | | |")
        c = res["workloads"].get("call", {})
        if "load_cached" in c:
            L.append("")
            L.append(f"Module load alone (in-process, `cvx_app_load` of the 4.5 MB bench module): "
                     f"{c['load_compile']['min_ms']:.1f} ms compiling, {c['load_cached']['min_ms']:.2f} ms from the "
                     f"compiled-module cache (best of 5; mean {c['load_cached']['mean_ms']:.2f} ms).")
        L.append("")

    c = res["workloads"].get("call")
    if c and "native" in c:
        L.append("## Function-call overhead (in process, no HTTP, one thread)")
        L.append("")
        L.append("| path | calls/s | µs per call | p50 µs | p99 µs |")
        L.append("|---|---:|---:|---:|---:|")
        names = {"native": "native C call + JSON parse of the args + JSON result",
                 "wasm": "cvx_abi_invoke hello:add (fresh instance, marshalling)",
                 "exec": "cvx_exec_call hello:add (+ validation, request id, read txn)",
                 "exec_get": "cvx_exec_call bench:get (a point read from the store)",
                 "exec_get_cached": "cvx_exec_call bench:get, query result cache on (a hit)",
                 "work_fuel": "cvx_abi_invoke bench:work n=3000 (compute-bound), fuel metering (default)",
                 "work_epoch": "cvx_abi_invoke bench:work n=3000, epoch interruption only",
                 "ts_empty": "TypeScript: cvx_abi_invoke bench:empty (fresh engine instance from the snapshot, "
                             "a query returning null)",
                 "ts_exec_get": "TypeScript: cvx_exec_call bench:get (a point read from the store)"}
        for k in ("native", "wasm", "exec", "exec_get", "exec_get_cached", "work_fuel", "work_epoch", "ts_empty",
                  "ts_exec_get"):
            if k in c:
                r = c[k]
                L.append(f"| {names[k]} | {r['rps']:,.0f} | {r['ns_per_call'] / 1000:.2f} | {r['p50_us']:.2f} | {r['p99_us']:.2f} |")
        L.append("")
        if "ts_build" in c:
            L.append(f"Building the TypeScript app's module from its bundle (`cvx_js_build`, what a deploy does: run "
                     f"the bundle's top level in the engine, snapshot the heap into a module): "
                     f"{c['ts_build']['ms']:.0f} ms, once.")
            L.append("")

    mem = res["workloads"].get("m_idle_memory")
    if mem and "failed" in mem:
        L.append(f"## (m) Idle memory per deployed app: failed: {mem['failed'][:200]}")
        L.append("")
    elif mem:
        idle = next((v.get("idle_s") for v in mem.values() if isinstance(v, dict)), None)
        L.append("## (m) Resident memory of an idle server per deployed app")
        L.append("")
        L.append("A fresh `cvx serve` each: nothing deployed; the Rust bench app; the TypeScript bench app. With an "
                 "app: deployed, 100 users and 100 accounts seeded, 20 calls of each function kind (point query, range, "
                 f"insert, counter, action, transfer), then {idle:g} s idle before reading `/proc/PID/status` (VmRSS, "
                 "RssAnon, RssFile) and `/proc/PID/smaps_rollup` (Pss). MiB; Δ against nothing deployed.")
        L.append("")
        L.append("| server | VmRSS | anonymous | file-backed | PSS | Δ VmRSS | Δ anonymous | Δ PSS |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        names = {"empty": "cvx serve, nothing deployed", "cvx": "cvx serve, Rust bench app",
                 "cvx-ts": "cvx serve, TypeScript bench app"}
        mib = lambda r, k: f"{r[k] / 1024:.1f}" if k in r else "–"
        dmib = lambda r, k: f"{r[k] / 1024:+.1f}" if k in r else "–"
        for k in ("empty", "cvx", "cvx-ts"):
            r = mem.get(k)
            if r:
                L.append(f"| {names[k]} | {mib(r, 'VmRSS')} | {mib(r, 'RssAnon')} | {mib(r, 'RssFile')} | "
                         f"{mib(r, 'Pss')} | {dmib(r, 'delta_VmRSS')} | {dmib(r, 'delta_RssAnon')} | {dmib(r, 'delta_Pss')} |")
        L.append("")

    t = res.get("targets")
    if t:
        L.append("## Targets")
        L.append("")
        L.append("Ratio targets: the median of the per-round ratios [min–max].")
        L.append("")
        L.append("| target | measured | |")
        L.append("|---|---:|---|")
        for k, v in t.items():
            val = v["value"]
            if k.endswith("_ms") or k.endswith("_us"):
                unit = " ms" if k.endswith("_ms") else " µs"
                sval = f"{val:.2f}{unit}"
            elif k == "keynote2_low_tps":
                sval = f"{val:,} TPS"
            else:
                sval = f"{val}×"
            if "range" in v:
                lo, hi = v["range"]
                sval += (f" [{lo:,}–{hi:,}]" if k == "keynote2_low_tps" else f" [{lo}–{hi}×]")
            L.append(f"| {v['target']} | {sval} | {'met' if v['met'] else '**missed**'} |")
        L.append("")
    for n in res.get("notes", []):
        L.append(f"- {n}")
    with open(path, "w") as fh:
        fh.write("\n".join(L) + "\n")


def open_section(res, L):
    """(o): the open-loop ladders."""
    o = res["workloads"].get("o_open")
    if not o:
        return
    st = res["settings"]
    L.append(f"## (o) Open loop ({st.get('open_rounds', '?')} round(s))")
    L.append("")
    L.append("Requests offered at a fixed rate whatever the answers do (`httpload --rate`, 128 connections, at most "
             "one request in flight on each), each request's latency counted from when it was due, so a server that "
             "falls behind is charged for the queue it causes. Each round climbs a ladder of rates on a fresh server "
             "per rate, until p99 reaches 20 ms, a request fails, or more than 0.1% of the offered requests were "
             "still waiting for a connection at the end. Medians over the rounds [min–max].")
    L.append("")
    L.append("| workload | system | highest rate with p99 < 20 ms, req/s | p99 at the fixed rate, ms | every step (rate: p99 ms), last round |")
    L.append("|---|---|---:|---:|---|")
    titles = dict(HTTP_WORKLOADS)
    for w, per in o.items():
        for sname in ORDER:
            v = per.get(sname)
            if not v:
                continue
            rg = v.get("max_rate_range") or [0, 0]
            n = len(v["rounds"])
            top = v.get("top_rate_passed_rounds", 0)
            best = f"{v['max_rate_p99_under_20ms']:,.0f} [{rg[0]:,.0f}–{rg[1]:,.0f}]" + \
                (f"; the top rate passed in {top} of {n} round(s): at least that" if top else "")
            fr = v.get("p99_at_fixed_range") or [None, None]
            miss = v.get("fixed_not_reached_rounds", 0)
            fixed = "not reached" if v.get("p99_at_fixed_us") is None else \
                f"{v['p99_at_fixed_us'] / 1000:.1f} [{(fr[0] or 0) / 1000:.1f}–{(fr[1] or 0) / 1000:.1f}] at {v['fixed_rate']:,}/s"
            if miss:
                fixed += f"; not reached in {miss} of {n} round(s) (the ladder stopped below it)"
            last = v["rounds"][-1]["steps"]
            steps = ", ".join(f"{x['rate']:,}: " + (f"{x['p99_us'] / 1000:.1f}" if x.get("p99_us") is not None else "failed")
                              + ("" if x.get("ok") else " ✗") for x in last)
            L.append(f"| {titles.get(w, w)} | {LABEL.get(sname, sname)} | {best} | {fixed} | {steps} |")
    L.append("")


def write_chart(res, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ws = [(w, t) for w, t in HTTP_WORKLOADS if w in res["workloads"]]
    if not ws:
        return  # no HTTP workload in this run: nothing to draw
    systems = [s for s in ORDER if any(s in res["workloads"][w] and "rps" in res["workloads"][w][s] for w, _ in ws)]
    colors = {"cvx": "#d9480f", "cvx-ts": "#f59f00", "node": "#1c7ed6", "node-cluster": "#74c0fc",
              "node-batch": "#4263eb", "pocketbase": "#37b24d", "sqlite": "#868e96", "sqlite64": "#ced4da"}
    fig, axes = plt.subplots(2, 1, figsize=(13, 9), sharex=True)
    width = 0.8 / max(1, len(systems))
    for k, (metric, ylabel) in enumerate([("rps", "requests / s (log)"), ("p99_us", "p99 latency, ms (log)")]):
        ax = axes[k]
        for j, s in enumerate(systems):
            xs, ys, lo, hi = [], [], [], []
            for i, (w, _) in enumerate(ws):
                r = res["workloads"][w].get(s)
                if r and metric in r and r[metric]:
                    k_ = 1000 if metric == "p99_us" else 1
                    xs.append(i + (j - (len(systems) - 1) / 2) * width)
                    ys.append(r[metric] / k_)
                    rg = r.get("range", {}).get(metric, [r[metric], r[metric]])
                    lo.append(max(0, r[metric] - rg[0]) / k_)
                    hi.append(max(0, rg[1] - r[metric]) / k_)
            # bar = median over rounds, whisker = min-max
            bars = ax.bar(xs, ys, width, label=LABEL[s], color=colors[s], edgecolor="black", linewidth=0.4,
                          yerr=[lo, hi], error_kw={"elinewidth": 0.6, "capsize": 1.5})
            for b, y, h in zip(bars, ys, hi):
                txt = f"{y:,.0f}" if metric == "rps" else (f"{y:.1f}" if y >= 1 else f"{y:.2g}")
                ax.annotate(txt, (b.get_x() + b.get_width() / 2, y + h), ha="center", va="bottom", fontsize=6.5,
                            rotation=90, xytext=(0, 2), textcoords="offset points")
        ax.set_yscale("log")
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", which="major", alpha=0.3)
        ax.margins(y=0.25)
    axes[0].legend(ncol=len(systems), fontsize=8, loc="upper right")
    axes[1].set_xticks(range(len(ws)))
    axes[1].set_xticklabels([t for _, t in ws], rotation=15, ha="right", fontsize=9)
    st = res["settings"]
    axes[0].set_title(f"cvx vs peers, same run, same {res['machine']['cpus']}-core machine "
                      f"({st['conns']} conns, {st['transfer_conns']} for keynote-2; {st['duration_s']:g} s windows; "
                      f"median of {st.get('rounds', 1)} rounds, whiskers min-max; "
                      f"{res['started'][:16]})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    p = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "results", "results.json")
    res = json.load(open(p))
    d = os.path.dirname(os.path.abspath(p))
    write_summary(res, os.path.join(d, "summary.md"))
    write_chart(res, os.path.join(d, "chart.png"))
