// Hostile input: the server answers or refuses cleanly and stays up.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { startServer, until } from "./helpers.js";

let server;
before(async () => {
  server = await startServer({ app: "examples/hello", args: ["--request-timeout", "1500"] });
}, { timeout: 600000 });
after(async () => {
  await server?.stop();
}, { timeout: 30000 });

const post = (path, body, headers = {}) =>
  fetch(`${server.url}${path}`, { method: "POST", body, headers: { "Content-Type": "application/json", ...headers } });

async function healthy() {
  const r = await post("/api/query", JSON.stringify({ path: "hello:add", args: [{ a: 1, b: 2 }] }));
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { status: "success", value: 3 });
}

/** Sends raw bytes on a fresh socket; resolves with everything the server sent before closing. */
function raw(bytes, { wait = 3000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(server.port, "127.0.0.1");
    let out = "";
    sock.on("data", (d) => (out += d));
    sock.on("error", () => resolve(out));
    sock.on("close", () => resolve(out));
    sock.on("connect", () => sock.write(bytes));
    setTimeout(() => {
      sock.destroy();
      resolve(out);
    }, wait);
  });
}

test("malformed JSON and malformed requests get 4xx errors, never a crash", { timeout: 30000 }, async () => {
  for (const body of ["{", "[1,2", '{"path": 5}', '{"path":"hello:add","args":[1]}', "\u0000\u0001", "null", '{"path":"hello:add","args":[{},{}]}']) {
    const r = await post("/api/query", body);
    assert.equal(r.status, 400, `body ${JSON.stringify(body)}`);
    const j = await r.json();
    assert.equal(j.code, "BadJsonBody");
    assert.ok(j.message.length > 0);
  }
  const garbage = await raw("GARBAGE / NOT-HTTP\r\n\r\n");
  assert.match(garbage, /^HTTP\/1\.1 400/);
  await healthy();
});

test("a body over 16 MiB is refused from its Content-Length, before it is sent", { timeout: 30000 }, async () => {
  const head = `POST /api/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${64 << 20}\r\n\r\n{"path":`;
  const t0 = Date.now();
  const out = await raw(head, { wait: 5000 });
  assert.match(out, /^HTTP\/1\.1 413/);
  assert.ok(Date.now() - t0 < 4000, "answered without waiting for the body");
  await healthy();
});

test("slow and half-open connections time out; others are served meanwhile", { timeout: 30000 }, async () => {
  const t0 = Date.now();
  const slow = raw("POST /api/query HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{", { wait: 8000 });
  const idle = raw("", { wait: 8000 });
  await healthy();
  await Promise.all([slow, idle]);
  assert.ok(Date.now() - t0 < 7500, "the server closed the slow connections itself");
  await healthy();
});

test("thousands of connections: the server holds them all at once and keeps answering", { timeout: 60000 }, async () => {
  // A server of its own, with the default request timeout (10 s): this
  // file's server closes idle connections after 1.5 s.
  const held = await startServer({ app: "examples/hello" });
  const sockets = [];
  try {
    const N = 2000;
    let closed = 0;
    const connected = [];
    for (let i = 0; i < N; i++) {
      const s = net.connect(held.port, "127.0.0.1");
      sockets.push(s);
      connected.push(new Promise((resolve, reject) => s.once("connect", resolve).once("error", reject)));
      s.on("error", () => {}); // reported through `connected`, or as a close
      s.on("close", () => closed++);
    }
    await Promise.all(connected);
    // Accepted by the server, not just queued by the kernel: it counts them
    // (plus the stats request's own connection), answers a call meanwhile,
    // and has closed none.
    await until(
      async () => {
        assert.equal(closed, 0, "connections the server closed");
        return (await held.stats()).connections >= N + 1;
      },
      { timeout: 5000, what: `the server to hold ${N} connections` },
    );
    const r = await fetch(`${held.url}/api/query`, {
      method: "POST",
      body: JSON.stringify({ path: "hello:add", args: [{ a: 1, b: 2 }] }),
      headers: { "Content-Type": "application/json" },
    });
    assert.deepEqual(await r.json(), { status: "success", value: 3 });
    assert.equal(closed, 0, "connections the server closed");
    for (const s of sockets) s.destroy();
    await until(async () => (await held.stats()).connections < 10, { timeout: 5000, what: "the server to let them go" });
    await healthy();
  } finally {
    for (const s of sockets) s.destroy();
    await held.stop();
  }
});

