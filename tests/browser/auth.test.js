// Signing in from a web page, in headless Chromium: the page uses the
// unmodified `convex` browser client (its browser.bundle.js, no build
// step) with setAuth(fetchToken), and fetchToken asks the test's OpenID
// Connect issuer (tests/e2e/oidc.js, on loopback) for a token over CORS.
// whoami is shown live: it turns into the user on sign-in and back to
// anonymous on sign-out, without a reload; two pages hold two users at once.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createServer } from "node:http";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { chromium } from "playwright-core";
import { startServer, repo, cvx } from "../e2e/helpers.js";
import { startIssuer } from "../e2e/oidc.js";

const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const artifacts = process.env.CVX_ARTIFACTS ?? path.join(repo, "build-asan/test-artifacts");
const FIXTURE = path.join(repo, "tests/fixtures/ts");
const bundle = path.join(FIXTURE, "node_modules/convex/dist/browser.bundle.js");

const PAGE = `<!doctype html>
<html>
<head><meta charset="utf-8"><title>cvx auth</title></head>
<body>
  <p>who: <span id="who">loading</span></p>
  <p>auth: <span id="auth">none</span></p>
  <button id="signin">Sign in</button>
  <button id="signout">Sign out</button>
  <script src="/convex.js"></script>
  <script>
    const params = new URLSearchParams(location.search);
    const client = new convex.ConvexClient(params.get("convex"));
    const show = (id, text) => (document.getElementById(id).textContent = text);
    client.onUpdate(convex.anyApi.authz.whoami, {}, (me) =>
      show("who", me ? me.subject + " <" + me.email + "> " + me.tokenIdentifier : "anonymous"));
    window.fetches = [];
    async function fetchToken({ forceRefreshToken }) {
      window.fetches.push(forceRefreshToken);
      const q = new URLSearchParams({ sub: params.get("sub"), email: params.get("sub") + "@example.com" });
      const r = await fetch(params.get("issuer") + "/token?" + q);
      return (await r.json()).token;
    }
    document.getElementById("signin").onclick = () =>
      client.setAuth(fetchToken, (ok) => show("auth", ok ? "signed in" : "refused"));
    // ConvexClient (convex 1.45) has no clearAuth; its BaseConvexClient's
    // is what ConvexReactClient.clearAuth calls.
    document.getElementById("signout").onclick = () => {
      client.client.clearAuth();
      show("auth", "signed out");
    };
  </script>
</body>
</html>`;

let browser, server, issuer, web, app;

before(async () => {
  if (!existsSync(bundle)) throw new Error(`${bundle} is missing: run npm ci in tests/fixtures/ts (./test does)`);
  issuer = await startIssuer();
  // The fixture app, copied (other test files deploy it at the same time),
  // with the issuer as its provider (auth.config.ts reads AUTH_ISSUER).
  app = mkdtempSync(path.join(tmpdir(), "cvx-browser-auth-"));
  cpSync(path.join(FIXTURE, "convex"), path.join(app, "convex"), { recursive: true });
  cpSync(path.join(FIXTURE, "package.json"), path.join(app, "package.json"));
  symlinkSync(path.join(FIXTURE, "node_modules"), path.join(app, "node_modules"));
  server = await startServer();
  await promisify(execFile)(cvx, ["env", "set", "AUTH_ISSUER", issuer.url, "--url", server.url, "--admin-key", server.adminKey]);
  await server.deployAsync(app);
  web = createServer((req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    if (url.pathname === "/") {
      res.setHeader("content-type", "text/html");
      return res.end(PAGE);
    }
    if (url.pathname === "/convex.js") {
      res.setHeader("content-type", "text/javascript");
      return res.end(readFileSync(bundle));
    }
    res.statusCode = 404;
    res.end("not found");
  });
  await new Promise((r) => web.listen(0, "127.0.0.1", r));
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}, { timeout: 600000 });

after(async () => {
  await browser?.close();
  web?.close();
  await server?.stop();
  await issuer?.close();
  if (app) rmSync(app, { recursive: true, force: true });
}, { timeout: 60000 });

/** A page whose console lines are printed if the test process fails. */
const consoleLines = [];
process.on("exit", (code) => code && consoleLines.length && console.error(consoleLines.join("\n")));
async function open(sub) {
  const p = await browser.newPage();
  p.on("console", (m) => consoleLines.push(`${sub} ${m.type()}: ${m.text()}`));
  p.on("pageerror", (e) => consoleLines.push(`${sub} pageerror: ${e.message}`));
  const q = new URLSearchParams({ convex: server.url, issuer: issuer.url, sub });
  await p.goto(`http://127.0.0.1:${web.address().port}/?${q}`);
  return p;
}
const who = (p) => p.locator("#who").innerText();
const shows = (p, text) => p.waitForFunction((t) => document.getElementById("who").textContent === t, text, { timeout: 10000 });

test("a page signs in with setAuth and a token from the issuer: whoami live; sign-out turns it anonymous", { timeout: 120000 }, async () => {
  const ada = await open("page-ada");
  const bob = await open("page-bob");
  try {
    await shows(ada, "anonymous");
    await shows(bob, "anonymous");
    const tokensBefore = issuer.counts.token;
    await ada.click("#signin");
    await shows(ada, `page-ada <page-ada@example.com> ${issuer.url}|page-ada`);
    await ada.waitForFunction(() => document.getElementById("auth").textContent === "signed in", null, { timeout: 10000 });
    assert.ok(issuer.counts.token > tokensBefore, "the page fetched its token from the issuer");
    assert.equal((await ada.evaluate(() => window.fetches))[0], false, "the first fetchToken is not forced");
    // another user in another page, at the same time
    await bob.click("#signin");
    await shows(bob, `page-bob <page-bob@example.com> ${issuer.url}|page-bob`);
    assert.equal(await who(ada), `page-ada <page-ada@example.com> ${issuer.url}|page-ada`);
    mkdirSync(artifacts, { recursive: true });
    await ada.screenshot({ path: path.join(artifacts, "browser-auth-signed-in.png") });
    // sign-out, live, on the same page
    const url = ada.url();
    await ada.click("#signout");
    await shows(ada, "anonymous");
    assert.equal(ada.url(), url, "no navigation");
    assert.equal(await who(bob), `page-bob <page-bob@example.com> ${issuer.url}|page-bob`);
    // and in again
    await ada.click("#signin");
    await shows(ada, `page-ada <page-ada@example.com> ${issuer.url}|page-ada`);
  } finally {
    await ada.close();
    await bob.close();
  }
});
