// HTTP for actions: Headers, Blob, File, FormData, the part of
// ReadableStream a body needs, Request, Response, fetch (through the
// host, actions only, as in Convex) and AbortController.
"use strict";
(() => {
  const cvx = globalThis.__cvx;
  const host = cvx.host;
  const define = cvx.define;
  const toU8 = cvx.toU8;

  // ---- Headers -------------------------------------------------------------

  const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
  const normValue = (v) => String(v).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
  class Headers {
    #map = new Map(); // lowercased name -> [values]
    #cookies = [];
    constructor(init) {
      if (init instanceof Headers) init.forEach((v, k) => this.append(k, v));
      else if (Array.isArray(init) || (init && typeof init[Symbol.iterator] === "function")) {
        for (const pair of init) {
          const p = [...pair];
          if (p.length !== 2) throw new TypeError("Headers pairs must be [name, value]");
          this.append(p[0], p[1]);
        }
      } else if (init && typeof init === "object") {
        for (const k of Object.keys(init)) this.append(k, init[k]);
      }
    }
    #check(name) {
      name = String(name);
      if (!TOKEN.test(name)) throw new TypeError(`Header name must be a valid HTTP token ["${name}"]`);
      return name.toLowerCase();
    }
    append(name, value) {
      const k = this.#check(name);
      const v = normValue(value);
      if (/[\0\r\n]/.test(v)) throw new TypeError(`Invalid header value for "${name}"`);
      if (k === "set-cookie") this.#cookies.push(v);
      else if (this.#map.has(k)) this.#map.get(k).push(v);
      else this.#map.set(k, [v]);
    }
    delete(name) {
      const k = this.#check(name);
      if (k === "set-cookie") this.#cookies = [];
      this.#map.delete(k);
    }
    get(name) {
      const k = this.#check(name);
      if (k === "set-cookie") return this.#cookies.length ? this.#cookies.join(", ") : null;
      const v = this.#map.get(k);
      return v ? v.join(", ") : null;
    }
    getSetCookie() {
      return [...this.#cookies];
    }
    has(name) {
      const k = this.#check(name);
      return k === "set-cookie" ? this.#cookies.length > 0 : this.#map.has(k);
    }
    set(name, value) {
      const k = this.#check(name);
      const v = normValue(value);
      if (/[\0\r\n]/.test(v)) throw new TypeError(`Invalid header value for "${name}"`);
      if (k === "set-cookie") this.#cookies = [v];
      else this.#map.set(k, [v]);
    }
    forEach(fn, thisArg) {
      for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this);
    }
    *entries() {
      const names = [...this.#map.keys(), ...(this.#cookies.length ? ["set-cookie"] : [])].sort();
      for (const k of names) {
        if (k === "set-cookie") for (const c of this.#cookies) yield [k, c];
        else yield [k, this.#map.get(k).join(", ")];
      }
    }
    *keys() {
      for (const [k] of this.entries()) yield k;
    }
    *values() {
      for (const [, v] of this.entries()) yield v;
    }
    [Symbol.iterator]() {
      return this.entries();
    }
  }
  define("Headers", Headers);

  // ---- Blob, File, FormData ------------------------------------------------

  class Blob {
    #bytes;
    #type;
    constructor(parts = [], options = {}) {
      const chunks = [];
      for (const p of parts) {
        if (p instanceof Blob) chunks.push(p.#bytes);
        else if (p instanceof ArrayBuffer || ArrayBuffer.isView(p)) chunks.push(toU8(p).slice());
        else chunks.push(host.utf8Encode(String(p)));
      }
      const n = chunks.reduce((s, c) => s + c.length, 0);
      this.#bytes = new Uint8Array(n);
      let off = 0;
      for (const c of chunks) {
        this.#bytes.set(c, off);
        off += c.length;
      }
      const t = options.type === undefined ? "" : String(options.type);
      this.#type = /^[\x20-\x7e]*$/.test(t) ? t.toLowerCase() : "";
    }
    static _bytes(blob) {
      return blob.#bytes;
    }
    get size() {
      return this.#bytes.length;
    }
    get type() {
      return this.#type;
    }
    async arrayBuffer() {
      return this.#bytes.slice().buffer;
    }
    async bytes() {
      return this.#bytes.slice();
    }
    async text() {
      return host.utf8Decode(this.#bytes, false);
    }
    slice(start = 0, end = this.#bytes.length, type = "") {
      const n = this.#bytes.length;
      const rel = (x) => (x < 0 ? Math.max(n + x, 0) : Math.min(x, n));
      return new Blob([this.#bytes.subarray(rel(start), Math.max(rel(start), rel(end)))], { type });
    }
    stream() {
      return cvx.streamOf(this.#bytes);
    }
    get [Symbol.toStringTag]() {
      return "Blob";
    }
  }
  class File extends Blob {
    #name;
    #lastModified;
    constructor(parts, name, options = {}) {
      super(parts, options);
      this.#name = String(name);
      this.#lastModified = options.lastModified === undefined ? Date.now() : Number(options.lastModified);
    }
    get name() {
      return this.#name;
    }
    get lastModified() {
      return this.#lastModified;
    }
    get [Symbol.toStringTag]() {
      return "File";
    }
  }
  define("Blob", Blob);
  define("File", File);
  cvx.blobBytes = (b) => Blob._bytes(b);

  class FormData {
    #list = [];
    #entry(name, value, filename) {
      if (value instanceof Blob) {
        if (!(value instanceof File) || filename !== undefined)
          value = new File([value], filename !== undefined ? filename : value instanceof File ? value.name : "blob", { type: value.type });
        return [String(name), value];
      }
      return [String(name), String(value)];
    }
    append(name, value, filename) {
      this.#list.push(this.#entry(name, value, filename));
    }
    delete(name) {
      this.#list = this.#list.filter(([k]) => k !== String(name));
    }
    get(name) {
      const e = this.#list.find(([k]) => k === String(name));
      return e ? e[1] : null;
    }
    getAll(name) {
      return this.#list.filter(([k]) => k === String(name)).map(([, v]) => v);
    }
    has(name) {
      return this.#list.some(([k]) => k === String(name));
    }
    set(name, value, filename) {
      const e = this.#entry(name, value, filename);
      const i = this.#list.findIndex(([k]) => k === e[0]);
      if (i < 0) this.#list.push(e);
      else {
        this.#list[i] = e;
        this.#list = this.#list.filter(([k], j) => k !== e[0] || j === i);
      }
    }
    forEach(fn, thisArg) {
      for (const [k, v] of this.#list) fn.call(thisArg, v, k, this);
    }
    *entries() {
      for (const e of this.#list) yield [e[0], e[1]];
    }
    *keys() {
      for (const e of this.#list) yield e[0];
    }
    *values() {
      for (const e of this.#list) yield e[1];
    }
    [Symbol.iterator]() {
      return this.entries();
    }
  }
  define("FormData", FormData);

  // multipart/form-data and x-www-form-urlencoded bodies.
  function encodeMultipart(fd) {
    const boundary = "----cvxFormBoundary" + Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0")).join("");
    const parts = [];
    const esc = (s) => s.replace(/\r/g, "%0D").replace(/\n/g, "%0A").replace(/"/g, "%22");
    for (const [k, v] of fd) {
      if (typeof v === "string") {
        parts.push(`--${boundary}\r\nContent-Disposition: form-data; name="${esc(k)}"\r\n\r\n${v}\r\n`);
      } else {
        parts.push(`--${boundary}\r\nContent-Disposition: form-data; name="${esc(k)}"; filename="${esc(v.name)}"\r\nContent-Type: ${v.type || "application/octet-stream"}\r\n\r\n`);
        parts.push(Blob._bytes(v));
        parts.push("\r\n");
      }
    }
    parts.push(`--${boundary}--\r\n`);
    return { bytes: Blob._bytes(new Blob(parts)), type: "multipart/form-data; boundary=" + boundary };
  }
  function decodeMultipart(bytes, contentType) {
    const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
    if (!m) throw new TypeError("Could not parse content as FormData: no boundary");
    const boundary = host.utf8Encode("--" + (m[1] || m[2]));
    const fd = new FormData();
    const find = (hay, needle, from) => {
      outer: for (let i = from; i <= hay.length - needle.length; i++) {
        for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
        return i;
      }
      return -1;
    };
    let pos = find(bytes, boundary, 0);
    while (pos >= 0) {
      let start = pos + boundary.length;
      if (bytes[start] === 45 && bytes[start + 1] === 45) break;
      start += 2;
      const next = find(bytes, boundary, start);
      if (next < 0) break;
      const part = bytes.subarray(start, next - 2);
      const sep = find(part, host.utf8Encode("\r\n\r\n"), 0);
      const head = host.utf8Decode(part.subarray(0, sep < 0 ? 0 : sep), false);
      const body = part.subarray(sep < 0 ? 0 : sep + 4);
      const name = /name="([^"]*)"/i.exec(head);
      const filename = /filename="([^"]*)"/i.exec(head);
      const type = /content-type:\s*([^\r\n]*)/i.exec(head);
      if (name) {
        if (filename) fd.append(name[1], new File([body], filename[1], { type: type ? type[1] : "" }));
        else fd.append(name[1], host.utf8Decode(body, false));
      }
      pos = next;
    }
    return fd;
  }

  // ---- streams (the part a Body needs) --------------------------------------

  // A ReadableStream of Uint8Array chunks, enough for `for await` over a
  // body, getReader().read(), and piping a body into a Response.
  class ReadableStream {
    #chunks;
    #locked = false;
    #source;
    constructor(source = {}) {
      this.#chunks = [];
      let closed = false;
      const controller = {
        enqueue: (c) => this.#chunks.push(c),
        close: () => (closed = true),
        error: (e) => {
          throw e;
        },
        get desiredSize() {
          return 1;
        },
      };
      this.#source = { pull: source.pull ? () => source.pull(controller) : null, isClosed: () => closed };
      if (source.start) source.start(controller);
    }
    get locked() {
      return this.#locked;
    }
    getReader() {
      if (this.#locked) throw new TypeError("ReadableStream is locked");
      this.#locked = true;
      return {
        read: async () => {
          while (this.#chunks.length === 0 && !this.#source.isClosed() && this.#source.pull) await this.#source.pull();
          if (this.#chunks.length) return { value: this.#chunks.shift(), done: false };
          return { value: undefined, done: true };
        },
        releaseLock: () => (this.#locked = false),
        cancel: async () => {
          this.#chunks = [];
        },
        closed: Promise.resolve(),
      };
    }
    async cancel() {
      this.#chunks = [];
    }
    async *[Symbol.asyncIterator]() {
      const r = this.getReader();
      for (;;) {
        const { value, done } = await r.read();
        if (done) return;
        yield value;
      }
    }
    static _readAll = async (stream) => {
      const parts = [];
      for await (const c of stream) parts.push(typeof c === "string" ? host.utf8Encode(c) : toU8(c, "stream chunk"));
      return Blob._bytes(new Blob(parts));
    };
  }
  define("ReadableStream", ReadableStream);
  cvx.streamOf = (bytes) =>
    new ReadableStream({
      start(c) {
        if (bytes.length) c.enqueue(bytes);
        c.close();
      },
    });

  // ---- Request, Response ---------------------------------------------------

  // The body of a Request or Response: bytes once extracted, read once.
  function extractBody(body, headers) {
    if (body === null || body === undefined) return null;
    let bytes, type = null;
    if (typeof body === "string") (bytes = host.utf8Encode(body)), (type = "text/plain;charset=UTF-8");
    else if (body instanceof URLSearchParams) (bytes = host.utf8Encode(body.toString())), (type = "application/x-www-form-urlencoded;charset=UTF-8");
    else if (body instanceof FormData) ({ bytes, type } = encodeMultipart(body));
    else if (body instanceof Blob) (bytes = Blob._bytes(body)), (type = body.type || null);
    else if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) bytes = toU8(body).slice();
    else if (body instanceof ReadableStream) return { stream: body };
    else (bytes = host.utf8Encode(String(body))), (type = "text/plain;charset=UTF-8");
    if (type && !headers.has("content-type")) headers.set("content-type", type);
    return { bytes };
  }

  const BodyMixin = (Base) =>
    class extends Base {
      #body;
      #used = false;
      _initBody(body, headers) {
        this.#body = extractBody(body, headers);
      }
      get body() {
        if (!this.#body) return null;
        if (!this.#body.stream) this.#body = { stream: cvx.streamOf(this.#body.bytes) };
        return this.#body.stream;
      }
      get bodyUsed() {
        return this.#used;
      }
      async _bytes() {
        if (this.#used) throw new TypeError("Body is unusable: Body has already been read");
        this.#used = true;
        if (!this.#body) return new Uint8Array(0);
        if (this.#body.stream) return await ReadableStream._readAll(this.#body.stream);
        return this.#body.bytes;
      }
      // The bytes without consuming the body, for handing a body to the
      // host (fetch, an HTTP action's response); null when there is none.
      async _peekBytes() {
        if (!this.#body) return null;
        if (this.#body.stream) this.#body = { bytes: await ReadableStream._readAll(this.#body.stream) };
        return this.#body.bytes;
      }
      _bodySync() {
        if (!this.#body) return null;
        if (this.#body.stream) throw new TypeError("a streamed body must be read before it is returned");
        return this.#body.bytes;
      }
      _cloneBody() {
        if (this.#body && this.#body.stream) throw new TypeError("cannot clone a streamed body");
        return this.#body ? this.#body.bytes.slice() : null;
      }
      async arrayBuffer() {
        return (await this._bytes()).slice().buffer;
      }
      async bytes() {
        return (await this._bytes()).slice();
      }
      async text() {
        return host.utf8Decode(await this._bytes(), false);
      }
      async json() {
        return JSON.parse(await this.text());
      }
      async blob() {
        return new Blob([await this._bytes()], { type: this.headers.get("content-type") || "" });
      }
      async formData() {
        const type = this.headers.get("content-type") || "";
        const bytes = await this._bytes();
        if (/^multipart\/form-data/i.test(type)) return decodeMultipart(bytes, type);
        if (/^application\/x-www-form-urlencoded/i.test(type)) {
          const fd = new FormData();
          for (const [k, v] of new URLSearchParams(host.utf8Decode(bytes, false))) fd.append(k, v);
          return fd;
        }
        throw new TypeError(`Could not parse content as FormData (content-type ${type || "missing"})`);
      }
    };

  const METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"];
  class Request extends BodyMixin(Object) {
    #url;
    #method;
    #headers;
    #signal;
    #redirect;
    constructor(input, init = {}) {
      super();
      let src = null;
      if (input instanceof Request) src = input;
      const url = src ? src.url : new URL(String(input)).href;
      let method = init.method !== undefined ? String(init.method) : src ? src.method : "GET";
      if (METHODS.includes(method.toUpperCase())) method = method.toUpperCase();
      if (!TOKEN.test(method)) throw new TypeError(`'${method}' is not a valid HTTP method.`);
      this.#url = url;
      this.#method = method;
      this.#headers = new Headers(init.headers !== undefined ? init.headers : src ? src.headers : undefined);
      this.#signal = init.signal || (src ? src.signal : new AbortController().signal);
      this.#redirect = init.redirect || (src ? src.redirect : "follow");
      const body = init.body !== undefined ? init.body : src ? src._cloneBody() : null;
      if (body !== null && body !== undefined && (method === "GET" || method === "HEAD"))
        throw new TypeError("Request with GET/HEAD method cannot have body.");
      this._initBody(body, this.#headers);
    }
    get url() {
      return this.#url;
    }
    get method() {
      return this.#method;
    }
    get headers() {
      return this.#headers;
    }
    get signal() {
      return this.#signal;
    }
    get redirect() {
      return this.#redirect;
    }
    clone() {
      return new Request(this);
    }
  }
  class Response extends BodyMixin(Object) {
    #status;
    #statusText;
    #headers;
    #url = "";
    #redirected = false;
    #type = "default";
    constructor(body = null, init = {}) {
      super();
      const status = init.status === undefined ? 200 : Number(init.status);
      if (!Number.isInteger(status) || status < 200 || status > 599)
        throw new RangeError(`The status provided (${init.status}) is outside the range [200, 599].`);
      if (body !== null && [101, 204, 205, 304].includes(status)) throw new TypeError("Response with null body status cannot have body");
      this.#status = status;
      this.#statusText = init.statusText === undefined ? "" : String(init.statusText);
      this.#headers = new Headers(init.headers);
      this._initBody(body, this.#headers);
    }
    static _fromFetch(status, headers, bytes, url, redirected) {
      const r = new Response(null, { headers });
      r.#status = status;
      r._initBody(bytes.length ? bytes : null, r.#headers);
      r.#url = url;
      r.#redirected = redirected;
      r.#type = "basic";
      return r;
    }
    static json(data, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
      return new Response(JSON.stringify(data), { ...init, headers });
    }
    static redirect(url, status = 302) {
      if (![301, 302, 303, 307, 308].includes(status)) throw new RangeError("Invalid status code");
      return new Response(null, { status, headers: { location: new URL(url).href } });
    }
    static error() {
      const r = new Response(null, { status: 200 });
      r.#status = 0;
      r.#type = "error";
      return r;
    }
    get status() {
      return this.#status;
    }
    get ok() {
      return this.#status >= 200 && this.#status < 300;
    }
    get statusText() {
      return this.#statusText;
    }
    get headers() {
      return this.#headers;
    }
    get url() {
      return this.#url;
    }
    get redirected() {
      return this.#redirected;
    }
    get type() {
      return this.#type;
    }
    clone() {
      const r = new Response(this._cloneBody(), { status: this.#status, statusText: this.#statusText, headers: this.#headers });
      r.#url = this.#url;
      r.#type = this.#type;
      return r;
    }
  }
  define("Request", Request);
  define("Response", Response);

  // ---- fetch --------------------------------------------------------------

  async function fetch(input, init) {
    if (!cvx.isAction())
      throw new Error(
        cvx.kind() === "load"
          ? "Can't use fetch() at the top level of a module: call it from an action."
          : "Can't use fetch() in queries and mutations. Please consider using an action. See https://docs.convex.dev/functions/actions for more details.",
      );
    const req = new Request(input, init);
    if (req.signal.aborted) throw req.signal.reason;
    const bytes = await req._peekBytes();
    const request = {
      url: req.url,
      method: req.method,
      headers: [...req.headers],
    };
    if (bytes && bytes.length) request.body = { $bytes: cvx.bytesToBase64(bytes) };
    if (req.redirect === "error" || req.redirect === "manual") request.redirect = req.redirect;
    let res;
    try {
      res = cvx.request("http_fetch", request);
    } catch (e) {
      throw new TypeError(`fetch failed: ${e.message}`);
    }
    const body = res.body && res.body.$bytes !== undefined ? cvx.base64ToBytes(res.body.$bytes) : new Uint8Array(0);
    return Response._fromFetch(res.status, res.headers, body, res.url || req.url, !!res.redirected);
  }
  define("fetch", fetch);

  // ---- AbortController ------------------------------------------------------

  class AbortSignal {
    aborted = false;
    reason = undefined;
    onabort = null;
    #listeners = [];
    addEventListener(type, fn) {
      if (type === "abort") this.#listeners.push(fn);
    }
    removeEventListener(type, fn) {
      this.#listeners = this.#listeners.filter((f) => f !== fn);
    }
    throwIfAborted() {
      if (this.aborted) throw this.reason;
    }
    _abort(reason) {
      if (this.aborted) return;
      this.aborted = true;
      this.reason = reason === undefined ? new DOMException("This operation was aborted", "AbortError") : reason;
      const ev = { type: "abort", target: this };
      if (this.onabort) this.onabort(ev);
      for (const f of this.#listeners) f(ev);
    }
    static abort(reason) {
      const s = new AbortSignal();
      s._abort(reason);
      return s;
    }
    static timeout(ms) {
      const s = new AbortSignal();
      setTimeout(() => s._abort(new DOMException("The operation timed out.", "TimeoutError")), ms);
      return s;
    }
  }
  class AbortController {
    signal = new AbortSignal();
    abort(reason) {
      this.signal._abort(reason);
    }
  }
  define("AbortSignal", AbortSignal);
  define("AbortController", AbortController);
})();