const ADD = JSON.stringify({ path: "hello:add", args: [{ a: 1, b: 2 }] });
const addRequest = (extra = "") =>
  `POST /api/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${ADD.length}\r\n${extra}\r\n${ADD}`;
const responses = (out) => out.split(/(?=HTTP\/1\.1 \d{3})/).filter((s) => s.length);

test("HTTP/1.1 framing: pipelining, chunked bodies, 100-continue, HEAD, HTTP/1.0", { timeout: 60000 }, async () => {
  // Three pipelined requests in one write: three answers, in order.
  const piped = responses(await raw(addRequest() + addRequest() + addRequest("Connection: close\r\n")));
  assert.equal(piped.length, 3);
  for (const r of piped) assert.match(r, /^HTTP\/1\.1 200[\s\S]*"value":3/);
  assert.match(piped[2], /connection: close/i);

  // A chunked body, split mid-chunk, with a chunk extension and a trailer.
  const half = Math.floor(ADD.length / 2);
  const chunked =
    `POST /api/query HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n` +
    `${half.toString(16)};ext=1\r\n${ADD.slice(0, half)}\r\n${(ADD.length - half).toString(16)}\r\n${ADD.slice(half)}\r\n0\r\nX-Trailer: y\r\n\r\n`;
  assert.match(await raw(chunked), /^HTTP\/1\.1 200[\s\S]*"value":3/);

  const cont = await raw(addRequest("Expect: 100-continue\r\nConnection: close\r\n"));
  assert.match(cont, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200/);

  const head = await raw("HEAD /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  assert.match(head, /^HTTP\/1\.1 200/);
  assert.match(head, /content-length: \d+/);
  assert.ok(head.endsWith("\r\n\r\n"), "no body after a HEAD response");

  // HTTP/1.0 closes by default.
  const old = await raw("GET /version HTTP/1.0\r\n\r\n");
  assert.match(old, /^HTTP\/1\.1 200[\s\S]*connection: close[\s\S]*cvx /i);
  await healthy();
});

test("HTTP/1.1 framing: smuggling attempts and oversized heads are refused", { timeout: 60000 }, async () => {
  const cases = [
    // both a length and chunked
    `POST /api/query HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    // two different lengths
    `POST /api/query HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`,
    // a transfer coding we do not speak
    `POST /api/query HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n`,
    // a length that is not a number
    `POST /api/query HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n`,
    // obsolete line folding
    `GET /version HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n`,
    // a bad chunk size
    `POST /api/query HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`,
    // no HTTP version
    `GET /version\r\n\r\n`,
  ];
  for (const c of cases) {
    const out = await raw(c);
    assert.match(out, /^HTTP\/1\.1 (400|501) /, JSON.stringify(c));
    assert.match(out, /connection: close/i);
  }
  const bigHead = await raw(`GET /version HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(70 << 10)}\r\n\r\n`);
  assert.match(bigHead, /^HTTP\/1\.1 431 /);
  const manyHeaders = await raw(`GET /version HTTP/1.1\r\n${"X-H: 1\r\n".repeat(150)}\r\n`);
  assert.match(manyHeaders, /^HTTP\/1\.1 431 /);
  // A chunked body that grows past the limit is cut off at the limit.
  const huge = await raw(`POST /api/query HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${(32 << 20).toString(16)}\r\n`);
  assert.match(huge, /^HTTP\/1\.1 413 /);
  await healthy();
});
