// Hostile input: the server answers or refuses cleanly and stays up.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { startServer } from "./helpers.js";

let server;
before(async () => {
  server = await startServer({ app: "examples/hello", args: ["--request-timeout", "1500"] });
});
after(async () => {
  await server?.stop();
});

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

test("malformed JSON and malformed requests get 4xx errors, never a crash", async () => {
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

test("a body over 16 MiB is refused from its Content-Length, before it is sent", async () => {
  const head = `POST /api/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${64 << 20}\r\n\r\n{"path":`;
  const t0 = Date.now();
  const out = await raw(head, { wait: 5000 });
  assert.match(out, /^HTTP\/1\.1 413/);
  assert.ok(Date.now() - t0 < 4000, "answered without waiting for the body");
  await healthy();
});

test("slow and half-open connections time out; others are served meanwhile", async () => {
  const t0 = Date.now();
  const slow = raw("POST /api/query HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{", { wait: 8000 });
  const idle = raw("", { wait: 8000 });
  await healthy();
  await Promise.all([slow, idle]);
  assert.ok(Date.now() - t0 < 7500, "the server closed the slow connections itself");
  await healthy();
});

test("thousands of connections: the server keeps answering", async () => {
  const sockets = [];
  for (let i = 0; i < 2000; i++) {
    const s = net.connect(server.port, "127.0.0.1");
    s.on("error", () => {});
    sockets.push(s);
  }
  await Promise.all(sockets.map((s) => new Promise((r) => (s.connecting ? s.once("connect", r).once("error", r) : r()))));
  await healthy();
  for (const s of sockets) s.destroy();
  await healthy();
});
