// Sign-in and per-user data in the app `cvx init` makes, in each language
// (rust, typescript, mixed), in headless Chromium: the loopback OpenID
// Connect issuer (tests/e2e/oidc.js, tokens for "convex") is the app's
// provider through AUTH_ISSUER, set with `cvx env set` (before the deploy
// for auth.config.ts; after it for Rust's auth_config!, which needs no
// redeploy), and the page is built with VITE_AUTH_TOKEN_URL at its /token.
// Two pages sign in as two users: each adds a note and lists only its own,
// live (a second page of the same user adds one too); an anonymous add is
// refused with the function's ConvexError; signing out empties the list.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startServer, cvx } from "../e2e/helpers.js";
import { startIssuer } from "../e2e/oidc.js";
import { artifacts, guestTarget, run, launchBrowser, openPage, buildPage } from "./helpers.js";

let work, browser, issuer;
const cleanup = [];

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), "cvx-browser-init-auth-"));
  issuer = await startIssuer({ audience: "convex" });
  browser = await launchBrowser();
}, { timeout: 120000 });

after(async () => {
  await browser?.close();
  for (const f of cleanup.reverse()) await f();
  await issuer?.close();
  if (work) rmSync(work, { recursive: true, force: true });
}, { timeout: 60000 });

const text = (p, sel) => p.locator(sel).innerText();
const shows = (p, sel, want) =>
  p.waitForFunction(([s, w]) => document.querySelector(s)?.textContent === w, [sel, want], { timeout: 10000 });
/** Resolves when the page's notes list is exactly `want` (newest first). */
const notesAre = (p, want) =>
  p.waitForFunction(
    (w) => {
      const ul = document.querySelector("#notes");
      return ul && JSON.stringify([...ul.querySelectorAll("li")].map((li) => li.textContent)) === JSON.stringify(w);
    },
    want,
    { timeout: 10000 },
  );

async function signIn(p, name) {
  await p.fill("input[aria-label='user name']", name);
  await p.click("button:text-is('Sign in')");
  await shows(p, "#me", `Signed in as ${name}`);
}
async function addNote(p, note) {
  await p.fill("input[aria-label=note]", note);
  await p.click("button:text-is('Add note')");
}

for (const lang of ["rust", "typescript", "mixed"]) {
  test(`cvx init --lang ${lang}: two users sign in, each sees only their own notes, live; sign-out empties the list`, { timeout: 600000 }, async () => {
    const app = path.join(work, lang);
    run(cvx, ["init", app, "--lang", lang], work);
    const server = await startServer();
    cleanup.push(() => server.stop());
    const admin = ["--url", server.url, "--admin-key", server.adminKey];
    const setIssuer = () => run(cvx, ["env", "set", "AUTH_ISSUER", issuer.url, ...admin], app);
    // auth.config.ts is evaluated at deploy: the variable first. The Rust
    // provider reads it when a token comes: deploy, then set it.
    if (lang !== "rust") setIssuer();
    const deployed = run(cvx, ["deploy", app, ...admin], app, { CARGO_TARGET_DIR: guestTarget });
    if (lang === "rust") {
      assert.match(deployed, /AUTH_ISSUER, which is not set/);
      setIssuer();
    }
    const web = await buildPage(app, server, { VITE_AUTH_TOKEN_URL: `${issuer.url}/token` });
    cleanup.push(web.close);

    const ada = await openPage(browser, `${lang} ada`);
    const ada2 = await openPage(browser, `${lang} ada2`);
    const bob = await openPage(browser, `${lang} bob`);
    try {
      for (const p of [ada, ada2, bob]) {
        await p.goto(web.url);
        await shows(p, "#me", "Not signed in");
        await notesAre(p, []);
      }
      // Anonymous: the mutation's ConvexError, shown by the page.
      await addNote(ada, "nobody's");
      await shows(ada, "[role=alert]", "sign in to add notes");

      await signIn(ada, "Ada");
      await signIn(bob, "Bob");
      await addNote(ada, "Ada's first");
      await addNote(bob, "Bob's");
      await notesAre(ada, ["Ada's first"]);
      await notesAre(bob, ["Bob's"]);
      // The same user in another page: its note shows in Ada's first page
      // without a reload, newest first, and never in Bob's.
      await signIn(ada2, "Ada");
      await notesAre(ada2, ["Ada's first"]);
      await addNote(ada2, "Ada's second");
      await notesAre(ada, ["Ada's second", "Ada's first"]);
      await notesAre(bob, ["Bob's"]);
      assert.equal(await text(bob, "#me"), "Signed in as Bob");
      mkdirSync(artifacts, { recursive: true });
      await ada.screenshot({ path: path.join(artifacts, `browser-init-auth-${lang}.png`) });

      // Sign-out, live: anonymous again, no notes; the others keep theirs.
      const url = ada.url();
      await ada.click("button:text-is('Sign out')");
      await shows(ada, "#me", "Not signed in");
      await notesAre(ada, []);
      assert.equal(ada.url(), url, "no navigation");
      await notesAre(ada2, ["Ada's second", "Ada's first"]);
      await notesAre(bob, ["Bob's"]);
    } finally {
      for (const p of [ada, ada2, bob]) await p.close();
    }
  });
}
