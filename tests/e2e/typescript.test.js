// TypeScript functions, run by the JavaScript engine in the sandbox, with the
// unmodified `convex` package (1.45, or 1.51 in typescript.newest.test.js)
// on both sides: the fixture app in
// tests/fixtures/ts exercises the runtime (database, pagination, scheduler,
// crons, storage, HTTP actions, validators, errors, the web platform,
// determinism), and the seed's mixed example (examples/mixed) a TypeScript
// query beside a Rust mutation in one module.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import WebSocket from "ws";
import { cvx, repo, startServer, until } from "./helpers.js";

// The fixture, and with it the version of the `convex` package on both
// sides: the client here is the fixture's own. typescript.newest.test.js
// runs this file on the newest version cvx supports (1.51), with the
// fixture's functions and the package of CVX_E2E_TS_PACKAGES; this one
// runs it on the oldest (1.45).
let FIXTURE = "tests/fixtures/ts";
let ConvexHttpClient, ConvexClient, ConvexError, makeFunctionReference;
const f = (name) => makeFunctionReference(name);
const connect = (url) => new ConvexClient(url, { webSocketConstructor: WebSocket, unsavedChangesWarning: false });

/** The fixture's functions with another version's package.json and
 * node_modules, in a temporary directory (a copy, not a link: esbuild
 * would name the functions' files by their real paths). */
function fixtureWith(packages) {
  const dir = path.join(repo, packages);
  if (!existsSync(path.join(dir, "node_modules/convex/package.json")))
    execFileSync("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error", "--fetch-timeout=60000"], {
      cwd: dir,
      stdio: "inherit",
      timeout: 600000,
    });
  const app = mkdtempSync(path.join(tmpdir(), "cvx-ts-"));
  cpSync(path.resolve(repo, FIXTURE, "convex"), path.join(app, "convex"), {
    recursive: true,
    filter: (src) => !/\/_generated(\/|$)/.test(src),
  });
  for (const file of ["package.json", "package-lock.json"]) cpSync(path.join(dir, file), path.join(app, file));
  symlinkSync(path.join(dir, "node_modules"), path.join(app, "node_modules"));
  return app;
}

let server, client;
before(async () => {
  if (process.env.CVX_E2E_TS_PACKAGES) FIXTURE = fixtureWith(process.env.CVX_E2E_TS_PACKAGES);
  // The first deploy installs the fixture's packages (npm ci).
  server = await startServer({ app: FIXTURE, args: ["--allow-private-fetch"] });
  const lib = (entry) => import(pathToFileURL(path.resolve(repo, FIXTURE, "node_modules/convex/dist/esm", entry, "index.js")));
  ({ ConvexHttpClient, ConvexClient } = await lib("browser"));
  ({ ConvexError } = await lib("values"));
  ({ makeFunctionReference } = await lib("server"));
  const { version } = JSON.parse(readFileSync(path.resolve(repo, FIXTURE, "node_modules/convex/package.json"), "utf8"));
  const wanted = JSON.parse(readFileSync(path.resolve(repo, FIXTURE, "package.json"), "utf8")).dependencies.convex;
  assert.equal(version, wanted, "the fixture's installed convex package");
  client = new ConvexHttpClient(server.url);
}, { timeout: 600000 });
after(async () => {
  await server?.stop();
  if (process.env.CVX_E2E_TS_PACKAGES) rmSync(FIXTURE, { recursive: true, force: true });
}, { timeout: 30000 });

test("queries and mutations: indexes, filters, first, normalizeId, patch, replace, delete", { timeout: 30000 }, async () => {
  const a = await client.mutation(f("messages:send"), { body: "hi", author: "ada" });
  await client.mutation(f("messages:send"), { body: "hidden", author: "ada" });
  await client.mutation(f("messages:send"), { body: "yo", author: "bob" });
  const mine = await client.query(f("messages:byAuthor"), { author: "ada" });
  assert.deepEqual(mine.map((m) => m.body), ["hi"]);
  assert.equal((await client.query(f("messages:first"), {}))._id, a);
  assert.deepEqual(await client.query(f("messages:normalize"), { id: a }), { messages: a, ticks: null });
  assert.deepEqual(await client.query(f("messages:normalize"), { id: "garbage" }), { messages: null, ticks: null });
  assert.deepEqual(await client.mutation(f("errors:writes"), {}), {
    patched: { value: 2, tag: "a" },
    untagged: { value: 2, tag: null },
    replaced: { value: 3, tag: "b" },
    deleted: null,
  });
});

