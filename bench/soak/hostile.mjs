// Hostile clients, forked by soak.mjs in phase B (config in argv[2]). Each
// client repeats its attack: when the server closes the connection it waits
// `pauseMs` and starts again, until the phase ends. An attempt the server
// never ends is given up after MAX_ATTEMPT_MS (and counted as such: a
// server that never closes these holds their memory forever).
//
// What each attempt records: how it ended (the first line the server sent,
// or the WebSocket close code), how long the server took to close it, and
// the bytes sent and received.
import net from "node:net";
import { now, sleep, bump, summarize, wsFrame, MiB, e2eRequire, workerMain } from "./lib.mjs";

const WebSocket = e2eRequire("ws");
const cfg = JSON.parse(process.argv[2]);
const { hostname: host, port } = new URL(cfg.url);
const wsUrl = `${cfg.url.replace("http", "ws")}/api/1.45.0/sync`;
const MAX_ATTEMPT_MS = 75000;
// A paused socket cannot see the server close it (the FIN waits behind the
// unread data), so a slow reader holds still this long (the server's write
// timeout is 30 s), then reads again: either the stream ends (the server
// had closed it) or data keeps coming (it had not).
const HOLD_MS = 45000;

// The mix: 50 clients in total.
const MIX = {
  slow_reader_ws: 8, // subscribes to four 4 MiB results, reads nothing for 45 s
  pipeline_big_http: 8, // 100 pipelined 1 MiB queries, reads nothing for 45 s
  junk_after_close_ws: 5, // Close frame, then junk as fast as the socket takes it
  trickle_head_slow: 4, // an HTTP head, one byte every 50 ms (slowloris)
  trickle_head_fast: 3, // a 60 KB head, one byte per write, 64 writes a millisecond
  deploy_no_key: 3, // POST /api/deploy, Content-Length 250 MiB, no key, body streamed
  deploy_wrong_key: 3, // the same with a wrong key
  upload_forged: 4, // POST /api/storage/upload?token=forged, 900 MiB body streamed
  subscription_storm: 6, // ModifyQuerySet with 12,000 Adds (limit 10,000)
  non_object_json: 6, // "[1,2,3]", "5", "null", '"str"' as sync messages
};

const stats = {}; // kind -> {attempts, outcomes, closeMs[], bytesOut, bytesIn}
const sockets = new Set();
let running = false;
const loops = [];
let tickAttempts = 0;

