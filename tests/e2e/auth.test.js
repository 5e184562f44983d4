// User authentication as Convex does it: JSON Web Tokens from the app's
// providers (convex/auth.config.ts of tests/fixtures/ts, filled from the
// deployment's environment variables), checked by the server and seen by
// functions as ctx.auth.getUserIdentity(). The issuer is oidc.js, a real
// OpenID Connect issuer on loopback; the client is the unmodified `convex`
// package (setAuth, clearAuth, setAdminAuth, ConvexHttpClient), plus raw
// frames of the sync protocol where the exact messages matter.
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { ConvexClient, ConvexHttpClient } from "convex/browser";
import { makeFunctionReference } from "convex/server";
import WebSocket from "ws";
import { cvx, repo, startServer, until } from "./helpers.js";
import { b64url, customJwtKeys, decode, makeKey, startIssuer } from "./oidc.js";

const FIXTURE = "tests/fixtures/ts";
const f = (name) => makeFunctionReference(name);
const uniq = (prefix) => `${prefix}-${randomBytes(4).toString("hex")}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let issuer, custom, server, app;
/** What a test opened (clients, sockets), closed when it ends. */
const cleanup = [];

/** A copy of the fixture app: test files run in parallel, and a deploy
 * writes its build into the app's directory. */
function fixtureCopy() {
  const src = path.join(repo, FIXTURE);
  if (!existsSync(path.join(src, "node_modules/convex/package.json")))
    throw new Error(`${FIXTURE} has no node_modules: run npm ci there (./test does)`);
  const dir = mkdtempSync(path.join(tmpdir(), "cvx-auth-"));
  cpSync(path.join(src, "convex"), path.join(dir, "convex"), { recursive: true });
  for (const file of ["package.json", "package-lock.json"]) cpSync(path.join(src, file), path.join(dir, file));
  symlinkSync(path.join(src, "node_modules"), path.join(dir, "node_modules"));
  return dir;
}

/** `cvx env ARGS` against a server; rejects when it fails. */
const env = (s, ...args) => promisify(execFile)(cvx, ["env", ...args, "--url", s.url, "--admin-key", s.adminKey]);

before(async () => {
  issuer = await startIssuer();
  // A customJwt provider whose JWKS is a data: URI; its issuer is on
  // loopback too, so that nothing would leave the machine if the server
  // wrongly fetched it (counts.other tells).
  custom = customJwtKeys({ issuer: `${issuer.url}/custom` });
  app = fixtureCopy();
  server = await startServer({ args: ["--log-calls"] });
  // auth.config.ts reads these at deploy.
  await env(server, "set", "AUTH_ISSUER", issuer.url);
  await env(server, "set", "AUTH_CUSTOM_ISSUER", custom.issuer);
  await env(server, "set", "AUTH_CUSTOM_JWKS", custom.jwksDataUri);
  await server.deployAsync(app);
}, { timeout: 600000 });

afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
}, { timeout: 30000 });

after(async () => {
  await server?.stop();
  await issuer?.close();
  if (app) rmSync(app, { recursive: true, force: true });
}, { timeout: 30000 });

// ---- helpers ---------------------------------------------------------------

/** POST /api/<route> with an optional Authorization header; resolves
 * {status, body} whatever the status. */
async function call(route, fn, args = {}, authorization) {
  const headers = { "content-type": "application/json" };
  if (authorization) headers.authorization = authorization;
  const r = await fetch(`${server.url}/api/${route}`, {
    method: "POST",
    headers,
    body: JSON.stringify(route.startsWith("run/") ? { args } : { path: fn, args: [args], format: "convex_encoded_json" }),
  });
  const text = await r.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: r.status, body };
}
const bearer = (token) => `Bearer ${token}`;

/** The function's value; fails unless it succeeded. */
async function value(route, fn, args, authorization) {
  const r = await call(route, fn, args, authorization);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.status, "success", JSON.stringify(r.body));
  return r.body.value;
}
const whoamiOver = (token) => value("query", "authz:whoami", {}, token === undefined ? undefined : bearer(token));

/** The token is refused over HTTP: 401 {"code":"Unauthenticated"} whose
 * message matches `word` (when given) and does not quote the token. */
async function refused(token, word, { route = "query", fn = "authz:whoami" } = {}) {
  const r = await call(route, fn, {}, bearer(token));
  assert.equal(r.status, 401, `expected 401, got ${r.status}: ${JSON.stringify(r.body).slice(0, 300)}`);
  assert.equal(r.body.code, "Unauthenticated", JSON.stringify(r.body).slice(0, 300));
  assert.equal(typeof r.body.message, "string");
  if (word) assert.match(r.body.message, word);
  const mark = token.split(".")[2] || token;
  if (mark.length >= 20) assert.ok(!r.body.message.includes(mark), "the message quotes the token");
  return r.body.message;
}

// The claims of a token, as Convex names them in a UserIdentity.
const CONVEX_NAMES = {
  name: "name",
  given_name: "givenName",
  family_name: "familyName",
  nickname: "nickname",
  preferred_username: "preferredUsername",
  profile: "profileUrl",
  picture: "pictureUrl",
  email: "email",
  email_verified: "emailVerified",
  gender: "gender",
  birthdate: "birthday",
  zoneinfo: "timezone",
  locale: "language",
  phone_number: "phoneNumber",
  phone_number_verified: "phoneNumberVerified",
  address: "address",
};
const REGISTERED = new Set(["iss", "sub", "aud", "exp", "nbf", "iat", "jti"]);

/** `actual` is the UserIdentity of a token from `iss` with `claims`:
 * tokenIdentifier, subject, issuer, the standard claims renamed, the
 * custom claims as they are, no registered claim. updated_at becomes a
 * string (the number as text, or a date of that instant, as Convex does). */
function assertIdentity(actual, iss, claims) {
  assert.ok(actual && typeof actual === "object", `an identity, got ${JSON.stringify(actual)}`);
  const expected = { tokenIdentifier: `${iss}|${claims.sub}`, subject: claims.sub, issuer: iss };
  for (const [k, v] of Object.entries(claims)) if (!REGISTERED.has(k) && k !== "updated_at") expected[CONVEX_NAMES[k] ?? k] = v;
  const { updatedAt, ...rest } = actual;
  assert.deepEqual(rest, expected);
  if ("updated_at" in claims) {
    assert.equal(typeof updatedAt, "string", `updatedAt ${JSON.stringify(updatedAt)}`);
    assert.ok(updatedAt === String(claims.updated_at) || Date.parse(updatedAt) === claims.updated_at * 1000, `updatedAt ${updatedAt}`);
  } else assert.equal(updatedAt, undefined);
}

/** Every standard claim, and custom ones of each JSON type. */
const fullClaims = (sub) => ({
  sub,
  name: "Ada Lovelace",
  given_name: "Ada",
  family_name: "Lovelace",
  nickname: "ada",
  preferred_username: "ada.lovelace",
  profile: "https://example.com/ada",
  picture: "https://example.com/ada.png",
  email: "ada@example.com",
  email_verified: true,
  gender: "female",
  birthdate: "1815-12-10",
  zoneinfo: "Europe/London",
  locale: "en-GB",
  phone_number: "+44 20 7946 0000",
  phone_number_verified: false,
  address: "12 St James's Square, London",
  updated_at: 1700000000,
  org: "analytical-engines",
  roles: ["admin", "author"],
  level: 3,
  app_metadata: { plan: "pro", seats: 2 },
});

/** A WebSocket class for the convex client that records every frame in
 * both directions and every connection it opens. */
function spying() {
  const spy = { opened: 0, received: [], sent: [] };
  class SpyWebSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      spy.opened++;
      this.on("message", (m) => {
        try {
          spy.received.push({ at: Date.now(), msg: JSON.parse(String(m)) });
        } catch {}
      });
    }
    send(data, ...rest) {
      try {
        spy.sent.push({ at: Date.now(), msg: JSON.parse(String(data)) });
      } catch {}
      return super.send(data, ...rest);
    }
  }
  return { spy, SpyWebSocket };
}

/** A ConvexClient with a spy; closed at the end of the file at the latest. */
function client(options = {}) {
  const { spy, SpyWebSocket } = spying();
  const c = new ConvexClient(server.url, { webSocketConstructor: SpyWebSocket, unsavedChangesWarning: false, ...options });
  cleanup.push(() => c.close());
  return { c, spy };
}

/** A client signed in through setAuth with tokens from `makeToken(args,
 * n)` (n counts from 1), once the server confirmed it (onChange(true)). */
async function signedIn(makeToken, options = {}) {
  const { c, spy } = client(options);
  const calls = [];
  const changes = [];
  c.setAuth(
    async (args) => {
      calls.push({ ...args, at: Date.now() });
      return makeToken(args, calls.length);
    },
    (ok) => changes.push(ok),
  );
  await until(() => changes.length > 0, { what: "setAuth's onChange" });
  // convex 1.45 may report true twice (again when it confirms the token it
  // refetches right after the first), never false.
  assert.ok(changes.every((ok) => ok === true), `onChange reported ${JSON.stringify(changes)}`);
  return { c, spy, calls, changes };
}

/** Subscribes; `seen` collects every value. */
function watch(c, name, args = {}) {
  const seen = [];
  const unsubscribe = c.onUpdate(f(name), args, (v) => seen.push(v));
  return { seen, unsubscribe, latest: () => seen.at(-1) };
}

/** A raw socket on the sync protocol, after Connect. */
async function rawSocket() {
  const ws = new WebSocket(`${server.url.replace("http", "ws")}/api/1.45.0/sync`);
  await new Promise((r, j) => (ws.once("open", r), ws.once("error", j)));
  const frames = [];
  let closed = null;
  ws.on("message", (m) => frames.push(JSON.parse(String(m))));
  ws.on("close", (code, reason) => (closed = { code, reason: String(reason) }));
  ws.on("error", () => {});
  const send = (msg) => ws.send(JSON.stringify(msg));
  send({ type: "Connect", sessionId: randomUUID(), connectionCount: 0, lastCloseReason: null, clientTs: Date.now() });
  cleanup.push(() => ws.terminate());
  return {
    ws,
    frames,
    send,
    get closed() {
      return closed;
    },
    /** The first frame from index `from` on that satisfies `pred`. */
    next: (pred, what, from = 0, timeout = 10000) => until(() => frames.slice(from).find(pred), { what, timeout }),
  };
}
const transitionWith = (identityVersion) => (m) => m.type === "Transition" && m.endVersion.identity === identityVersion;
const queryValue = (t, queryId) => t.modifications.find((m) => m.queryId === queryId && m.type === "QueryUpdated")?.value;

// ---- the sync protocol -----------------------------------------------------

test("Authenticate User over the sync protocol: the identity version moves and whoami re-runs under it", { timeout: 30000 }, async () => {
  const ada = { sub: uniq("ada"), name: "Ada" };
  const bob = { sub: uniq("bob"), email: "bob@example.com" };
  const s = await rawSocket();
  s.send({ type: "ModifyQuerySet", baseVersion: 0, newVersion: 1, modifications: [{ type: "Add", queryId: 0, udfPath: "authz:whoami", args: [{}] }] });
  const first = await s.next(transitionWith(0), "the anonymous result");
  assert.equal(queryValue(first, 0), null);
  let from = s.frames.length;
  s.send({ type: "Authenticate", tokenType: "User", value: issuer.token(ada), baseVersion: 0 });
  const signed = await s.next((m) => m.type === "Transition" || m.type === "AuthError", "the answer to Authenticate", from);
  assert.equal(signed.type, "Transition", JSON.stringify(signed));
  assert.equal(signed.endVersion.identity, 1);
  assertIdentity(queryValue(signed, 0), issuer.url, ada);
  // another user on the same socket
  from = s.frames.length;
  s.send({ type: "Authenticate", tokenType: "User", value: issuer.token(bob), baseVersion: 1 });
  const switched = await s.next(transitionWith(2), "the second user's result", from);
  assertIdentity(queryValue(switched, 0), issuer.url, bob);
  // signing out
  from = s.frames.length;
  s.send({ type: "Authenticate", tokenType: "None", baseVersion: 2 });
  const out = await s.next(transitionWith(3), "the anonymous result again", from);
  assert.equal(queryValue(out, 0), null);
  assert.equal(s.frames.filter((m) => m.type === "AuthError").length, 0);
});

test("an accepted token that expires on an open socket: AuthError (authUpdateAttempted false), then the socket closes", { timeout: 60000 }, async () => {
  const s = await rawSocket();
  s.send({ type: "ModifyQuerySet", baseVersion: 0, newVersion: 1, modifications: [{ type: "Add", queryId: 0, udfPath: "authz:whoami", args: [{}] }] });
  await s.next(transitionWith(0), "the anonymous result");
  const sub = uniq("brief");
  s.send({ type: "Authenticate", tokenType: "User", value: issuer.token({ sub }, { expiresIn: 3 }), baseVersion: 0 });
  const t = await s.next(transitionWith(1), "the signed-in result");
  assert.equal(queryValue(t, 0).subject, sub);
  // At exp, or at exp plus the 30 s of clock skew the server allows.
  const err = await s.next((m) => m.type === "AuthError", "the expiry AuthError", 0, 45000);
  assert.equal(err.authUpdateAttempted, false);
  assert.match(err.error, /expired/i);
  await until(() => s.closed, { what: "the socket to close", timeout: 10000 });
  // No anonymous result was sent in between: the session ends, it is not downgraded.
  assert.ok(!s.frames.some((m) => m.type === "Transition" && m.endVersion.identity === 1 && queryValue(m, 0) === null));
});

// ---- the official client ---------------------------------------------------

test("OIDC sign-in with ConvexClient.setAuth: whoami shows the identity, claims mapped; onChange(true)", { timeout: 30000 }, async () => {
  const claims = fullClaims(uniq("ada"));
  const { c } = client();
  const who = watch(c, "authz:whoami");
  const calls = [];
  const changes = [];
  c.setAuth(
    async (args) => {
      calls.push(args);
      return issuer.token(claims);
    },
    (ok) => changes.push(ok),
  );
  await until(() => who.latest()?.subject === claims.sub, { what: "whoami to show the user" });
  assertIdentity(who.latest(), issuer.url, claims);
  await until(() => changes.length > 0, { what: "onChange" });
  assert.ok(changes.every((ok) => ok === true), `onChange reported ${JSON.stringify(changes)}`);
  assert.equal(calls[0].forceRefreshToken, false);
  // The other kinds of function over the same socket see the user too.
  assertIdentity(await c.mutation(f("authz:whoamiMutation"), {}), issuer.url, claims);
  assertIdentity(await c.action(f("authz:whoamiAction"), {}), issuer.url, claims);
  assert.ok(who.seen.every((v) => v === null || v.subject === claims.sub), "no other identity was ever shown");
});

test("two users on the same query and arguments each see their own data; an anonymous client sees none", { timeout: 60000 }, async () => {
  const ada = { sub: uniq("ada") };
  const bob = { sub: uniq("bob") };
  const A = await signedIn(() => issuer.token(ada));
  const B = await signedIn(() => issuer.token(bob));
  const { c: C } = client();
  const adaId = `${issuer.url}|${ada.sub}`;
  const bobId = `${issuer.url}|${bob.sub}`;
  const views = {};
  for (const [name, c] of [["A", A.c], ["B", B.c], ["C", C]]) {
    views[name] = { who: watch(c, "authz:whoamiWith", { tag: "shared" }), notes: watch(c, "authz:myNotes") };
  }
  await until(() => Object.values(views).every((v) => v.who.seen.length && v.notes.seen.length), { what: "every first result" });
  assert.deepEqual(views.A.who.latest(), { tag: "shared", subject: ada.sub, tokenIdentifier: adaId });
  assert.deepEqual(views.B.who.latest(), { tag: "shared", subject: bob.sub, tokenIdentifier: bobId });
  assert.deepEqual(views.C.who.latest(), { tag: "shared", subject: null, tokenIdentifier: null });

  assert.equal(await A.c.mutation(f("authz:addNote"), { text: "ada's first" }), adaId);
  assert.equal(await B.c.mutation(f("authz:addNote"), { text: "bob's first" }), bobId);
  await A.c.mutation(f("authz:addNote"), { text: "ada's second" });
  await assert.rejects(C.mutation(f("authz:addNote"), { text: "nobody's" }), /not signed in/);
  await until(() => views.A.notes.latest().length === 2 && views.B.notes.latest().length === 1, { what: "each user's notes" });
  await sleep(300); // anything late would arrive now
  assert.deepEqual(views.A.notes.latest(), [{ owner: adaId, text: "ada's first" }, { owner: adaId, text: "ada's second" }]);
  assert.deepEqual(views.B.notes.latest(), [{ owner: bobId, text: "bob's first" }]);
  assert.deepEqual(views.C.notes.latest(), []);
  // No result of one identity ever reached another's client.
  const owners = (name) => new Set(views[name].notes.seen.flat().map((n) => n.owner));
  assert.deepEqual([...owners("A")], [adaId]);
  assert.deepEqual([...owners("B")], [bobId]);
  assert.deepEqual([...owners("C")], []);
  assert.ok(views.A.who.seen.every((v) => v.subject === ada.sub), JSON.stringify(views.A.who.seen));
  assert.ok(views.B.who.seen.every((v) => v.subject === bob.sub), JSON.stringify(views.B.who.seen));
  assert.ok(views.C.who.seen.every((v) => v.subject === null), JSON.stringify(views.C.who.seen));
});

test("the query cache never answers one identity with another's result (HTTP)", { timeout: 30000 }, async () => {
  const ada = { sub: uniq("ada") }, bob = { sub: uniq("bob") };
  const adaTok = issuer.token(ada), bobTok = issuer.token(bob);
  await value("mutation", "authz:addNote", { text: "cached ada" }, bearer(adaTok));
  // each asked twice, interleaved: the second answers may come from the cache
  for (let round = 0; round < 2; round++) {
    assert.deepEqual(await value("query", "authz:myNotes", {}, bearer(adaTok)), [{ owner: `${issuer.url}|${ada.sub}`, text: "cached ada" }]);
    assert.deepEqual(await value("query", "authz:myNotes", {}, bearer(bobTok)), []);
    assert.deepEqual(await value("query", "authz:myNotes", {}), []);
    assert.equal((await whoamiOver(adaTok)).subject, ada.sub);
    assert.equal((await whoamiOver(bobTok)).subject, bob.sub);
    assert.equal(await whoamiOver(), null);
    // another token of the same user: the same identity
    assert.equal((await whoamiOver(issuer.token(ada))).subject, ada.sub);
  }
});

test("sign-out with clearAuth: whoami turns null live, on the same connection", { timeout: 30000 }, async () => {
  const ada = { sub: uniq("ada"), name: "Ada" };
  const { c, spy } = await signedIn(() => issuer.token(ada));
  const who = watch(c, "authz:whoami");
  const notes = watch(c, "authz:myNotes");
  await c.mutation(f("authz:addNote"), { text: "before sign-out" });
  await until(() => who.latest()?.subject === ada.sub && notes.latest()?.length === 1, { what: "the signed-in results" });
  const connections = c.connectionState().connectionCount;
  // ConvexClient of convex 1.45 has no clearAuth of its own; its
  // BaseConvexClient's is what ConvexReactClient.clearAuth calls.
  if (typeof c.clearAuth === "function") c.clearAuth();
  else c.client.clearAuth();
  await until(() => who.latest() === null, { what: "whoami to turn null" });
  await until(() => notes.latest()?.length === 0, { what: "myNotes to empty" });
  assert.equal(c.connectionState().connectionCount, connections, "no reconnection");
  assert.equal(spy.opened, 1, "one WebSocket");
  await assert.rejects(c.mutation(f("authz:addNote"), { text: "after" }), /not signed in/);
});

test("tokens that live 15 s: the client refreshes them before they expire; one connection, no AuthError", { timeout: 60000 }, async () => {
  const sub = uniq("fresh");
  const tokens = [];
  const { c, spy, calls } = await signedIn(() => (tokens.push(issuer.token({ sub }, { expiresIn: 15 })), tokens.at(-1)));
  const firstExp = decode(tokens[0]).payload.exp;
  const who = watch(c, "authz:whoami");
  await until(() => who.latest()?.subject === sub, { what: "whoami" });
  // The client refetches at exp - iat - 10 s: every ~5 s.
  await until(() => calls.filter((x) => x.forceRefreshToken).length >= 3, { what: "two scheduled refreshes", timeout: 20000 });
  // Past the first tokens' expiry.
  while (Date.now() < firstExp * 1000 + 2000) await sleep(100);
  const id = await c.mutation(f("authz:addNote"), { text: "after the first token expired" });
  assert.equal(id, `${issuer.url}|${sub}`);
  assert.deepEqual(spy.received.filter((x) => x.msg.type === "AuthError").map((x) => x.msg), []);
  assert.equal(spy.opened, 1, "one WebSocket throughout");
  // the server confirmed every new token: the identity version follows the Authenticates
  const auths = spy.sent.filter((x) => x.msg.type === "Authenticate");
  assert.ok(auths.length >= 3, `${auths.length} Authenticate messages`);
  const last = auths.at(-1).msg.baseVersion + 1;
  await until(() => spy.received.some((x) => x.msg.type === "Transition" && x.msg.endVersion.identity === last), { what: "the last token confirmed" });
  assert.ok(who.seen.every((v) => v?.subject === sub), `whoami stayed signed in: ${JSON.stringify(who.seen.map((v) => v?.subject ?? null))}`);
});

test("a token that expires mid-session: the server's AuthError, a forced refetch, a reconnect; the session carries on", { timeout: 90000 }, async () => {
  const sub = uniq("expiring");
  // The first two tokens (the first and the client's immediate refetch)
  // live 4 s, and a negative leeway keeps the client from refreshing them
  // in time, so the server's expiry runs. Later tokens live an hour.
  const { c, spy, calls } = await signedIn((_args, n) => issuer.token({ sub }, { expiresIn: n <= 2 ? 4 : 3600 }), {
    authRefreshTokenLeewaySeconds: -120,
  });
  const who = watch(c, "authz:whoami");
  const notes = watch(c, "authz:myNotes");
  await until(() => who.latest()?.subject === sub && notes.seen.length > 0, { what: "the signed-in results" });
  const err = await until(() => spy.received.find((x) => x.msg.type === "AuthError"), { what: "the server's AuthError", timeout: 50000 });
  assert.equal(err.msg.authUpdateAttempted, false, JSON.stringify(err.msg));
  await until(() => calls.some((x) => x.forceRefreshToken === true && x.at >= err.at), { what: "fetchToken({forceRefreshToken: true})" });
  await until(() => spy.opened >= 2, { what: "the reconnection" });
  const text = `after the refresh ${sub}`;
  assert.equal(await c.mutation(f("authz:addNote"), { text }), `${issuer.url}|${sub}`);
  await until(() => notes.latest()?.some((n) => n.text === text), { what: "the subscription to deliver after the reconnect" });
  assert.equal(who.latest()?.subject, sub);
  assert.ok(who.seen.every((v) => v?.subject === sub), `whoami never went anonymous: ${JSON.stringify(who.seen.map((v) => v?.subject ?? null))}`);
  assert.equal(spy.received.filter((x) => x.msg.type === "AuthError").length, 1, "one expiry, then a token that lasts");
});

test("the official client given a refused token: onChange(false), and it stays anonymous", { timeout: 60000 }, async () => {
  const { c } = client();
  const who = watch(c, "authz:whoami");
  const changes = [];
  let fetched = 0;
  c.setAuth(
    async () => {
      fetched++;
      return issuer.token({ sub: uniq("late") }, { expiresIn: -300, issuedAt: -900 });
    },
    (ok) => changes.push(ok),
  );
  await until(() => changes.length > 0, { what: "onChange", timeout: 30000 });
  assert.deepEqual(changes, [false]);
  assert.ok(fetched >= 2, `the client retried with a fresh token (${fetched} fetches)`);
  await until(() => who.seen.length > 0, { what: "whoami" });
  assert.ok(who.seen.every((v) => v === null), JSON.stringify(who.seen));
});

// ---- refusals ----------------------------------------------------------------

const malformed = () => [
  "not-a-jwt",
  "a.b",
  "a.b.c.d",
  "###.###.###",
  `${b64url('{"alg":"RS256","kid":"k"}')}.${b64url("not json")}.${b64url("sig")}`,
  `${b64url("[1,2]")}.${b64url('{"sub":"x"}')}.${b64url("sig")}`,
];
// [what, tokens (one or a list), the word the message must have (null: any)]
const refusals = [
  ["alg none", () => issuer.forge.none({ sub: "mallory" }), /unsupported algorithm/i],
  ["HS256 with the RSA public key as the secret", () => issuer.forge.hs256WithPublicKey({ sub: "mallory" }), /unsupported algorithm/i],
  ["an algorithm other than RS256 and ES256 (RS512)", () => issuer.token({ sub: "mallory" }, { header: { alg: "RS512" } }), /unsupported algorithm/i],
  ["a wrong issuer", () => issuer.token({ sub: "mallory", iss: "http://127.0.0.1:9/elsewhere" }), /issuer/i],
  ["a wrong audience", () => issuer.token({ sub: "mallory" }, { audience: "someone-else" }), /audience/i],
  ["audiences without the application's", () => issuer.token({ sub: "mallory" }, { audience: ["a", "b"] }), /audience/i],
  ["no audience", () => issuer.token({ sub: "mallory", aud: undefined }), /audience/i],
  ["expired (past the 30 s of skew)", () => issuer.token({ sub: "mallory" }, { expiresIn: -120, issuedAt: -600 }), /expired/i],
  ["not valid yet (nbf past the 30 s of skew)", () => issuer.token({ sub: "mallory" }, { notBefore: 120 }), /not valid yet/i],
  ["issued in the future (iat)", () => issuer.token({ sub: "mallory" }, { issuedAt: 120 }), null],
  ["without exp", () => issuer.token({ sub: "mallory" }, { expiresIn: null }), null],
  ["a tampered RS256 signature", () => issuer.forge.tamperedSignature({ sub: "mallory" }), /signature/i],
  ["a tampered ES256 signature", () => issuer.forge.tamperedSignature({ sub: "mallory" }, { alg: "ES256" }), /signature/i],
  ["claims changed under a good signature", () => issuer.forge.tamperedPayload({ sub: "mallory" }), /signature/i],
  ["another key under a published kid", () => issuer.forge.wrongKeySameKid({ sub: "mallory" }), /signature/i],
  ["ES256 under the kid of the RSA key", () => issuer.token({ sub: "mallory" }, { alg: "ES256", kid: issuer.keys.RS256.kid }), null],
  ["an unknown kid", () => issuer.forge.unknownKid({ sub: "mallory" }), /unknown key/i],
  ["malformed", malformed, /malformed/i],
  ["over 16 KiB", () => issuer.token({ sub: "mallory", pad: "x".repeat(17 * 1024) }), /too large/i],
];

for (const [what, make, word] of refusals) {
  test(`refused over HTTP: ${what}`, { timeout: 30000 }, async () => {
    for (const token of [make()].flat()) {
      if (what === "over 16 KiB") assert.ok(token.length > 16384);
      await refused(token, word);
    }
  });
}

for (const [what, make, word] of refusals) {
  test(`refused over the WebSocket: ${what}`, { timeout: 30000 }, async () => {
    for (const token of [make()].flat()) {
      const s = await rawSocket();
      s.send({ type: "ModifyQuerySet", baseVersion: 0, newVersion: 1, modifications: [{ type: "Add", queryId: 0, udfPath: "authz:whoami", args: [{}] }] });
      await s.next(transitionWith(0), "the anonymous result");
      s.send({ type: "Authenticate", tokenType: "User", value: token, baseVersion: 0 });
      const err = await s.next((m) => m.type === "AuthError" || transitionWith(1)(m), "the AuthError");
      assert.equal(err.type, "AuthError", `accepted: ${JSON.stringify(err).slice(0, 300)}`);
      assert.equal(err.authUpdateAttempted, true);
      assert.equal(err.baseVersion, 0);
      if (word) assert.match(err.error, word);
      const mark = token.split(".")[2] || token;
      if (mark.length >= 20) assert.ok(!err.error.includes(mark), "the message quotes the token");
      await sleep(100);
      assert.ok(!s.frames.some((m) => m.type === "Transition" && queryValue(m, 0)), "no identity was attached");
      s.ws.close();
    }
  });
}

test("tolerated: 30 s of clock skew on exp and nbf, an issuer with a trailing slash, several audiences, ES256 from the OIDC issuer", { timeout: 30000 }, async () => {
  const sub = uniq("lenient");
  assert.equal((await whoamiOver(issuer.token({ sub }, { expiresIn: -10, issuedAt: -100 }))).subject, sub);
  assert.equal((await whoamiOver(issuer.token({ sub }, { notBefore: 10 }))).subject, sub);
  assert.equal((await whoamiOver(issuer.token({ sub }, { issuedAt: 10 }))).subject, sub);
  assert.equal((await whoamiOver(issuer.token({ sub, iss: `${issuer.url}/` }))).subject, sub);
  assert.equal((await whoamiOver(issuer.token({ sub }, { audience: ["other", "cvx-test"] }))).subject, sub);
  const claims = { sub, email: "es@example.com" };
  assertIdentity(await whoamiOver(issuer.token(claims, { alg: "ES256" })), issuer.url, claims);
});

test("an unknown kid refetches the JWKS, at most once a second", { timeout: 30000 }, async () => {
  await issuer.settle();
  const before = issuer.counts.jwks;
  const t0 = Date.now();
  for (let i = 0; i < 5; i++) await refused(issuer.forge.unknownKid({ sub: "x" }), /unknown key/i);
  const elapsed = Date.now() - t0;
  await until(() => issuer.counts.jwks > before, { what: "a JWKS refetch", timeout: 3000 });
  await sleep(200);
  const fetched = issuer.counts.jwks - before;
  assert.ok(fetched <= Math.ceil(elapsed / 1000) + (elapsed < 1000 ? 0 : 1), `${fetched} JWKS fetches for 5 tokens in ${elapsed} ms`);
  // A known key needs no fetch at all: keys and discovery are cached.
  const known = { ...issuer.counts };
  for (let i = 0; i < 3; i++) await whoamiOver(issuer.token({ sub: "known" }));
  assert.deepEqual([issuer.counts.discovery, issuer.counts.jwks], [known.discovery, known.jwks]);
});

test("key rotation: the new kid is fetched and accepted; the old key's tokens are then unknown", { timeout: 30000 }, async () => {
  const sub = uniq("rotating");
  assert.equal((await whoamiOver(issuer.token({ sub }))).subject, sub);
  const { oldKid, newKid, oldKey } = issuer.rotate();
  await issuer.settle();
  const before = issuer.counts.jwks;
  const fresh = issuer.token({ sub });
  assert.equal(decode(fresh).header.kid, newKid);
  const identity = await until(async () => {
    const r = await call("query", "authz:whoami", {}, bearer(fresh));
    return r.status === 200 && r.body.status === "success" && r.body.value;
  }, { what: "the new key's token to be accepted", timeout: 5000 });
  assert.equal(identity.subject, sub);
  assert.ok(issuer.counts.jwks > before, "the server refetched the JWKS");
  const stale = issuer.token({ sub }, { key: oldKey });
  assert.equal(decode(stale).header.kid, oldKid);
  await refused(stale, /unknown key/i);
});

test("a customJwt provider: ES256 keys from a data: URI JWKS", { timeout: 30000 }, async () => {
  const claims = { sub: uniq("custom"), email: "c@custom.test", tenant: "t1" };
  assertIdentity(await whoamiOver(custom.token(claims)), custom.issuer, claims);
  // live, with the official client
  const { c } = await signedIn(() => custom.token(claims));
  const who = watch(c, "authz:whoami");
  await until(() => who.latest()?.subject === claims.sub, { what: "whoami" });
  assertIdentity(who.latest(), custom.issuer, claims);
  await refused(custom.token(claims, { audience: "cvx-test" }), /audience/i);
  await refused(custom.token(claims, { key: makeKey("ES256", custom.key.kid) }), /signature/i);
  // the OIDC issuer's key does not sign for the custom issuer
  await refused(
    issuer.token({ ...claims, iss: custom.issuer, aud: custom.audience }, { alg: "RS256" }),
    null,
  );
  assert.equal(issuer.counts.other, 0, "nothing fetched a discovery document for the custom issuer");
});

// ---- HTTP --------------------------------------------------------------------

test("HTTP: Bearer on /api/query, /api/mutation, /api/action, /api/run and an HTTP action; anonymous without it", { timeout: 30000 }, async () => {
  const claims = { sub: uniq("http"), name: "Http User" };
  const token = issuer.token(claims);
  const auth = bearer(token);
  assertIdentity(await value("query", "authz:whoami", {}, auth), issuer.url, claims);
  assertIdentity(await value("mutation", "authz:whoamiMutation", {}, auth), issuer.url, claims);
  assertIdentity(await value("action", "authz:whoamiAction", {}, auth), issuer.url, claims);
  assertIdentity(await value("run/authz/whoami", null, {}, auth), issuer.url, claims);
  assert.equal(await value("mutation", "authz:addNote", { text: "over http" }, auth), `${issuer.url}|${claims.sub}`);
  assert.deepEqual(await value("query", "authz:myNotes", {}, auth), [{ owner: `${issuer.url}|${claims.sub}`, text: "over http" }]);
  const r = await fetch(`${server.url}/http/whoami`, { headers: { authorization: auth } });
  assert.equal(r.status, 200);
  assertIdentity((await r.json()).identity, issuer.url, claims);
  // anonymous
  assert.equal(await value("query", "authz:whoami", {}), null);
  assert.equal(await value("action", "authz:whoamiAction", {}), null);
  const anon = await call("mutation", "authz:addNote", { text: "x" });
  assert.equal(anon.body.status, "error");
  assert.match(anon.body.errorMessage, /not signed in/);
  assert.deepEqual(await (await fetch(`${server.url}/http/whoami`)).json(), { identity: null });
  // a refused token on every route, the HTTP action's included
  const bad = issuer.forge.tamperedSignature({ sub: "x" });
  await refused(bad, /signature/i, { route: "mutation", fn: "authz:addNote" });
  await refused(bad, /signature/i, { route: "action", fn: "authz:whoamiAction" });
  await refused(bad, /signature/i, { route: "run/authz/whoami" });
  // the official HTTP client
  const hc = new ConvexHttpClient(server.url);
  hc.setAuth(token);
  assertIdentity(await hc.query(f("authz:whoami"), {}), issuer.url, claims);
  hc.clearAuth();
  assert.equal(await hc.query(f("authz:whoami"), {}), null);
});

test("an HTTP action given a refused token: 401 Unauthenticated", { timeout: 30000 }, async () => {
  const h = await fetch(`${server.url}/http/whoami`, { headers: { authorization: bearer(issuer.forge.tamperedSignature({ sub: "x" })) } });
  assert.equal(h.status, 401, `status ${h.status}: ${await h.clone().text()}`);
  const body = await h.json();
  assert.equal(body.code, "Unauthenticated");
  assert.match(body.message, /signature/i);
});

test("an action's caller is the caller of what it runs (ctx.runQuery)", { timeout: 30000 }, async () => {
  const claims = { sub: uniq("nested") };
  assertIdentity(await value("action", "authz:whoamiThroughAction", {}, bearer(issuer.token(claims))), issuer.url, claims);
  assert.equal(await value("action", "authz:whoamiThroughAction", {}), null);
});

// ---- the admin acting as a user ----------------------------------------------

test("the admin acting as a user over HTTP: ConvexHttpClient.setAdminAuth and the raw header", { timeout: 30000 }, async () => {
  const acting = { subject: uniq("u"), issuer: "https://x.example", name: "Ada" };
  const expected = { tokenIdentifier: `${acting.issuer}|${acting.subject}`, ...acting };
  const header = (key, identity) => `Convex ${key}:${Buffer.from(JSON.stringify(identity)).toString("base64")}`;
  assert.deepEqual(await value("query", "authz:whoami", {}, header(server.adminKey, acting)), expected);
  assert.equal(await value("mutation", "authz:addNote", { text: "as ada" }, header(server.adminKey, acting)), expected.tokenIdentifier);
  assert.deepEqual(await value("query", "authz:myNotes", {}, header(server.adminKey, acting)), [{ owner: expected.tokenIdentifier, text: "as ada" }]);
  // a tokenIdentifier given is kept
  const given = { ...acting, tokenIdentifier: "custom-identifier" };
  assert.equal((await value("query", "authz:whoami", {}, header(server.adminKey, given))).tokenIdentifier, "custom-identifier");
  // the official client
  const hc = new ConvexHttpClient(server.url);
  hc.setAdminAuth(server.adminKey, acting);
  assert.deepEqual(await hc.query(f("authz:whoami"), {}), expected);
  assert.deepEqual(await hc.action(f("authz:whoamiAction"), {}), expected);
  // the admin alone is no user; a wrong key makes no one
  assert.equal(await value("query", "authz:whoami", {}, `Convex ${server.adminKey}`), null);
  const wrong = await call("query", "authz:whoami", {}, header("not-the-key", acting));
  assert.ok(!(wrong.status === 200 && wrong.body.status === "success" && wrong.body.value !== null), `a wrong key acted as a user: ${JSON.stringify(wrong)}`);
});

test("the admin acting as a user over the WebSocket: ConvexClient.setAdminAuth(key, identity)", { timeout: 30000 }, async () => {
  const acting = { subject: uniq("ws"), issuer: "https://x.example", email: "ws@example.com" };
  const { c } = client();
  const who = watch(c, "authz:whoami");
  c.setAdminAuth(server.adminKey, acting);
  await until(() => who.latest()?.subject === acting.subject, { what: "whoami as the acted user" });
  assert.deepEqual(who.latest(), { tokenIdentifier: `${acting.issuer}|${acting.subject}`, ...acting });
  assert.equal(await c.mutation(f("authz:addNote"), { text: "ws admin" }), `${acting.issuer}|${acting.subject}`);
});

test("cvx run --identity runs a function as that user", { timeout: 60000 }, async () => {
  const run = async (...args) => {
    const { stdout } = await promisify(execFile)(cvx, ["run", ...args, "--url", server.url, "--admin-key", server.adminKey]);
    return JSON.parse(stdout);
  };
  const identity = { subject: uniq("cli"), issuer: "https://x", name: "Ada" };
  assert.deepEqual(await run("authz:whoami", "{}", "--identity", JSON.stringify(identity)), {
    tokenIdentifier: `https://x|${identity.subject}`,
    ...identity,
  });
  assert.equal(await run("authz:addNote", '{"text":"from the cli"}', "--identity", JSON.stringify(identity)), `https://x|${identity.subject}`);
  assert.deepEqual(await run("authz:myNotes", "{}", "--identity", JSON.stringify(identity)), [{ owner: `https://x|${identity.subject}`, text: "from the cli" }]);
  assert.equal(await run("authz:whoami", "{}"), null);
  // not an identity: a usage error, nothing run
  await assert.rejects(run("authz:whoami", "{}", "--identity", "[1]"), (e) => e.code === 2 || e.code === 1);
});

