// The rest of the platform: crypto (getRandomValues, randomUUID,
// subtle.digest), timers, performance, structuredClone, process.env.
"use strict";
(() => {
  const cvx = globalThis.__cvx;
  const host = cvx.host;
  const define = cvx.define;
  const toU8 = cvx.toU8;

  // ---- crypto -------------------------------------------------------------

  const INTEGER_ARRAYS = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, BigInt64Array, BigUint64Array];
  const subtle = {
    async digest(algorithm, data) {
      const name = typeof algorithm === "string" ? algorithm : algorithm && algorithm.name;
      return host.digest(String(name), toU8(data, "digest's data"));
    },
  };
  const crypto = {
    getRandomValues(view) {
      if (!INTEGER_ARRAYS.some((T) => view instanceof T))
        throw new DOMException("The data argument must be an integer-type TypedArray", "TypeMismatchError");
      if (view.byteLength > 65536)
        throw new DOMException(`The ArrayBufferView's byte length (${view.byteLength}) exceeds the number of bytes of entropy available via this API (65536)`, "QuotaExceededError");
      host.fillRandom(view);
      return view;
    },
    randomUUID() {
      const b = crypto.getRandomValues(new Uint8Array(16));
      b[6] = (b[6] & 0x0f) | 0x40;
      b[8] = (b[8] & 0x3f) | 0x80;
      const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    },
    subtle,
  };
  define("crypto", crypto);

  // ---- timers -----------------------------------------------------------------

  // Timers fire in order of due time once the job queue is empty (the
  // engine's loop calls runNextTimer). Queries and mutations run on frozen
  // time, so their timers fire without waiting; actions wait real time.
  let timerSeq = 0;
  const pending = new Map(); // id -> { due, fn, args, interval }
  function addTimer(fn, ms, args, interval) {
    if (typeof fn !== "function") throw new TypeError("The callback must be a function");
    const id = ++timerSeq;
    const delay = Math.max(0, Number(ms) || 0);
    pending.set(id, { due: Date.now() + delay, seq: id, fn, args, interval: interval ? delay : -1 });
    return id;
  }
  define("setTimeout", (fn, ms, ...args) => addTimer(fn, ms, args, false));
  define("setInterval", (fn, ms, ...args) => addTimer(fn, ms, args, true));
  define("clearTimeout", (id) => pending.delete(id));
  define("clearInterval", (id) => pending.delete(id));
  cvx.runNextTimer = () => {
    let next = null;
    for (const [id, t] of pending) if (!next || t.due < next[1].due || (t.due === next[1].due && t.seq < next[1].seq)) next = [id, t];
    if (!next) return false;
    const [id, t] = next;
    if (cvx.isAction()) {
      const wait = t.due - Date.now();
      if (wait > 0) cvx.sleep(wait);
    }
    if (t.interval >= 0) t.due = Math.max(Date.now(), t.due) + t.interval, (t.seq = ++timerSeq);
    else pending.delete(id);
    t.fn(...t.args);
    return true;
  };
  // Blocks the action for `ms` (WASI poll_oneoff with a clock): the host
  // bounds it by the call's time limit.
  cvx.sleep = (ms) => host.sleep(ms);

  // Milliseconds since the call began; the first use in a call sets the
  // origin (calls start from the snapshot, where it is unset).
  define("performance", {
    now: () => Date.now() - (cvx.callStart || (cvx.callStart = Date.now())),
    timeOrigin: 0,
    mark() {},
    measure() {},
  });

  define("structuredClone", (v) => {
    const seen = new Map();
    const clone = (x) => {
      if (typeof x !== "object" || x === null) {
        if (typeof x === "function" || typeof x === "symbol") throw new DOMException(`${String(x)} could not be cloned.`, "DataCloneError");
        return x;
      }
      if (seen.has(x)) return seen.get(x);
      let out;
      if (x instanceof Date) out = new Date(x.getTime());
      else if (x instanceof RegExp) out = new RegExp(x.source, x.flags);
      else if (x instanceof ArrayBuffer) out = x.slice(0);
      else if (ArrayBuffer.isView(x)) out = new x.constructor(x);
      else if (x instanceof Map) {
        out = new Map();
        seen.set(x, out);
        for (const [k, v] of x) out.set(clone(k), clone(v));
        return out;
      } else if (x instanceof Set) {
        out = new Set();
        seen.set(x, out);
        for (const v of x) out.add(clone(v));
        return out;
      } else if (x instanceof Error) out = new x.constructor(x.message);
      else if (Array.isArray(x)) {
        out = [];
        seen.set(x, out);
        for (let i = 0; i < x.length; i++) out[i] = clone(x[i]);
        return out;
      } else {
        out = {};
        seen.set(x, out);
        for (const k of Object.keys(x)) out[k] = clone(x[k]);
        return out;
      }
      seen.set(x, out);
      return out;
    };
    return clone(v);
  });

  // Node's `process` as Convex offers it: environment variables only. Each
  // read asks the host (`cvx env set` values, no redeploy needed), so in a
  // query or mutation it is one of the call's reads and a change re-runs
  // the subscriptions that made it. A module's top level runs once, at
  // deploy, outside any call: there every variable reads as undefined.
  const envGet = (name) => (cvx.call ? cvx.request("env_get", { name }) : null);
  const readOnly = () => {
    throw new TypeError("process.env is read-only: set environment variables with `cvx env set NAME VALUE`");
  };
  // The traps keep the target empty and extensible, so that what they
  // report never contradicts it (a Proxy's invariants); names that are not
  // variables fall through to Object.prototype, as on a plain object.
  const env = new Proxy(
    {},
    {
      get: (target, k) => {
        const v = typeof k === "string" ? envGet(k) : null;
        return v === null ? Reflect.get(target, k) : v;
      },
      has: (_, k) => typeof k === "string" && envGet(k) !== null,
      ownKeys: () => (cvx.call ? Object.keys(cvx.request("env_get", {})) : []),
      getOwnPropertyDescriptor: (_, k) => {
        const v = typeof k === "string" ? envGet(k) : null;
        return v === null ? undefined : { value: v, writable: false, enumerable: true, configurable: true };
      },
      set: readOnly,
      defineProperty: readOnly,
      deleteProperty: readOnly,
      preventExtensions: readOnly,
      setPrototypeOf: readOnly,
    },
  );
  define("process", { env });
})();
