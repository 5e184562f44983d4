// soak.md from the results object soak.mjs builds (also: node report.mjs soak.json > soak.md).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const TARGET = 2; // p99 with hostile clients within 2x of without
const f = (x, d = 1) => (x == null ? "–" : Number(x).toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d }));
const n0 = (x) => (x == null ? "–" : Number(x).toLocaleString("en-US"));
const sumErrors = (e) => Object.values(e ?? {}).reduce((a, b) => a + b, 0);

export function markdown(R) {
  const failed = Object.values(R.phases).filter((p) => p.error);
  const P = Object.fromEntries(Object.entries(R.phases).filter(([, p]) => !p.error));
  const A = P.A, B = P.B, L = [];
  const s = R.settings;
  L.push(`# Soak: do hostile clients hurt well-behaved ones?`, ``);
  L.push(`${R.when.slice(0, 16).replace("T", " ")} UTC, ${R.cvx} (${R.commit}${R.binary?.mtime ? `; binary ${R.binary.path} built ${R.binary.mtime.slice(0, 19).replace("T", " ")}, sha256 ${R.binary.sha256}` : ""}), ${R.machine.cores} cores (${R.machine.cpu}), node ${R.machine.node}.`, ``);
  L.push(`    ${R.command}`, ``);
  L.push(`Well-behaved load (both phases): ${n0(s.wsClients)} WebSocket subscribers (real \`ConvexClient\`s, one query each: ` +
    `a third on \`fixture:counter\` of the counters being written, the rest on \`fixture:big\` with one of 100 small sizes) and ` +
    `${n0(s.httpClients)} HTTP clients (one keep-alive connection each, a call every ~${s.intervalMs} ms: 50% \`fixture:incr\` of ` +
    `the client's own counter, 25% \`fixture:counter\`, 25% \`fixture:big\` with a small n). Latency counts from when a call was due ` +
    `(open loop). Phase B adds ${B?.hostileResult ? Object.values(B.hostileResult.kinds).reduce((a, k) => a + k.clients, 0) : 50} hostile clients (table below), each starting again ${s.hostilePauseMs} ms after the server closes it` +
    `${s.hostileNice ? `, run at nice ${s.hostileNice} (the CPU they take from the server on this shared machine is mostly left out)` : `, at the server's priority on the same machine (their own CPU use is part of what the server suffers)`}. ` +
    `Each phase ${f(s.minutes, 1)} min on a fresh server.`, ``);

  for (const p of failed) L.push(`**Phase ${p.phase} failed:**`, "", "```", p.error, "```", "");
  const phases = Object.values(P);
  if (!phases.length) return L.join("\n");
  L.push(`| phase | calls | calls/s | p50 ms | p99 ms | p99.9 ms | max ms | errors | update p50 / p99 ms | peak RSS MiB | RSS after MiB | RSS slope MiB/min | server CPU s (cores) | server waited for a CPU, s | machine busy / other processes, cores | peak conns |`);
  L.push(`|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|`);
  for (const p of phases) {
    const l = p.http.latency.all, u = p.ws.updateLatency, sv = p.server;
    L.push(`| ${p.phase}${p.hostile ? " (hostile)" : ""} | ${n0(p.http.calls)} | ${f(p.http.throughput)} | ${f(l.p50, 2)} | ${f(l.p99, 2)} | ${f(l.p999, 2)} | ${f(l.max, 0)} | ` +
      `${n0(sumErrors(p.http.errors) + sumErrors(p.ws.errors))} | ${f(u.p50, 2)} / ${f(u.p99, 2)} | ${f(sv.peakRssMiB)} | ${f(sv.finalRssMiB)} | ${f(sv.rssSlopeMiBPerMin, 2)} | ` +
      `${f(sv.cpuS)} (${f(sv.avgCores, 2)}) | ${f(sv.runQueueWaitS)} | ${f(p.machine.busyCores, 2)} / ${f(p.machine.otherCores, 2)} of ${p.machine.cores} | ${n0(sv.peakConnections)} |`);
  }
  L.push(``, `"Other processes": busy CPU not used by the server or the load generator (${phases.map((p) => `${p.phase}: load generator ${f(p.machine.loadgenCores, 2)} cores, load average ${p.machine.loadavgBefore[0]} → ${p.machine.loadavgAfter[0]}`).join("; ")}). ` +
    `"Waited for a CPU": time the server's threads were runnable but not running (schedstat), i.e. CPU contention, not server work.`, ``);

  for (const p of phases) {
    L.push(`Phase ${p.phase}, HTTP p99 per 10 s window (ms): ${(p.ticks ?? []).map((t) => (t.http ? f(t.http.p99, 0) : "–")).join(", ")}.`, ``);
  }
  for (const p of phases) {
    // A second in which no call completed (x null or count 0) is a stall: counted apart.
    const ps = (p.http.perSecond ?? []).map((x, i) => ({ t: i, n: x?.[0] ?? 0, p99: x?.[2] ?? null }));
    if (!ps.length) continue;
    const done = ps.filter((x) => x.n > 0 && x.p99 !== null), empty = ps.length - done.length;
    const worst = done.reduce((a, b) => (b.p99 > a.p99 ? b : a), { p99: 0, t: "–" });
    const over = A && A !== p ? done.filter((x) => x.p99 > TARGET * A.http.latency.all.p99).length : null;
    L.push(`Phase ${p.phase}, per second: worst p99 ${f(worst.p99, 0)} ms (second ${worst.t})` +
      (empty ? `; ${empty} second(s) in which no call completed` : "") +
      (over === null ? "." : `; ${over} of ${ps.length} seconds had a p99 over ${TARGET} × p99(A) = ${f(TARGET * A.http.latency.all.p99, 0)} ms.`), ``);
  }
  if (A && B) {
    const ratio = B.http.latency.all.p99 / A.http.latency.all.p99;
    L.push(`**p99(B) / p99(A) = ${f(ratio, 2)}×** — target "within ${TARGET}×": **${ratio <= TARGET ? "met" : "missed"}** ` +
      `(p99.9: ${f(B.http.latency.all.p999 / A.http.latency.all.p999, 2)}×; mutations p99 ${f(A.http.latency.mutation.p99, 2)} → ${f(B.http.latency.mutation.p99, 2)} ms, ` +
      `queries p99 ${f(A.http.latency.query.p99, 2)} → ${f(B.http.latency.query.p99, 2)} ms; throughput ${f(A.http.throughput)} → ${f(B.http.throughput)} calls/s).`, ``);
  }
  const top = Math.max(...phases.map((p) => p.server.peakRssMiB ?? 0));
  L.push(`**RSS ceiling:** ${f(top)} MiB peak (${phases.map((p) => `${p.phase}: peak ${f(p.server.peakRssMiB)}, after the load ${f(p.server.finalRssMiB)}, slope over the second half ${f(p.server.rssSlopeMiBPerMin, 2)} MiB/min`).join("; ")}).`, ``);
  const loopOf = (p) => p.statsAfter?.loop;
  if (phases.some(loopOf)) {
    const lp = (p) => {
      const l = loopOf(p);
      if (!l) return `${p.phase}: –`;
      const pct = (k) => (l.iterations ? (100 * l[k] / l.iterations).toFixed(3) : "0");
      return `${p.phase}: longest ${f(l.busyMaxMs, 1)} ms over ${n0(l.iterations)} iterations, ${n0(l.busy20to100ms)} of 20–100 ms (${pct("busy20to100ms")}%), ${n0(l.busyOver100ms)} over 100 ms (${pct("busyOver100ms")}%)`;
    };
    L.push(`**Longest event-loop stall** (one loop iteration's wall-clock work, which every connection waits out; whole server life): ${phases.map(lp).join("; ")}.`, ``);
  }
  L.push(`**Acknowledged writes lost: ${n0(phases.reduce((a, p) => a + (p.writes.lost ?? 0), 0))}** ` +
    `(${phases.map((p) => p.writes.checked === false ? `${p.phase}: not checked, ${p.writes.reason}` : `${p.phase}: ${n0(p.writes.acknowledged)} acknowledged increments on ${p.writes.counters} counters, ${p.writes.lost} lost, ${p.writes.uncertain} unacknowledged, ${p.writes.bad.length} inconsistencies`).join("; ")}).`, ``);

  L.push(`## Well-behaved clients`, ``);
  L.push(`| phase | query p50 / p99 ms | mutation p50 / p99 ms | service time p99 ms | HTTP errors | WebSocket errors | WS reconnects | updates seen | load-generator CPU s (http, ws) | http event-loop delay p99 ms |`);
  L.push(`|---|--:|--:|--:|---|---|--:|--:|--:|--:|`);
  const errs = (e) => Object.entries(e ?? {}).map(([k, v]) => `${k}: ${v}`).join("; ") || "none";
  for (const p of phases) {
    const l = p.http.latency;
    L.push(`| ${p.phase} | ${f(l.query.p50, 2)} / ${f(l.query.p99, 2)} | ${f(l.mutation.p50, 2)} / ${f(l.mutation.p99, 2)} | ${f(l.service.p99, 2)} | ${errs(p.http.errors)} | ${errs(p.ws.errors)} | ` +
      `${n0(p.ws.reconnects)} | ${n0(p.ws.updates)} | ${f(p.http.cpuS)}, ${f(p.ws.cpuS)} | ${f(p.http.eventLoopDelayMs.p99, 1)} |`);
  }
  L.push(``);

  if (B?.hostileResult) {
    L.push(`## Hostile clients (phase B)`, ``);
    L.push(`Load-generator CPU of the hostile process: ${f(B.hostileResult.cpuS)} s.`, ``);
    L.push(`| attack | clients | attempts ended | how attempts ended | time to close p50 / max s | MiB sent / received |`);
    L.push(`|---|--:|--:|---|--:|--:|`);
    const sec = (ms) => (ms == null ? null : ms / 1000);
    for (const [k, h] of Object.entries(B.hostileResult.kinds)) {
      L.push(`| ${k} | ${h.clients} | ${n0(h.attempts)} | ${errs(h.outcomes).replace(/\|/g, "\\|")} | ${f(sec(h.closeMs.p50), 2)} / ${f(sec(h.closeMs.max), 1)} | ${n0(h.bytesOutMiB)} / ${n0(h.bytesInMiB)} |`);
    }
    L.push(``, `"Sent" counts what the hostile client wrote into its socket, not what the server read.`);
    L.push(``);
  }

  L.push(`## Server`, ``);
  L.push(`| phase | exit | stats failures | queries | mutations | retries | failures | sync clients (end) | subscriptions (end) | dropped clients | transitions | commits |`);
  L.push(`|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|`);
  for (const p of phases) {
    const a = p.statsAfter ?? {}, b = p.statsBefore ?? {};
    const d = (g, k) => (a[g]?.[k] == null ? "–" : n0(a[g][k] - (b[g]?.[k] ?? 0)));
    const exit = p.server.crashed ? `**crashed** (${p.server.crashed.code ?? p.server.crashed.signal})` : `${p.exit?.code ?? p.exit?.signal}${p.exit?.note ? `, ${p.exit.note}` : ""}`;
    L.push(`| ${p.phase} | ${exit} | ${p.server.statsFailures} | ${d("exec", "queries")} | ${d("exec", "mutations")} | ${d("exec", "mutationRetries")} | ${d("exec", "failures")} | ` +
      `${n0(a.sync?.clients)} | ${n0(a.sync?.subscriptions)} | ${d("sync", "droppedClients")} | ${d("sync", "transitions")} | ${d("store", "commits")} |`);
  }
  L.push(``, `Counters are deltas over the load window (sync clients and subscriptions: at its end). Every figure: soak.json.`, ``);
  for (const p of phases) if (p.writes.bad?.length) L.push(`Phase ${p.phase} write-check inconsistencies: ${p.writes.bad.slice(0, 10).join("; ")}`, ``);
  for (const p of phases) if (p.server.crashed) L.push(`Phase ${p.phase} server stderr tail:`, "", "```", p.server.crashed.stderrTail, "```", ``);
  return L.join("\n");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.stdout.write(markdown(JSON.parse(readFileSync(process.argv[2], "utf8"))));