// ---- Rust functions ------------------------------------------------------------

test("Rust functions see the same identity (a mixed app: the Rust fixture beside auth.config.ts)", { timeout: 600000 }, async () => {
  // The layout of examples/mixed: the crate in convex/, TypeScript beside it.
  const dir = mkdtempSync(path.join(tmpdir(), "cvx-auth-mixed-"));
  const guest = path.join(repo, "tests/fixtures/guest");
  const fixture = path.join(repo, FIXTURE);
  let mixed;
  try {
    mkdirSync(path.join(dir, "convex"));
    cpSync(path.join(guest, "src"), path.join(dir, "convex/src"), { recursive: true });
    cpSync(path.join(guest, "Cargo.lock"), path.join(dir, "convex/Cargo.lock"));
    writeFileSync(
      path.join(dir, "convex/Cargo.toml"),
      readFileSync(path.join(guest, "Cargo.toml"), "utf8").replace(/path = "[^"]*"/, `path = "${path.join(repo, "sdk/rust/convex_sdk")}"`),
    );
    // No schema.ts: the crate declares the app's schema (one per app). No
    // _generated either: the build writes it (a clean clone has none).
    for (const file of ["auth.config.ts", "authz.ts"])
      cpSync(path.join(fixture, "convex", file), path.join(dir, "convex", file), { recursive: true });
    cpSync(path.join(fixture, "package.json"), path.join(dir, "package.json"));
    symlinkSync(path.join(fixture, "node_modules"), path.join(dir, "node_modules"));
    mixed = await startServer();
    await env(mixed, "set", "AUTH_ISSUER", issuer.url);
    await mixed.deployAsync(dir);
    const claims = { sub: uniq("rust"), name: "Ferris", email: "ferris@example.com", email_verified: true, crab: ["yes"] };
    const token = issuer.token(claims);
    const ask = async (route, fn, authorization) => {
      const r = await fetch(`${mixed.url}/api/${route}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(authorization && { authorization }) },
        body: JSON.stringify({ path: fn, args: [{}], format: "convex_encoded_json" }),
      });
      const body = await r.json();
      assert.equal(r.status, 200, JSON.stringify(body));
      assert.equal(body.status, "success", JSON.stringify(body));
      return body.value;
    };
    const ts = await ask("query", "authz:whoami", bearer(token));
    assertIdentity(ts, issuer.url, claims);
    assert.deepEqual(await ask("query", "fixture:whoami", bearer(token)), ts);
    assert.deepEqual(await ask("mutation", "fixture:whoami_mutation", bearer(token)), ts);
    assert.deepEqual(await ask("action", "fixture:whoami_action", bearer(token)), ts);
    assert.equal(await ask("query", "fixture:whoami"), null);
    const bad = await fetch(`${mixed.url}/api/query`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: bearer(issuer.forge.none({ sub: "x" })) },
      body: JSON.stringify({ path: "fixture:whoami", args: [{}] }),
    });
    assert.equal(bad.status, 401);
    for (const t of issuer.issued) assert.ok(!(mixed.stdout + mixed.stderr).includes(t.split(".")[2] || t), "a token in the mixed server's log");
  } finally {
    await mixed?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- last: nothing leaked --------------------------------------------------------

/** The files under `dir`, recursively. */
function filesUnder(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) out.push(...filesUnder(p));
    else if (st.isFile() && st.size < 256 << 20) out.push(p);
  }
  return out;
}

test("no token appears in the server's output, its function logs or its data directory", { timeout: 60000 }, async () => {
  // Tokens of every fate, in case this test runs alone: accepted and
  // refused, over HTTP and the socket.
  await whoamiOver(issuer.token({ sub: uniq("logged") }));
  await refused(issuer.forge.tamperedSignature({ sub: "x" }), /signature/i);
  const s = await rawSocket();
  s.send({ type: "Authenticate", tokenType: "User", value: issuer.token({ sub: uniq("logged") }), baseVersion: 0 });
  s.send({ type: "Authenticate", tokenType: "User", value: issuer.forge.unknownKid({ sub: "x" }), baseVersion: 1 });
  await s.next((m) => m.type === "AuthError", "the refusal");
  const tokens = [...issuer.issued, ...custom.issued];
  // the distinctive part of each: its signature (alg none has none)
  const marks = tokens.map((t) => t.split(".")[2] || t.split(".")[1]).filter((m) => m && m.length >= 20);
  const { stdout: logs } = await promisify(execFile)(cvx, ["logs", "--once", "--url", server.url, "--admin-key", server.adminKey], { maxBuffer: 256 << 20 });
  assert.ok(server.stderr.length + server.stdout.length > 0, "the server printed something (--log-calls)");
  for (const [where, text] of [["stdout", server.stdout], ["stderr", server.stderr], ["cvx logs", logs]]) {
    const found = marks.filter((m) => text.includes(m));
    assert.deepEqual(found, [], `tokens in the server's ${where}`);
    assert.doesNotMatch(text, /eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}/, `something like a JWT in the server's ${where}`);
  }
  for (const file of filesUnder(server.dataDir)) {
    const text = readFileSync(file, "latin1");
    const found = marks.filter((m) => text.includes(m));
    assert.deepEqual(found, [], `tokens stored in ${path.relative(server.dataDir, file)}`);
  }
});
