// The app: analysis at deploy (what the bundle exports), one call at a time
// afterwards, errors in the shape the host reports them.
//
// The bundle (written by `cvx build`, see src/cli/jsbuild.c) sets
// globalThis.__cvx_app = { modules: { "users": <module namespace>, ... } }
// where the keys are module paths under convex/ without their extension.
"use strict";
(() => {
  const cvx = globalThis.__cvx;
  const functions = new Map(); // path -> { fn, kind }
  let router = null;
  let lib = null; // convex/values and convex/server, as bundled with the app

  // The contexts (ctx) the library gives handlers, by kind and visibility,
  // built once here (so in the snapshot) by probes that run through the
  // library's own invoke path. They hold no per-call state: the library
  // passes "" as request id to queries and mutations, and what identifies
  // a call is the host's business. Handing a handler a ready ctx saves
  // every call the library's setup of about twenty objects and closures
  // (a no-op query: 180 -> 40 us).
  const contexts = {};
  async function captureContexts() {
    const probes = [
      ["query/public", lib.queryGeneric, (f) => f.invokeQuery("[{}]")],
      ["query/internal", lib.internalQueryGeneric, (f) => f.invokeQuery("[{}]")],
      ["mutation/public", lib.mutationGeneric, (f) => f.invokeMutation("[{}]")],
      ["mutation/internal", lib.internalMutationGeneric, (f) => f.invokeMutation("[{}]")],
      ["action/public", lib.actionGeneric, (f) => f.invokeAction("", "[{}]")],
      ["action/internal", lib.internalActionGeneric, (f) => f.invokeAction("", "[{}]")],
    ];
    for (const [key, builder, invoke] of probes) {
      if (typeof builder !== "function") return;
      let captured = null;
      const probe = builder({ handler: (ctx) => ((captured = ctx), null) });
      await invoke(probe);
      if (captured) contexts[key] = captured;
    }
  }

  const CRON_DAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];

  function cronOf(identifier, job) {
    const s = job.schedule;
    const out = { name: identifier, path: job.name, args: (job.args && job.args[0]) || {} };
    const at = (m, h, dom, dow) => ({ cron: `${m ?? 0} ${h} ${dom} * ${dow}` });
    switch (s.type) {
      case "interval": {
        const ms = s.seconds !== undefined ? s.seconds * 1e3 : s.minutes !== undefined ? s.minutes * 6e4 : s.hours * 3.6e6;
        out.schedule = { every: { ms: Math.round(ms) } };
        break;
      }
      case "hourly":
        out.schedule = at(s.minuteUTC, "*", "*", "*");
        break;
      case "daily":
        out.schedule = at(s.minuteUTC, s.hourUTC, "*", "*");
        break;
      case "weekly":
        out.schedule = at(s.minuteUTC, s.hourUTC, "*", CRON_DAYS.indexOf(s.dayOfWeek));
        break;
      case "monthly":
        out.schedule = at(s.minuteUTC, s.hourUTC, s.day, "*");
        break;
      case "cron":
        out.schedule = { cron: s.cron };
        break;
      default:
        throw new Error(`Cron ${identifier} has an unknown schedule type ${s.type}`);
    }
    return out;
  }

  // Convex's schema export -> the cvx.schema record (docs/abi.md §4); the
  // documents' validator travels in Convex's own format.
  function schemaOf(def, warnings) {
    const s = JSON.parse(def.export());
    return {
      abi: 1,
      tables: s.tables.map((t) => {
        if (t.searchIndexes && t.searchIndexes.length)
          warnings.push(`table ${t.tableName}: search indexes are not supported by cvx yet and were ignored`);
        if (t.vectorIndexes && t.vectorIndexes.length)
          warnings.push(`table ${t.tableName}: vector indexes are not supported by cvx yet and were ignored`);
        return {
          name: t.tableName,
          fields: null,
          documentValidator: t.documentType,
          indexes: t.indexes.map((i) => ({ name: i.indexDescriptor, fields: i.fields })),
        };
      }),
      strict: false,
      schemaValidation: s.schemaValidation !== false,
    };
  }

  // What the host needs to know without running anything again.
  cvx.analyze = async () => {
    const app = globalThis.__cvx_app;
    if (!app || typeof app.modules !== "object") throw new Error("the bundle did not register its modules (__cvx_app)");
    const out = { functions: [], schema: null, crons: [], warnings: [] };
    lib = app.lib || null;
    if (lib) await captureContexts();
    for (const modPath of Object.keys(app.modules).sort()) {
      const mod = app.modules[modPath];
      const file = app.files ? app.files[modPath] : undefined;
      for (const name of Object.keys(mod).sort()) {
        const v = mod[name];
        if (v === null || (typeof v !== "object" && typeof v !== "function")) continue;
        if (modPath === "schema" && name === "default") {
          if (typeof v.export === "function" && "schemaValidation" in v) out.schema = schemaOf(v, out.warnings);
          continue;
        }
        if (modPath === "crons" && name === "default" && v.isCrons) {
          for (const id of Object.keys(v.crons)) out.crons.push(cronOf(id, v.crons[id]));
          continue;
        }
        if (modPath === "http" && name === "default" && v.isRouter) {
          router = v;
          for (const [route, method] of v.getRoutes()) {
            out.functions.push({
              abi: 1,
              path: `http:${method} ${route}`,
              kind: "httpAction",
              visibility: "public",
              export: "cvx_js_invoke",
              method,
              route: route.endsWith("*") ? route.slice(0, -1) : route,
              args: [],
              argsValidator: { type: "any" },
              file,
            });
          }
          continue;
        }
        const kind = v.isQuery ? "query" : v.isMutation ? "mutation" : v.isAction ? "action" : null;
        if (!kind) continue;
        const path = `${modPath}:${name}`;
        functions.set(path, { fn: v, kind });
        out.functions.push({
          abi: 1,
          path,
          kind,
          visibility: v.isInternal ? "internal" : "public",
          export: "cvx_js_invoke",
          args: [],
          argsValidator: JSON.parse(v.exportArgs()),
          returnsValidator: JSON.parse(v.exportReturns()),
          file,
        });
      }
    }
    if (typeof app.authConfig === "function") out.auth = await authOf(app.authConfig);
    return JSON.stringify(out);
  };

  // convex/auth.config.ts -> the cvx.auth record. Its module runs now, as
  // a call would (so process.env reads the deployment's variables, which
  // Convex apps use for their issuer); a field it leaves undefined is left
  // out, and the server says which one when it deploys.
  const PROVIDER_FIELDS = ["type", "domain", "issuer", "jwks", "algorithm", "applicationID"];
  async function authOf(load) {
    cvx.call = { path: "auth.config", kind: "query", visibility: "internal", requestId: "deploy" };
    let config;
    try {
      config = (await load()).default;
    } finally {
      cvx.call = null;
    }
    if (config === null || typeof config !== "object" || !Array.isArray(config.providers))
      throw new Error("convex/auth.config.ts must export default an object with a providers array");
    return {
      abi: 1,
      providers: config.providers.map((p, i) => {
        if (p === null || typeof p !== "object") throw new Error(`convex/auth.config.ts: provider ${i + 1} is not an object`);
        const out = {};
        for (const k of PROVIDER_FIELDS) {
          if (p[k] === undefined || p[k] === null) continue;
          if (typeof p[k] !== "string") throw new Error(`convex/auth.config.ts: provider ${i + 1}'s ${k} is not a string`);
          out[k] = p[k];
        }
        return out;
      }),
    };
  }

  // ---- HTTP actions ---------------------------------------------------------

  // The host's request object (docs/abi.md "HTTP actions") -> a Request
  // whose URL is the route as an app sees it on Convex: the site's origin
  // and the path without cvx's /http prefix.
  cvx.requestFromHost = (r) => {
    const headers = new Headers();
    let hostName = "127.0.0.1";
    for (const [k, v] of r.headers || []) {
      try {
        headers.append(k, v);
      } catch {
        continue;
      }
      if (k.toLowerCase() === "host") hostName = v;
    }
    const url = "http://" + hostName + (r.path || "/") + (r.query ? "?" + r.query : "");
    const bytes = r.body && r.body.$bytes ? cvx.base64ToBytes(r.body.$bytes) : null;
    const init = { method: r.method, headers };
    if (bytes && bytes.length && r.method !== "GET" && r.method !== "HEAD") init.body = bytes;
    return new Request(url, init);
  };
  cvx.responseToHost = (response) => {
    const bytes = response._bodySync();
    return {
      status: response.status,
      headers: [...response.headers],
      body: { $bytes: cvx.bytesToBase64(bytes || new Uint8Array(0)) },
    };
  };

  async function runHttp(req) {
    if (!router) throw new Error("this app has no HTTP router (convex/http.ts)");
    const match = router.lookup(req.path, req.method);
    if (!match) return { status: 404, headers: [["content-type", "text/plain"]], body: { $bytes: btoa(`No HttpAction routed for ${req.path}`) } };
    const response = await match[0].invokeHttpAction(cvx.requestFromHost(req));
    if (!(response instanceof Response)) throw new Error("The HTTP action did not return a Response");
    await response._peekBytes();
    return cvx.responseToHost(response);
  }

  // ---- one call -------------------------------------------------------------

  // A call in two steps, so that no async function of ours sits between
  // the engine and the handler (runtime/js/engine.c settles promises):
  // start(info, args) begins it and gives what the handler gave (a promise
  // or a value); finish(value) turns that into the result's JSON. `info`
  // is the host's call info (path, kind, visibility, requestId), `args` the
  // arguments' JSON. Every call starts from the snapshot: nothing of an
  // earlier call is left to reset.
  let finisher = null;
  const asIs = (v) => v;
  const toJson = (result) => {
    if (result !== null && typeof result === "object" && typeof result.collect === "function" && typeof result.paginate === "function")
      throw new Error("Return value is a Query. Results must be retrieved with `.collect()`, `.take(n), `.unique()`, or `.first()`.");
    return JSON.stringify(lib.convexToJson(result === undefined ? null : result));
  };
  cvx.start = (info, args) => {
    cvx.call = info;
    if (info.kind === "httpAction") {
      finisher = (res) => JSON.stringify(res);
      return runHttp(JSON.parse(args));
    }
    const f = functions.get(info.path);
    if (!f) throw new Error(`Could not find function for '${info.path}'`);
    const ctx = contexts[f.kind + "/" + (info.visibility === "internal" ? "internal" : "public")];
    if (ctx && typeof f.fn._handler === "function") {
      // What the library's invoke* do, with a context made at deploy.
      finisher = toJson;
      return f.fn._handler(ctx, lib.jsonToConvex(JSON.parse(args)));
    }
    // The library's own invoke* (they give the result's JSON) take the
    // arguments array, as Convex passes it.
    finisher = asIs;
    const argv = "[" + args + "]";
    if (f.kind === "query") return f.fn.invokeQuery(argv);
    if (f.kind === "mutation") return f.fn.invokeMutation(argv);
    return f.fn.invokeAction(info.requestId || "", argv);
  };
  cvx.finish = (value) => finisher(value);

  // ctx.runQuery / ctx.runMutation from a query or mutation: the callee
  // runs in this call, in its transaction (it sees the caller's writes, as
  // in Convex), with the host checking its arguments and result as for any
  // call. A callee in the Rust module cannot run here.
  cvx.runNested = async (udfType, path, args) => {
    if (cvx.isAction()) throw new Error("runUdf is for queries and mutations; actions use ctx.runQuery etc.");
    const f = functions.get(path);
    let kind;
    try {
      kind = cvx.request("validate", { path, args });
    } catch (e) {
      if (e.code !== 4 || f) throw e; // 4: NOT_FOUND
      throw new Error(`Could not find function for '${path}'`);
    }
    if (!f)
      throw new Error(
        `ctx.run${udfType === "query" ? "Query" : "Mutation"}(${path}): ${path} is a Rust function, and cvx ` +
          "runs a function of the other language only from an action (ctx.runQuery there) or the scheduler",
      );
    if (kind !== udfType) throw new Error(`Trying to execute ${path} as ${udfType}, but it is defined as ${kind}`);
    if (cvx.kind() === "query" && kind !== "query") throw new Error("A query cannot run a mutation");
    const ctx = contexts[kind + "/public"];
    const result = await f.fn._handler(ctx, lib.jsonToConvex(args));
    const json = lib.convexToJson(result === undefined ? null : result);
    cvx.request("validate", { path, returns: json });
    return json;
  };

  // ---- errors ---------------------------------------------------------------

  // A thrown value -> the error JSON of docs/abi.md: {"message", "name"?,
  // "stack"?, "data"?}. The host prefixes "Uncaught <name>: " and maps the
  // stack's bundle positions back to the app's files.
  cvx.errorJson = (e) => {
    const out = {};
    if (e !== null && typeof e === "object") {
      if (e.ConvexErrorSymbol === Symbol.for("ConvexError")) {
        // The library serialised the data already (serializeConvexErrorData).
        out.data = JSON.parse(e.data);
      } else if (Symbol.for("ConvexError") in e) {
        out.data = lib ? lib.convexToJson(e.data === undefined ? null : e.data) : e.data === undefined ? null : e.data;
      }
      out.name = typeof e.name === "string" && e.name ? e.name : "Error";
      out.message = typeof e.message === "string" ? e.message : cvx.inspect(e);
      if (typeof e.stack === "string" && e.stack) out.stack = e.stack;
    } else {
      out.name = "Error";
      out.message = typeof e === "string" ? e : cvx.inspect(e);
    }
    return JSON.stringify(out);
  };
})();
