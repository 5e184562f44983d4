// Starts a real `cvx serve` on a free loopback port, deploys a functions
// crate to it with `cvx deploy`, and stops it at the end of a test file.
import { spawn, execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const cvx = process.env.CVX_BIN ?? path.join(repo, "build/cvx");
const guestTarget = process.env.CARGO_TARGET_DIR ?? path.join(repo, "build/guest-target");

export async function startServer({ app, args = [], dataDir, port = 0 } = {}) {
  dataDir ??= mkdtempSync(path.join(tmpdir(), "cvx-e2e-"));
  const proc = spawn(cvx, ["serve", "--data", dataDir, "--port", String(port), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "", stdout = "";
  proc.stderr.on("data", (d) => (stderr += d));
  const boundPort = await new Promise((resolve, reject) => {
    proc.stdout.on("data", (d) => {
      stdout += d;
      const m = stdout.match(/CVX_PORT=(\d+)/);
      if (m) resolve(Number(m[1]));
    });
    proc.on("exit", (code) => reject(new Error(`cvx serve exited with ${code}: ${stderr}`)));
  });
  const url = `http://127.0.0.1:${boundPort}`;
  const adminKey = readFileSync(path.join(dataDir, "admin_key"), "utf8").trim();
  const server = {
    url,
    port: boundPort,
    adminKey,
    dataDir,
    proc,
    get stderr() {
      return stderr;
    },
    /** Everything the server printed on stdout, from its start. */
    get stdout() {
      return stdout;
    },
    deploy(appDir) {
      // A time limit: a blocking call would hold this process past node's
      // per-test timeout (the first deploy of an app may run npm ci).
      return execFileSync(cvx, ["deploy", path.resolve(repo, appDir), "--url", url, "--admin-key", adminKey], {
        env: { ...process.env, CARGO_TARGET_DIR: guestTarget },
        stdio: ["ignore", "pipe", "pipe"],
        timeout: 600000,
      }).toString();
    },
    /** deploy() without blocking this process: its pooled connections see
     * the server close them meanwhile (a blocked event loop would reuse one
     * the server closed). Rejects with the error's `stderr`. */
    async deployAsync(appDir) {
      const { stdout } = await promisify(execFile)(cvx, ["deploy", path.resolve(repo, appDir), "--url", url, "--admin-key", adminKey], {
        env: { ...process.env, CARGO_TARGET_DIR: guestTarget },
        timeout: 600000,
      });
      return stdout;
    },
    async stats() {
      const r = await fetch(`${url}/api/admin/stats`, { headers: { Authorization: `Convex ${adminKey}` } });
      return r.json();
    },
    /** Stops the process; keeps the data directory when `keepData`. */
    async stop({ keepData = false, signal = "SIGTERM" } = {}) {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once("exit", r));
        proc.kill(signal);
        await exited;
      }
      if (!keepData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  if (app) server.deploy(app);
  return server;
}

/** Resolves when `predicate()` is truthy, polling every 20 ms. */
export async function until(predicate, { timeout = 10000, what = "condition" } = {}) {
  const start = Date.now();
  for (;;) {
    const v = await predicate();
    if (v) return v;
    if (Date.now() - start > timeout) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
