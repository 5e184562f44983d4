"""The systems under test: starting each server, seeding it, the HTTP
requests of each workload, the invariants checked after a write workload,
and one run of the load generator or the raw-SQLite loop (bench/README.md)."""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "bench")
BUILD = os.path.join(BENCH, ".build")
RESULTS = os.path.join(BENCH, "results")  # bench.py sets it from --out
CVX_SYSTEMS = ("cvx", "cvx-ts")  # the same server binary: the Rust app, the TypeScript app
# Node as a reasonable user would also run it (bench/peers/node/server.js):
# the same server and data with these flags; seeded, checked and sent
# requests exactly as "node".
NODE_VARIANTS = {"node-cluster": ["--cluster", "2"], "node-batch": ["--batch"]}
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


def tcp_retransmits():
    """The kernel's count of retransmitted TCP segments (/proc/net/snmp,
    Tcp RetransSegs; `nstat`'s TcpRetransSegs), or None."""
    try:
        with open("/proc/net/snmp") as f:
            rows = [line.split() for line in f if line.startswith("Tcp:")]
        return int(rows[1][rows[0].index("RetransSegs")])
    except (OSError, ValueError, IndexError):
        return None


def children_cpu():
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return None if not n else (xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2)


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
        self.watch_pids = [self.pid]  # every process whose CPU is the server's
        if port_prefix:
            # Node's cluster primary names its workers first (NODE_WORKERS=pid,pid).
            line = ""
            for _ in range(4):
                line = self.p.stdout.readline().decode()
                if line.startswith("NODE_WORKERS="):
                    self.watch_pids += [int(x) for x in line.strip().split("=")[1].split(",") if x]
                    continue
                break
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


def start_cvx(data, cvx_bin, wasm_file, name="cvx", extra_args=()):
    s = Server(name, [cvx_bin, "serve", "--data", data, "--port", "0"] + list(extra_args), port_prefix="CVX_PORT=")
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


def start_node(data, name="node"):
    return Server(name, ["node", os.path.join(BENCH, "peers", "node", "server.js"), "--data", data, "--port", "0"]
                  + NODE_VARIANTS.get(name, []), port_prefix="NODE_PORT=")


def family(system):
    """The system whose app, seeding and requests a system uses ("node" for a Node variant)."""
    return "node" if system in NODE_VARIANTS else system


def start_pocketbase(data):
    port = free_port()
    s = Server("pocketbase", [os.path.join(BUILD, "pbbench"), "serve", "--dir", data, "--http", f"127.0.0.1:{port}"],
               port=port)
    wait_http(f"{s.url}/api/health")
    return s


def start_system(system, data, cvx_bin, extra_args=()):
    """A server on a data directory already seeded (a copy of the system's template)."""
    if system in CVX_SYSTEMS:
        return start_cvx(data, cvx_bin, None, name=system, extra_args=extra_args)
    if family(system) == "node":
        return start_node(data, system)
    return start_pocketbase(data)


def seed(system, srv, n_accounts, n_users=N_USERS, tag=""):
    """Users 0..n_users-1 (their ids to a file, whose path is returned),
    accounts 0..n_accounts-1, counters. Users go in batches of 1000, four
    at a time (a million users take minutes one batch at a time)."""
    from concurrent.futures import ThreadPoolExecutor
    t = time.time()
    convex = family(system) in ("cvx", "cvx-ts", "node")

    def users(start):
        args = {"start": start, "count": min(1000, n_users - start)}
        if convex:
            return call(srv.url, "mutation", "bench:seed_users", args)
        return post(f"{srv.url}/api/bench/seed_users", args)

    with ThreadPoolExecutor(4) as pool:
        ids = [i for batch in pool.map(users, range(0, n_users, 1000)) for i in batch]
    for start in range(0, n_accounts, 10000):
        args = {"start": start, "count": min(10000, n_accounts - start), "balance": BALANCE}
        if convex:
            call(srv.url, "mutation", "bench:seed_accounts", args)
        else:
            post(f"{srv.url}/api/bench/seed_accounts", args)
    if convex:
        call(srv.url, "mutation", "bench:incr", {"name": "c"})
        call(srv.url, "mutation", "bench:incr", {"name": "fan"})
    else:
        post(f"{srv.url}/api/bench/incr", {"name": "c"})
    path = os.path.join(RESULTS, "tmp", f"{system}{tag}.ids")
    with open(path, "w") as f:
        f.write("\n".join(ids) + "\n")
    log(f"seeded {system}{tag}: {n_users} users, {n_accounts} accounts in {time.time() - t:.1f} s")
    return path


def sum_accounts(system, srv, n_accounts, fn, extra=None):
    """The bench app's query `fn` (a sum over accounts n in [start,
    start+count)) summed over every account, 10,000 at a time."""
    total = 0.0
    for start in range(0, n_accounts, 10000):
        args = {"start": start, "count": 10000, **(extra or {})}
        if system == "pocketbase":
            total += post(f"{srv.url}/api/bench/{fn}", args)
        else:
            total += call(srv.url, "query", f"bench:{fn}", args)
    return total


