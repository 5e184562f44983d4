// Actions and the platform around them (issue 7): file storage through
// upload URLs and download URLs, HTTP actions, fetch with its limits,
// scheduled functions across a restart, and crons.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { createHash, randomBytes } from "node:crypto";
import { startServer, until } from "./helpers.js";

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
});

after(async () => {
  await server?.stop();
  receiver?.closeAllConnections();
  await new Promise((r) => receiver?.close(r));
});

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

test("upload → store → download: a 50 MiB file keeps its sha256; Range requests", async () => {
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

test("actions store and read files; HTTP actions serve them; deletes remove them", async () => {
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

test("HTTP actions are routed by method and path and see the request", async () => {
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

test("fetch: refused in queries; timeouts and oversized responses are errors", async () => {
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

test("a cron runs on time, within tolerance", async () => {
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

test("a scheduled mutation survives a crash and restart and runs exactly once; cancel works", async () => {
  const before0 = await counter("sched");
  await call("mutation", "fixture:schedule_incr", { name: "sched", delay_ms: 1500 });
  const cancelled = await call("mutation", "fixture:schedule_incr", { name: "never", delay_ms: 800 });
  await call("mutation", "fixture:schedule_cancel", { id: cancelled });
  // kill -9 before it is due; the job was committed with the mutation.
  await server.stop({ keepData: true, signal: "SIGKILL" });
  server = await startServer({ dataDir: server.dataDir });
  await until(async () => (await counter("sched")) === before0 + 1, { timeout: 10000, what: "the scheduled run" });
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await counter("sched"), before0 + 1, "ran exactly once");
  assert.equal(await counter("never"), 0, "a cancelled job never runs");
  const jobs = await fetch(`${server.url}/api/admin/documents?table=_scheduled_functions&limit=1000`, {
    headers: { Authorization: `Convex ${server.adminKey}` },
  }).then((r) => r.json());
  const text = JSON.stringify(jobs);
  assert.match(text, /"success"/);
  assert.match(text, /"canceled"/);
});
