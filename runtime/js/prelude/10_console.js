// console, as Convex formats it: each argument as object-inspect prints
// it, strings at the top level as they are; one log line per call.
"use strict";
(() => {
  const cvx = globalThis.__cvx;
  const host = cvx.host;
  const define = cvx.define;

  // ---- console ------------------------------------------------------------

  // Formats a value as Convex's console does (object-inspect): strings
  // quoted at depth > 0 or as arguments other than the first string.
  function inspect(v, depth, seen) {
    switch (typeof v) {
      case "string":
        return depth === 0 ? v : "'" + v.replace(/\\/g, "\\\\").replace(/'/g, "\\'").replace(/\n/g, "\\n") + "'";
      case "number":
        return Object.is(v, -0) ? "-0" : String(v);
      case "bigint":
        return v + "n";
      case "undefined":
        return "undefined";
      case "boolean":
        return String(v);
      case "symbol":
        return v.toString();
      case "function":
        return "[Function: " + (v.name || "(anonymous)") + "]";
    }
    if (v === null) return "null";
    if (seen.includes(v)) return "[Circular]";
    if (depth > 5) return Array.isArray(v) ? "[Array]" : "[Object]";
    const next = seen.concat([v]);
    if (v instanceof Error) {
      const s = v.stack ? String(v.name) + ": " + v.message + "\n" + v.stack : String(v);
      return depth === 0 ? s : "[" + String(v) + "]";
    }
    if (Array.isArray(v)) {
      if (v.length === 0) return "[]";
      return "[ " + v.map((x) => inspect(x, depth + 1, next)).join(", ") + " ]";
    }
    if (v instanceof Date) return isNaN(v) ? "Invalid Date" : v.toISOString();
    if (v instanceof ArrayBuffer) return "ArrayBuffer { byteLength: " + v.byteLength + " }";
    if (ArrayBuffer.isView(v)) {
      const items = Array.from(v.length !== undefined ? v : new Uint8Array(v.buffer), (x) => String(x));
      return v.constructor.name + "(" + items.length + ") [ " + items.join(", ") + " ]";
    }
    if (v instanceof Map) {
      const items = [...v].map(([k, x]) => inspect(k, depth + 1, next) + " => " + inspect(x, depth + 1, next));
      return "Map (" + v.size + ") {" + (items.length ? " " + items.join(", ") + " " : "") + "}";
    }
    if (v instanceof Set) {
      const items = [...v].map((x) => inspect(x, depth + 1, next));
      return "Set (" + v.size + ") {" + (items.length ? " " + items.join(", ") + " " : "") + "}";
    }
    if (typeof v.then === "function") return "Promise { <pending> }";
    const keys = Object.keys(v);
    const tag = v.constructor && v.constructor !== Object && v.constructor.name ? v.constructor.name + " " : "";
    if (keys.length === 0) return tag + "{}";
    const body = keys.map((k) => {
      const key = /^[A-Za-z_$][\w$]*$/.test(k) ? k : "'" + k.replace(/'/g, "\\'") + "'";
      return key + ": " + inspect(v[k], depth + 1, next);
    });
    return tag + "{ " + body.join(", ") + " }";
  }
  cvx.inspect = (v) => inspect(v, 1, []);

  const format = (args) =>
    args.map((a, i) => (i === 0 && typeof a === "string" ? a : inspect(a, 1, []))).join(" ");
  const timers = new Map();
  const consoleImpl = Object.assign(Object.create({}), {
    log: (...a) => cvx.log(cvx.LOG, format(a)),
    info: (...a) => cvx.log(cvx.INFO, format(a)),
    warn: (...a) => cvx.log(cvx.WARN, format(a)),
    error: (...a) => cvx.log(cvx.ERROR, format(a)),
    debug: (...a) => cvx.log(cvx.DEBUG, format(a)),
    trace: (...a) => cvx.log(cvx.LOG, format(a) + "\n" + (new Error().stack || "").trimEnd()),
    assert: (cond, ...a) => {
      if (!cond) cvx.log(cvx.ERROR, "Assertion failed" + (a.length ? ": " + format(a) : ""));
    },
    time: (label = "default") => timers.set(String(label), Date.now()),
    timeLog: (label = "default", ...a) => {
      const t = timers.get(String(label));
      cvx.log(cvx.INFO, t === undefined ? `Timer '${label}' does not exist` : `${label}: ${Date.now() - t}ms ${format(a)}`.trimEnd());
    },
    timeEnd: (label = "default") => {
      const t = timers.get(String(label));
      timers.delete(String(label));
      cvx.log(cvx.INFO, t === undefined ? `Timer '${label}' does not exist` : `${label}: ${Date.now() - t}ms`);
    },
  });
  define("console", consoleImpl);
})();