def balance_total(system, srv, n_accounts):
    return sum_accounts(system, srv, n_accounts, "balance_sum")


def balance_wsum(system, srv, n_accounts):
    """Sum of n * (balance - BALANCE) over every account (the transfer invariant)."""
    return sum_accounts(system, srv, n_accounts, "balance_wsum", {"base": BALANCE})


def check_transfers(system, srv, r, n_accounts, uncertain):
    """Money conserved, and every acknowledged transfer moved 1 from `from`
    to `to` (and nothing else moved): sum of n * (balance - initial) ==
    sum of (to - from) over acknowledged transfers."""
    inv = {}
    total = balance_total(system, srv, n_accounts)
    inv["conserved"] = {"what": "sum of all balances unchanged", "expected": n_accounts * BALANCE, "found": total,
                        "ok": abs(total - n_accounts * BALANCE) < 1e-6}
    expected = r.get("acked_wdelta")
    found = balance_wsum(system, srv, n_accounts)
    ok = (abs(found - expected) < 1e-6) if expected is not None else None
    if uncertain and not ok:
        ok = None
    inv["moved"] = {"what": "sum of n*(balance - initial) == sum of (to - from) over acknowledged transfers",
                    "expected": expected, "found": found, "acknowledged": r.get("ok2_total", r.get("ok_total")),
                    "uncertain_requests": uncertain, "ok": ok}
    return inv


def read_counter(system, srv, name):
    if system == "pocketbase":
        return post(f"{srv.url}/api/bench/counter", {"name": name})
    return call(srv.url, "query", "bench:counter", {"name": name})


def check_invariants(w, system, srv, r, n_accounts):
    """Checked after the run, outside the timed window. ok: True (pass), False
    (fail: the run is marked failed), None (cannot be decided exactly because
    requests were lost in flight or left unanswered)."""
    inv = {}
    uncertain = r.get("lost_in_flight", 0) + r.get("unanswered", 0)
    if w == "d_counter":
        # the seed incremented "c" once; every acknowledged increment adds 1
        expected = 1 + r["ok_total"]
        found = read_counter(system, srv, "c")
        ok = found == expected if not uncertain else (False if not expected <= found <= expected + uncertain else None)
        inv["counter"] = {"what": "counter == 1 (seed) + acknowledged increments", "expected": expected,
                          "found": found, "uncertain_requests": uncertain, "ok": ok}
    if w.startswith("h_") or w == "i_mix":
        inv.update(check_transfers(system, srv, r, n_accounts, uncertain))
    return inv


def convex_body(path, args_tmpl):
    return '{"path":"%s","args":[%s],"format":"convex_encoded_json"}' % (path, args_tmpl)


def http_spec(workload, system, ids_file, n_accounts):
    """httpload arguments for one workload on one system."""
    if workload in ("j_get_1m", "j_get_1m_zipf"):
        # the point query, on the 1M-user data set (ids_file lists its ids)
        return http_spec("a_get", system, ids_file, n_accounts) + (["--id-alpha", "1.0"] if workload.endswith("zipf") else [])
    ok = ["--expect", '"status":"success"']
    # a transfer that did not move is an error, whatever the HTTP status
    # (PocketBase answers 200 {"value":false} on a lookup error)
    moved = ["--expect", '"value":true']
    # (i): 90% reads of one account by n, 10% transfers between two (the
    # transfer's own answer is checked by the "moved" invariant, not here)
    mix = ["--mix", "10", "--accounts", str(n_accounts)]
    if family(system) in ("cvx", "cvx-ts", "node"):
        return {
            "a_get": ["--path", "/api/query", "--ids", ids_file, "--body", convex_body("bench:get", '{"id":"{id}"}')] + ok,
            "a_get_uncached": ["--path", "/api/query", "--ids", ids_file, "--body",
                               convex_body("bench:get", '{"id":"{id}"}')] + ok,
            "b_range100": ["--path", "/api/query", "--body",
                           convex_body("bench:range100", '{"start":{rand:%d}}' % (N_USERS - 100))] + ok,
            "c_insert": ["--path", "/api/mutation", "--body", convex_body("bench:insert", '{"n":{seq}}')] + ok,
            "d_counter": ["--path", "/api/mutation", "--body", convex_body("bench:incr", '{"name":"c"}')] + ok,
            "e_action": ["--path", "/api/action", "--body", convex_body("bench:act_insert", '{"n":{seq}}')] + ok,
            "h_transfer_low": ["--path", "/api/mutation", "--accounts", str(n_accounts), "--body",
                               convex_body("bench:transfer", '{"from":{from},"to":{to},"amount":1}')] + ok + moved,
            "h_transfer_high": ["--path", "/api/mutation", "--accounts", str(n_accounts), "--alpha", "1.5", "--body",
                                convex_body("bench:transfer", '{"from":{from},"to":{to},"amount":1}')] + ok + moved,
            "i_mix": ["--path", "/api/query", "--body", convex_body("bench:account", '{"n":{rand:%d}}' % n_accounts),
                      "--path2", "/api/mutation", "--body2",
                      convex_body("bench:transfer", '{"from":{from},"to":{to},"amount":1}')] + mix + ok,
        }[workload]
    return {
        "a_get": ["--method", "GET", "--path", "/api/collections/bench_users/records/{id}", "--ids", ids_file],
        "a_get_uncached": ["--method", "GET", "--path", "/api/collections/bench_users/records/{id}", "--ids", ids_file],
        "b_range100": ["--method", "GET", "--path",
                       "/api/collections/bench_users/records?filter=n%%3E%%3D{rand:%d}&sort=n&perPage=100&skipTotal=1"
                       % (N_USERS - 100)],
        "c_insert": ["--path", "/api/collections/events/records", "--body",
                     '{"kind":"bench","n":{seq},"payload":"0123456789abcdef0123456789abcdef"}'],
        "d_counter": ["--path", "/api/bench/incr", "--body", '{"name":"c"}'],
        "e_action": ["--path", "/api/bench/act_insert", "--body", '{"n":{seq}}'],
        "h_transfer_low": ["--path", "/api/bench/transfer", "--accounts", str(n_accounts), "--body",
                           '{"from":{from},"to":{to},"amount":1}'] + moved,
        "h_transfer_high": ["--path", "/api/bench/transfer", "--accounts", str(n_accounts), "--alpha", "1.5", "--body",
                            '{"from":{from},"to":{to},"amount":1}'] + moved,
        "i_mix": ["--path", "/api/bench/account", "--body", '{"n":{rand:%d}}' % n_accounts,
                  "--path2", "/api/bench/transfer", "--body2", '{"from":{from},"to":{to},"amount":1}'] + mix,
    }[workload]


