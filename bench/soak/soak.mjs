// The soak benchmark's orchestrator (entry: bench/soak/run; bench/soak/README.md).
// Phase A: well-behaved load on a fresh server. Phase B: the same load plus
// hostile clients, on another fresh server. The load runs in forked workers
// (good_ws.mjs, good_http.mjs, hostile.mjs) so the hostile clients' own CPU
// work does not sit in the event loop that times the well-behaved calls.
import { spawn, fork, execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, statSync, rmSync, copyFileSync, mkdirSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir, cpus, loadavg, setPriority } from "node:os";
import path from "node:path";
import { here, repo, now, sleep, summarize, decodeInt64 } from "./lib.mjs";
import { markdown } from "./report.mjs";

const HELP = `usage: bench/soak/run [options]

Soak benchmark: can hostile clients hurt well-behaved ones? Two phases on
fresh servers: A (well-behaved load only), then B (the same plus 50 hostile
clients). Writes OUT/soak.json and OUT/soak.md; progress on stderr every 10 s.

  --minutes M        length of each phase (default 5: 10 minutes of load in all)
  --quick            30 s per phase
  --phases A,B       which phases to run (default A,B)
  --ws-clients N     well-behaved WebSocket subscribers, real ConvexClients (default 900)
  --http-clients N   well-behaved HTTP clients, one call every ~interval each (default 100)
  --interval MS      mean time between one HTTP client's calls (default 200)
  --hostile-pause MS pause before a hostile client starts again (default 100)
  --hostile-nice N   run the hostile clients at this nice value (default 0). On
                     a machine the attackers share with the server, their own
                     CPU use is part of what the server suffers; 19 comes
                     closer to attackers on other machines
  --attacks K,K      only these hostile attacks (default all; names in hostile.mjs)
  --out DIR          where to write soak.json and soak.md (default bench/results)
  --keep-data        keep the servers' data directories
  -h, --help         this text

The server is $CVX or build/cvx (copied to a temporary directory first, so a
rebuild meanwhile does not change it). Loopback only.`;

