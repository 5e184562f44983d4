// Environment variables: `cvx env` against a real server, read by Rust
// functions of every kind (the TypeScript side, process.env, is in
// typescript.test.js), live in subscriptions and the query cache, kept
// across restarts and deploys, and refused with a clear error when bad.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { ConvexClient } from "convex/browser";
import { makeFunctionReference } from "convex/server";
import WebSocket from "ws";
import { cvx, startServer, until } from "./helpers.js";

const APP = "tests/fixtures/guest";
let server;
before(async () => {
  server = await startServer({ app: APP });
}, { timeout: 600000 });
after(async () => {
  await server?.stop();
}, { timeout: 30000 });

/** Runs `cvx env ...` against the server; resolves {code, stdout, stderr}. */
async function env(...args) {
  try {
    const { stdout, stderr } = await promisify(execFile)(cvx, ["env", ...args, "--url", server.url, "--admin-key", server.adminKey]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
async function call(kind, fn, args) {
  const r = await fetch(`${server.url}/api/${kind}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ path: fn, args: [args] }),
  });
  return r.json();
}
const value = async (kind, fn, args) => {
  const r = await call(kind, fn, args);
  assert.equal(r.status, "success", JSON.stringify(r));
  return r.value;
};

test("cvx env set / get / list / remove, read by a query, a mutation and an action", { timeout: 60000 }, async () => {
  assert.equal(await value("query", "fixture:env_var", { name: "API_KEY" }), null);
  let r = await env("set", "API_KEY", "sk-123 with spaces");
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await env("get", "API_KEY")).stdout, "sk-123 with spaces\n");
  assert.equal(await value("query", "fixture:env_var", { name: "API_KEY" }), "sk-123 with spaces");
  assert.equal(await value("action", "fixture:env_action", { name: "API_KEY" }), "sk-123 with spaces");
  await env("set", "OTHER", "2");
  assert.deepEqual(await value("mutation", "fixture:env_mutation", { name: "OTHER" }), { names: ["API_KEY", "OTHER"], value: "2" });
  // names only unless asked: values are secrets
  assert.equal((await env("list")).stdout, "API_KEY\nOTHER\n");
  assert.equal((await env("list", "--values")).stdout, "API_KEY=sk-123 with spaces\nOTHER=2\n");
  r = await env("remove", "OTHER");
  assert.equal(r.code, 0, r.stderr);
  r = await env("get", "OTHER");
  assert.equal(r.code, 1);
  assert.match(r.stderr, /OTHER is not set/);
  assert.equal(await value("action", "fixture:env_action", { name: "OTHER" }), null);
  await env("remove", "API_KEY");
});

test("a change re-runs the subscriptions that read it and is never served from the query cache", { timeout: 60000 }, async () => {
  const client = new ConvexClient(server.url, { webSocketConstructor: WebSocket, unsavedChangesWarning: false });
  const seen = [];
  const unsub = client.onUpdate(makeFunctionReference("fixture:env_var"), { name: "FLAG" }, (v) => seen.push(v));
  try {
    await until(() => seen.length >= 1, { what: "the first result" });
    assert.equal(seen.at(-1), null);
    // the cached answer over HTTP, then a change: the next answer is the new value
    assert.equal(await value("query", "fixture:env_var", { name: "FLAG" }), null);
    await env("set", "FLAG", "on");
    await until(() => seen.at(-1) === "on", { what: "the subscription to see FLAG=on" });
    assert.equal(await value("query", "fixture:env_var", { name: "FLAG" }), "on");
    await env("set", "FLAG", "off");
    await until(() => seen.at(-1) === "off", { what: "the subscription to see FLAG=off" });
    assert.equal(await value("query", "fixture:env_var", { name: "FLAG" }), "off");
  } finally {
    unsub();
    await client.close();
  }
  await env("remove", "FLAG");
});

test("--from-file sets a .env file in one change; bad names and values change nothing", { timeout: 60000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "cvx-env-"));
  const file = path.join(dir, ".env");
  writeFileSync(file, "\ufeff# comment\r\n\r\nexport\tA_ONE=1 # one\nB_TWO = \"two words\" # two\nC_THREE='3'\nD_PEM=\"a\\nb\"\n");
  let r = await env("set", "--from-file", file);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /set 4 variables/);
  assert.equal((await env("list", "--values")).stdout, "A_ONE=1\nB_TWO=two words\nC_THREE=3\nD_PEM=a\nb\n");
  assert.equal((await env("get", "D_PEM")).stdout, "a\nb\n");
  await env("remove", "D_PEM");
  // a bare `cvx env` lists
  assert.equal((await env()).stdout, "A_ONE\nB_TWO\nC_THREE\n");

  writeFileSync(file, "D_FOUR=4\n9BAD=x\n");
  r = await env("set", "--from-file", file);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /\.env: line 2: invalid environment variable name "9BAD"/);
  r = await env("set", "bad-name", "x");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /invalid environment variable name "bad-name"/);
  // the server checks too, and refuses the whole change
  const post = (body) =>
    fetch(`${server.url}/api/admin/env`, {
      method: "POST",
      headers: { Authorization: `Convex ${server.adminKey}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  let res = await post({ changes: [{ name: "D_FOUR", value: "4" }, { name: "E", value: "x".repeat(8193) }] });
  assert.equal(res.status, 400);
  assert.match((await res.json()).message, /the value of E is 8193 bytes; the limit is 8192/);
  res = await post({ changes: Array.from({ length: 98 }, (_, i) => ({ name: `V${i}`, value: "v" })) });
  assert.equal(res.status, 400);
  assert.match((await res.json()).message, /at most 100 environment variables/);
  res = await post({ changes: [{ name: "A_ONE" }] });
  assert.equal(res.status, 400);
  assert.equal((await env("list")).stdout, "A_ONE\nB_TWO\nC_THREE\n");
  // without the admin key: refused, nothing read
  res = await fetch(`${server.url}/api/admin/env`);
  assert.equal(res.status, 401);
  for (const n of ["A_ONE", "B_TWO", "C_THREE"]) await env("remove", n);
});

test("variables are kept across a restart and a deploy", { timeout: 600000 }, async () => {
  await env("set", "KEEP", "kept");
  await server.stop({ keepData: true });
  server = await startServer({ dataDir: server.dataDir });
  assert.equal(await value("query", "fixture:env_var", { name: "KEEP" }), "kept");
  await server.deployAsync(APP);
  assert.equal(await value("query", "fixture:env_var", { name: "KEEP" }), "kept");
  assert.equal((await env("get", "KEEP")).stdout, "kept\n");
  // the log holds neither the value nor the request's body
  assert.doesNotMatch(server.stderr, /kept/);
  await env("remove", "KEEP");
});