const connectHello = (id) => JSON.stringify({ type: "Connect", sessionId: `hostile-${id}-${Math.random()}`, connectionCount: 0, lastCloseReason: null, clientTs: Date.now() });
const httpReq = (path, body, extra = "") =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
const storm = JSON.stringify({
  type: "ModifyQuerySet", baseVersion: 0, newVersion: 1,
  modifications: Array.from({ length: 12000 }, (_, i) => ({ type: "Add", queryId: i, udfPath: "fixture:big", args: [{ n: i }] })),
});
const junk = Buffer.alloc(MiB, 0x41);
/** A close reason or status line as one readable key: long numbers as N, other bytes escaped. */
const printable = (t) => t.replace(/\d{4,}/g, "N").replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`).slice(0, 120);

/** A raw TCP connection with its bookkeeping; `closed` resolves when it ends. */
async function rawConn(rec) {
  const sock = net.connect(Number(port), host);
  sockets.add(sock);
  sock.setNoDelay(true);
  sock.on("error", () => {});
  const closed = new Promise((r) => sock.once("close", () => (sockets.delete(sock), r())));
  sock.on("data", (d) => {
    rec.bytesIn += d.length;
    rec.first ??= String(d.subarray(0, 64)).split("\r\n")[0];
  });
  const ok = await Promise.race([new Promise((r) => sock.once("connect", () => r(true))), closed.then(() => false), sleep(5000).then(() => false)]);
  if (!ok) throw Object.assign(new Error("connect failed"), { outcome: "could not connect" });
  const write = async (b) => {
    rec.bytesOut += b.length;
    if (!sock.write(b)) await Promise.race([new Promise((r) => sock.once("drain", r)), closed, sleep(2000)]);
  };
  return { sock, closed, write, isClosed: () => sock.destroyed };
}

/** A raw WebSocket: handshake on /api/sync, then the Connect message. */
async function rawWs(rec, id) {
  const c = await rawConn(rec);
  const upgraded = new Promise((r) => c.sock.once("data", r));
  c.sock.write("GET /api/sync HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  await Promise.race([upgraded, c.closed, sleep(5000)]);
  if (!/^HTTP\/1\.1 101/.test(rec.first ?? "")) throw Object.assign(new Error("no upgrade"), { outcome: `handshake: ${rec.first ?? "no answer"}` });
  await c.write(wsFrame(1, connectHello(id)));
  return c;
}

/** Waits for the server to close `c`, at most until the attempt's deadline. */
async function heldUntilClosed(c, deadline) {
  while (!c.isClosed() && running && now() < deadline) await Promise.race([c.closed, sleep(250)]);
}

/** Holds `c` paused for HOLD_MS, then reads for up to 15 s: did the server close it meanwhile? */
async function holdUnread(c, rec, deadline) {
  while (running && now() < Math.min(deadline, rec.t0 + HOLD_MS)) await sleep(250);
  if (!running) return;
  const before = rec.bytesIn;
  c.sock.resume();
  const end = now() + 15000;
  while (running && !c.isClosed() && now() < end) await Promise.race([c.closed, sleep(250)]);
  rec.afterResume = rec.bytesIn - before;
  if (!running) return;
  rec.verdict = c.isClosed() ? "the server had closed it (write timeout)" : "still open: served after 45 s unread, we closed it";
  c.sock.destroy();
}

/** Writes `chunk` over and over until the server closes or `limit` bytes went. */
async function stream(c, chunk, limit, deadline) {
  let sent = 0;
  while (!c.isClosed() && running && now() < deadline && sent < limit) await c.write(chunk), (sent += chunk.length);
}

const attacks = {
  async slow_reader_ws(rec, id, deadline) {
    const c = await rawWs(rec, id);
    c.sock.pause(); // never read: the server's answers back up
    // 16 MiB of answers: more than the kernel's socket buffers take, so the rest waits in the server.
    const adds = [0, 1, 2, 3].map((q) => ({ type: "Add", queryId: q, udfPath: "fixture:big", args: [{ n: 4 * MiB + id * 4 + q }] }));
    await c.write(wsFrame(1, JSON.stringify({ type: "ModifyQuerySet", baseVersion: 0, newVersion: 1, modifications: adds })));
    await holdUnread(c, rec, deadline);
  },
  async pipeline_big_http(rec, id, deadline) {
    const c = await rawConn(rec);
    c.sock.pause();
    let req = "";
    for (let i = 0; i < 100; i++) req += httpReq("/api/query", JSON.stringify({ path: "fixture:big", args: [{ n: MiB + id * 100 + i }] }));
    await c.write(req);
    await holdUnread(c, rec, deadline);
  },
  async junk_after_close_ws(rec, id, deadline) {
    const c = await rawWs(rec, id);
    await c.write(wsFrame(8, Buffer.from([0x03, 0xe8])));
    await stream(c, junk, 400 * MiB, deadline);
    await heldUntilClosed(c, deadline);
  },
  async trickle_head_slow(rec, id, deadline) {
    const c = await rawConn(rec);
    const head = Buffer.from(`GET /version HTTP/1.1\r\nHost: x\r\nX-Pad: ${"a".repeat(4000)}\r\n\r\n`);
    for (let i = 0; i < head.length && !c.isClosed() && running && now() < deadline; i++) await c.write(head.subarray(i, i + 1)), await sleep(50);
    await heldUntilClosed(c, deadline);
  },
  async trickle_head_fast(rec, id, deadline) {
    const c = await rawConn(rec);
    const head = Buffer.from(`GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: ${"a".repeat(60000)}\r\n\r\n`);
    for (let i = 0; i < head.length && !c.isClosed() && running && now() < deadline; i++) {
      c.sock.write(head.subarray(i, i + 1));
      rec.bytesOut++;
      if (i % 64 === 63) await sleep(1);
    }
    await heldUntilClosed(c, deadline);
  },
  async deploy_no_key(rec, id, deadline) {
    const c = await rawConn(rec);
    await c.write(`POST /api/deploy HTTP/1.1\r\nHost: x\r\nContent-Length: ${250 * MiB}\r\n\r\n`);
    await stream(c, junk, 250 * MiB, deadline);
    await heldUntilClosed(c, deadline);
  },
  async deploy_wrong_key(rec, id, deadline) {
    const c = await rawConn(rec);
    await c.write(`POST /api/deploy HTTP/1.1\r\nHost: x\r\nAuthorization: Convex nope\r\nContent-Length: ${250 * MiB}\r\n\r\n`);
    await stream(c, junk, 250 * MiB, deadline);
    await heldUntilClosed(c, deadline);
  },
  async upload_forged(rec, id, deadline) {
    const c = await rawConn(rec);
    await c.write(`POST /api/storage/upload?token=forged HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${900 * MiB}\r\n\r\n`);
    await stream(c, junk, 900 * MiB, deadline);
    await heldUntilClosed(c, deadline);
  },
  subscription_storm: (rec, id, deadline) => wsAttack(rec, id, deadline, storm),
  non_object_json: (rec, id, deadline) => wsAttack(rec, id, deadline, ["[1,2,3]", "5", "null", '"str"'][rec.n % 4]),
};

/** Sends `msg` on a `ws` WebSocket after Connect; the outcome is the close code and reason. */
async function wsAttack(rec, id, deadline, msg) {
  const ws = new WebSocket(wsUrl);
  sockets.add(ws);
  ws.on("error", () => {});
  const closed = new Promise((r) => ws.once("close", (code, reason) => (sockets.delete(ws), r(`close ${code} "${printable(String(reason))}"`))));
  const opened = await Promise.race([new Promise((r) => ws.once("open", () => r(true))), closed.then(() => false), sleep(5000).then(() => false)]);
  if (!opened) throw Object.assign(new Error("no open"), { outcome: "could not open WebSocket" });
  ws.send(connectHello(id));
  ws.send(msg);
  rec.bytesOut += msg.length;
  ws.on("message", (m) => (rec.bytesIn += m.length));
  rec.first = await Promise.race([closed, sleep(Math.max(0, deadline - now())).then(() => null)]);
  if (rec.first === null) ws.terminate();
}

async function clientLoop(kind, id) {
  const s = (stats[kind] ??= { clients: 0, attempts: 0, outcomes: {}, closeMs: [], heldAtEndMs: [], afterResumeMiB: [], bytesOut: 0, bytesIn: 0 });
  s.clients++;
  for (let n = 0; running; n++) {
    const t0 = now();
    const rec = { n, t0, first: null, bytesIn: 0, bytesOut: 0 };
    const deadline = t0 + MAX_ATTEMPT_MS;
    let outcome;
    try {
      await attacks[kind](rec, id, deadline);
      outcome = !running && now() < deadline ? "still open when the phase ended"
        : now() >= deadline ? `still open after ${MAX_ATTEMPT_MS / 1000} s (we gave up)`
        : rec.verdict ? rec.verdict
        : rec.first ? `server closed; first line: ${printable(rec.first)}` : "server closed without answering";
    } catch (e) {
      outcome = !running ? "still open when the phase ended" : e.outcome ?? `error: ${e.message}`;
    }
    bump(s.outcomes, outcome);
    if (outcome === "still open when the phase ended") s.heldAtEndMs.push(now() - t0);
    else s.attempts++, tickAttempts++, s.closeMs.push(now() - t0);
    if (rec.afterResume !== undefined && rec.verdict) s.afterResumeMiB.push(rec.afterResume / MiB);
    s.bytesOut += rec.bytesOut;
    s.bytesIn += rec.bytesIn;
    for (const x of sockets) if (x.destroyed) sockets.delete(x);
    if (running) await sleep(cfg.pauseMs);
  }
}

workerMain({
  async setup() {
    const bad = (cfg.attacks ?? []).filter((k) => !(k in MIX));
    if (bad.length) throw new Error(`unknown attacks ${bad} (known: ${Object.keys(MIX)})`);
    const mix = Object.fromEntries(Object.entries(MIX).filter(([k]) => !cfg.attacks || cfg.attacks.includes(k)));
    return { clients: Object.values(mix).reduce((a, b) => a + b, 0), mix };
  },
  async start() {
    running = true;
    let id = 0;
    for (const [kind, n] of Object.entries(MIX)) {
      if (cfg.attacks && !cfg.attacks.includes(kind)) continue; // --attacks: a subset, to tell them apart
      for (let i = 0; i < n; i++) loops.push(clientLoop(kind, id++));
    }
  },
  tick() {
    const d = { attempts: tickAttempts, open: sockets.size };
    tickAttempts = 0;
    return d;
  },
  async stop() {
    running = false;
    for (const x of sockets) x.destroy?.() ?? x.terminate?.();
    await Promise.race([Promise.all(loops), sleep(5000)]);
    const cpu = process.cpuUsage();
    const kinds = {};
    for (const [k, s] of Object.entries(stats)) {
      kinds[k] = { ...s, closeMs: summarize(s.closeMs), heldAtEndMs: summarize(s.heldAtEndMs), afterResumeMiB: summarize(s.afterResumeMiB), bytesOutMiB: Math.round(s.bytesOut / MiB), bytesInMiB: Math.round(s.bytesIn / MiB) };
      delete kinds[k].bytesOut, delete kinds[k].bytesIn;
    }
    return { kinds, cpuS: (cpu.user + cpu.system) / 1e6 };
  },
});