test("process.env: the deployment's variables in every kind of function, live, read-only", { timeout: 60000 }, async () => {
  const setEnv = (...args) =>
    execFileSync(cvx, ["env", ...args, "--url", server.url, "--admin-key", server.adminKey], { stdio: "pipe" });
  assert.equal(await client.query(f("env:get"), { name: "CVX_E2E_TOKEN" }), null);
  assert.deepEqual(await client.query(f("env:names"), {}), { keys: [], has: false, own: false, spread: 0 });
  setEnv("set", "CVX_E2E_TOKEN", "t0k3n");
  setEnv("set", "OTHER_VAR", "x");
  assert.equal(await client.query(f("env:get"), { name: "CVX_E2E_TOKEN" }), "t0k3n");
  assert.deepEqual(await client.query(f("env:names"), {}), { keys: ["CVX_E2E_TOKEN", "OTHER_VAR"], has: true, own: true, spread: 2 });
  assert.equal(await client.mutation(f("env:inMutation"), { name: "OTHER_VAR" }), "x");
  assert.equal(await client.action(f("env:inAction"), { name: "CVX_E2E_TOKEN" }), "t0k3n");
  const tries = (await client.mutation(f("env:write"), {})).split("|");
  assert.equal(tries.length, 4);
  for (const t of tries.slice(0, 3)) assert.match(t, /process\.env is read-only/);
  assert.equal(tries[3], "true");
  // a subscription re-runs when a variable it read changes
  const live = connect(server.url);
  const seen = [];
  const unsub = live.onUpdate(f("env:get"), { name: "CVX_E2E_TOKEN" }, (v) => seen.push(v));
  try {
    await until(() => seen.at(-1) === "t0k3n", { what: "the first result" });
    setEnv("set", "CVX_E2E_TOKEN", "rotated");
    await until(() => seen.at(-1) === "rotated", { what: "the subscription to see the new value" });
  } finally {
    unsub();
    await live.close();
  }
  setEnv("remove", "CVX_E2E_TOKEN");
  setEnv("remove", "OTHER_VAR");
  assert.equal(await client.action(f("env:inAction"), { name: "CVX_E2E_TOKEN" }), null);
});

test("ctx.runQuery and ctx.runMutation in a mutation: one transaction, arguments checked", { timeout: 30000 }, async () => {
  const { id, count } = await client.mutation(f("messages:sendAndCount"), { body: "nested", author: "nest" });
  assert.equal(count, 1);
  assert.equal((await client.query(f("messages:byAuthor"), { author: "nest" }))[0]._id, id);
  await assert.rejects(
    client.mutation(f("messages:nestedBadArgs"), {}),
    /ArgumentValidationError: Value does not match validator\.\nPath: \.author\nValue: 5\.0\nValidator: v\.string\(\)/,
  );
});

test("validators: Convex's messages for arguments, return values and the schema", { timeout: 30000 }, async () => {
  await assert.rejects(
    client.mutation(f("messages:send"), { body: "x" }),
    /ArgumentValidationError: Object is missing the required field `author`\. Consider wrapping the field validator in `v\.optional\(\.\.\.\)` if this is expected\.\n\nObject: \{body: "x"\}\nValidator: v\.object\(\{author: v\.string\(\), body: v\.string\(\)\}\)/,
  );
  await assert.rejects(client.mutation(f("messages:send"), { body: "x", author: "y", extra: 1 }), /Object contains extra field `extra`/);
  // v.id("messages") refuses an id of another table.
  const thing = await client.mutation(f("errors:goodWrite"), { value: 1 });
  await assert.rejects(
    client.mutation(f("messages:remove"), { id: thing }),
    /Found ID "[0-9a-z]+" from table `things`, which does not match the table name in validator `v\.id\("messages"\)`/,
  );
  await assert.rejects(client.query(f("errors:badReturn"), {}), /ReturnsValidationError: Value does not match validator\.\nPath: \.n\nValue: "not a number"\nValidator: v\.float64\(\)/);
  await assert.rejects(
    client.mutation(f("errors:badWrite"), {}),
    /Failed to insert or update a document in table "things" because it does not match the schema: Value does not match validator\.\nPath: \.value\nValue: "oops"\nValidator: v\.float64\(\)/,
  );
});

