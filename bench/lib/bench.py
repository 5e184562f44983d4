#!/usr/bin/env python3
"""The cvx benchmark orchestrator (run through bench/run, which builds the tools first).

Starts cvx (twice: with the Rust bench app, "cvx", and with the same
functions in TypeScript, "cvx-ts"), the Node + better-sqlite3 peer and the
PocketBase peer on loopback, seeds the same data into each, runs every workload against every
system back to back (workload-major order, so the systems of one workload are
measured minutes apart at most), runs the raw-SQLite and native-call
baselines, measures the resident memory of an idle server per deployed app,
and writes bench/results/{results.json,summary.md,chart.png}.
"""
import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "bench")
BUILD = os.path.join(BENCH, ".build")
RESULTS = os.path.join(BENCH, "results")

SYSTEMS = ["cvx", "cvx-ts", "node", "pocketbase", "sqlite", "native"]
CVX_SYSTEMS = ("cvx", "cvx-ts")  # the same server binary: the Rust app, the TypeScript app
LABEL = {
    "cvx": "cvx",
    "cvx-ts": "cvx, TypeScript app",
    "node": "Node + better-sqlite3",
    "pocketbase": "PocketBase",
    "sqlite": "raw SQLite (C loop)",
    "sqlite64": "raw SQLite, 64 inserts/txn",
    "native": "native C call",
}

# workload id -> description; the HTTP request for each system is in http_spec().
WORKLOADS = [
    ("a_get", "(a) point query by id"),
    ("b_range100", "(b) index range, 100 documents"),
    ("c_insert", "(c) insert mutation (durable)"),
    ("d_counter", "(d) contended counter mutation"),
    ("e_action", "(e) action calling a mutation"),
    ("f_fanout", "(f) subscription fan-out to 1000 WebSocket clients"),
    ("g_coldstart", "(g) cold start: first call after server start"),
    ("h_transfer_low", "(h) keynote-2 transfer, low contention (uniform)"),
    ("h_transfer_high", "(h) keynote-2 transfer, ~80% contention (Zipf 1.5)"),
    ("call", "function-call overhead (no HTTP)"),
    ("m_idle_memory", "(m) resident memory of an idle server per deployed app"),
]
WORKLOAD_IDS = [w for w, _ in WORKLOADS]
DESC = dict(WORKLOADS)

N_USERS = 10000
BALANCE = 10_000_000

procs = []


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def post(url, body, timeout=120):
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def call(base, kind, path, args):
    """A Convex-shaped call (cvx and the Node peer speak the same HTTP API)."""
    r = post(f"{base}/api/{kind}", {"path": path, "args": [args], "format": "convex_encoded_json"})
    if r.get("status") != "success":
        raise RuntimeError(f"{path}: {r}")
    return r["value"]


def wait_http(url, timeout=30):
    t = time.time() + timeout
    while time.time() < t:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it listens
        except Exception:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


def cpu_seconds(pid):
    """utime + stime of a process (all its threads), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def busy_seconds():
    """CPU time of the whole machine (all processes), in seconds."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / os.sysconf("SC_CLK_TCK")


def children_cpu():
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


class Server:
    def __init__(self, name, argv, port_prefix=None, port=None, cwd=None, env=None):
        self.name = name
        self.log_path = os.path.join(RESULTS, "tmp", f"{name}.log")
        logf = open(self.log_path, "ab")
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE if port_prefix else logf, stderr=logf, cwd=cwd,
                                  env=env, start_new_session=True)
        procs.append(self.p)
        self.pid = self.p.pid
        if port_prefix:
            line = self.p.stdout.readline().decode()
            if not line.startswith(port_prefix):
                raise RuntimeError(f"{name} did not start: {line!r}; see {self.log_path}")
            self.port = int(line.strip().split("=")[1])
        else:
            self.port = port
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def cleanup():
    for p in procs:
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(5)
            except Exception:
                p.kill()


# ---- systems -------------------------------------------------------------------------


