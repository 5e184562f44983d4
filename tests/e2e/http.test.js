// The HTTP API against the unmodified `convex` npm client (ConvexHttpClient).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { ConvexHttpClient } from "convex/browser";
import { ConvexError } from "convex/values";
import { makeFunctionReference } from "convex/server";
import { startServer } from "./helpers.js";

// The users example, in Rust by default; the TypeScript twin runs the same
// suite through http.ts.test.js.
const USERS_APP = process.env.CVX_E2E_USERS_APP ?? "examples/users";

const q = (name) => makeFunctionReference(name);

let users, hello, receiver, received;

before(async () => {
  users = await startServer({ app: USERS_APP, args: ["--allow-private-fetch"] });
  hello = await startServer({ app: "examples/hello" });
  received = [];
  receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      received.push({ method: req.method, url: req.url, type: req.headers["content-type"], body });
      res.statusCode = req.url === "/fail" ? 500 : 200;
      res.end("ok");
    });
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
}, { timeout: 600000 });

after(async () => {
  await users?.stop();
  await hello?.stop();
  receiver?.close();
}, { timeout: 30000 });

test("a mutation then a query round-trip through the seed's functions", { timeout: 30000 }, async () => {
  const client = new ConvexHttpClient(users.url);
  const id = await client.mutation(q("users:create_user"), { name: "Ada", email: "ada@example.com" });
  assert.equal(typeof id, "string");
  assert.equal(id.length, 32);
  const doc = await client.query(q("users:get_user"), { id });
  assert.equal(doc.name, "Ada");
  assert.equal(doc.email, "ada@example.com");
  assert.equal(doc._id, id);
  assert.equal(typeof doc._creationTime, "number");
  const byEmail = await client.query(q("users:by_email"), { email: "ada@example.com" });
  assert.equal(byEmail._id, id);
});

test("int64, bytes, NaN, ±Infinity, -0 and nested values round-trip", { timeout: 30000 }, async () => {
  const client = new ConvexHttpClient(hello.url);
  const bytes = new Uint8Array([0, 1, 2, 250, 255]).buffer;
  const value = {
    big: 9223372036854775807n,
    neg: -42n,
    bytes,
    nan: NaN,
    inf: Infinity,
    ninf: -Infinity,
    nzero: -0,
    nested: [1.5, [true, null, "x"], { deep: { deeper: [1n, "é"] } }],
  };
  const out = await client.query(q("hello:echo"), { value });
  assert.equal(out.big, 9223372036854775807n);
  assert.equal(out.neg, -42n);
  assert.deepEqual(new Uint8Array(out.bytes), new Uint8Array(bytes));
  assert.ok(Number.isNaN(out.nan));
  assert.equal(out.inf, Infinity);
  assert.equal(out.ninf, -Infinity);
  assert.ok(Object.is(out.nzero, -0));
  assert.deepEqual(out.nested, value.nested);
  assert.equal(await client.query(q("hello:add_int"), { a: 40n, b: 2n }), 42n);
  assert.equal(await client.query(q("hello:add"), { a: 1, b: 2 }), 3);
});

test("ConvexError data reaches the client as error.data", { timeout: 30000 }, async () => {
  const client = new ConvexHttpClient(hello.url);
  await assert.rejects(client.mutation(q("hello:app_error"), { code: "E_TEST" }), (e) => {
    assert.ok(e instanceof ConvexError, `expected ConvexError, got ${e}`);
    assert.equal(e.data.code, "E_TEST");
    assert.equal(e.data.count, 3);
    return true;
  });
});

test("unknown functions and bad arguments raise errors with our message", { timeout: 30000 }, async () => {
  const client = new ConvexHttpClient(hello.url);
  await assert.rejects(client.query(q("hello:nope"), {}), /Could not find public function for 'hello:nope'/);
  // Convex's own validation texts.
  await assert.rejects(client.query(q("hello:greet"), {}), /ArgumentValidationError: Object is missing the required field `name`\./);
  await assert.rejects(client.query(q("hello:greet"), { name: 5 }), /Path: \.name\nValue: 5\.0\nValidator: v\.string\(\)/);
  await assert.rejects(client.query(q("hello:secret"), {}), /Could not find public function/);
  await assert.rejects(client.mutation(q("hello:greet"), { name: "x" }), /defined as a query/);
  await assert.rejects(client.query(q("hello:boom"), {}), /Uncaught Error: boom.*\n.*src\/lib\.rs:\d+:\d+/s);
});