test("errors: ConvexError data, stacks mapped to the app's files, log lines", { timeout: 30000 }, async () => {
  await assert.rejects(client.mutation(f("errors:appError"), { code: "E1" }), (e) => {
    assert.ok(e instanceof ConvexError, String(e));
    assert.deepEqual(e.data, { code: "E1", count: 3n });
    return true;
  });
  await assert.rejects(client.query(f("errors:boom"), {}), (e) => {
    assert.match(e.message, /Uncaught Error: boom\n    at explode \(convex\/errors\.ts:22:\d+\)\n    at handler \(convex\/errors\.ts:17:\d+\)/);
    assert.doesNotMatch(e.message, /bundle\.js|cvx:prelude/);
    return true;
  });
  const r = await fetch(`${server.url}/api/query`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ path: "errors:logs", args: [{}], format: "convex_encoded_json" }),
  });
  const body = await r.json();
  assert.deepEqual(body.logLines, ["[LOG] hello { a: 1, b: [ 'x' ] } 2n", "[WARN] careful"]);
});

test("pages keep their boundaries while other writes land (the journal)", { timeout: 60000 }, async () => {
  for (const b of ["p1", "p2", "p3", "p4"]) await client.mutation(f("messages:send"), { body: b, author: "pager" });
  const c = connect(server.url);
  try {
    const seen = [];
    c.onUpdate(f("messages:page"), { paginationOpts: { numItems: 2, cursor: null } }, (r) => seen.push(r));
    await until(() => seen.length >= 1, { what: "the first page" });
    assert.deepEqual(seen[0].page.map((m) => m.body), ["p4", "p3"]);
    const end = seen[0].continueCursor;
    // A newer message lands in this page's range: the page grows, its end
    // stays where it was, so the next page does not shift.
    await client.mutation(f("messages:send"), { body: "p5", author: "pager" });
    await until(() => seen.at(-1).page.length === 3, { what: "the page with p5" });
    assert.deepEqual(seen.at(-1).page.map((m) => m.body), ["p5", "p4", "p3"]);
    assert.equal(seen.at(-1).continueCursor, end);
    const next = await client.query(f("messages:page"), { paginationOpts: { numItems: 2, cursor: end } });
    assert.deepEqual(next.page.map((m) => m.body), ["p2", "p1"]);
    // A page grown past twice its size offers a split point.
    for (const b of ["p6", "p7"]) await client.mutation(f("messages:send"), { body: b, author: "pager" });
    const grown = await until(() => seen.at(-1).page.length === 5 && seen.at(-1), { what: "the grown page" });
    assert.equal(grown.pageStatus, "SplitRecommended");
    const half = await client.query(f("messages:page"), { paginationOpts: { numItems: 2, cursor: null, endCursor: grown.splitCursor } });
    assert.deepEqual(half.page.map((m) => m.body), ["p7", "p6"]);
  } finally {
    await c.close();
  }
});

test("the scheduler runs a TypeScript mutation once, and a canceled job never", { timeout: 30000 }, async () => {
  const { id, later } = await client.mutation(f("jobs:schedule"), { n: 7 });
  const ticks = await until(async () => {
    const t = await client.query(f("jobs:ticks"), { source: "scheduled" });
    return t.length > 0 && t;
  }, { what: "the scheduled tick" });
  assert.deepEqual(ticks.map((t) => t.n), [7]);
  assert.equal((await client.query(f("jobs:job"), { id })).state.kind, "success");
  assert.equal((await client.query(f("jobs:job"), { id: later })).state.kind, "canceled");
  assert.deepEqual(await client.query(f("jobs:ticks"), { source: "canceled" }), []);
});

test("crons.ts: an interval cron runs", { timeout: 30000 }, async () => {
  await until(async () => (await client.query(f("jobs:ticks"), { source: "cron" })).length >= 2, {
    what: "two cron ticks",
    timeout: 20000,
  });
});

test("file storage from TypeScript: store, get, metadata, URLs, uploads, delete", { timeout: 30000 }, async () => {
  const id = await client.action(f("files:store"), { text: "héllo" });
  assert.deepEqual(await client.action(f("files:read"), { id }), { text: "héllo", type: "text/plain" });
  const info = await client.query(f("files:info"), { id });
  assert.equal(info.meta.size, 6);
  assert.equal(info.meta.contentType, "text/plain");
  const digest = createHash("sha256").update("héllo").digest();
  assert.equal(info.meta.sha256, digest.toString("base64")); // as Convex reports it
  assert.equal(info.doc.sha256, digest.toString("hex")); // as _storage stores it
  assert.equal(await (await fetch(info.url)).text(), "héllo");
  const uploadUrl = await client.mutation(f("files:uploadUrl"), {});
  const up = await fetch(uploadUrl, { method: "POST", headers: { "content-type": "image/png" }, body: "png!" });
  const { storageId } = await up.json();
  assert.equal((await client.query(f("files:info"), { id: storageId })).meta.contentType, "image/png");
  await client.mutation(f("files:remove"), { id: storageId });
  assert.equal(await client.action(f("files:read"), { id: storageId }), null);
});

