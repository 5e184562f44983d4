// Convex's own CLI against cvx: `npx convex run` (the `convex` package
// installed for these tests, unmodified), pointed at the server the way a
// self-hosted Convex team points it, with CONVEX_SELF_HOSTED_URL and
// CONVEX_SELF_HOSTED_ADMIN_KEY.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { repo, startServer } from "./helpers.js";

const FIXTURE = path.join(repo, "tests/fixtures/ts");
const CLI = path.join(repo, "tests/e2e/node_modules/convex/bin/main.js");

let server, app;

before(async () => {
  if (!existsSync(path.join(FIXTURE, "node_modules/convex/package.json")))
    throw new Error("tests/fixtures/ts has no node_modules: run npm ci there (./test does)");
  // A copy: test files run in parallel, and a deploy writes its build into the app.
  app = mkdtempSync(path.join(tmpdir(), "cvx-npx-"));
  cpSync(path.join(FIXTURE, "convex"), path.join(app, "convex"), { recursive: true });
  for (const file of ["package.json", "package-lock.json"]) cpSync(path.join(FIXTURE, file), path.join(app, file));
  symlinkSync(path.join(FIXTURE, "node_modules"), path.join(app, "node_modules"));
  server = await startServer();
  await server.deployAsync(app);
}, { timeout: 600000 });

after(async () => {
  await server?.stop();
  if (app) rmSync(app, { recursive: true, force: true });
});

const cliEnv = () => ({
  ...process.env,
  CONVEX_SELF_HOSTED_URL: server.url,
  CONVEX_SELF_HOSTED_ADMIN_KEY: server.adminKey,
  CONVEX_DEPLOYMENT: "",
});

/** `npx convex ARGS` in the app's directory; its stdout, parsed as JSON. */
async function convex(...args) {
  const { stdout } = await promisify(execFile)(process.execPath, [CLI, ...args], { cwd: app, env: cliEnv(), timeout: 60000 });
  return JSON.parse(stdout);
}

test("npx convex run: a mutation, then a query that sees it; internal functions too", { timeout: 120000 }, async () => {
  const author = `npx-${Date.now()}`;
  const id = await convex("run", "messages:send", JSON.stringify({ body: "from the Convex CLI", author }));
  assert.match(id, /^[a-z0-9]+$/);
  const internalId = await convex("run", "messages:sendInternal", JSON.stringify({ body: "internal", author }));
  const rows = await convex("run", "messages:byAuthor", JSON.stringify({ author }));
  assert.deepEqual(rows.map((r) => r._id).sort(), [id, internalId].sort());
  assert.deepEqual(rows.map((r) => r.body).sort(), ["from the Convex CLI", "internal"]);
});

test("npx convex run --identity: the function runs as that user", { timeout: 120000 }, async () => {
  const who = await convex("run", "--identity", JSON.stringify({ subject: "u1", issuer: "https://x", name: "Ada" }), "authz:whoami");
  assert.deepEqual(who, { tokenIdentifier: "https://x|u1", subject: "u1", issuer: "https://x", name: "Ada" });
  const mutation = await convex("run", "--identity", JSON.stringify({ subject: "u3", issuer: "https://y" }), "authz:whoamiMutation");
  assert.equal(mutation.tokenIdentifier, "https://y|u3");
  // Without --identity: the admin, as nobody.
  assert.deepEqual(await convex("run", "authz:whoamiWith", JSON.stringify({ tag: "t" })), { tag: "t", subject: null, tokenIdentifier: null });
});

test("npx convex run --watch: a subscription (over the WebSocket) as the given user", { timeout: 120000 }, async () => {
  const proc = spawn(process.execPath, [CLI, "run", "--watch", "--identity", JSON.stringify({ subject: "u2", issuer: "https://x" }), "authz:whoami"], {
    cwd: app,
    env: cliEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no result in 60 s: ${out}`)), 60000);
      proc.stdout.on("data", (d) => {
        out += d;
        if (out.includes('"tokenIdentifier": "https://x|u2"')) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.on("exit", (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
  } finally {
    proc.kill();
  }
});

/** `npx convex ARGS`: its stdout as text. */
async function convexText(...args) {
  const { stdout } = await promisify(execFile)(process.execPath, [CLI, ...args], { cwd: app, env: cliEnv(), timeout: 60000 });
  return stdout;
}

test("npx convex env set / list / get / remove, and a query reads what it set", { timeout: 120000 }, async () => {
  await convexText("env", "set", "NPX_GREETING", "hello from npx");
  await convexText("env", "set", "NPX_OTHER", "x=1 y");
  const list = await convexText("env", "list");
  assert.match(list, /^NPX_GREETING=hello from npx$/m);
  assert.match(list, /^NPX_OTHER=x=1 y$/m);
  assert.equal((await convexText("env", "get", "NPX_GREETING")).trim(), "hello from npx");
  // the same variables a function sees (tests/fixtures/ts/convex/env.ts)
  const r = await fetch(`${server.url}/api/admin/env`, { headers: { authorization: `Convex ${server.adminKey}` } });
  assert.equal((await r.json()).NPX_GREETING, "hello from npx");
  await convexText("env", "remove", "NPX_GREETING");
  // (the CLI reports a missing variable on stderr; whether it also exits
  // non-zero depends on its version)
  const gone = await promisify(execFile)(process.execPath, [CLI, "env", "get", "NPX_GREETING"], { cwd: app, env: cliEnv(), timeout: 60000 }).catch((e) => e);
  assert.equal(gone.stdout, "");
  assert.match(gone.stderr, /not found/);
  assert.doesNotMatch(await convexText("env", "list"), /NPX_GREETING/);
});

test("npx convex data: the tables, then a table's newest documents, as a table or JSON lines", { timeout: 120000 }, async () => {
  const author = `data-${Date.now()}`;
  await convex("run", "messages:send", JSON.stringify({ body: "older", author }));
  const newest = await convex("run", "messages:send", JSON.stringify({ body: "newest", author }));
  const tables = (await convexText("data")).trim().split("\n");
  assert.ok(tables.includes("messages"), tables.join(","));
  assert.ok(!tables.some((t) => t.startsWith("_")), "system tables are not listed");
  const lines = (await convexText("data", "messages", "--limit", "1", "--format", "jsonl")).trim().split("\n");
  assert.equal(lines.length, 1);
  const doc = JSON.parse(lines[0]);
  assert.equal(doc._id, newest);
  assert.equal(doc.body, "newest");
  const oldestFirst = (await convexText("data", "messages", "--order", "asc", "--format", "jsonl")).trim().split("\n").map((l) => JSON.parse(l));
  const ours = oldestFirst.filter((d) => d.author === author).map((d) => d.body);
  assert.deepEqual(ours, ["older", "newest"]);
  assert.match(await convexText("data", "messages", "--limit", "2"), /_creationTime/);
});
