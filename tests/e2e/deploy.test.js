// Deploys are invisible to users: 250 redeploys while clients keep calling
// and keep subscriptions open give 0 failed calls, and the server's resident
// memory does not grow with deploys (old modules, caches and instances are
// freed). The first 50 deploys are warm-up: worker malloc arenas and SQLite
// page caches grow by 8-10% over about 30 deploys, then stay flat (measured
// every 10 deploys), so a bound on that phase only measured how much of it
// fell inside the window. After it, each of two windows of 100 deploys must
// add less than 3%: a leak of anything per deploy (the module is 4.8 MB)
// fails both.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, statSync } from "node:fs";
import { createHash } from "node:crypto";
import { ConvexHttpClient, ConvexClient } from "convex/browser";
import { makeFunctionReference } from "convex/server";
import WebSocket from "ws";
import { startServer, until } from "./helpers.js";

const f = (name) => makeFunctionReference(name);
let server;

before(async () => {
  server = await startServer({ app: "examples/users" });
});
after(async () => {
  await server?.stop();
});

function rssKiB(pid) {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
  return Number(m[1]);
}

async function deployRaw(wasm) {
  const r = await fetch(`${server.url}/api/deploy`, {
    method: "POST",
    headers: { Authorization: `Convex ${server.adminKey}`, "Content-Type": "application/wasm" },
    body: wasm,
  });
  assert.equal(r.status, 200, await r.text());
}

test("250 redeploys under load: no failed call, no memory growth", async () => {
  // The module the server runs now (saved by the first deploy).
  const wasm = readFileSync(`${server.dataDir}/app.wasm`);
  const http = new ConvexHttpClient(server.url);
  const ids = [];
  for (let i = 0; i < 20; i++) ids.push(await http.mutation(f("users:create_user"), { name: `d${i}`, email: `d${i}@deploy.test` }));

  // Live subscriptions that must keep working across deploys.
  const live = new ConvexClient(server.url, { webSocketConstructor: WebSocket, unsavedChangesWarning: false });
  let count;
  live.onUpdate(f("users:count"), {}, (n) => (count = n));
  await until(() => count === 20, { what: "initial count" });

  let stop = false;
  let calls = 0;
  const failures = [];
  const workers = Array.from({ length: 8 }, async (_, w) => {
    const c = new ConvexHttpClient(server.url);
    while (!stop) {
      try {
        const doc = await c.query(f("users:get_user"), { id: ids[(calls + w) % ids.length] });
        assert.ok(doc);
        // Some writes too, but few: inserts grow the database and with it
        // SQLite's page caches (bounded, 16 MiB per connection), which would
        // hide what this test looks for, growth per deploy.
        if (calls % 200 === w) await c.mutation(f("users:create_user"), { name: "load", email: `w${w}-${calls}@deploy.test` });
        calls++;
      } catch (e) {
        failures.push(String(e));
      }
    }
  });

  // Warm up under load (caches, allocator arenas), deploys included.
  await new Promise((r) => setTimeout(r, 4000));
  await deployRaw(wasm);
  await new Promise((r) => setTimeout(r, 500));
  const afterFirst = rssKiB(server.proc.pid);
  for (let i = 1; i < 50; i++) await deployRaw(wasm);
  await new Promise((r) => setTimeout(r, 500));
  const afterWarmup = rssKiB(server.proc.pid);
  for (let i = 50; i < 150; i++) await deployRaw(wasm);
  await new Promise((r) => setTimeout(r, 500));
  const afterMid = rssKiB(server.proc.pid);
  for (let i = 150; i < 250; i++) await deployRaw(wasm);
  await new Promise((r) => setTimeout(r, 500));
  const afterLast = rssKiB(server.proc.pid);
  stop = true;
  await Promise.all(workers);

  // The subscription still follows writes after 100 deploys.
  const n = count;
  await http.mutation(f("users:create_user"), { name: "final", email: "final@deploy.test" });
  await until(() => count === n + 1 || count > n, { what: "the subscription after the deploys" });
  await live.close();

  assert.deepEqual(failures, []);
  assert.ok(calls > 100, `only ${calls} calls ran`);
  const warmup = (afterWarmup - afterFirst) / afterFirst;
  const first = (afterMid - afterWarmup) / afterWarmup;
  const second = (afterLast - afterMid) / afterMid;
  const pct = (x) => `${(x * 100).toFixed(1)}%`;
  console.log(
    `calls during deploys: ${calls}; RSS after deploy 1: ${afterFirst} KiB, 50: ${afterWarmup} KiB (${pct(warmup)}, ` +
      `warm-up), 150: ${afterMid} KiB (${pct(first)}), 250: ${afterLast} KiB (${pct(second)})`,
  );
  assert.ok(first <= 0.03, `resident memory grew ${pct(first)} over deploys 51..150`);
  assert.ok(second <= 0.03, `resident memory grew ${pct(second)} over deploys 151..250`);
});

// A start does not hash the saved module again: it trusts app.wasm.sha256,
// written at deploy, while that record still matches app.wasm's size and
// mtime. A module replaced behind the server's back is hashed afresh.
test("a restart loads the saved module by its recorded hash, and never trusts a stale record", async () => {
  const sha = (b) => createHash("sha256").update(b).digest("hex");
  const http0 = new ConvexHttpClient(server.url);
  const before = await http0.query(f("users:count"), {});
  await server.stop({ keepData: true });
  const wasmPath = `${server.dataDir}/app.wasm`;
  const recPath = `${server.dataDir}/app.wasm.sha256`;
  const wasm = readFileSync(wasmPath);
  const [hash, size] = readFileSync(recPath, "utf8").trim().split(" ");
  assert.equal(hash, sha(wasm));
  assert.equal(Number(size), wasm.length);

  server = await startServer({ dataDir: server.dataDir });
  assert.equal(await new ConvexHttpClient(server.url).query(f("users:count"), {}), before);
  await server.stop({ keepData: true });

  // The same module plus one custom section ("x", empty): other bytes, so
  // another hash, under the old record.
  const changed = Buffer.concat([wasm, Buffer.from([0, 2, 1, 0x78])]);
  writeFileSync(wasmPath, changed);
  assert.notEqual(statSync(wasmPath).size, Number(size));
  server = await startServer({ dataDir: server.dataDir });
  assert.equal(await new ConvexHttpClient(server.url).query(f("users:count"), {}), before);
  assert.equal(readFileSync(recPath, "utf8").split(" ")[0], sha(changed), "the record follows the new module");
  assert.doesNotMatch(server.stderr, /warning/);
});
