// Helpers shared by the soak orchestrator (soak.mjs) and its load workers.
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, "../..");
// The e2e suite already installs the real `convex` client and `ws`: reuse
// them rather than adding dependencies of our own.
export const e2eRequire = createRequire(path.join(repo, "tests/e2e/package.json"));

export const MiB = 1 << 20;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Wall-clock milliseconds with sub-ms resolution, comparable across processes. */
export const now = () => performance.timeOrigin + performance.now();

/** Well-behaved clients' counters: one per HTTP client (never "cron", which the app's cron bumps). */
export const counterName = (i) => `soak-${i}`;

/** A Convex Int64 on the wire: {"$integer": base64 of 8 little-endian bytes}. */
export function decodeInt64(v) {
  if (typeof v === "number" || typeof v === "bigint") return Number(v);
  if (v && typeof v.$integer === "string") return Number(Buffer.from(v.$integer, "base64").readBigInt64LE(0));
  return NaN;
}

/** Percentile (0..100) of an ascending-sorted array; nearest rank. */
export function pct(sorted, p) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** p50/p99/p99.9/max of a list of latencies (ms), rounded to 0.01 ms. */
export function summarize(values) {
  const s = Float64Array.from(values).sort();
  const r = (x) => (x === null ? null : Math.round(x * 100) / 100);
  return { count: s.length, p50: r(pct(s, 50)), p99: r(pct(s, 99)), p999: r(pct(s, 99.9)), max: r(s.length ? s[s.length - 1] : null) };
}

/** Adds `n` to counter `key` of a plain object (error kinds, close reasons). */
export const bump = (obj, key, n = 1) => (obj[key] = (obj[key] ?? 0) + n);

/**
 * The worker side of the orchestrator's protocol (IPC): `start` begins the
 * load, `stop` ends it; a worker answers `ready` when set up, `tick` with
 * interval figures and `done` with its result. A worker whose parent went
 * away exits instead of loading a server no one watches.
 */
export function workerMain({ setup, start, tick, stop }) {
  const send = (m) => process.connected && process.send(m);
  process.on("disconnect", () => process.exit(3));
  let timer;
  process.on("message", async (m) => {
    try {
      if (m.type === "start") {
        await start();
        timer = setInterval(() => send({ type: "tick", data: tick() }), m.tickMs);
      } else if (m.type === "stop") {
        clearInterval(timer);
        send({ type: "done", data: await stop() });
        setTimeout(() => process.exit(0), 200); // let the message go out
      }
    } catch (e) {
      send({ type: "error", error: String(e?.stack ?? e) });
      process.exit(1);
    }
  });
  setup()
    .then((info) => send({ type: "ready", data: info }))
    .catch((e) => {
      send({ type: "error", error: String(e?.stack ?? e) });
      process.exit(1);
    });
}

/** A client-to-server WebSocket frame (masked, as clients must send them). */
export function wsFrame(opcode, payload) {
  const body = Buffer.from(payload);
  const len = body.length;
  const head =
    len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len])
    : len < 65536 ? Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 255])
    : Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | 127, 0, 0, 0, 0]), Buffer.from([len >>> 24, (len >> 16) & 255, (len >> 8) & 255, len & 255])]);
  const mask = Buffer.from([0x11, 0x22, 0x33, 0x44]);
  for (let i = 0; i < len; i++) body[i] ^= mask[i & 3];
  return Buffer.concat([head, mask, body]);
}
