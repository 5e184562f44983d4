"""(o) Open-loop runs: requests offered at a fixed rate whatever the server
does (httpload --rate), latency counted from when each request was due. For
each system, a ladder of rates is climbed until p99 reaches 20 ms (or
requests fail, or fall behind): the highest rate that kept p99 under 20 ms,
and the p99 at one fixed rate every system is offered."""
import os
import shutil

from systems import CVX_SYSTEMS, check_invariants, http_spec, log, median, run_httpload, start_system

# the closed-loop workload each open-loop run sends, and the rates tried (per second)
LADDERS = {
    "a_get_uncached": [2000, 4000, 6000, 8000, 12000, 16000, 20000, 25000, 30000],
    "h_transfer_low": [500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000],
}
FIXED = {"a_get_uncached": 4000, "h_transfer_low": 1000}  # the rate every system's p99 is quoted at
P99_LIMIT_US = 20000
CONNS = 128  # enough that connections are never what limits the offered rate


def passed(r):
    """p99 under the limit, nothing failed, and the load generator never fell
    behind by more than 0.1% of what it offered."""
    return (r.get("p99_us", 1e12) < P99_LIMIT_US and not r.get("errors") and not r.get("lost_in_flight")
            and not r.get("unanswered") and r.get("late", 0) <= 0.001 * max(1, r.get("offered", 0)))


def climb(w, s, tpl, ids_file, datas, cvx_bin, n_accounts, warm, dur, seed):
    """One round of one system on one workload: the ladder, bottom up."""
    steps = []
    for rate in LADDERS[w]:
        d = os.path.join(datas, f"open-{s}-{w}-{rate}")
        shutil.copytree(tpl, d)
        srv = None
        try:
            extra = ["--query-cache", "0"] if (w == "a_get_uncached" and s in CVX_SYSTEMS) else []
            srv = start_system(s, d, cvx_bin, extra)
            r = run_httpload(srv, http_spec(w, s, ids_file, n_accounts) + ["--rate", str(rate)], CONNS, warm, dur,
                             seed=seed)
            inv_ok = all(v.get("ok") is not False for v in check_invariants(w, s, srv, r, n_accounts).values())
            step = {"rate": rate, "ok": passed(r) and inv_ok, "invariants_ok": inv_ok}
            for k in ("rps", "p50_us", "p99_us", "p999_us", "errors", "late", "unanswered", "offered", "backlog_max",
                      "server_cpu_cores", "cpu_us_per_req", "loadgen_cpu_cores"):
                step[k] = r.get(k)
        except Exception as e:
            step = {"rate": rate, "ok": False, "failed": str(e)}
        finally:
            if srv:
                srv.stop()
            shutil.rmtree(d, ignore_errors=True)
        steps.append(step)
        log(f"    {s} at {rate}/s: " + (f"{step['rps']:.0f}/s done, p99 {step['p99_us'] / 1000:.1f} ms, late {step['late']}, "
                                       f"errors {step['errors']}, server {step['server_cpu_cores']:.2f} cores"
                                       if "rps" in step else f"FAILED: {step.get('failed')}")
            + ("" if step["ok"] else "  (over the limit: stop climbing)"))
        if not step["ok"]:
            break
    # 0: not even the lowest rate passed; the top rate passing means "at least"
    best = max((st["rate"] for st in steps if st["ok"]), default=0)
    fixed = next((st for st in steps if st["rate"] == FIXED[w]), None)
    return {"steps": steps, "max_rate_p99_under_20ms": best, "top_rate_passed": best == LADDERS[w][-1],
            "p99_at_fixed_us": fixed.get("p99_us") if fixed and "p99_us" in fixed else None}


def open_loop(systems, eligible, templates, ids, datas, cvx_bin, n_accounts, warm, dur, rounds, seed):
    """Every round climbs every ladder for every eligible system (order
    rotated per round); returns per workload and system the rounds and the
    medians of the highest passing rate and of the p99 at the fixed rate."""
    out = {}
    for rnd in range(rounds):
        for w in LADDERS:
            order = [s for s in systems if eligible(w, s) and (s, "") in templates]
            if not order:
                continue
            k = rnd % len(order)
            order = order[k:] + order[:k]
            log(f"open loop, round {rnd + 1}/{rounds}, {w} ({CONNS} connections, {warm:g}+{dur:g} s per rate, "
                f"rates {LADDERS[w][0]}-{LADDERS[w][-1]}/s): " + " → ".join(order))
            for s in order:
                r = climb(w, s, templates[(s, "")], ids[(s, "")], datas, cvx_bin, n_accounts, warm, dur, seed + rnd)
                r["round"] = rnd
                out.setdefault(w, {}).setdefault(s, {"rounds": []})["rounds"].append(r)
    for w, per in out.items():
        for s, v in per.items():
            best = [r["max_rate_p99_under_20ms"] for r in v["rounds"]]
            fixed = [r["p99_at_fixed_us"] for r in v["rounds"] if r["p99_at_fixed_us"] is not None]
            v["fixed_rate"] = FIXED[w]
            v["max_rate_p99_under_20ms"] = median(best)
            v["max_rate_range"] = [min(best), max(best)]
            v["top_rate_passed_rounds"] = sum(r["top_rate_passed"] for r in v["rounds"])
            # the fixed rate is not reached when the ladder stopped below it: say in how many rounds
            v["p99_at_fixed_us"] = median(fixed)
            v["p99_at_fixed_range"] = [min(fixed), max(fixed)] if fixed else [None, None]
            v["fixed_not_reached_rounds"] = len(v["rounds"]) - len(fixed)
    return out
