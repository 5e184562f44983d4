// The seed's frontend, live, in headless Chromium: React, convex/react and
// the typed `api` from `cvx codegen`, built with Vite. Three apps: the ones
// `cvx init` makes in Rust and in TypeScript, and examples/mixed (the
// seed's own example: a TypeScript query beside a Rust mutation). In each, a
// user created in page A appears in page B without a reload; in the mixed
// app, `usePaginatedQuery` loads every page while users are added across
// the order, with no row missing or shown twice. Screenshots are kept as
// test artifacts.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, mkdirSync, readFileSync, rmSync, existsSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startServer, repo, cvx } from "../e2e/helpers.js";
import { artifacts, guestTarget, run, launchBrowser, openPage, buildPage } from "./helpers.js";

let work, browser;
const cleanup = [];

/** Deploys the app in `app` to a server of its own, builds its page (see
 * buildPage) and serves it. Resolves with { server, url }. */
async function serveApp(app) {
  const server = await startServer();
  cleanup.push(() => server.stop());
  run(cvx, ["deploy", app, "--url", server.url, "--admin-key", server.adminKey], app, { CARGO_TARGET_DIR: guestTarget });
  const web = await buildPage(app, server);
  cleanup.push(web.close);
  return { server, url: web.url };
}

const page = (name) => openPage(browser, name);

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), "cvx-browser-"));
  browser = await launchBrowser();
}, { timeout: 120000 });

after(async () => {
  await browser?.close();
  for (const f of cleanup.reverse()) await f();
  if (work) rmSync(work, { recursive: true, force: true });
}, { timeout: 60000 });

/** Page A adds a user through the form; page B shows it without a reload. */
async function liveAcrossPages(url, shot) {
  const a = await page("A");
  const b = await page("B");
  await a.goto(url);
  await b.goto(url);
  // The list renders (possibly empty, hence "attached") once the live
  // query has its first result.
  await a.waitForSelector("#users", { state: "attached" });
  await b.waitForSelector("#users", { state: "attached" });
  const before = await b.locator("#users li").count();
  await a.fill("input[aria-label=name]", "Grace Hopper");
  await a.fill("input[aria-label=email]", "grace@navy.mil");
  await a.click("button:text-is('Add user')");
  await b.waitForSelector("text=Grace Hopper", { timeout: 10000 });
  assert.equal(await b.locator("#users li").count(), before + 1);
  assert.match(await b.locator("#users li").first().innerText(), /Grace Hopper <grace@navy\.mil>/);
  mkdirSync(artifacts, { recursive: true });
  await b.screenshot({ path: path.join(artifacts, shot) });
  await a.close();
  await b.close();
}

for (const lang of ["rust", "typescript"]) {
  test(`cvx init --lang ${lang}: a user created in page A appears in page B without a reload`, { timeout: 600000 }, async () => {
    const app = path.join(work, lang);
    run(cvx, ["init", app, "--lang", lang], work);
    const { url } = await serveApp(app);
    await liveAcrossPages(url, `browser-live-${lang}.png`);
  });
}

let mixed;
test("examples/mixed (TypeScript query, Rust mutation): live across pages", { timeout: 600000 }, async () => {
  const app = path.join(work, "mixed");
  cpSync(path.join(repo, "examples/mixed"), app, {
    recursive: true,
    filter: (src) => !/\/(node_modules|target|_generated|\.cvx|dist)(\/|$)/.test(src),
  });
  // The Rust crate's path dependency, relative to the copy.
  const cargo = path.join(app, "convex/Cargo.toml");
  writeFileSync(cargo, readFileSync(cargo, "utf8").replace(/path = "[^"]*"/, `path = "${path.join(repo, "sdk/rust/convex_sdk")}"`));
  // The example's packages (./test installs them), not a second install.
  const modules = path.join(repo, "examples/mixed/node_modules");
  if (existsSync(modules)) symlinkSync(modules, path.join(app, "node_modules"));
  mixed = await serveApp(app);
  await liveAcrossPages(mixed.url, "browser-live-mixed.png");
});

test("usePaginatedQuery loads every page while another page adds users across the order", { timeout: 120000 }, async () => {
  assert.ok(mixed, "the mixed app is served");
  const reader = await page("reader");
  const writer = await page("writer");
  await writer.goto(mixed.url);
  await writer.waitForSelector("#users", { state: "attached" });
  // Emails spread over the alphabet, so that later ones land inside pages
  // the reader has already loaded as well as after them.
  const letters = "abcdefghijklmnopqrstuvwxyz";
  const add = async (email) => {
    await writer.fill("input[aria-label=name]", email.split("@")[0]);
    await writer.fill("input[aria-label=email]", email);
    await writer.click("button[type=submit]");
    await writer.waitForSelector(`#users li:has-text("${email}")`, { timeout: 10000 });
  };
  for (let i = 0; i < 12; i++) await add(`${letters[(i * 7) % 26]}${i}@first.test`);
  await reader.goto(mixed.url);
  await reader.waitForSelector("#all li");
  // Load page after page; between clicks the writer adds two more users.
  // The button is read and clicked in one step inside the page: a page
  // that was the last one may stop being "done", and the reverse.
  const settled = () =>
    reader.waitForFunction(() => {
      const b = document.querySelector("#more");
      return !b.disabled || b.innerText === "That's everyone";
    }, null, { timeout: 10000 });
  let added = 0;
  for (let round = 0; round < 20; round++) {
    await settled();
    if ((await reader.locator("#more").innerText()) === "That's everyone") break;
    for (let k = 0; k < 2; k++, added++) await add(`${letters[(added * 11 + 3) % 26]}${added}@during.test`);
    const shown = await reader.locator("#all li").count();
    const clicked = await reader.evaluate(() => {
      const b = document.querySelector("#more");
      if (b.disabled) return false;
      b.click();
      return true;
    });
    if (clicked)
      await reader.waitForFunction((n) => document.querySelectorAll("#all li").length > n || document.querySelector("#more").disabled, shown, { timeout: 10000 });
  }
  await reader.waitForFunction(() => document.querySelector("#more").innerText === "That's everyone", null, { timeout: 10000 });
  assert.ok(added >= 4, `users added while paging: ${added}`);
  // Every user exactly once, in email order, including those added while
  // the pages loaded (the live pages pick them up).
  const r = await fetch(`${mixed.server.url}/api/query`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ path: "users:list", args: [{}], format: "convex_encoded_json" }),
  });
  const expected = (await r.json()).value.map((u) => u.email).sort();
  let shown;
  for (const start = Date.now(); Date.now() - start < 10000; await new Promise((r) => setTimeout(r, 100))) {
    shown = await reader.locator("#all li").allInnerTexts();
    if (shown.length === expected.length) break;
  }
  assert.deepEqual(shown, expected);
  await reader.screenshot({ path: path.join(artifacts, "browser-paginated.png") });
});
