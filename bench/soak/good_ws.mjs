// Well-behaved WebSocket subscribers: real ConvexClients (convex/browser over
// `ws`), each subscribed to one query. Forked by soak.mjs; config in argv[2].
//
// Client i subscribes to fixture:counter of counter i/3 % counters when i % 3
// == 0 (so each counter the HTTP writers bump has a few live subscribers and
// we can time its updates), else to fixture:big with one of 100 small sizes
// (results that never change: they cost the server a subscription each).
import { e2eRequire, now, sleep, bump, counterName, workerMain } from "./lib.mjs";

const { ConvexClient } = e2eRequire("convex/browser");
const { makeFunctionReference } = e2eRequire("convex/server");
const WebSocket = e2eRequire("ws");

const cfg = JSON.parse(process.argv[2]);
const counterRef = makeFunctionReference("fixture:counter");
const bigRef = makeFunctionReference("fixture:big");

const clients = []; // {client, kind, name, firstAt}
const errors = {};
// Counter updates as seen by subscribers: parallel arrays (name index,
// value, time first seen by this client), joined with the writers' send
// times by the orchestrator.
const obs = { name: [], value: [], t: [] };
let updates = 0, lastTickUpdates = 0, updatesAtStart = 0;
let measuring = false;

function subscribe(i) {
  const client = new ConvexClient(cfg.url, { webSocketConstructor: WebSocket, unsavedChangesWarning: false });
  const c = { client, i, firstAt: null, last: null };
  const onError = (e) => bump(errors, `subscription error: ${String(e?.message ?? e).slice(0, 80)}`);
  if (i % 3 === 0) {
    const k = Math.floor(i / 3) % cfg.counters;
    c.kind = "counter";
    client.onUpdate(counterRef, { name: counterName(k) }, (v) => {
      const t = now();
      c.firstAt ??= t;
      updates++;
      const value = Number(v);
      if (measuring && value !== c.last) obs.name.push(k), obs.value.push(value), obs.t.push(t);
      c.last = value;
    }, onError);
  } else {
    const n = 100 + (i % 100);
    c.kind = "big";
    client.onUpdate(bigRef, { n }, (v) => {
      c.firstAt ??= now();
      updates++;
      if (typeof v !== "string" || v.length !== n) bump(errors, "wrong result");
    }, onError);
  }
  clients.push(c);
  return c;
}

/** Sum of the clients' reconnect counters and how many are connected now. */
function connectionSummary() {
  let connected = 0, retries = 0, reconnects = 0;
  for (const c of clients) {
    const s = c.client.connectionState();
    if (s.isWebSocketConnected) connected++;
    retries += s.connectionRetries ?? 0;
    reconnects += Math.max(0, (s.connectionCount ?? 1) - 1);
  }
  return { connected, retries, reconnects };
}

workerMain({
  async setup() {
    // Connect in batches so the set-up itself is not a connection storm.
    const t0 = now();
    for (let i = 0; i < cfg.clients; i += 50) {
      const batch = [];
      for (let j = i; j < Math.min(cfg.clients, i + 50); j++) batch.push(subscribe(j));
      const deadline = Date.now() + 30000;
      while (batch.some((c) => c.firstAt === null) && Date.now() < deadline) await sleep(20);
    }
    const missing = clients.filter((c) => c.firstAt === null).length;
    if (missing) throw new Error(`${missing} of ${cfg.clients} subscribers got no first result within 30 s`);
    return { setupMs: Math.round(now() - t0), ...connectionSummary() };
  },
  async start() {
    measuring = true;
    lastTickUpdates = updatesAtStart = updates; // the first results are set-up, not updates
  },
  tick() {
    const d = { updates: updates - lastTickUpdates, errors: { ...errors }, ...connectionSummary(), heapMiB: Math.round(process.memoryUsage().rss / 1048576) };
    lastTickUpdates = updates;
    return d;
  },
  async stop() {
    measuring = false;
    const summary = connectionSummary();
    const cpu = process.cpuUsage();
    await Promise.race([Promise.all(clients.map((c) => c.client.close().catch(() => {}))), sleep(5000)]);
    return { clients: clients.length, updates: updates - updatesAtStart, errors, ...summary, obs, cpuS: (cpu.user + cpu.system) / 1e6, rssMiB: Math.round(process.memoryUsage().rss / 1048576) };
  },
});