def derive_cpu(r, duration, server_cpu_s, loadgen_cpu_s=None, busy_s=None):
    """The CPU figures of one run, all over the measurement window: server
    cores, requests per server-core-second, server CPU µs per successful
    request, the load generator's cores, and every other process's cores."""
    ok = r.get("ok") or 0
    r["server_cpu_s"] = round(server_cpu_s, 3)
    r["server_cpu_cores"] = round(server_cpu_s / duration, 3)
    r["req_per_core_s"] = round(r["rps"] / r["server_cpu_cores"], 1) if r["server_cpu_cores"] > 0 else None
    r["cpu_us_per_req"] = round(server_cpu_s * 1e6 / ok, 2) if ok else None
    if loadgen_cpu_s is not None:
        r["loadgen_cpu_cores"] = round(loadgen_cpu_s / duration, 3)
    if busy_s is not None:
        r["other_cpu_cores"] = round(max(0.0, busy_s - server_cpu_s - (loadgen_cpu_s or 0)) / duration, 3)
    return r


def run_httpload(srv, args, conns, warmup, duration, seed=None):
    argv = [os.path.join(BUILD, "httpload"), "--url", srv.url, "-c", str(conns), "-w", str(warmup), "-d",
            str(duration), "--watch-pid", ",".join(map(str, srv.watch_pids))] + args
    if seed is not None:
        argv += ["--seed", str(seed)]
    la = loadavg()
    st0 = cvx_stats(srv) if srv.name in CVX_SYSTEMS else None
    out = subprocess.run(argv, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=warmup + duration + 60)
    r = json.loads(out.stdout)
    # httpload samples the server's /proc/PID/stat, /proc/stat and its own
    # getrusage at the start and the end of the window: every CPU figure
    # covers exactly the window whose requests are counted
    derive_cpu(r, duration, r.pop("server_cpu_s"), r["loadgen_cpu_s"], r.pop("machine_busy_s"))
    r["loadavg_before"] = la
    st1 = cvx_stats(srv) if st0 else None
    if st0 and st1:
        d = {k: st1["exec"][k] - st0["exec"][k] for k in ("mutations", "mutationRetries", "failures")}
        d.update({k: st1["store"].get(k, 0) - st0["store"].get(k, 0) for k in ("commits", "conflicts", "groups", "syncs")})
        r["cvx_stats"] = d
    if out.stderr.strip():
        r["stderr"] = out.stderr.decode(errors="replace")[-600:]
    return r


def run_raw(workload, data, warmup, duration, alpha=None, seed=None):
    argv = [os.path.join(BUILD, "rawsqlite"), data, workload, "-w", str(warmup), "-d", str(duration)]
    if alpha:
        argv += ["--alpha", str(alpha)]
    if seed is not None:
        argv += ["--seed", str(seed)]
    out = subprocess.run(argv, check=True, stdout=subprocess.PIPE, timeout=warmup + duration + 120)
    r = json.loads(out.stdout)
    # one process, no load generator: its own CPU over the window is the "server" CPU
    return derive_cpu(r, duration, r.pop("cpu_s", 0.0)) if duration >= 0.5 else r
