#!/usr/bin/env python3
"""One workload against one cvx binary, for A/B comparisons of builds.

Starts `BIN serve` on a fresh data directory (loopback, free port), deploys
bench/.build/bench.wasm (built by bench/run), seeds it, runs one HTTP
workload with httpload and prints one line: throughput, p50/p99, server
CPU, and the store's counters over the window (commits, conflicts, groups
written, fsyncs and the time spent in them). Interleave runs of two
binaries to compare them: figures on a shared machine move by 10-30%
between runs.

  bench/lib/one.py build/cvx h_transfer_low
  bench/lib/one.py /tmp/cvx-a d_counter --seconds 8 --accounts 100000 --workers 32
"""
import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import systems  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bin", help="the cvx binary to measure")
    ap.add_argument("workload", choices=list(bench.HTTP_WORKLOADS),
                    help="a_get_uncached starts the server with --query-cache 0")
    ap.add_argument("--seconds", type=float, default=5, help="measurement window (default 5)")
    ap.add_argument("--warmup", type=float, default=1, help="warm-up (default 1)")
    ap.add_argument("--accounts", type=int, default=20000, help="accounts for (h) (default 20000)")
    ap.add_argument("--workers", type=int, help="cvx serve --workers (default: the server's)")
    a = ap.parse_args()
    wasm = os.path.join(systems.BUILD, "bench.wasm")
    if not os.path.exists(wasm):
        sys.exit(f"{wasm} is missing: run bench/run once (it builds it)")
    if not os.access(a.bin, os.X_OK):
        sys.exit(f"{a.bin}: not an executable")
    tmp = tempfile.mkdtemp(prefix="cvx-one-")
    systems.RESULTS = tmp
    os.makedirs(os.path.join(tmp, "tmp"))
    data = os.path.join(tmp, "data")
    os.makedirs(data)
    if a.workers:
        orig = systems.Server.__init__

        def with_workers(self, name, argv, *args, **kw):
            orig(self, name, argv + ["--workers", str(a.workers)] if name == "cvx" else argv, *args, **kw)

        systems.Server.__init__ = with_workers
    try:
        extra = ["--query-cache", "0"] if a.workload == "a_get_uncached" else []
        srv = systems.start_cvx(data, a.bin, wasm, extra_args=extra)
        ids = systems.seed("cvx", srv, a.accounts)
        conns = 64 if a.workload.startswith("h_") else 32
        st0 = systems.cvx_stats(srv)
        r = systems.run_httpload(srv, systems.http_spec(a.workload, "cvx", ids, a.accounts), conns, a.warmup, a.seconds)
        st1 = systems.cvx_stats(srv)
        keys = ("commits", "conflicts", "groups", "groupWriteMs", "syncs", "syncMs", "docCacheHits", "docCacheMisses", "rangeCacheHits", "rangeCacheMisses")
        d = {k: round(st1["store"].get(k, 0) - st0["store"].get(k, 0), 1) for k in keys}
        print(f"{a.workload} {a.bin}: {r['rps']:.0f}/s p50 {r['p50_us'] / 1000:.2f} ms p99 {r['p99_us'] / 1000:.2f} ms "
              f"server {r['server_cpu_cores']} cores ({r['cpu_us_per_req']} CPU us/req), loadgen {r['loadgen_cpu_cores']} cores, "
              f"errors {r['errors']}; store: " +
              ", ".join(f"{k} {v:g}" for k, v in d.items()))
        srv.stop()
    finally:
        systems.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
