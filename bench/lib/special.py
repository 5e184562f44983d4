"""Measurements outside the paired HTTP rounds: cold start and the idle
memory of a deployed app."""
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

from systems import BALANCE, BENCH, BUILD, CVX_SYSTEMS, app_file, call, free_port, post, procs, start_cvx


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