def cvx_stats(srv):
    """cvx's admin counters (commits, conflicts, mutation retries), or None."""
    try:
        req = urllib.request.Request(f"{srv.url}/api/admin/stats", headers={"Authorization": f"Convex {srv.admin_key}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())
    except Exception:
        return None


def app_file(system):
    """What `cvx deploy --wasm` sends for a cvx system: the Rust module, or the
    TypeScript app package (bundle + source map; the server builds it)."""
    return os.path.join(BUILD, "bench-ts.pkg" if system == "cvx-ts" else "bench.wasm")


def start_cvx(data, cvx_bin, wasm_file, name="cvx"):
    s = Server(name, [cvx_bin, "serve", "--data", data, "--port", "0"], port_prefix="CVX_PORT=")
    key = open(os.path.join(data, "admin_key")).read().strip()
    s.admin_key = key
    if wasm_file:
        p = subprocess.run([cvx_bin, "deploy", "--wasm", wasm_file, "--url", s.url, "--admin-key", key],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
        if p.returncode:
            s.stop()
            raise RuntimeError(f"cvx deploy --wasm {os.path.basename(wasm_file)} failed (exit {p.returncode}): "
                               f"{p.stderr.decode(errors='replace')[-400:]}")
    return s


def start_node(data):
    return Server("node", ["node", os.path.join(BENCH, "peers", "node", "server.js"), "--data", data, "--port", "0"],
                  port_prefix="NODE_PORT=")


def start_pocketbase(data):
    port = free_port()
    s = Server("pocketbase", [os.path.join(BUILD, "pbbench"), "serve", "--dir", data, "--http", f"127.0.0.1:{port}"],
               port=port)
    wait_http(f"{s.url}/api/health")
    return s


def seed(system, srv, n_accounts):
    """Users 0..N_USERS-1 (ids to a file), accounts 0..n_accounts-1, counters."""
    ids = []
    t = time.time()
    if system in ("cvx", "cvx-ts", "node"):
        for start in range(0, N_USERS, 1000):
            ids += call(srv.url, "mutation", "bench:seed_users", {"start": start, "count": 1000})
        for start in range(0, n_accounts, 10000):
            call(srv.url, "mutation", "bench:seed_accounts",
                 {"start": start, "count": min(10000, n_accounts - start), "balance": BALANCE})
        call(srv.url, "mutation", "bench:incr", {"name": "c"})
        call(srv.url, "mutation", "bench:incr", {"name": "fan"})
    else:
        for start in range(0, N_USERS, 1000):
            ids += post(f"{srv.url}/api/bench/seed_users", {"start": start, "count": 1000})
        for start in range(0, n_accounts, 10000):
            post(f"{srv.url}/api/bench/seed_accounts",
                 {"start": start, "count": min(10000, n_accounts - start), "balance": BALANCE})
        post(f"{srv.url}/api/bench/incr", {"name": "c"})
    path = os.path.join(RESULTS, "tmp", f"{system}.ids")
    with open(path, "w") as f:
        f.write("\n".join(ids) + "\n")
    log(f"seeded {system}: {N_USERS} users, {n_accounts} accounts in {time.time() - t:.1f} s")
    return path


def balance_total(system, srv, n_accounts):
    total = 0.0
    for start in range(0, n_accounts, 10000):
        args = {"start": start, "count": 10000}
        if system == "pocketbase":
            total += post(f"{srv.url}/api/bench/balance_sum", args)
        else:
            total += call(srv.url, "query", "bench:balance_sum", args)
    return total


def convex_body(path, args_tmpl):
    return '{"path":"%s","args":[%s],"format":"convex_encoded_json"}' % (path, args_tmpl)


def http_spec(workload, system, ids_file, n_accounts):
    """httpload arguments for one workload on one system."""
    ok = ["--expect", '"status":"success"']
    if system in ("cvx", "cvx-ts", "node"):
        return {
            "a_get": ["--path", "/api/query", "--ids", ids_file, "--body", convex_body("bench:get", '{"id":"{id}"}')] + ok,
            "b_range100": ["--path", "/api/query", "--body",
                           convex_body("bench:range100", '{"start":{rand:%d}}' % (N_USERS - 100))] + ok,
            "c_insert": ["--path", "/api/mutation", "--body", convex_body("bench:insert", '{"n":{seq}}')] + ok,
            "d_counter": ["--path", "/api/mutation", "--body", convex_body("bench:incr", '{"name":"c"}')] + ok,
            "e_action": ["--path", "/api/action", "--body", convex_body("bench:act_insert", '{"n":{seq}}')] + ok,
            "h_transfer_low": ["--path", "/api/mutation", "--accounts", str(n_accounts), "--body",
                               convex_body("bench:transfer", '{"from":{from},"to":{to},"amount":1}')] + ok,
            "h_transfer_high": ["--path", "/api/mutation", "--accounts", str(n_accounts), "--alpha", "1.5", "--body",
                                convex_body("bench:transfer", '{"from":{from},"to":{to},"amount":1}')] + ok,
        }[workload]
    return {
        "a_get": ["--method", "GET", "--path", "/api/collections/bench_users/records/{id}", "--ids", ids_file],
        "b_range100": ["--method", "GET", "--path",
                       "/api/collections/bench_users/records?filter=n%%3E%%3D{rand:%d}&sort=n&perPage=100&skipTotal=1"
                       % (N_USERS - 100)],
        "c_insert": ["--path", "/api/collections/events/records", "--body",
                     '{"kind":"bench","n":{seq},"payload":"0123456789abcdef0123456789abcdef"}'],
        "d_counter": ["--path", "/api/bench/incr", "--body", '{"name":"c"}'],
        "e_action": ["--path", "/api/bench/act_insert", "--body", '{"n":{seq}}'],
        "h_transfer_low": ["--path", "/api/bench/transfer", "--accounts", str(n_accounts), "--body",
                           '{"from":{from},"to":{to},"amount":1}'],
        "h_transfer_high": ["--path", "/api/bench/transfer", "--accounts", str(n_accounts), "--alpha", "1.5", "--body",
                            '{"from":{from},"to":{to},"amount":1}'],
    }[workload]


def run_httpload(srv, args, conns, warmup, duration):
    argv = [os.path.join(BUILD, "httpload"), "--url", srv.url, "-c", str(conns), "-w", str(warmup), "-d",
            str(duration)] + args
    la = loadavg()
    st0 = cvx_stats(srv) if srv.name in CVX_SYSTEMS else None
    c0, b0, l0 = cpu_seconds(srv.pid), busy_seconds(), children_cpu()
    t0 = time.time()
    out = subprocess.run(argv, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=warmup + duration + 60)
    wall = time.time() - t0
    c1, b1, l1 = cpu_seconds(srv.pid), busy_seconds(), children_cpu()
    r = json.loads(out.stdout)
    # over the whole run (warm-up included), in cores: the server's CPU, and
    # everything else on the machine that is neither the server nor the load
    # generator (other people's jobs on a shared machine)
    r["server_cpu_cores"] = round((c1 - c0) / wall, 3)
    r["other_cpu_cores"] = round(max(0.0, (b1 - b0) - (c1 - c0) - (l1 - l0)) / wall, 3)
    r["loadavg_before"] = la
    st1 = cvx_stats(srv) if st0 else None
    if st0 and st1:
        d = {k: st1["exec"][k] - st0["exec"][k] for k in ("mutations", "mutationRetries", "failures")}
        d.update({k: st1["store"].get(k, 0) - st0["store"].get(k, 0) for k in ("commits", "conflicts", "groups", "syncs")})
        r["cvx_stats"] = d
    if out.stderr.strip():
        r["stderr"] = out.stderr.decode(errors="replace")[-600:]
    return r


def run_raw(workload, data, warmup, duration, alpha=None):
    argv = [os.path.join(BUILD, "rawsqlite"), data, workload, "-w", str(warmup), "-d", str(duration)]
    if alpha:
        argv += ["--alpha", str(alpha)]
    out = subprocess.run(argv, check=True, stdout=subprocess.PIPE, timeout=warmup + duration + 120)
    return json.loads(out.stdout)


def cold_start(system, make_data, reps, cvx_bin=None, with_cache=True):
    """Median over reps of: process start -> listening, listening -> first answered
    point query, and the total. make_data() returns a data dir with the app
    deployed and users seeded, plus one user id."""
    samples = []
    for _ in range(reps):
        data, uid = make_data()
        if system == "cvx" and not with_cache:
            shutil.rmtree(os.path.join(data, "modules"), ignore_errors=True)
        port = free_port()
        if system == "cvx":
            argv = [cvx_bin, "serve", "--data", data, "--port", str(port)]
        elif system == "node":
            argv = ["node", os.path.join(BENCH, "peers", "node", "server.js"), "--data", data, "--port", str(port)]
        else:
            argv = [os.path.join(BUILD, "pbbench"), "serve", "--dir", data, "--http", f"127.0.0.1:{port}"]
        if system == "pocketbase":
            req_path, body = f"/api/collections/bench_users/records/{uid}", None
        else:
            req_path = "/api/query"
            body = json.dumps({"path": "bench:get", "args": [{"id": uid}], "format": "convex_encoded_json"}).encode()
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        procs.append(p)
        # connect as soon as the port accepts
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                if p.poll() is not None:
                    raise RuntimeError(f"{system} exited during cold start")
                time.sleep(0.0005)
        t1 = time.perf_counter()
        if body is None:
            req = f"GET {req_path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        else:
            req = (f"POST {req_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        s.sendall(req)
        resp = b""
        while b"\r\n\r\n" not in resp:
            resp += s.recv(65536)
        head, rest = resp.split(b"\r\n\r\n", 1)
        clen = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                clen = int(line.split(b":")[1])
        while len(rest) < clen:
            rest += s.recv(65536)
        t2 = time.perf_counter()
        s.close()
        if b"user" not in rest:
            raise RuntimeError(f"{system} cold start: unexpected answer {resp[:300]!r}")
        p.send_signal(signal.SIGTERM)
        p.wait(10)
        samples.append({"listen_ms": (t1 - t0) * 1e3, "first_call_ms": (t2 - t1) * 1e3, "total_ms": (t2 - t0) * 1e3})
    med = lambda k: sorted(x[k] for x in samples)[len(samples) // 2]
    return {"listen_ms": round(med("listen_ms"), 2), "first_call_ms": round(med("first_call_ms"), 2),
            "total_ms": round(med("total_ms"), 2), "reps": reps, "samples": samples}


def proc_memory(pid):
    """Resident memory of a process in KiB: VmRSS and its parts from
    /proc/PID/status, and the proportional set size from smaps_rollup (shared
    pages divided among the processes mapping them) when readable."""
    m = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
                m[k] = int(v.split()[0])
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Pss", "Pss_Anon", "Pss_File"):
                    m[k] = int(v.split()[0])
    except OSError:
        pass
    return m


def idle_memory(cvx_bin, datas, systems, idle_s):
    """(m) A fresh `cvx serve` with nothing deployed, then one with the Rust
    bench app, then one with the TypeScript bench app: each deployed, 100
    users seeded, a few calls of each kind (point query, range, insert,
    counter, action, transfer), then idle_s seconds idle before the memory is
    read. Deltas are against the server with nothing deployed."""
    out = {}
    for variant in ["empty"] + [s for s in CVX_SYSTEMS if s in systems]:
        d = os.path.join(datas, f"mem-{variant}")
        os.makedirs(d)
        srv = start_cvx(d, cvx_bin, None if variant == "empty" else app_file(variant), name=f"mem-{variant}")
        try:
            if variant == "empty":
                for _ in range(20):  # the same HTTP path; the function does not exist
                    try:
                        post(f"{srv.url}/api/query", {"path": "bench:get", "args": [{"id": "x"}],
                                                      "format": "convex_encoded_json"})
                    except urllib.error.HTTPError:
                        pass
            else:
                ids = call(srv.url, "mutation", "bench:seed_users", {"start": 0, "count": 100})
                call(srv.url, "mutation", "bench:seed_accounts", {"start": 0, "count": 100, "balance": BALANCE})
                for i in range(20):
                    call(srv.url, "query", "bench:get", {"id": ids[i]})
                    call(srv.url, "query", "bench:range100", {"start": i})
                    call(srv.url, "mutation", "bench:insert", {"n": i})
                    call(srv.url, "mutation", "bench:incr", {"name": "c"})
                    call(srv.url, "action", "bench:act_insert", {"n": i})
                    call(srv.url, "mutation", "bench:transfer", {"from": i, "to": i + 1, "amount": 1})
            time.sleep(idle_s)
            out[variant] = r = proc_memory(srv.pid)
            r["idle_s"] = idle_s
        finally:
            srv.stop()
    base = out.get("empty", {})
    for variant, r in out.items():
        if variant == "empty":
            continue
        for k in ("VmRSS", "RssAnon", "RssFile", "Pss"):
            if k in r and k in base:
                r[f"delta_{k}"] = r[k] - base[k]
    return out


# ---- main --------------------------------------------------------------------------------


def main():
    global RESULTS
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short windows (about 3 minutes in all)")
    ap.add_argument("--workloads", default=",".join(WORKLOAD_IDS),
                    help="comma-separated subset of: " + ",".join(WORKLOAD_IDS) + " (prefixes work: a,b,h)")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset of: " + ",".join(SYSTEMS))
    ap.add_argument("--duration", type=float, help="measurement window per run, seconds (default 8, quick 2)")
    ap.add_argument("--warmup", type=float, help="warm-up per run, seconds (default 2, quick 0.5)")
    ap.add_argument("--repeat", type=int, help="runs per workload and system, interleaved; the best is reported "
                    "(default 2, quick 1)")
    ap.add_argument("--conns", type=int, default=32, help="HTTP connections for (a)-(e) (default 32)")
    ap.add_argument("--transfer-conns", type=int, default=64, help="HTTP connections for (h) (default 64)")
    ap.add_argument("--accounts", type=int, help="accounts for (h) (default 100000, quick 20000)")
    ap.add_argument("--fanout-clients", type=int, default=1000)
    ap.add_argument("--cvx", default=os.path.join(BUILD, "cvx"), help="cvx binary (default: bench/.build/cvx, "
                    "a copy of build/cvx taken by bench/run)")
    ap.add_argument("--out", default=RESULTS, help="results directory")
    a = ap.parse_args()

    quick = a.quick
    dur = a.duration or (2.0 if quick else 8.0)
    warm = a.warmup if a.warmup is not None else (0.5 if quick else 2.0)
    n_accounts = a.accounts or (20000 if quick else 100000)
    repeat = a.repeat or (1 if quick else 2)
    fan_rounds = 10 if quick else 30
    cold_reps = 3 if quick else 7
    sel = [w.strip() for w in a.workloads.split(",") if w.strip()]
    workloads = [w for w in WORKLOAD_IDS if any(w == s or w.split("_")[0] == s for s in sel)]
    systems = [s.strip() for s in a.systems.split(",") if s.strip()]
    for s in systems:
        if s not in SYSTEMS:
            sys.exit(f"bench/run: unknown system {s} (known: {', '.join(SYSTEMS)})")
    RESULTS = a.out
    tmp = os.path.join(RESULTS, "tmp")
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
                     "users": N_USERS, "accounts": n_accounts, "fanout_clients": a.fanout_clients,
                     "fanout_rounds": fan_rounds, "cold_start_reps": cold_reps, "repeat": repeat},
        "workloads": {},
        "targets": {},
        "notes": [],
    }
    http_systems = [s for s in ("cvx", "cvx-ts", "node", "pocketbase") if s in systems]
    servers = {}
    ids = {}
    try:
        need_servers = any(w in workloads for w in
                           ("a_get", "b_range100", "c_insert", "d_counter", "e_action", "f_fanout",
                            "h_transfer_low", "h_transfer_high"))
        if need_servers:
            for s in list(http_systems):
                d = os.path.join(datas, s)
                os.makedirs(d)
                log(f"starting {s}")
                if s == "cvx-ts":
                    try:  # new: its failure must not lose the rest of the run
                        t0 = time.time()
                        servers[s] = start_cvx(d, a.cvx, app_file(s), name=s)
                        log(f"    deployed the TypeScript app (the server builds its snapshot) in {time.time() - t0:.1f} s")
                    except Exception as e:
                        log(f"    FAILED: {e}")
                        res["notes"].append(f"cvx-ts did not start: {e}")
                        http_systems.remove(s)
                        continue
                elif s == "cvx":
                    servers[s] = start_cvx(d, a.cvx, wasm_dir)
                elif s == "node":
                    servers[s] = start_node(d)
                else:
                    servers[s] = start_pocketbase(d)
                ids[s] = seed(s, servers[s], n_accounts)
        raw_dir = os.path.join(datas, "raw")
        os.makedirs(raw_dir)

        # ---- (a)-(e), (h): HTTP workloads, workload-major ------------------------------
        raw_map = {"a_get": "get", "b_range100": "range100", "c_insert": "insert", "d_counter": "incr",
                   "h_transfer_low": "transfer", "h_transfer_high": "transfer"}
        for w in workloads:
            if w in ("f_fanout", "g_coldstart", "call", "m_idle_memory"):
                continue
            res["workloads"][w] = out = {}
            conns = a.transfer_conns if w.startswith("h_") else a.conns
            runs = {}
            for rep in range(repeat):
                for s in http_systems:
                    log(f"{w}: {s} ({conns} connections, {warm:g}+{dur:g} s{', run %d/%d' % (rep + 1, repeat) if repeat > 1 else ''})")
                    try:
                        r = run_httpload(servers[s], http_spec(w, s, ids.get(s), n_accounts), conns, warm, dur)
                        log(f"    {r['rps']:.0f}/s  p50 {r['p50_us'] / 1000:.2f} ms  p99 {r['p99_us'] / 1000:.2f} ms  "
                            f"errors {r['errors']}  (server {r['server_cpu_cores']:.2f} cores, "
                            f"other processes {r['other_cpu_cores']:.2f} cores)")
                    except Exception as e:  # keep going: one broken peer must not lose the run
                        r = {"failed": str(e)}
                        log(f"    FAILED: {e}")
                    runs.setdefault(s, []).append(r)
                if "sqlite" in systems and w in raw_map:
                    log(f"{w}: raw SQLite")
                    r = run_raw(raw_map[w], raw_dir, warm, dur, alpha=1.5 if w == "h_transfer_high" else None)
                    log(f"    {r['rps']:.0f}/s  p50 {r['p50_us']:.1f} us  p99 {r['p99_us']:.1f} us")
                    runs.setdefault("sqlite", []).append(r)
                    res["versions"]["sqlite_c"] = r.get("sqlite", "")
                    if w == "c_insert":
                        r = run_raw("insert64", raw_dir, warm, dur)
                        log(f"    64/txn: {r['rps']:.0f} inserts/s")
                        runs.setdefault("sqlite64", []).append(r)
            # the repetition with the highest throughput (the least disturbed one)
            for s, rl in runs.items():
                good = [r for r in rl if "rps" in r]
                best = max(good, key=lambda r: r["rps"]) if good else rl[-1]
                best = dict(best)
                if len(rl) > 1:
                    best["all_rps"] = [r.get("rps") for r in rl]
                out[s] = best

        # money must be conserved by the transfers
        if any(w.startswith("h_") for w in workloads):
            for s in http_systems:
                try:
                    total = balance_total(s, servers[s], n_accounts)
                    ok = abs(total - n_accounts * BALANCE) < 1e-6
                    res["workloads"].setdefault("h_transfer_low", {}).setdefault(s, {})["money_conserved"] = ok
                    if not ok:
                        res["notes"].append(f"{s}: total balance {total} != {n_accounts * BALANCE} after transfers")
                    log(f"{s}: total balance after transfers {'conserved' if ok else 'NOT conserved: %r' % total}")
                except Exception as e:
                    log(f"{s}: balance check failed: {e}")

        # ---- (f) fan-out --------------------------------------------------------------------
        if "f_fanout" in workloads:
            res["workloads"]["f_fanout"] = out = {}
            for s in ("cvx", "node"):
                if s not in servers:
                    continue
                log(f"f_fanout: {s} ({a.fanout_clients} clients, {fan_rounds} rounds)")
                p = subprocess.run([os.path.join(BUILD, "wsfan"), "--url", servers[s].url, "--proto", s, "-n",
                                    str(a.fanout_clients), "-r", str(fan_rounds)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
                try:
                    if p.returncode:
                        raise RuntimeError(p.stderr.decode(errors="replace")[-500:])
                    out[s] = json.loads(p.stdout)
                    log(f"    from send: p50 {out[s]['from_send_p50_ms']:.1f} ms  p99 {out[s]['from_send_p99_ms']:.1f} ms;"
                        f" from commit response: p50 {out[s]['p50_ms']:.1f} ms  p99 {out[s]['p99_ms']:.1f} ms")
                except Exception as e:
                    out[s] = {"failed": str(e)}
                    log(f"    FAILED: {e}")
            if "pocketbase" in servers:
                out["pocketbase"] = {"skipped": "PocketBase pushes over Server-Sent Events, not WebSocket; not measured"}

        for s in list(servers):
            servers.pop(s).stop()

        # ---- (g) cold start -----------------------------------------------------------------
        if "g_coldstart" in workloads:
            res["workloads"]["g_coldstart"] = out = {}
            for s in [s for s in http_systems if s != "cvx-ts"]:
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
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    from report import write_summary, write_chart
    write_summary(res, os.path.join(RESULTS, "summary.md"))
    try:
        write_chart(res, os.path.join(RESULTS, "chart.png"))
    except Exception as e:
        log(f"chart not written: {e}")
    shutil.rmtree(datas, ignore_errors=True)  # keep the server logs in results/tmp (gitignored)
    log(f"done in {res['elapsed_s']:.0f} s: {RESULTS}/results.json, summary.md, chart.png")


def g(res, w, s, k="rps"):
    return res["workloads"].get(w, {}).get(s, {}).get(k)


def evaluate_targets(res):
    t = res["targets"]
    cvx, node, pb = g(res, "a_get", "cvx"), g(res, "a_get", "node"), g(res, "a_get", "pocketbase")
    if cvx and node:
        t["point_query_vs_node"] = {"target": "point query >= 2× Node + better-sqlite3 throughput", "value": round(cvx / node, 2),
                                    "met": cvx >= 2 * node}
    if cvx and pb:
        t["point_query_vs_pocketbase"] = {"target": "point query ahead of PocketBase", "value": round(cvx / pb, 2), "met": cvx > pb}
    c = res["workloads"].get("call", {})
    if "wasm" in c and "native" in c:
        ov = c["wasm"]["p50_us"] - c["native"]["p50_us"]
        t["call_overhead_us"] = {"target": "< 10 µs per call (wasm enter + exit + marshalling; p50 of cvx_abi_invoke "
                                 "hello:add minus p50 of the native call)", "value": round(ov, 2), "met": ov < 10}
    ins, raw = g(res, "c_insert", "cvx"), g(res, "c_insert", "sqlite")
    if ins and raw:
        t["insert_vs_raw_sqlite"] = {"target": "durable inserts >= 0.5× raw SQLite (C loop, 1 insert per txn)",
                                     "value": round(ins / raw, 3), "met": ins >= 0.5 * raw}
    raw64 = g(res, "c_insert", "sqlite64")
    if ins and raw64:
        t["insert_vs_raw_sqlite_batched"] = {"target": "durable inserts >= 0.5× raw SQLite with perfect group commit "
                                             "(64 inserts per txn)", "value": round(ins / raw64, 3),
                                             "met": ins >= 0.5 * raw64}
    gc = res["workloads"].get("g_coldstart", {}).get("cvx_cached", {})
    lc = c.get("load_cached", {})
    if "first_call_ms" in gc:
        t["cold_start_first_call_ms"] = {"target": "< 5 ms (first call after start, with module cache)",
                                         "value": gc["first_call_ms"], "met": gc["first_call_ms"] < 5}
        t["cold_start_total_ms"] = {"target": "< 5 ms (process start to first answer, with cache)",
                                    "value": gc["total_ms"], "met": gc["total_ms"] < 5}
    if "min_ms" in lc:
        t["module_load_cached_ms"] = {"target": "< 5 ms (module from the compiled-module cache)",
                                      "value": lc["min_ms"], "met": lc["min_ms"] < 5}
    tl = g(res, "h_transfer_low", "cvx")
    if tl:
        t["keynote2_low_tps"] = {"target": ">= 10,000 durable TPS (low contention, 2 cores)", "value": round(tl),
                                 "met": tl >= 10000}
    # TypeScript functions beside Rust: the same server, the TypeScript bench app.
    ts, node = g(res, "a_get", "cvx-ts"), g(res, "a_get", "node")
    if ts and node:
        t["ts_point_query_vs_node"] = {"target": "TypeScript point query >= Node + better-sqlite3 throughput",
                                       "value": round(ts / node, 2), "met": ts >= node}
    ts, node = g(res, "h_transfer_low", "cvx-ts"), g(res, "h_transfer_low", "node")
    if ts and node:
        t["ts_keynote2_low_vs_node"] = {"target": "TypeScript keynote-2 transfer (low contention) >= Node + "
                                        "better-sqlite3 TPS", "value": round(ts / node, 2), "met": ts >= node}
    if "ts_empty" in c and "native" in c:
        ov = c["ts_empty"]["p50_us"] - c["native"]["p50_us"]
        t["ts_call_overhead_us"] = {"target": "< 50 µs per empty TypeScript query call (p50 of cvx_abi_invoke "
                                    "bench:empty minus p50 of the native call)", "value": round(ov, 2), "met": ov < 50}


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        main()
    except KeyboardInterrupt:
        cleanup()
        sys.exit(130)
