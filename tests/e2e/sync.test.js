// Reactive queries over the WebSocket sync protocol, with the unmodified
// `convex` client (ConvexClient from convex/browser, `ws` as WebSocket).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ConvexClient } from "convex/browser";
import { makeFunctionReference } from "convex/server";
import WebSocket from "ws";
import { startServer, until } from "./helpers.js";

// The users example, in Rust by default; the TypeScript twin runs the same
// suite through sync.ts.test.js.
const USERS_APP = process.env.CVX_E2E_USERS_APP ?? "examples/users";

const f = (name) => makeFunctionReference(name);
const connect = (url) => new ConvexClient(url, { webSocketConstructor: WebSocket, unsavedChangesWarning: false });

let server;
before(async () => {
  server = await startServer({ app: USERS_APP });
}, { timeout: 600000 });
after(async () => {
  await server?.stop();
}, { timeout: 30000 });

test("onUpdate fires with the new result after another client's mutation", { timeout: 30000 }, async () => {
  const a = connect(server.url);
  const b = connect(server.url);
  try {
    const seen = [];
    a.onUpdate(f("users:list"), {}, (users) => seen.push(users.map((u) => u.email)));
    await until(() => seen.length >= 1, { what: "the first result" });
    const before = seen.at(-1).length;
    await b.mutation(f("users:create_user"), { name: "Live", email: "live@sync.test" });
    const latest = await until(() => seen.at(-1).includes("live@sync.test") && seen.at(-1), { what: "the update" });
    assert.equal(latest.length, before + 1);
  } finally {
    await a.close();
    await b.close();
  }
});

test("a live page keeps its end while rows in it come and go (the pagination journal)", { timeout: 60000 }, async () => {
  const c = connect(server.url);
  const writer = connect(server.url);
  try {
    // Oldest first: the first page is the two oldest users (earlier tests
    // in this file may have created some).
    const first = await writer.query(f("users:page"), { paginationOpts: { numItems: 2, cursor: null } });
    if (first.page.length < 3) {
      for (let i = 0; i < 3; i++) await writer.mutation(f("users:create_user"), { name: `P${i}`, email: `p${i}@page.test` });
    }
    const seen = [];
    c.onUpdate(f("users:page"), { paginationOpts: { numItems: 2, cursor: null } }, (r) => seen.push(r));
    await until(() => seen.length >= 1, { what: "the first page" });
    const [oldest, second] = seen[0].page;
    const end = seen[0].continueCursor;
    // The oldest user goes: the page keeps its end (without the journal
    // it would take in the third user, which the next page already shows).
    await writer.mutation(f("users:delete_user"), { id: oldest._id });
    const after = await until(() => seen.at(-1).page.length === 1 && seen.at(-1), { what: "the page without its first row" });
    assert.deepEqual(after.page.map((u) => u._id), [second._id]);
    assert.equal(after.continueCursor, end);
    const next = await writer.query(f("users:page"), { paginationOpts: { numItems: 2, cursor: end } });
    assert.ok(!next.page.some((u) => u._id === second._id));
  } finally {
    await c.close();
    await writer.close();
  }
});

test("a mutation's effect is visible to its own client right after it resolves", { timeout: 30000 }, async () => {
  const c = connect(server.url);
  try {
    let latest;
    c.onUpdate(f("users:count"), {}, (n) => (latest = n));
    await until(() => latest !== undefined);
    const start = latest;
    await c.mutation(f("users:create_user"), { name: "Own", email: "own@sync.test" });
    // The protocol promises a Transition at or past the mutation's ts
    // before the mutation resolves: the query result is already updated.
    assert.equal(latest, start + 1);
  } finally {
    await c.close();
  }
});

test("50 subscriptions on one client all resolve and update precisely", { timeout: 60000 }, async () => {
  const c = connect(server.url);
  const writer = connect(server.url);
  try {
    const ids = [];
    for (let i = 0; i < 50; i++) ids.push(await writer.mutation(f("users:create_user"), { name: `s${i}`, email: `s${i}@sync.test` }));
    const values = new Map();
    for (const id of ids) c.onUpdate(f("users:get_user"), { id }, (doc) => values.set(id, doc));
    await until(() => values.size === 50 && [...values.values()].every((d) => d), { what: "50 results" });
    await writer.mutation(f("users:update_email"), { id: ids[7], email: "changed@sync.test" });
    await until(() => values.get(ids[7]).email === "changed@sync.test", { what: "the changed document" });
    assert.equal(values.get(ids[8]).email, "s8@sync.test");
  } finally {
    await c.close();
    await writer.close();
  }
});

