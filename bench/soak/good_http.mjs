// Well-behaved HTTP clients, forked by soak.mjs (config in argv[2]). Client
// i has its own keep-alive connection and its own counter; every ~200 ms it
// either increments that counter (fixture:incr) or reads (fixture:counter of
// its counter, or fixture:big with a small n).
//
// Calls follow a schedule (open loop): call k of a client is due at
// start + k * interval (+ jitter). When the server is slow a call is sent
// late, and its latency counts from when it was due, so a stalled server
// shows up as latency instead of fewer calls (no coordinated omission).
// `serviceMs` (send to answer) is kept too.
import http from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { now, sleep, bump, summarize, decodeInt64, counterName, workerMain } from "./lib.mjs";

const cfg = JSON.parse(process.argv[2]);
const url = new URL(cfg.url);
const TIMEOUT_MS = 10000;

const lat = { query: [], mutation: [] }; // ms from due time, successful calls only
const service = [];
let tickLat = [], tickCalls = 0, tickErrors = 0;
const errors = {};
// Acknowledged increments: per counter, the values the server returned and
// when each call was sent (for the subscription-latency join).
const acks = Array.from({ length: cfg.clients }, () => ({ values: [], sentAt: [], uncertain: 0 }));
let running = false, startedAt = 0;
// Latencies by the second they completed in (errors as Infinity): shows a
// burst that a 10 s window or the phase's p99 would smear.
const perSecond = [];
const loops = [];
const elDelay = monitorEventLoopDelay({ resolution: 10 });

/** One POST /api/<kind> on `agent`; resolves {status, body} or rejects. */
function post(agent, kind, fn, args) {
  const body = JSON.stringify({ path: fn, args: [args] });
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: `/api/${kind}`, method: "POST", agent, timeout: TIMEOUT_MS,
        headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) } },
      (res) => {
        const chunks = [];
        res.on("data", (d) => chunks.push(d));
        res.on("end", () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
    req.on("error", reject);
    req.end(body);
  });
}

async function clientLoop(i, t0) {
  // One socket per client, like a browser tab or a backend with one connection.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const name = counterName(i);
  let due = t0 + Math.random() * cfg.intervalMs;
  while (running) {
    const wait = due - now();
    if (wait > 0) await sleep(wait);
    if (!running) break;
    const r = Math.random();
    const [kind, fn, args] =
      r < 0.5 ? ["mutation", "fixture:incr", { name }]
      : r < 0.75 ? ["query", "fixture:counter", { name }]
      : ["query", "fixture:big", { n: 16 + (i % 100) }];
    const sent = now();
    let kindOfError = null;
    try {
      const res = await post(agent, kind, fn, args);
      const j = res.status === 200 ? JSON.parse(res.body) : null;
      if (res.status !== 200) kindOfError = `http ${res.status}`;
      else if (j.status !== "success") kindOfError = `function error: ${String(j.errorMessage ?? j.message).slice(0, 60)}`;
      else if (fn === "fixture:incr") {
        const v = decodeInt64(j.value);
        if (!Number.isFinite(v)) kindOfError = "bad incr value";
        else acks[i].values.push(v), acks[i].sentAt.push(sent);
      } else if (fn === "fixture:big" && j.value.length !== args.n) kindOfError = "wrong result";
    } catch (e) {
      kindOfError = e.code === "TIMEOUT" ? "timeout (10 s)" : `socket: ${e.code ?? e.message}`;
      // The increment may or may not have been applied: not acknowledged.
      if (fn === "fixture:incr") acks[i].uncertain++;
    }
    const done = now();
    tickCalls++;
    const sec = Math.floor((done - startedAt) / 1000);
    (perSecond[sec] ??= []).push(kindOfError ? Infinity : done - due);
    if (kindOfError) {
      bump(errors, kindOfError);
      tickErrors++;
    } else {
      lat[kind].push(done - due);
      tickLat.push(done - due);
      service.push(done - sent);
    }
    due += cfg.intervalMs * (0.5 + Math.random()); // ~intervalMs on average, not in lockstep
  }
  agent.destroy();
}

workerMain({
  async setup() {
    return { clients: cfg.clients };
  },
  async start() {
    running = true;
    elDelay.enable();
    const t0 = (startedAt = now());
    for (let i = 0; i < cfg.clients; i++) loops.push(clientLoop(i, t0));
  },
  tick() {
    const d = { calls: tickCalls, errors: tickErrors, ...summarize(tickLat) };
    tickLat = [], tickCalls = 0, tickErrors = 0;
    return d;
  },
  async stop() {
    running = false;
    // In-flight calls finish (bounded by their own 10 s timeout).
    await Promise.race([Promise.all(loops), sleep(TIMEOUT_MS + 2000)]);
    elDelay.disable();
    const cpu = process.cpuUsage();
    return {
      latency: { all: summarize([...lat.query, ...lat.mutation]), query: summarize(lat.query), mutation: summarize(lat.mutation), service: summarize(service) },
      calls: lat.query.length + lat.mutation.length + Object.values(errors).reduce((a, b) => a + b, 0),
      errors,
      acks,
      perSecond: Array.from(perSecond, (l) => { const x = summarize(l ?? []); return [x.count, x.p50, x.p99, x.max]; }),
      cpuS: (cpu.user + cpu.system) / 1e6,
      // How late this process's own event loop ran: latency it adds itself.
      eventLoopDelayMs: { p50: elDelay.percentile(50) / 1e6, p99: elDelay.percentile(99) / 1e6, max: elDelay.max / 1e6 },
    };
  },
});