test("HTTP actions from httpRouter: exact and prefix routes, Request and Response", { timeout: 30000 }, async () => {
  const hello = await fetch(`${server.url}/http/hello?name=ada`);
  assert.equal(hello.status, 200);
  assert.equal(hello.headers.get("x-cvx"), "yes");
  assert.equal(await hello.text(), "hello ada at /hello");
  const echo = await fetch(`${server.url}/http/echo`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ a: [1, 2] }),
  });
  assert.equal(echo.status, 202);
  assert.deepEqual(await echo.json(), { got: { a: [1, 2] }, type: "application/json" });
  const posted = await fetch(`${server.url}/http/messages/carol`, { method: "POST", body: "from http" });
  assert.equal(posted.status, 201);
  const carol = await client.query(f("messages:byAuthor"), { author: "carol" });
  assert.deepEqual(carol.map((m) => m.body), ["from http"]);
  assert.equal((await fetch(`${server.url}/http/nowhere`)).status, 404);
});

test("actions get the web platform, and fetch", { timeout: 30000 }, async () => {
  const p = await client.action(f("web:platform"), {});
  assert.equal(p.href, "https://example.com/b/c?x=1&y=+z&q=a+b%26c#frag");
  assert.equal(p.search, "x=1&y= z&q=a b&c");
  assert.deepEqual([p.bytes, p.text], [10, "héllo €"]);
  assert.deepEqual(p.digest, [0xba, 0x78, 0x16, 0xbf]); // SHA-256("abc")
  assert.deepEqual([p.b64, p.unb64, p.header], ["aGkh", "hi!", "1, 2"]);
  assert.deepEqual([p.json, p.status, p.form, p.uuidLength], [{ ok: true }, 201, "value", 36]);
  assert.ok(p.waited >= 30, `setTimeout(30) in an action waited ${p.waited} ms`);
  const receiver = http.createServer((req, res) => {
    res.setHeader("content-type", "text/plain");
    res.end(`got ${req.headers["x-test"]}`);
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  try {
    const r = await client.action(f("web:get"), { url: `http://127.0.0.1:${receiver.address().port}/x` });
    assert.deepEqual(r, { status: 200, body: "got 1", type: "text/plain" });
  } finally {
    receiver.close();
  }
});

test("queries and mutations are deterministic for a request id; time stands still in them", { timeout: 120000 }, async () => {
  const data = mkdtempSync(path.join(tmpdir(), "cvx-det-"));
  try {
    const run = (id) =>
      JSON.parse(execFileSync(cvx, ["run", path.resolve(repo, FIXTURE), "det:sample", "{}", "--data", data, "--request-id", id]).toString());
    const a = run("same"), b = run("same"), c = run("other");
    assert.deepEqual([a.r, a.uuid, a.bytes], [b.r, b.uuid, b.bytes]);
    assert.notDeepEqual([a.r, a.uuid], [c.r, c.uuid]);
    assert.equal(new Date(a.now).toISOString(), a.date);
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});

test("the seed's mixed app: a TypeScript query and a Rust mutation in one module, live", { timeout: 600000 }, async () => {
  const mixed = await startServer({ app: "examples/mixed" });
  const c = connect(mixed.url);
  try {
    const seen = [];
    c.onUpdate(f("users:list"), {}, (users) => seen.push(users.map((u) => u.name)));
    await until(() => seen.length >= 1, { what: "the first list" });
    await c.mutation(f("users:create"), { name: "Ada", email: "ada@example.com" }); // Rust
    await until(() => seen.at(-1).includes("Ada"), { what: "Ada in the TypeScript list" });
    await assert.rejects(c.mutation(f("users:create"), { name: " ", email: "x" }), (e) => {
      assert.ok(e instanceof ConvexError);
      assert.deepEqual(e.data, { field: "name", message: "a name is required" });
      return true;
    });
    const meta = await (await fetch(`${mixed.url}/api/admin/functions`, { headers: { Authorization: `Convex ${mixed.adminKey}` } })).json();
    const byPath = Object.fromEntries(meta.functions.map((fn) => [fn.path, fn]));
    assert.equal(byPath["users:list"].export, "cvx_js_invoke");
    assert.match(byPath["users:create"].export, /^cvx:/);
  } finally {
    await c.close();
    await mixed.stop();
  }
});

test("a function defined in both languages is a deploy error naming both files", { timeout: 600000 }, async () => {
  const work = mkdtempSync(path.join(tmpdir(), "cvx-dup-"));
  const app = path.join(work, "mixed");
  try {
    cpSync(path.join(repo, "examples/mixed"), app, {
      recursive: true,
      filter: (src) => !/\/(node_modules|target|_generated|\.cvx)(\/|$)/.test(src),
    });
    // The Rust crate's path dependency, relative to the copy.
    const cargo = path.join(app, "convex/Cargo.toml");
    writeFileSync(cargo, readFileSync(cargo, "utf8").replace(/path = "[^"]*"/, `path = "${path.join(repo, "sdk/rust/convex_sdk")}"`));
    symlinkSync(path.join(repo, "examples/mixed/node_modules"), path.join(app, "node_modules"));
    writeFileSync(
      path.join(app, "convex/users.ts"),
      readFileSync(path.join(app, "convex/users.ts"), "utf8") +
        '\nexport const create = query({ args: {}, handler: async () => null });\n',
    );
    await assert.rejects(
      server.deployAsync(app),
      (e) => {
        assert.match(String(e.stderr), /function users:create is defined twice: in (convex\/users\.ts and in src\/users\.rs|src\/users\.rs and in convex\/users\.ts); rename one/);
        return true;
      },
    );
    // The old code keeps serving.
    assert.ok(Array.isArray(await client.query(f("messages:byAuthor"), { author: "ada" })));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test("hostile TypeScript: each a clear error, and the server keeps serving", { timeout: 120000 }, async () => {
  const cases = [
    ["loop", /function exceeded its fuel limit/],
    ["bomb", /function exceeded its memory limit/],
    ["recurse", /Uncaught RangeError: Maximum call stack size exceeded\n    at down \(convex\/hostile\.ts:\d+:\d+\)/],
    ["huge", /function result is larger than the limit of 16777216 bytes/],
    ["fetchInQuery", /Can't use fetch\(\) in queries and mutations/],
    ["writeInQuery", /Uncaught TypeError: not a function\n    at handler \(convex\/hostile\.ts:\d+:\d+\)/],
    ["neverSettles", /the function's promise never settled/],
  ];
  for (const [name, message] of cases) {
    await assert.rejects(client.query(f(`hostile:${name}`), {}), message, name);
    assert.equal(await client.query(f("hostile:ok"), { n: 1 }), 2, `serving after ${name}`);
  }
  // Deep recursion is a catchable RangeError long before the native stack.
  const { max, error } = await client.query(f("hostile:depth"), {});
  assert.equal(error, "RangeError: Maximum call stack size exceeded");
  assert.ok(max > 1000, `depth ${max}`);
});

test("a bad module fails the deploy with its file and line; the old code keeps serving", { timeout: 120000 }, async () => {
  const work = mkdtempSync(path.join(tmpdir(), "cvx-bad-"));
  try {
    cpSync(path.resolve(repo, FIXTURE, "package.json"), path.join(work, "package.json"));
    symlinkSync(path.resolve(repo, FIXTURE, "node_modules"), path.join(work, "node_modules"));
    mkdirSync(path.join(work, "convex"));
    const attempt = async (source) => {
      writeFileSync(path.join(work, "convex/bad.ts"), source);
      try {
        await server.deployAsync(work);
      } catch (e) {
        return String(e.stderr);
      }
      assert.fail("the deploy succeeded");
    };
    const head = 'import { queryGeneric as query } from "convex/server";\n';
    assert.match(await attempt(head + "export const f = query({ args: {}, handler: async () => 1 +; });\n"),
      /Unexpected ";"\n\n    convex\/bad\.ts:2:\d+:/);
    assert.match(await attempt(head + 'import { readFileSync } from "node:fs";\nexport const f = query({ args: {}, handler: async () => readFileSync("/etc/passwd") });\n'),
      /Could not resolve "node:fs"\n\n    convex\/bad\.ts:2:\d+:[\s\S]*Node\.js's built-in modules do not exist/);
    assert.match(await attempt('"use node";\n' + head + "export const f = query({ args: {}, handler: async () => 1 });\n"),
      /convex\/bad\.ts starts with "use node"/);
    // An error while the module's top level runs, at deploy, in the sandbox.
    const thrown = await attempt(head + "export const f = query({ args: {}, handler: async () => 1 });\n(undefined as any).boom();\n");
    assert.match(thrown, /Uncaught TypeError: cannot read property 'boom' of undefined\n    at <anonymous> \(convex\/bad\.ts:3:\d+\)/);
    assert.doesNotMatch(thrown, /bundle\.js/);
    assert.equal(await client.query(f("hostile:ok"), { n: 2 }), 3);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