test("1000 subscriptions to different documents: one update re-runs one query", { timeout: 180000 }, async () => {
  const writer = connect(server.url);
  const clients = Array.from({ length: 10 }, () => connect(server.url));
  try {
    const ids = [];
    for (let i = 0; i < 1000; i += 100) {
      const batch = await Promise.all(
        Array.from({ length: 100 }, (_, k) => writer.mutation(f("users:create_user"), { name: `p${i + k}`, email: `p${i + k}@precision.test` })),
      );
      ids.push(...batch);
    }
    const got = new Map();
    ids.forEach((id, i) => clients[i % 10].onUpdate(f("users:get_user"), { id }, (doc) => got.set(id, doc)));
    await until(() => got.size === 1000, { timeout: 60000, what: "1000 results" });
    // Let the system go quiet, then count runs around one update.
    await new Promise((r) => setTimeout(r, 300));
    const before = (await server.stats()).sync.queryRuns;
    await writer.mutation(f("users:update_email"), { id: ids[500], email: "one@precision.test" });
    await until(() => got.get(ids[500]).email === "one@precision.test", { what: "the update" });
    await new Promise((r) => setTimeout(r, 300));
    const after = (await server.stats()).sync.queryRuns;
    assert.equal(after - before, 1, `expected exactly one re-run, got ${after - before}`);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await writer.close();
  }
});

test("subscriptions resume after a server restart; a queued mutation applies once", { timeout: 120000 }, async () => {
  const s = await startServer({ app: USERS_APP });
  const port = s.port;
  const dataDir = s.dataDir;
  let s2;
  const c = connect(s.url);
  try {
    let latest;
    c.onUpdate(f("users:count"), {}, (n) => (latest = n));
    await until(() => latest === 0, { what: "count 0" });
    await s.stop({ keepData: true });
    // Issued while the server is down: the client queues it and sends it on reconnect.
    const pending = c.mutation(f("users:create_user"), { name: "Queued", email: "queued@sync.test" });
    s2 = await startServer({ dataDir, port });
    await pending;
    await until(() => latest === 1, { timeout: 30000, what: "the resumed subscription" });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(latest, 1);
  } finally {
    await c.close();
    await (s2 ?? s).stop();
  }
});

test("a re-sent mutation with the same (session, requestId) applies once", { timeout: 120000 }, async () => {
  const s = await startServer({ app: USERS_APP });
  const sessionId = "e2e-session-" + Date.now();
  const send = (ws, msg) => ws.send(JSON.stringify(msg));
  async function mutateOnce(connectionCount) {
    const ws = new WebSocket(`${s.url.replace("http", "ws")}/api/1.45.0/sync`);
    await new Promise((r, j) => (ws.once("open", r), ws.once("error", j)));
    const response = new Promise((resolve) =>
      ws.on("message", (m) => {
        const msg = JSON.parse(String(m));
        if (msg.type === "MutationResponse") resolve(msg);
      }),
    );
    send(ws, { type: "Connect", sessionId, connectionCount, lastCloseReason: null, clientTs: Date.now() });
    send(ws, { type: "Mutation", requestId: 7, udfPath: "users:create_user", args: [{ name: "Once", email: "once@sync.test" }] });
    const msg = await response;
    ws.close();
    return msg;
  }
  try {
    const first = await mutateOnce(0);
    const again = await mutateOnce(1);
    assert.equal(first.success, true);
    assert.equal(again.success, true);
    assert.equal(again.result, first.result);
    assert.equal(again.ts, first.ts);
    const http = new (await import("convex/browser")).ConvexHttpClient(s.url);
    assert.equal(await http.query(f("users:count"), {}), 1);
  } finally {
    await s.stop();
  }
});
