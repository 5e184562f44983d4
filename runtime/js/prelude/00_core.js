// The prelude's core: the __cvx object the engine (runtime/js/engine.c)
// calls into, the current call's identity, and host calls.
//
// The prelude is evaluated once per deploy, before the app's bundle, and
// then snapshotted with it: nothing here may depend on a particular call.
// Per-call state lives in cvx.call, which invoke() sets and clears.
"use strict";
(() => {
  const host = globalThis.__cvx_host;
  delete globalThis.__cvx_host;

  const cvx = {
    host,
    // The running call: { path, kind, visibility, requestId } (kind is
    // "query" | "mutation" | "action" | "httpAction"), or null at load.
    call: null,
  };
  Object.defineProperty(globalThis, "__cvx", { value: cvx, enumerable: false });

  // A host request/response call with objects in and out.
  cvx.request = (name, req) => JSON.parse(host.call(name, JSON.stringify(req)));

  cvx.kind = () => (cvx.call ? cvx.call.kind : "load");
  cvx.isAction = () => {
    const k = cvx.kind();
    return k === "action" || k === "httpAction";
  };

  // Levels of __convex_log (docs/abi.md).
  cvx.LOG = 0;
  cvx.INFO = 1;
  cvx.WARN = 2;
  cvx.ERROR = 3;
  cvx.DEBUG = 4;
  cvx.log = (level, text) => host.log(level, text);

  // Defines a global as the web platform does: writable, not enumerable.
  cvx.define = (name, value) =>
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
})();
