// The seed's frontend, live: the app `cvx init` creates (React,
// convex/react, typed `api` from `cvx codegen`) built with Vite and opened in
// two headless Chromium pages. A user created in page A appears in page B
// without a reload. The screenshot is kept as a test artifact.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { startServer, repo, cvx } from "../e2e/helpers.js";

const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const artifacts = process.env.CVX_ARTIFACTS ?? path.join(repo, "build-asan/test-artifacts");
let work, server, web, browser;

function run(cmd, args, cwd, env = {}) {
  return execFileSync(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] }).toString();
}

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), "cvx-browser-"));
  const app = path.join(work, "app");
  run(cvx, ["init", app], work);
  server = await startServer();
  // Build + deploy the app's functions, then write the typed client code.
  run(cvx, ["deploy", app, "--url", server.url, "--admin-key", server.adminKey], app, {
    CARGO_TARGET_DIR: process.env.CARGO_TARGET_DIR ?? path.join(repo, "build/guest-target"),
  });
  run(cvx, ["codegen", app, "--url", server.url, "--admin-key", server.adminKey], app);
  run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], app);
  // The generated api.d.ts must type-check against the real `convex` package.
  run("npx", ["tsc", "--noEmit"], app);
  run("npx", ["vite", "build"], app, { VITE_CONVEX_URL: server.url });
  const dist = path.join(app, "dist");
  web = createServer((req, res) => {
    const file = path.join(dist, req.url === "/" ? "index.html" : req.url.split("?")[0]);
    if (!file.startsWith(dist) || !existsSync(file)) {
      res.statusCode = 404;
      return res.end("not found");
    }
    res.setHeader("content-type", file.endsWith(".js") ? "text/javascript" : file.endsWith(".html") ? "text/html" : "application/octet-stream");
    res.end(readFileSync(file));
  });
  await new Promise((r) => web.listen(0, "127.0.0.1", r));
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  web?.close();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test("a user created in page A appears in page B without a reload", async () => {
  const url = `http://127.0.0.1:${web.address().port}/`;
  const a = await browser.newPage();
  const b = await browser.newPage();
  const consoleLines = [];
  for (const [name, p] of [["A", a], ["B", b]]) {
    p.on("console", (m) => consoleLines.push(`${name} ${m.type()}: ${m.text()}`));
    p.on("pageerror", (e) => consoleLines.push(`${name} pageerror: ${e.message}`));
  }
  process.on("exit", (code) => code && consoleLines.length && console.error(consoleLines.join("\n")));
  await a.goto(url);
  await b.goto(url);
  // The list renders (possibly empty, hence "attached") once the live
  // query has its first result.
  await a.waitForSelector("#users", { state: "attached" });
  await b.waitForSelector("#users", { state: "attached" });
  const before = await b.locator("#users li").count();
  await a.fill("input[aria-label=name]", "Grace Hopper");
  await a.fill("input[aria-label=email]", "grace@navy.mil");
  await a.click("button[type=submit]");
  await b.waitForSelector("text=Grace Hopper", { timeout: 10000 });
  assert.equal(await b.locator("#users li").count(), before + 1);
  assert.match(await b.locator("#users li").first().innerText(), /Grace Hopper <grace@navy\.mil>/);
  mkdirSync(artifacts, { recursive: true });
  await b.screenshot({ path: path.join(artifacts, "browser-live.png") });
});
