// Starts a real `cvx serve` on a free loopback port, deploys a functions
// crate to it with `cvx deploy`, and stops it at the end of a test file.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const cvx = process.env.CVX_BIN ?? path.join(repo, "build/cvx");
const guestTarget = process.env.CARGO_TARGET_DIR ?? path.join(repo, "build/guest-target");

export async function startServer({ app, args = [] } = {}) {
  const dataDir = mkdtempSync(path.join(tmpdir(), "cvx-e2e-"));
  const proc = spawn(cvx, ["serve", "--data", dataDir, "--port", "0", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  proc.stderr.on("data", (d) => (stderr += d));
  const port = await new Promise((resolve, reject) => {
    let out = "";
    proc.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/CVX_PORT=(\d+)/);
      if (m) resolve(Number(m[1]));
    });
    proc.on("exit", (code) => reject(new Error(`cvx serve exited with ${code}: ${stderr}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  const adminKey = readFileSync(path.join(dataDir, "admin_key"), "utf8").trim();
  const server = {
    url,
    port,
    adminKey,
    dataDir,
    proc,
    get stderr() {
      return stderr;
    },
    deploy(appDir) {
      return execFileSync(cvx, ["deploy", path.join(repo, appDir), "--url", url, "--admin-key", adminKey], {
        env: { ...process.env, CARGO_TARGET_DIR: guestTarget },
        stdio: ["ignore", "pipe", "pipe"],
      }).toString();
    },
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGTERM");
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  if (app) server.deploy(app);
  return server;
}
