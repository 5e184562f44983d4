// Deploys are invisible to users: 200 redeploys while clients keep calling
// and keep subscriptions open give 0 failed calls, and the server's resident
// memory does not grow with deploys: after the 100th deploy it is within
// 10% of after the first (old modules, caches and instances are freed), and
// deploys 101..200 add less than 3% (what growth there is over the first
// hundred is warm-up: worker malloc arenas, SQLite page caches; measured
// +5-9%, then flat). A leak of anything per deploy (the module is 4.8 MB)
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

test("200 redeploys under load: no failed call, no memory growth", async () => {
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

  // Warm up under load (caches, allocator arenas), then deploy.
  await new Promise((r) => setTimeout(r, 4000));
  await deployRaw(wasm);
  await new Promise((r) => setTimeout(r, 500));
  const afterFirst = rssKiB(server.proc.pid);
  for (let i = 1; i < 100; i++) await deployRaw(wasm);
  await new Promise((r) => setTimeout(r, 500));
  const afterMid = rssKiB(server.proc.pid);
  for (let i = 100; i < 200; i++) await deployRaw(wasm);
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
  const warmup = (afterMid - afterFirst) / afterFirst;
  const growth = (afterLast - afterMid) / afterMid;
  const pct = (x) => `${(x * 100).toFixed(1)}%`;
  console.log(
    `calls during deploys: ${calls}; RSS after deploy 1: ${afterFirst} KiB, 100: ${afterMid} KiB (${pct(warmup)}), ` +
      `200: ${afterLast} KiB (${pct(growth)} over the last 100)`,
  );
  assert.ok(growth <= 0.03, `resident memory grew ${pct(growth)} over deploys 101..200`);
  assert.ok(warmup <= 0.1, `resident memory grew ${pct(warmup)} over the first 100 deploys`);
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