test("the seed's send_webhook action posts to a receiver and reports failure", { timeout: 120000 }, async () => {
  const client = new ConvexHttpClient(users.url);
  const base = `http://127.0.0.1:${receiver.address().port}`;
  assert.equal(await client.action(q("users:send_webhook"), { url: `${base}/ok`, data: '{"hi":1}' }), null);
  assert.deepEqual(received.at(-1), { method: "POST", url: "/ok", type: "application/json", body: '{"hi":1}' });
  await assert.rejects(client.action(q("users:send_webhook"), { url: `${base}/fail`, data: "{}" }), /Webhook failed/);
  // Without --allow-private-fetch the same call is refused before connecting.
  const strictServer = await startServer({ app: USERS_APP });
  try {
    const strict = new ConvexHttpClient(strictServer.url);
    const before = received.length;
    await assert.rejects(
      strict.action(q("users:send_webhook"), { url: `${base}/ok`, data: "{}" }),
      /refused to connect to private address 127\.0\.0\.1/,
    );
    assert.equal(received.length, before);
    // fetch is for actions only.
  } finally {
    await strictServer.stop();
  }
});

test("50 clients × 200 mixed calls: no errors, every write visible", { timeout: 120000 }, async () => {
  // Earlier tests in this file created users too.
  const before = await new ConvexHttpClient(users.url).query(q("users:count"), {});
  const clients = Array.from({ length: 50 }, () => new ConvexHttpClient(users.url));
  const created = [];
  await Promise.all(
    clients.map(async (client, c) => {
      for (let i = 0; i < 200; i++) {
        if (i % 4 === 0) {
          const email = `c${c}-${i}@load.test`;
          const id = await client.mutation(q("users:create_user"), { name: `c${c}`, email });
          created.push({ id, email });
        } else if (i % 4 === 1 && created.length) {
          const { id } = created[(c * 7 + i) % created.length];
          const doc = await client.query(q("users:get_user"), { id });
          assert.equal(doc._id, id);
        } else {
          // A bounded read: the table grows by 2500 rows meanwhile.
          const newest = await client.query(q("users:list"), { limit: 10 });
          assert.ok(newest.length > 0 && newest.length <= 10);
        }
      }
    }),
  );
  assert.equal(created.length, 50 * 50);
  const client = new ConvexHttpClient(users.url);
  for (const { id, email } of created) {
    const doc = await client.query(q("users:get_user"), { id });
    assert.equal(doc.email, email);
  }
  // Each write applied once: no more documents than the calls created.
  assert.equal(await client.query(q("users:count"), {}), before + 50 * 50);
});

test("the users example's HTTP action creates a user from a webhook", { timeout: 30000 }, async () => {
  const r = await fetch(`${users.url}/http/webhook`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: "Hook", email: "hook@example.com" }),
  });
  assert.equal(r.status, 201);
  const { id } = await r.json();
  const client = new ConvexHttpClient(users.url);
  const user = await client.query(q("users:get_user"), { id });
  assert.equal(user.email, "hook@example.com");
  const bad = await fetch(`${users.url}/http/webhook`, { method: "POST", body: "not json" });
  assert.equal(bad.status, 400);
  assert.ok((await bad.json()).error.length > 0);
});

test("routes Convex's own tools call, and unknown ones, answer 404 with what to use instead", { timeout: 30000 }, async () => {
  const cases = [
    ["POST", "/api/deploy2/start_push", "cvx deploy"],
    ["GET", "/api/get_config_hashes", "cvx deploy"],
    ["POST", "/api/run_test_function", "cvx run"],
    ["GET", "/api/shapes2", "cvx data"],
    ["POST", "/api/import/start_upload", "no snapshot import"],
    ["GET", "/api/stream_function_logs", "cvx logs"],
  ];
  for (const [method, route, instead] of cases) {
    const r = await fetch(`${users.url}${route}`, { method, headers: { authorization: `Convex ${users.adminKey}` } });
    assert.equal(r.status, 404, route);
    const body = await r.json();
    assert.equal(body.code, "NotFound");
    assert.ok(body.message.startsWith(`${route} is a route of Convex's own backend`), body.message);
    assert.ok(body.message.includes(instead), `${route}: ${body.message}`);
  }
  // Convex's route for `npx convex env set` is served (tests/e2e/npx.test.js): a bad body is a 400, not a 404.
  const envRoute = await fetch(`${users.url}/api/update_environment_variables`, { method: "POST", headers: { authorization: `Convex ${users.adminKey}` } });
  assert.equal(envRoute.status, 400);
  const r = await fetch(`${users.url}/nope/%FF?x=1`);
  assert.equal(r.status, 404);
  const body = await r.json();
  assert.match(body.message, /^no route \/nope\/%FF on this cvx server: .*\/api\/query/);
});