function parseArgs(argv) {
  const o = { minutes: 5, phases: ["A", "B"], wsClients: 900, httpClients: 100, intervalMs: 200, hostilePauseMs: 100, hostileNice: 0, out: path.join(repo, "bench/results"), keepData: false };
  const usage = (msg) => Object.assign(new Error(msg), { usage: true });
  const num = (v, name) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw usage(`${name} needs a positive number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], v = () => argv[++i];
    if (a === "-h" || a === "--help") (console.log(HELP), process.exit(0));
    else if (a === "--quick") o.minutes = 0.5;
    else if (a === "--minutes") o.minutes = num(v(), a);
    else if (a === "--phases") o.phases = v().toUpperCase().split(",");
    else if (a === "--ws-clients") o.wsClients = num(v(), a);
    else if (a === "--http-clients") o.httpClients = num(v(), a);
    else if (a === "--interval") o.intervalMs = num(v(), a);
    else if (a === "--hostile-pause") o.hostilePauseMs = num(v(), a);
    else if (a === "--attacks") o.attacks = v().split(",");
    else if (a === "--hostile-nice") {
      o.hostileNice = Number(v());
      if (!Number.isInteger(o.hostileNice) || o.hostileNice < 0 || o.hostileNice > 19) throw usage("--hostile-nice needs an integer from 0 to 19");
    }
    else if (a === "--out") o.out = path.resolve(v());
    else if (a === "--keep-data") o.keepData = true;
    else throw usage(`unknown option ${a} (see --help)`);
  }
  return o;
}

const log = (...a) => console.error(`[soak ${new Date().toISOString().slice(11, 19)}]`, ...a);
const timeout = (p, ms, what) => Promise.race([p, sleep(ms).then(() => { throw new Error(`timed out after ${ms / 1000} s: ${what}`); })]);

// Everything started here is stopped on the way out, error or not.
const children = new Set();
process.on("exit", () => { for (const c of children) try { c.kill("SIGKILL"); } catch {} });
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => (log(`${sig}: stopping`), process.exit(130)));

/** `cvx serve` on a fresh data directory; resolves once it prints its port. */
async function startServer(bin, dataDir) {
  const proc = spawn(bin, ["serve", "--data", dataDir, "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
  children.add(proc);
  let stderr = "";
  const keep = (d) => (stderr = (stderr + d).slice(-65536)); // the tail, for crash reports
  proc.stderr.on("data", keep);
  const exited = new Promise((r) => proc.once("exit", (code, signal) => (children.delete(proc), r({ code, signal }))));
  let out = "";
  const port = await timeout(new Promise((resolve, reject) => {
    proc.stdout.on("data", (d) => {
      out += d;
      const m = /CVX_PORT=(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
      out = out.slice(-4096);
    });
    exited.then(({ code, signal }) => reject(new Error(`cvx serve exited (${code ?? signal}) before listening: ${stderr}`)));
  }), 15000, "cvx serve to print CVX_PORT");
  const url = `http://127.0.0.1:${port}`;
  const adminKey = readFileSync(path.join(dataDir, "admin_key"), "utf8").trim();
  return { proc, url, port, adminKey, exited, stderr: () => stderr };
}

async function stopServer(s) {
  if (s.proc.exitCode !== null || s.proc.signalCode !== null) return s.exited;
  s.proc.kill("SIGTERM");
  return Promise.race([s.exited, sleep(15000).then(() => (s.proc.kill("SIGKILL"), s.exited.then((e) => ({ ...e, note: "SIGKILL after 15 s" }))))]);
}

async function api(s, method, p, body, ms = 10000) {
  const r = await fetch(`${s.url}${p}`, {
    method, body: body && JSON.stringify(body), signal: AbortSignal.timeout(ms),
    headers: { "Content-Type": "application/json", Authorization: `Convex ${s.adminKey}` },
  });
  if (r.status !== 200) throw new Error(`${method} ${p}: HTTP ${r.status}`);
  return r.json();
}

function deploy(bin, s) {
  return new Promise((resolve, reject) =>
    execFile(bin, ["deploy", path.join(repo, "tests/fixtures/guest"), "--url", s.url, "--admin-key", s.adminKey],
      { env: { ...process.env, CARGO_TARGET_DIR: process.env.CARGO_TARGET_DIR ?? path.join(repo, "build/guest-target") }, timeout: 600000 },
      (err, stdout, stderr) => (err ? reject(new Error(`cvx deploy failed: ${err.message}\n${stderr}`)) : resolve(stdout.trim()))));
}

/** /proc figures of a process: resident KiB and user+system CPU seconds. */
function procSample(pid) {
  try {
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]);
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return { rssKiB, cpuS: (Number(f[11]) + Number(f[12])) / 100 };
  } catch {
    return null; // gone
  }
}
/** Seconds the process's threads spent runnable but waiting for a CPU (schedstat of every thread). */
function runQueueWaitS(pid) {
  let ns = 0;
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      try { ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[1]); } catch {}
    }
  } catch {}
  return ns / 1e9; // threads that exited are not counted: a lower bound
}
/** Busy and total jiffies of the whole machine (to see whether the 2 cores were saturated). */
function machineCpu() {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + f[4];
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Forks a load worker; resolves with a handle once it reports `ready`. */
async function startWorker(file, config, onTick) {
  const w = fork(path.join(here, file), [JSON.stringify(config)], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  children.add(w);
  w.once("exit", () => children.delete(w));
  let ready, done;
  const readyP = new Promise((res, rej) => (ready = { res, rej }));
  const doneP = new Promise((res, rej) => (done = { res, rej }));
  w.on("message", (m) => {
    if (m.type === "ready") ready.res(m.data);
    else if (m.type === "tick") onTick(m.data);
    else if (m.type === "done") done.res(m.data);
    else if (m.type === "error") (ready.rej(new Error(`${file}: ${m.error}`)), done.rej(new Error(`${file}: ${m.error}`)));
  });
  w.once("exit", (code) => {
    const e = new Error(`${file} exited (${code}) early`);
    ready.rej(e), done.rej(e);
  });
  readyP.catch(() => {}), doneP.catch(() => {});
  const info = await timeout(readyP, 180000, `${file} to set up`);
  return {
    info,
    pid: w.pid,
    start: (tickMs) => w.send({ type: "start", tickMs }),
    stop: () => (w.connected && w.send({ type: "stop" }), timeout(doneP, 30000, `${file} to stop`).finally(() => w.kill("SIGKILL"))),
  };
}

/** One phase on a fresh server: returns its results. */
async function runPhase(name, hostile, o, bin) {
  const dataDir = mkdtempSync(path.join(tmpdir(), `cvx-soak-${name}-`));
  const s = await startServer(bin, dataDir);
  let crashed = null;
  s.exited.then((e) => (crashed ??= { ...e, at: now() }));
  const r = { phase: name, hostile, minutes: o.minutes, url: s.url };
  try {
    log(`phase ${name}: server pid ${s.proc.pid} on ${s.url}; deploying tests/fixtures/guest`);
    r.deploy = await deploy(bin, s);
    const fns = (await api(s, "GET", "/api/admin/functions")).functions.map((f) => f.path);
    for (const f of ["fixture:incr", "fixture:counter", "fixture:big"]) if (!fns.includes(f)) throw new Error(`the app has no ${f}`);

    // Server sampling every second: RSS, CPU, connections (stats are answered on the server's event loop).
    const samples = [];
    let sampling = true, statsFailures = 0, lastStats = null;
    const sampler = (async () => {
      while (sampling) {
        const p = procSample(s.proc.pid);
        let st = null;
        try { st = await api(s, "GET", "/api/admin/stats", undefined, 5000); lastStats = st; } catch { statsFailures++; }
        if (p) samples.push({ at: now(), rssKiB: p.rssKiB, cpuS: p.cpuS, connections: st?.connections ?? null });
        await sleep(1000);
      }
    })();

    // Ticks from the workers, printed as one progress line every 10 s.
    const tick = { http: null, ws: null, hostile: null };
    const ws = await startWorker("good_ws.mjs", { url: s.url, clients: o.wsClients, counters: o.httpClients }, (d) => (tick.ws = d));
    log(`phase ${name}: ${ws.info.connected} WebSocket subscribers connected in ${ws.info.setupMs} ms`);
    const http = await startWorker("good_http.mjs", { url: s.url, clients: o.httpClients, intervalMs: o.intervalMs }, (d) => (tick.http = d));
    const bad = hostile ? await startWorker("hostile.mjs", { url: s.url, pauseMs: o.hostilePauseMs, attacks: o.attacks }, (d) => (tick.hostile = d)) : null;
    // Linux nice values are per thread: every thread the worker has (later ones inherit it).
    if (bad && o.hostileNice) for (const t of readdirSync(`/proc/${bad.pid}/task`)) setPriority(Number(t), o.hostileNice);

    r.statsBefore = await api(s, "GET", "/api/admin/stats");
    const workers = [ws, http, bad].filter(Boolean);
    const loadgenCpu = () => workers.reduce((a, w) => a + (procSample(w.pid)?.cpuS ?? 0), process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6);
    const before = { p: procSample(s.proc.pid), m: machineCpu(), t: now(), wait: runQueueWaitS(s.proc.pid), gen: loadgenCpu(), load: loadavg() };
    const TICK = 10000;
    for (const w of workers) w.start(TICK);
    log(`phase ${name}: load started for ${o.minutes} min${bad ? `, with ${bad.info.clients} hostile clients` : ""}`);
    r.ticks = []; // the 10 s progress figures, kept: when during the phase things went wrong
    // Progress 300 ms after each of the workers' 10 s ticks; the phase ends just after the last one.
    const end = before.t + o.minutes * 60000 + 300;
    let lastCpu = before.p.cpuS, lastT = now(), lastM = before.m, lastWait = before.wait;
    const genCpu = () => workers.map((w) => procSample(w.pid)?.cpuS ?? 0);
    let lastGen = genCpu();
    for (let k = 1; now() < end - 50 && !crashed; k++) {
      await sleep(Math.max(0, Math.min(before.t + k * TICK + 300, end) - now()));
      const p = procSample(s.proc.pid) ?? { rssKiB: 0, cpuS: lastCpu };
      const h = tick.http, w = tick.ws, b = tick.hostile;
      const dt = (now() - lastT) / 1000, cores = (p.cpuS - lastCpu) / dt;
      // Per window: whole-machine busy cores, each worker's cores, the server's run-queue wait.
      const m = machineCpu(), gen = genCpu(), wait = runQueueWaitS(s.proc.pid);
      const busy = ((m.busy - lastM.busy) / (m.total - lastM.total)) * cpus().length;
      const genCores = gen.map((c, i) => round2((c - lastGen[i]) / dt));
      const machine = { busy: round2(busy), workers: genCores, other: round2(busy - cores - genCores.reduce((a, b) => a + b, 0)), serverWaitS: round2(wait - lastWait) };
      lastCpu = p.cpuS, lastT = now(), lastM = m, lastGen = gen, lastWait = wait;
      tick.http = tick.ws = tick.hostile = null; // a worker late with its figures shows as "-"
      r.ticks.push({ t: Math.round((now() - before.t) / 1000), http: h, ws: w && { ...w, errors: undefined }, hostile: b, rssMiB: mib(p.rssKiB), serverCores: round2(cores), machine, conns: samples.at(-1)?.connections });
      log(`phase ${name} ${Math.round((now() - before.t) / 1000)}s: http ${h ? `${(h.calls / 10).toFixed(0)}/s p50 ${h.p50} p99 ${h.p99} ms, ${h.errors} errors` : "-"}` +
        ` | ws ${w ? `${w.connected} connected, ${w.updates} updates, ${w.reconnects} reconnects` : "-"}` +
        (b ? ` | hostile ${b.attempts} attempts, ${b.open} open` : "") +
        ` | server RSS ${(p.rssKiB / 1024).toFixed(0)} MiB, CPU ${(cores * 100).toFixed(0)}%, ${samples.at(-1)?.connections ?? "?"} conns` +
        ` | machine ${machine.busy} cores busy, load gen ${genCores.join("+")}, others ${machine.other}`);
    }
    if (crashed) log(`phase ${name}: THE SERVER EXITED (${crashed.code ?? crashed.signal})`);
    const after = { p: procSample(s.proc.pid) ?? { rssKiB: null, cpuS: lastCpu }, m: machineCpu(), t: now(), wait: runQueueWaitS(s.proc.pid), gen: loadgenCpu(), load: loadavg() };
    r.statsAfter = crashed ? lastStats : await api(s, "GET", "/api/admin/stats").catch(() => lastStats);

    // Hostile clients stop first, then the well-behaved ones (whose last calls finish).
    r.hostileResult = bad ? await bad.stop() : null;
    const httpResult = await http.stop();
    const wsResult = await ws.stop();
    // RSS once every client is gone: memory kept after the load is what leaks.
    await sleep(5000);
    const idle = procSample(s.proc.pid);
    sampling = false;
    await sampler;

    const secs = (after.t - before.t) / 1000;
    r.durationS = Math.round(secs * 10) / 10;
    r.http = { ...httpResult, acks: undefined, throughput: Math.round((httpResult.latency.all.count / secs) * 10) / 10 };
    r.ws = { ...wsResult, obs: undefined, updateLatency: updateLatency(wsResult.obs, httpResult.acks) };
    r.server = {
      cpuS: Math.round((after.p.cpuS - before.p.cpuS) * 100) / 100,
      avgCores: Math.round(((after.p.cpuS - before.p.cpuS) / secs) * 100) / 100,
      peakRssMiB: mib(Math.max(...samples.map((x) => x.rssKiB))),
      rssAtStartMiB: mib(before.p.rssKiB),
      rssAtEndOfLoadMiB: mib(after.p.rssKiB),
      finalRssMiB: idle ? mib(idle.rssKiB) : null,
      // Over the second half of the load window only (not set-up, not the drop once clients leave).
      rssSlopeMiBPerMin: slope(samples.filter((x) => x.at >= before.t + (after.t - before.t) / 2 && x.at <= after.t)),
      peakConnections: Math.max(0, ...samples.map((x) => x.connections ?? 0)),
      statsFailures,
      crashed: crashed ? { ...crashed, at: undefined, stderrTail: s.stderr().slice(-4000) } : null,
    };
    // The machine's 2 cores are shared: what else ran meanwhile explains slow phases.
    const m = { busy: after.m.busy - before.m.busy, total: after.m.total - before.m.total };
    const busyCores = (m.busy / m.total) * cpus().length, genCores = (after.gen - before.gen) / secs;
    r.machine = {
      cores: cpus().length, busyCores: round2(busyCores), loadgenCores: round2(genCores),
      otherCores: round2(Math.max(0, busyCores - genCores - r.server.avgCores)),
      loadavgBefore: before.load.map(round2), loadavgAfter: after.load.map(round2),
    };
    r.server.runQueueWaitS = round2(after.wait - before.wait);
    r.rssSeries = samples.map((x) => [Math.round((x.at - before.t) / 1000), mib(x.rssKiB), x.connections]); // [s from load start, MiB, connections]
    r.writes = crashed ? { checked: false, reason: "server crashed" } : await checkWrites(s, httpResult.acks);
    log(`phase ${name}: done; acknowledged writes lost: ${r.writes.lost ?? "?"}`);
    return r;
  } finally {
    const e = await stopServer(s);
    r.exit = crashed && !r.exit ? crashed : e;
    if (!o.keepData) rmSync(dataDir, { recursive: true, force: true });
  }
}

const round2 = (x) => Math.round(x * 100) / 100;
const mib = (kib) => (kib == null ? null : Math.round((kib / 1024) * 10) / 10);
/** Least-squares slope of RSS (MiB per minute) over the samples: sustained growth means a leak. */
function slope(xs) {
  if (xs.length < 3) return null;
  const t = (x) => x.at / 1000;
  const n = xs.length, mx = xs.reduce((a, x) => a + t(x), 0) / n, my = xs.reduce((a, x) => a + x.rssKiB / 1024, 0) / n;
  const num = xs.reduce((a, x) => a + (t(x) - mx) * (x.rssKiB / 1024 - my), 0), den = xs.reduce((a, x) => a + (t(x) - mx) ** 2, 0);
  return den ? Math.round((num / den) * 60 * 100) / 100 : null;
}

/** Subscription update latency: a counter value first seen by a subscriber minus when the mutation that made it was sent. */
function updateLatency(obs, acks) {
  const sent = new Map();
  acks.forEach((a, k) => a.values.forEach((v, j) => sent.set(k * 1e9 + v, a.sentAt[j])));
  const lat = [];
  let unmatched = 0;
  for (let i = 0; i < obs.t.length; i++) {
    const t0 = sent.get(obs.name[i] * 1e9 + obs.value[i]);
    if (t0 === undefined) unmatched++;
    else lat.push(obs.t[i] - t0);
  }
  return { ...summarize(lat), unmatched };
}

/**
 * Every acknowledged increment must be in the store: with one writer per
 * counter, the acknowledged values are 1..k in order and the counter reads k
 * (or a little more when an unacknowledged call, a timeout, was applied).
 */
async function checkWrites(s, acks) {
  const res = { counters: acks.length, acknowledged: 0, uncertain: 0, lost: 0, bad: [] };
  const docs = await api(s, "GET", "/api/admin/documents?table=counters&limit=10000").catch(() => null);
  const byName = new Map((docs?.documents ?? docs?.page ?? []).map((d) => [d.name, decodeInt64(d.value)]));
  for (let k = 0; k < acks.length; k++) {
    const a = acks[k], name = `soak-${k}`;
    res.acknowledged += a.values.length;
    res.uncertain += a.uncertain;
    let value;
    try {
      value = decodeInt64((await api(s, "POST", "/api/query", { path: "fixture:counter", args: [{ name }] })).value);
    } catch (e) {
      res.bad.push(`${name}: could not read (${e.message})`);
      if (res.bad.length > 5) throw new Error(`the counters cannot be read: ${res.bad.join("; ")}`);
      continue;
    }
    const top = a.values.length ? Math.max(...a.values) : 0;
    const distinct = new Set(a.values).size;
    const missing = Math.max(0, top - value);
    res.lost += missing;
    if (distinct !== a.values.length) res.bad.push(`${name}: the same value acknowledged twice`);
    if (value < a.values.length || value > a.values.length + a.uncertain) res.bad.push(`${name}: reads ${value}, ${a.values.length} acknowledged (+${a.uncertain} unknown)`);
    if (docs && byName.get(name) !== value && !(byName.get(name) === undefined && value === 0)) res.bad.push(`${name}: query says ${value}, documents say ${byName.get(name)}`);
  }
  res.documentsChecked = Boolean(docs);
  return res;
}

let failed = false;
async function main() {
  const o = parseArgs(process.argv.slice(2));
  const src = process.env.CVX ?? path.join(repo, "build/cvx");
  const tmp = mkdtempSync(path.join(tmpdir(), "cvx-soak-bin-"));
  const bin = path.join(tmp, "cvx");
  for (let i = 0; ; i++) {
    // Someone may be rebuilding build/cvx: wait for it to come back.
    try { copyFileSync(src, bin); chmodSync(bin, 0o755); break; } catch (e) {
      if (i >= 60) throw new Error(`no cvx binary at ${src}: ${e.message}`);
      log(`waiting for ${src} (${e.code})`);
      await sleep(5000);
    }
  }
  process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));
  const st = statSync(src);
  const sha = createHash("sha256").update(readFileSync(bin)).digest("hex").slice(0, 16);
  const version = await new Promise((r) => execFile(bin, ["--version"], { timeout: 10000 }, (e, out) => r(String(out).trim())));
  const commit = await new Promise((r) => execFile("git", ["-C", repo, "describe", "--always", "--dirty"], { timeout: 10000 }, (e, out) => r(String(out).trim())));
  const results = {
    when: new Date().toISOString(), command: ["bench/soak/run", ...process.argv.slice(2)].join(" "), cvx: version, commit, binary: { path: src, mtime: st.mtime.toISOString(), sha256: sha },
    machine: { cores: cpus().length, cpu: cpus()[0]?.model, node: process.version },
    settings: o, phases: {},
  };
  log(`${version} (${commit}; binary built ${results.binary.mtime}, sha256 ${sha}); ${o.minutes} min per phase; ${o.wsClients} WebSocket + ${o.httpClients} HTTP well-behaved clients`);
  for (const p of o.phases) {
    try {
      results.phases[p] = await runPhase(p, p === "B", o, bin);
    } catch (e) {
      // Keep going: the other phase's figures (and this failure) still get written.
      log(`phase ${p} FAILED: ${e.stack ?? e}`);
      results.phases[p] = { phase: p, error: String(e.stack ?? e) };
    }
  }
  mkdirSync(o.out, { recursive: true });
  writeFileSync(path.join(o.out, "soak.json"), JSON.stringify(results, null, 1) + "\n");
  const md = markdown(results);
  writeFileSync(path.join(o.out, "soak.md"), md);
  console.error(md);
  log(`wrote ${path.join(o.out, "soak.json")} and soak.md`);
  failed = Object.values(results.phases).some((p) => p.error);
}

main().then(
  () => process.exit(failed ? 1 : 0),
  (e) => (e.usage ? (console.error(`bench/soak/run: ${e.message}`), process.exit(2)) : (log(`FAILED: ${e.stack ?? e}`), process.exit(1))),
);
