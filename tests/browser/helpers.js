// What the browser tests share: headless Chromium, pages whose console is
// printed if the test process fails, and an app's page built with Vite
// against a running server (typed client code from `cvx codegen`,
// type-checked with the real `convex` package) and served on loopback.
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { repo, cvx } from "../e2e/helpers.js";

export const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
export const artifacts = process.env.CVX_ARTIFACTS ?? path.join(repo, "build-asan/test-artifacts");
export const guestTarget = process.env.CARGO_TARGET_DIR ?? path.join(repo, "build/guest-target");

// Each step has a time limit: a blocking call would otherwise hold this
// process past node's own per-test timeout (a stalled npm registry did).
export function run(cmd, args, cwd, env = {}) {
  return execFileSync(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], timeout: 600000 }).toString();
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: chromiumPath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** Console lines of the pages opened with openPage, printed if the test
 * process fails. */
const consoleLines = [];
process.on("exit", (code) => code && consoleLines.length && console.error(consoleLines.join("\n")));
export async function openPage(browser, name) {
  const p = await browser.newPage();
  p.on("console", (m) => consoleLines.push(`${name} ${m.type()}: ${m.text()}`));
  p.on("pageerror", (e) => consoleLines.push(`${name} pageerror: ${e.message}`));
  return p;
}

/** Writes the typed client code of the app in `app` (deployed to
 * `server`), type-checks and builds its page for that server (`viteEnv`:
 * more VITE_* variables), and serves the page. Resolves with { url, close }. */
export async function buildPage(app, server, viteEnv = {}) {
  run(cvx, ["codegen", app, "--url", server.url, "--admin-key", server.adminKey], app);
  if (!existsSync(path.join(app, "node_modules/vite"))) run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], app);
  // The generated api.d.ts must type-check against the real `convex` package.
  run("npx", ["tsc", "--noEmit"], app);
  run("npx", ["vite", "build"], app, { VITE_CONVEX_URL: server.url, ...viteEnv });
  const dist = path.join(app, "dist");
  const web = createServer((req, res) => {
    const file = path.join(dist, req.url === "/" ? "index.html" : req.url.split("?")[0]);
    if (!file.startsWith(dist) || !existsSync(file)) {
      res.statusCode = 404;
      return res.end("not found");
    }
    res.setHeader("content-type", file.endsWith(".js") ? "text/javascript" : file.endsWith(".html") ? "text/html" : "application/octet-stream");
    res.end(readFileSync(file));
  });
  await new Promise((r) => web.listen(0, "127.0.0.1", r));
  const close = () => {
    web.closeAllConnections();
    return new Promise((r) => web.close(r));
  };
  return { url: `http://127.0.0.1:${web.address().port}/`, close };
}
