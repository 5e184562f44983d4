// Actions and the platform around them (issue 7): file storage through
// upload URLs and download URLs, HTTP actions, fetch with its limits,
// scheduled functions across kill -9, and crons.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { cvx, startServer, until } from "./helpers.js";

const APP = "tests/fixtures/guest";
const LONG_TEXT = Array.from({ length: 100001 }, (_, i) => String.fromCharCode(97 + ((i * 7) % 26))).join("");
let server;
let receiver;
let receiverUrl;

before(async () => {
  server = await startServer({ app: APP, args: ["--allow-private-fetch"] });
  // A loopback service for fetch: quick, slow and oversized answers.
  receiver = http.createServer((req, res) => {
    if (req.url === "/ok") return res.end("pong");
    if (req.url === "/text") {
      // Sent in uneven pieces: the server encodes the body as it arrives.
      res.write(LONG_TEXT.slice(0, 1000));
      setTimeout(() => res.end(LONG_TEXT.slice(1000)), 20);
      return;
    }
    if (req.url === "/slow") return setTimeout(() => res.end("late"), 3000);
    if (req.url === "/big") {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      return res.end(Buffer.alloc(17 << 20, 7));
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  receiverUrl = `http://127.0.0.1:${receiver.address().port}`;
}, { timeout: 600000 });

after(async () => {
  await server?.stop();
  receiver?.closeAllConnections();
  await new Promise((r) => receiver?.close(r));
}, { timeout: 30000 });

/** Calls a function over HTTP; returns the value or throws its error message. */
async function call(kind, path, args = {}) {
  const r = await fetch(`${server.url}/api/${kind}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ path, args: [args], format: "convex_encoded_json" }),
  });
  assert.equal(r.status, 200);
  const body = await r.json();
  if (body.status !== "success") throw new Error(body.errorMessage);
  return body.value;
}

/** Decodes a convex-encoded int64 ({"$integer": base64 little-endian}). */
const int64 = (v) => Number(Buffer.from(v.$integer, "base64").readBigInt64LE());
const counter = async (name) => int64(await call("query", "fixture:counter", { name }));
const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

/** Every document of a table, through the admin API. */
async function adminDocuments(table) {
  const r = await fetch(`${server.url}/api/admin/documents?table=${table}&limit=10000`, {
    headers: { Authorization: `Convex ${server.adminKey}` },
  });
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.equal(body.isDone, true, "one page holds them all");
  return body.page;
}

/** The scheduled jobs in a stopped server's data directory, read from a
 * copy of its database so that the next start still recovers the original. */
function offlineJobs(dataDir) {
  const copy = mkdtempSync(path.join(tmpdir(), "cvx-e2e-copy-"));
  try {
    for (const f of ["cvx.sqlite3", "cvx.sqlite3-wal"])
      if (existsSync(path.join(dataDir, f))) copyFileSync(path.join(dataDir, f), path.join(copy, f));
    const out = execFileSync(cvx, ["data", "_scheduled_functions", "--data", copy, "--limit", "10000"]).toString();
    return out
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line));
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

test("upload → store → download: a 50 MiB file keeps its sha256; Range requests", { timeout: 120000 }, async () => {
  const data = randomBytes(50 << 20);
  const uploadUrl = await call("mutation", "fixture:upload_url");
  assert.match(uploadUrl, /^http:\/\/127\.0\.0\.1:\d+\/api\/storage\/upload\?token=/);
  const up = await fetch(uploadUrl, { method: "POST", body: data, headers: { "Content-Type": "application/x-test" } });
  assert.equal(up.status, 200, await up.clone().text());
  const { storageId } = await up.json();
  assert.equal(typeof storageId, "string");

  const fileUrl = await call("query", "fixture:file_url", { id: storageId });
  const down = await fetch(fileUrl);
  assert.equal(down.status, 200);
  assert.equal(down.headers.get("content-type"), "application/x-test");
  assert.equal(down.headers.get("content-length"), String(data.length));
  assert.equal(down.headers.get("accept-ranges"), "bytes");
  const got = Buffer.from(await down.arrayBuffer());
  assert.equal(sha256(got), sha256(data));

  // The _storage document carries the same digest.
  const docs = await fetch(`${server.url}/api/admin/documents?table=_storage`, {
    headers: { Authorization: `Convex ${server.adminKey}` },
  }).then((r) => r.json());
  assert.ok(JSON.stringify(docs).includes(sha256(data)));

  const part = await fetch(fileUrl, { headers: { Range: "bytes=1000-1999" } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get("content-range"), `bytes 1000-1999/${data.length}`);
  assert.deepEqual(Buffer.from(await part.arrayBuffer()), data.subarray(1000, 2000));
  const tail = await fetch(fileUrl, { headers: { Range: "bytes=-10" } });
  assert.equal(tail.status, 206);
  assert.deepEqual(Buffer.from(await tail.arrayBuffer()), data.subarray(data.length - 10));
  const beyond = await fetch(fileUrl, { headers: { Range: `bytes=${data.length}-` } });
  assert.equal(beyond.status, 416);
  assert.equal(beyond.headers.get("content-range"), `bytes */${data.length}`);
  await beyond.arrayBuffer();

  // An upload URL with a forged token is refused.
  const forged = uploadUrl.replace(/token=\d+/, "token=9999999999999");
  const bad = await fetch(forged, { method: "POST", body: "x" });
  assert.equal(bad.status, 401);
  await bad.arrayBuffer();
});

test("actions store and read files; HTTP actions serve them; deletes remove them", { timeout: 30000 }, async () => {
  const id = await call("action", "fixture:store_file", { data: "hello, storage", content_type: "text/plain" });
  const bytes = await call("action", "fixture:read_file", { id });
  assert.equal(Buffer.from(bytes.$bytes, "base64").toString(), "hello, storage");

  const viaHttp = await fetch(`${server.url}/http/files/${id}`);
  assert.equal(viaHttp.status, 200);
  assert.equal(await viaHttp.text(), "hello, storage");

  const url = await call("query", "fixture:file_url", { id });
  await call("mutation", "fixture:delete_file", { id });
  assert.equal(await call("query", "fixture:file_url", { id }), null);
  // A missing file is NOT_FOUND, and storage cannot delete other system
  // documents (a scheduled job's id).
  await assert.rejects(call("mutation", "fixture:delete_file", { id }), /no file/);
  const job = await call("mutation", "fixture:schedule_incr", { name: "kept", delay_ms: 3600000 });
  await assert.rejects(call("mutation", "fixture:delete_file", { id: job }), /no file/);
  await call("mutation", "fixture:schedule_cancel", { id: job });
  const gone = await fetch(url);
  assert.equal(gone.status, 404);
  await gone.arrayBuffer();
  const missing = await fetch(`${server.url}/http/files/${id}`);
  assert.equal(missing.status, 404);
  assert.match(await missing.text(), /no file/);
  await assert.rejects(call("action", "fixture:read_file", { id }), /no file/);
});

test("HTTP actions are routed by method and path and see the request", { timeout: 30000 }, async () => {
  const r = await fetch(`${server.url}/http/echo?x=1&y=two`, { method: "POST", body: "hi there" });
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /application\/json/);
  assert.deepEqual(await r.json(), { method: "POST", path: "/echo", query: "x=1&y=two", body: "hi there" });
  const wrongMethod = await fetch(`${server.url}/http/echo`);
  assert.equal(wrongMethod.status, 404);
  await wrongMethod.arrayBuffer();
  const unrouted = await fetch(`${server.url}/http/nothing-here`, { method: "POST" });
  assert.equal(unrouted.status, 404);
  await unrouted.arrayBuffer();
});

test("fetch: refused in queries; timeouts and oversized responses are errors", { timeout: 60000 }, async () => {
  await assert.rejects(call("query", "fixture:fetch_in_query", { url: `${receiverUrl}/ok` }), /only available in actions/);
  const ok = await call("action", "fixture:fetch_url", { url: `${receiverUrl}/ok` });
  assert.equal(ok.status, 200);
  assert.equal(ok.body, "pong");
  const long = await call("action", "fixture:fetch_url", { url: `${receiverUrl}/text` });
  assert.equal(long.body.length, LONG_TEXT.length);
  assert.equal(long.body, LONG_TEXT);
  const t0 = Date.now();
  await assert.rejects(call("action", "fixture:fetch_url", { url: `${receiverUrl}/slow`, timeout_ms: 500 }), /timed out after 500 ms/);
  assert.ok(Date.now() - t0 < 2500, "the timeout cut the request short");
  await assert.rejects(call("action", "fixture:fetch_url", { url: `${receiverUrl}/big` }), /larger than/);
  // The server is fine afterwards.
  assert.equal((await call("action", "fixture:fetch_url", { url: `${receiverUrl}/ok` })).body, "pong");
});

test("a cron runs on time, within tolerance", { timeout: 30000 }, async () => {
  // "tick" runs fixture:incr {name: "cron"} every second from deploy on.
  const seen = [];
  let last = await counter("cron");
  const t0 = Date.now();
  while (Date.now() - t0 < 4500) {
    const v = await counter("cron");
    if (v !== last) {
      seen.push(Date.now());
      last = v;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok(seen.length >= 3 && seen.length <= 6, `ticks seen in 4.5 s: ${seen.length}`);
  for (let i = 1; i < seen.length; i++) {
    const gap = seen[i] - seen[i - 1];
    assert.ok(gap > 500 && gap < 1600, `gap between ticks ${gap} ms`);
  }
});

test("scheduled mutations run exactly once across kill -9 at random moments; cancel works", { timeout: 120000 }, async () => {
  const cancelled = await call("mutation", "fixture:schedule_cancel", {
    id: await call("mutation", "fixture:schedule_incr", { name: "never", delay_ms: 800 }),
  });
  assert.equal(cancelled, null);
  // Each cycle schedules jobs due now, each adding one to a counter of its
  // own, from 4 clients one call after another, and kills the server (kill
  // -9) at a random moment of that: while jobs are being scheduled, are
  // waiting, run, or commit, or while the jobs left by the last kill run
  // after the restart. Then it restarts on the same data.
  const CYCLES = 30;
  const LANES = 4;
  const PER_LANE = 6;
  const known = new Map(); // name -> job id, for schedule calls that answered
  const asked = new Set(); // every name a schedule call was sent for
  let killedMidRun = 0; // kills after some of the cycle's jobs ran, before all did
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    let killed = false;
    const lanes = Array.from({ length: LANES }, async (_, lane) => {
      for (let k = 0; k < PER_LANE && !killed; k++) {
        const name = `crash-${cycle}-${lane}-${k}`;
        asked.add(name);
        try {
          known.set(name, await call("mutation", "fixture:schedule_incr", { name, delay_ms: 0 }));
        } catch {
          return; // the server is gone: the job may or may not be committed
        }
      }
    });
    await new Promise((r) => setTimeout(r, Math.random() * 120));
    killed = true;
    await server.stop({ keepData: true, signal: "SIGKILL" });
    await Promise.all(lanes);
    // What the kill left, read from the data directory.
    const states = offlineJobs(server.dataDir)
      .filter((j) => j.args[0]?.name?.startsWith(`crash-${cycle}-`))
      .map((j) => j.state.kind);
    if (states.includes("success") && states.includes("pending")) killedMidRun++;
    server = await startServer({ dataDir: server.dataDir });
  }

  // Every job runs to the end.
  const crashJobs = async () => (await adminDocuments("_scheduled_functions")).filter((j) => j.args[0]?.name?.startsWith("crash-"));
  await until(async () => (await crashJobs()).every((j) => j.state.kind !== "pending"), { timeout: 30000, what: "the jobs to run" });
  const jobs = await crashJobs();
  const counters = new Map(
    (await call("query", "fixture:scan", { table: "counters" })).map((c) => [c.name, int64(c.value)]),
  );
  console.log(
    `${asked.size} jobs scheduled, ${known.size} answered, ${jobs.length} committed; ` +
      `${killedMidRun} of ${CYCLES} kills landed after some of their cycle's jobs ran and before all did`,
  );
  assert.ok(killedMidRun > 0, "no kill landed while a cycle's jobs were running");
  const jobNames = new Set();
  const wrong = [];
  for (const job of jobs) {
    const name = job.args[0].name;
    assert.ok(!jobNames.has(name), `two jobs for ${name}`);
    jobNames.add(name);
    if (job.state.kind !== "success" || counters.get(name) !== 1)
      wrong.push(`${name}: ${job.state.kind}, ran ${counters.get(name) ?? 0} times`);
  }
  assert.deepEqual(wrong, [], "every job ends in success, having run exactly once");
  for (const [name, id] of known) assert.ok(jobs.some((j) => j._id === id && j.args[0].name === name), `the answered job ${name} is missing`);
  for (const [name, value] of counters)
    if (name.startsWith("crash-")) assert.ok(jobNames.has(name), `counter ${name} = ${value} without a job`);
  assert.ok(jobs.length >= known.size && jobs.length <= asked.size);

  assert.equal(await counter("never"), 0, "a cancelled job never runs");
  const never = (await adminDocuments("_scheduled_functions")).filter((j) => j.args[0]?.name === "never");
  assert.deepEqual(never.map((j) => j.state.kind), ["canceled"]);
});
