// The `Convex` global: the one object through which the `convex` npm
// library (convex/server) reaches its host. Each operation the library
// names (its syscalls, e.g. "1.0/get", "1.0/queryStreamNext") is
// translated here into the cvx_1 host call that does the work; the list
// and each one's status is in docs/abi.md ("TypeScript and JavaScript").
//
// The library speaks convex-encoded JSON, as the host does, so values
// pass through unchanged; what changes is the shape of requests and
// answers.
"use strict";
(() => {
  const cvx = globalThis.__cvx;
  const request = cvx.request;
  const host = cvx.host;

  // An operation's answer already in JSON text (asyncSyscall passes it on).
  class RawJson {
    constructor(json) {
      this.json = json;
    }
  }
  const DONE = new RawJson('{"value":null,"done":true}');

  const needsTxn = (what) => {
    if (cvx.isAction())
      throw new Error(`${what} is not available in actions; use ctx.runQuery or ctx.runMutation`);
  };

  // A function reference as the library sends it ({name} | {functionHandle}
  // | {reference}) -> a cvx path.
  function pathOf(a) {
    if (typeof a.name === "string") return a.name;
    if (typeof a.functionHandle === "string") {
      if (!a.functionHandle.startsWith("function://")) throw new Error(`Invalid function handle ${a.functionHandle}`);
      return a.functionHandle.slice("function://".length);
    }
    if (a.reference !== undefined) throw new Error("Components are not supported by cvx: call the function by its path");
    throw new Error("Missing function name");
  }
  cvx.pathOf = pathOf;

  // ---- queries ------------------------------------------------------------

  const RANGE_OPS = { Eq: "eq", Gt: "gt", Gte: "gte", Lt: "lt", Lte: "lte" };

  // A Convex filter expression -> the host's (docs/abi.md, "A query
  // request"). `undefined` as a literal is a missing field.
  function filterOf(e) {
    if (e === null || typeof e !== "object") throw new Error("Invalid filter expression");
    if ("$field" in e) return { field: e.$field };
    if ("$literal" in e) {
      const v = e.$literal;
      if (v !== null && typeof v === "object" && "$undefined" in v) return { undefined: true };
      return { literal: v };
    }
    const keys = Object.keys(e);
    if (keys.length !== 1 || !keys[0].startsWith("$")) throw new Error(`Invalid filter expression ${JSON.stringify(e)}`);
    const op = keys[0].slice(1);
    const arg = e[keys[0]];
    const args = Array.isArray(arg) ? arg.map(filterOf) : [filterOf(arg)];
    return { op, args };
  }

  // A SerializedQuery -> { base: host query without limit/cursor, limit }.
  function queryOf(query) {
    const src = query.source;
    const base = {};
    if (src.type === "FullTableScan") {
      base.table = src.tableName;
    } else if (src.type === "IndexRange") {
      const dot = src.indexName.indexOf(".");
      base.table = src.indexName.slice(0, dot);
      base.index = src.indexName.slice(dot + 1);
      base.range = src.range.map((r) => {
        const op = RANGE_OPS[r.type];
        if (!op) throw new Error(`Invalid index range expression type ${r.type}`);
        const c = { field: r.fieldPath, op };
        if (r.value !== null && typeof r.value === "object" && "$undefined" in r.value) c.undefined = true;
        else c.value = r.value;
        return c;
      });
    } else if (src.type === "Search") {
      throw new Error("Search indexes (withSearchIndex) are not supported by cvx yet");
    } else {
      throw new Error(`Unknown query source ${src.type}`);
    }
    if (src.order) base.order = src.order;
    const filters = [];
    let limit;
    for (const op of query.operators) {
      if ("filter" in op) {
        if (limit !== undefined) throw new Error("cvx does not support a filter after a limit");
        filters.push(filterOf(op.filter));
      } else if ("limit" in op) {
        limit = limit === undefined ? op.limit : Math.min(limit, op.limit);
      }
    }
    if (filters.length === 1) base.filter = filters[0];
    else if (filters.length > 1) base.filter = { op: "and", args: filters };
    return { base, limit };
  }

  // Open query streams of this call (queryStream .. queryCleanup).
  const streams = new Map();
  let nextStream = 1;

  // A page asked for with "lines" has each document on a line of its own
  // (docs/abi.md): cut apart without parsing, each goes to the library as
  // the JSON text it parses anyway. The first and last lines make the
  // page's other fields.
  function readPage(req) {
    const parts = host.call("db_query", JSON.stringify({ ...req, lines: true })).split("\n");
    const docs = parts.slice(1, parts.length - 1);
    for (let i = 0; i < docs.length - 1; i++) docs[i] = docs[i].slice(0, -1); // the ","
    return { head: JSON.parse(parts[0] + parts[parts.length - 1]), docs };
  }

  function streamNext(s) {
    if (s.next === s.buffer.length && !s.done) {
      const remaining = s.limit === undefined ? Infinity : s.limit - s.returned;
      if (remaining <= 0) {
        s.done = true;
      } else {
        // Small first reads keep a .first() cheap; a collect() grows.
        const batch = Math.min(remaining, s.batch);
        s.batch = Math.min(s.batch * 4, 1024);
        const { head, docs } = readPage({ ...s.base, limit: batch, cursor: s.cursor });
        s.buffer = docs;
        s.next = 0;
        s.cursor = head.continueCursor;
        if (head.isDone) s.done = true;
      }
    }
    if (s.next === s.buffer.length) return DONE;
    s.returned++;
    const doc = s.buffer[s.next];
    s.buffer[s.next++] = undefined;
    return new RawJson('{"value":' + doc + ',"done":false}');
  }

  // ---- the operations ---------------------------------------------------------

  const syncOps = {
    "1.0/queryStream": ({ query }) => {
      needsTxn("ctx.db");
      const { base, limit } = queryOf(query);
      const id = nextStream++;
      streams.set(id, { base, limit, cursor: null, buffer: [], next: 0, done: false, returned: 0, batch: limit === undefined ? 16 : limit });
      return { queryId: id };
    },
    "1.0/queryCleanup": ({ queryId }) => streams.delete(queryId),
    "1.0/db/normalizeId": (json) => (needsTxn("ctx.db"), new RawJson('{"id":' + host.call("db_normalize_id", json) + "}")),
  };

  const asyncOps = {
    // The host takes these requests as the library sends them (docs/abi.md
    // §3), so the JSON goes through untouched: no parse or stringify here.
    "1.0/get": (json) => (needsTxn("ctx.db"), new RawJson(host.call("db_get", json))),
    "1.0/insert": (json) => (needsTxn("ctx.db"), new RawJson('{"_id":' + host.call("db_insert", json) + "}")),
    // `undefined` in a patch arrives as {"$undefined": null}: those fields
    // become the host's "remove" list.
    "1.0/shallowMerge": (json) => {
      needsTxn("ctx.db");
      if (json.includes('"$undefined"')) {
        const req = JSON.parse(json);
        const remove = [];
        for (const k of Object.keys(req.value || {})) {
          const v = req.value[k];
          if (v !== null && typeof v === "object" && "$undefined" in v) {
            remove.push(k);
            delete req.value[k];
          }
        }
        req.remove = remove;
        json = JSON.stringify(req);
      }
      host.call("db_patch", json);
      return null;
    },
    "1.0/replace": (json) => (needsTxn("ctx.db"), host.call("db_replace", json), null),
    "1.0/remove": (json) => (needsTxn("ctx.db"), host.call("db_delete", json), null),
    "1.0/queryStreamNext": ({ queryId }) => {
      const s = streams.get(queryId);
      if (!s) throw new Error("This query is closed and can't emit any more values.");
      return streamNext(s);
    },
    "1.0/queryPage": ({ query, cursor, endCursor, pageSize, maximumRowsRead, maximumBytesRead }) => {
      needsTxn("ctx.db");
      const { base, limit } = queryOf(query);
      if (limit !== undefined) throw new Error("paginate() cannot be combined with take() or limit()");
      const req = { ...base, limit: pageSize, cursor: cursor ?? null, paginate: true };
      if (endCursor) req.endCursor = endCursor;
      if (maximumRowsRead) req.maximumRowsRead = maximumRowsRead;
      if (maximumBytesRead) req.maximumBytesRead = maximumBytesRead;
      const res = request("db_query", req);
      return {
        page: res.page,
        isDone: res.isDone,
        continueCursor: res.continueCursor,
        splitCursor: res.splitCursor ?? null,
        pageStatus: res.pageStatus ?? null,
      };
    },
    "1.0/count": (json) => (needsTxn("ctx.db"), new RawJson(host.call("db_count", json))),
    "1.0/getUserIdentity": () => request("auth_identity", {}),

    // Scheduling: the library sends seconds since the epoch.
    "1.0/schedule": (a) => request("schedule", { path: pathOf(a), args: a.args, atMs: a.ts * 1000 }),
    "1.0/cancel_job": ({ id }) => (request("schedule_cancel", { id }), null),
    "1.0/actions/schedule": (a) => request("schedule", { path: pathOf(a), args: a.args, atMs: a.ts * 1000 }),
    "1.0/actions/cancel_job": ({ id }) => (request("schedule_cancel", { id }), null),

    "1.0/actions/query": (a) => request("run_query", { path: pathOf(a), args: a.args }),
    "1.0/actions/mutation": (a) => request("run_mutation", { path: pathOf(a), args: a.args }),
    "1.0/actions/action": (a) => request("run_action", { path: pathOf(a), args: a.args }),
    // ctx.runQuery / ctx.runMutation in a query or mutation: the callee
    // runs here, in this transaction (30_app.js).
    "1.0/runUdf": (a) => cvx.runNested(a.udfType, pathOf(a), a.args),
    "1.0/createFunctionHandle": (a) => "function://" + pathOf(a),

    "1.0/storageGetUrl": ({ storageId }) => request("storage_get_url", { storageId }),
    "1.0/storageGetMetadata": ({ storageId }) => request("storage_metadata", { storageId }),
    "1.0/storageGenerateUploadUrl": () => request("storage_generate_upload_url", {}),
    "1.0/storageDelete": ({ storageId }) => (request("storage_delete", { storageId }), null),

    "1.0/getFunctionMetadata": () => ({ name: cvx.call.path, componentPath: "" }),
    "1.0/getRequestMetadata": () => ({
      ip: null,
      userAgent: null,
      requestId: cvx.call.requestId,
      scheduledFunctionId: null,
      authToken: null,
    }),
    "1.0/getDeploymentMetadata": () => ({ name: "cvx", region: null, class: "self-hosted" }),
    "1.0/auditLog": () => null,
    "1.0/actions/vectorSearch": () => {
      throw new Error("Vector search is not supported by cvx yet");
    },
  };

  const jsOps = {
    "storage/storeBlob": async ({ blob, options }) => {
      if (!(blob instanceof Blob)) throw new Error("storage.store() expects a Blob");
      const bytes = cvx.blobBytes(blob);
      if (options && options.sha256) {
        const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
        const b64 = cvx.bytesToBase64(digest);
        if (b64 !== options.sha256)
          throw new Error(`Hash mismatch: the Blob's SHA-256 is ${b64}, not ${options.sha256}`);
      }
      const meta = blob.type ? { contentType: blob.type } : {};
      return JSON.parse(cvx.host.storeFile(JSON.stringify(meta), bytes));
    },
    "storage/getBlob": ({ storageId }) => {
      let bytes;
      try {
        bytes = cvx.host.callBytes(JSON.stringify({ storageId }));
      } catch (e) {
        if (e.code === 4) return null; // NOT_FOUND
        throw e;
      }
      const meta = request("storage_metadata", { storageId });
      return new Blob([bytes], { type: (meta && meta.contentType) || "" });
    },
    // HTTP actions (httpRouter's runRequest): the host's request and
    // response objects <-> Request and Response.
    requestFromConvexJson: ({ convexJson }) => cvx.requestFromHost(convexJson),
    convexJsonFromResponse: ({ response }) => cvx.responseToHost(response),
  };

  // Operations that take the library's JSON text as it is.
  const rawOps = new Set(["1.0/get", "1.0/insert", "1.0/shallowMerge", "1.0/replace", "1.0/remove", "1.0/db/normalizeId", "1.0/count"]);

  const unknown = (op) => new Error(`Unknown operation ${op}: this version of cvx does not provide it`);

  Object.defineProperty(globalThis, "Convex", {
    value: Object.freeze({
      syscall(op, json) {
        const f = syncOps[op];
        if (!f) throw unknown(op);
        const r = f(rawOps.has(op) ? json : JSON.parse(json));
        return r instanceof RawJson ? r.json : JSON.stringify(r);
      },
      asyncSyscall(op, json) {
        try {
          const f = asyncOps[op];
          if (!f) throw unknown(op);
          const r = f(rawOps.has(op) ? json : JSON.parse(json));
          if (r instanceof Promise) return r.then((v) => JSON.stringify(v === undefined ? null : v));
          return Promise.resolve(r instanceof RawJson ? r.json : JSON.stringify(r === undefined ? null : r));
        } catch (e) {
          return Promise.reject(e);
        }
      },
      jsSyscall(op, args) {
        const f = jsOps[op];
        if (!f) throw unknown(op);
        return f(args);
      },
    }),
    enumerable: false,
  });
})();
