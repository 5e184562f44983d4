// URL and URLSearchParams, to the WHATWG URL standard where an app can
// tell the difference: special schemes, hosts, ports, credentials, paths
// with dot segments, percent-encoding, form encoding of queries.
"use strict";
(() => {
  const cvx = globalThis.__cvx;
  const host = cvx.host;
  const define = cvx.define;

  // ---- URL ------------------------------------------------------------------

  const SPECIAL = { "http:": 80, "https:": 443, "ws:": 80, "wss:": 443, "ftp:": 21, "file:": null };
  const encodeSet = (s, keep) =>
    Array.from(host.utf8Encode(s), (b) => {
      const ch = String.fromCharCode(b);
      return b > 0x20 && b < 0x7f && !keep.includes(ch) ? ch : "%" + b.toString(16).toUpperCase().padStart(2, "0");
    }).join("");
  const PATH_ENC = ' "#<>?`{}';
  const QUERY_ENC = ' "#<>';
  const FRAG_ENC = ' "<>`';
  const USER_ENC = ' "#<>?`{}/:;=@[\\]^|';

  function normalizePath(segments) {
    const out = [];
    for (const seg of segments) {
      const s = seg.toLowerCase();
      if (s === ".." || s === ".%2e" || s === "%2e." || s === "%2e%2e") out.pop();
      else if (s !== "." && s !== "%2e") out.push(seg);
    }
    const last = segments[segments.length - 1];
    if (last !== undefined && /^(\.|%2e){1,2}$/i.test(last)) out.push("");
    return out;
  }

  // Parses an absolute URL, or `input` against `base`. Returns null on
  // failure. Covers what apps build: special schemes with hosts, ports,
  // credentials, paths, queries and fragments; "opaque" URLs such as
  // mailto: and data: keep their path as written.
  function parseURL(input, base) {
    input = String(input).replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, "").replace(/[\t\n\r]/g, "");
    const m = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s.exec(input);
    let u;
    if (m) {
      const protocol = m[1].toLowerCase() + ":";
      let rest = m[2];
      u = { protocol, username: "", password: "", hostname: "", port: "", pathname: "", search: "", hash: "" };
      const special = protocol in SPECIAL;
      if (special) rest = rest.replace(/\\/g, "/");
      const hashAt = rest.indexOf("#");
      if (hashAt >= 0) {
        u.hash = "#" + encodeSet(rest.slice(hashAt + 1), FRAG_ENC);
        rest = rest.slice(0, hashAt);
      }
      const qAt = rest.indexOf("?");
      if (qAt >= 0) {
        u.search = "?" + encodeSet(rest.slice(qAt + 1), QUERY_ENC);
        rest = rest.slice(0, qAt);
      }
      if (special && base && !rest.startsWith("/") && parseURL(base, undefined)?.protocol === protocol)
        return parseURL(rest + u.search + u.hash, base);
      if (special || rest.startsWith("//")) {
        rest = rest.replace(/^\/*/, special ? "" : "").replace(/^\/\//, "");
        const slash = rest.indexOf("/");
        let authority = slash >= 0 ? rest.slice(0, slash) : rest;
        const path = slash >= 0 ? rest.slice(slash) : "";
        const at = authority.lastIndexOf("@");
        if (at >= 0) {
          const cred = authority.slice(0, at);
          authority = authority.slice(at + 1);
          const colon = cred.indexOf(":");
          u.username = encodeSet(colon >= 0 ? cred.slice(0, colon) : cred, USER_ENC);
          u.password = colon >= 0 ? encodeSet(cred.slice(colon + 1), USER_ENC) : "";
        }
        const pm = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(authority);
        if (!pm) return null;
        u.hostname = pm[1].toLowerCase();
        if (special && protocol !== "file:" && u.hostname === "") return null;
        if (/[\s#%/:<>?@[\\\]^|]/.test(u.hostname.replace(/^\[.*\]$/, "x"))) return null;
        if (pm[2] !== undefined && pm[2] !== "") {
          const port = Number(pm[2]);
          if (port > 65535) return null;
          u.port = port === SPECIAL[protocol] ? "" : String(port);
        }
        const segs = path.split("/").slice(1).map((s) => encodeSet(s, PATH_ENC));
        u.pathname = special ? "/" + normalizePath(segs).join("/") : path ? "/" + normalizePath(segs).join("/") : "";
      } else {
        u.pathname = rest.startsWith("/") ? "/" + normalizePath(rest.split("/").slice(1).map((s) => encodeSet(s, PATH_ENC))).join("/") : encodeSet(rest, "");
        u.opaque = !rest.startsWith("/");
      }
      return u;
    }
    if (base === undefined) return null;
    const b = typeof base === "object" && base !== null && "protocol" in base && "pathname" in base && !(base instanceof URL) ? base : parseURL(String(base), undefined);
    if (!b || b.opaque) return null;
    const special = b.protocol in SPECIAL;
    if (special) input = input.replace(/\\/g, "/");
    if (input.startsWith("//")) return parseURL(b.protocol + input, undefined);
    const r = { ...b, hash: "" };
    let rest = input;
    const hashAt = rest.indexOf("#");
    if (hashAt >= 0) {
      r.hash = "#" + encodeSet(rest.slice(hashAt + 1), FRAG_ENC);
      rest = rest.slice(0, hashAt);
    }
    if (rest === "") return r;
    const qAt = rest.indexOf("?");
    const path = qAt >= 0 ? rest.slice(0, qAt) : rest;
    r.search = qAt >= 0 ? "?" + encodeSet(rest.slice(qAt + 1), QUERY_ENC) : path ? "" : b.search;
    if (path) {
      const segs = path.startsWith("/")
        ? path.split("/").slice(1)
        : b.pathname.split("/").slice(1, -1).concat(path.split("/"));
      r.pathname = "/" + normalizePath(segs.map((s) => encodeSet(s, PATH_ENC))).join("/");
    }
    return r;
  }

  const formEncode = (s) =>
    Array.from(host.utf8Encode(String(s)), (b) => {
      const ch = String.fromCharCode(b);
      if (/[A-Za-z0-9*\-._]/.test(ch)) return ch;
      if (b === 0x20) return "+";
      return "%" + b.toString(16).toUpperCase().padStart(2, "0");
    }).join("");
  const formDecode = (s) => {
    const bytes = [];
    s = s.replace(/\+/g, " ");
    for (let i = 0; i < s.length; i++) {
      if (s[i] === "%" && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) {
        bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
        i += 2;
      } else {
        for (const b of host.utf8Encode(s[i] === undefined ? "" : s.codePointAt(i) > 0xffff ? s.slice(i, ++i + 1) : s[i])) bytes.push(b);
      }
    }
    return host.utf8Decode(new Uint8Array(bytes), false);
  };

  class URLSearchParams {
    #list = [];
    #url = null;
    constructor(init = "") {
      if (typeof init === "string") this.#parse(init);
      else if (init instanceof URLSearchParams) this.#list = init.#list.map((p) => [...p]);
      else if (init && typeof init[Symbol.iterator] === "function") {
        for (const pair of init) {
          const p = [...pair];
          if (p.length !== 2) throw new TypeError("Each query pair must be an iterable [name, value] tuple");
          this.#list.push([String(p[0]), String(p[1])]);
        }
      } else if (init && typeof init === "object") {
        for (const k of Object.keys(init)) this.#list.push([k, String(init[k])]);
      } else this.#parse(String(init));
    }
    #parse(s) {
      this.#list = [];
      if (s.startsWith("?")) s = s.slice(1);
      for (const part of s.split("&")) {
        if (!part) continue;
        const eq = part.indexOf("=");
        this.#list.push(eq >= 0 ? [formDecode(part.slice(0, eq)), formDecode(part.slice(eq + 1))] : [formDecode(part), ""]);
      }
    }
    static _attach(params, url, search) {
      params.#url = url;
      params.#parse(search);
    }
    #update() {
      if (this.#url) this.#url._setSearchFromParams(this.toString());
    }
    get size() {
      return this.#list.length;
    }
    append(k, v) {
      this.#list.push([String(k), String(v)]);
      this.#update();
    }
    delete(k, v) {
      k = String(k);
      this.#list = this.#list.filter(([a, b]) => a !== k || (v !== undefined && b !== String(v)));
      this.#update();
    }
    get(k) {
      const p = this.#list.find(([a]) => a === String(k));
      return p ? p[1] : null;
    }
    getAll(k) {
      return this.#list.filter(([a]) => a === String(k)).map(([, b]) => b);
    }
    has(k, v) {
      return this.#list.some(([a, b]) => a === String(k) && (v === undefined || b === String(v)));
    }
    set(k, v) {
      k = String(k);
      const i = this.#list.findIndex(([a]) => a === k);
      if (i < 0) this.#list.push([k, String(v)]);
      else {
        this.#list[i][1] = String(v);
        this.#list = this.#list.filter(([a], j) => a !== k || j === i);
      }
      this.#update();
    }
    sort() {
      this.#list.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      this.#update();
    }
    forEach(fn, thisArg) {
      for (const [k, v] of this.#list) fn.call(thisArg, v, k, this);
    }
    *entries() {
      for (const p of this.#list) yield [p[0], p[1]];
    }
    *keys() {
      for (const p of this.#list) yield p[0];
    }
    *values() {
      for (const p of this.#list) yield p[1];
    }
    [Symbol.iterator]() {
      return this.entries();
    }
    toString() {
      return this.#list.map(([k, v]) => formEncode(k) + "=" + formEncode(v)).join("&");
    }
  }

  class URL {
    #u;
    #params;
    constructor(url, base) {
      const b = base === undefined ? undefined : base instanceof URL ? base.href : String(base);
      if (b !== undefined && parseURL(b, undefined) === null) throw new TypeError(`Invalid base URL: ${b}`);
      const u = parseURL(url instanceof URL ? url.href : url, b);
      if (!u) throw new TypeError(`Invalid URL: ${url}`);
      this.#u = u;
      this.#params = new URLSearchParams();
      URLSearchParams._attach(this.#params, this, u.search);
    }
    static canParse(url, base) {
      try {
        new URL(url, base);
        return true;
      } catch {
        return false;
      }
    }
    static parse(url, base) {
      try {
        return new URL(url, base);
      } catch {
        return null;
      }
    }
    _setSearchFromParams(s) {
      this.#u.search = s ? "?" + s : "";
    }
    get href() {
      const u = this.#u;
      if (u.opaque) return u.protocol + u.pathname + u.search + u.hash;
      const cred = u.username || u.password ? u.username + (u.password ? ":" + u.password : "") + "@" : "";
      const auth = u.hostname || u.protocol in SPECIAL ? "//" + cred + this.host : "";
      return u.protocol + auth + u.pathname + u.search + u.hash;
    }
    set href(v) {
      const u = parseURL(v, undefined);
      if (!u) throw new TypeError(`Invalid URL: ${v}`);
      this.#u = u;
      URLSearchParams._attach(this.#params, this, u.search);
    }
    get origin() {
      return this.#u.protocol in SPECIAL && this.#u.protocol !== "file:" ? this.#u.protocol + "//" + this.host : "null";
    }
    get protocol() {
      return this.#u.protocol;
    }
    set protocol(v) {
      const p = String(v).replace(/:.*$/, "").toLowerCase() + ":";
      if (/^[a-z][a-z0-9+.-]*:$/.test(p) && (p in SPECIAL) === (this.#u.protocol in SPECIAL)) this.#u.protocol = p;
    }
    get username() {
      return this.#u.username;
    }
    set username(v) {
      this.#u.username = encodeSet(String(v), USER_ENC);
    }
    get password() {
      return this.#u.password;
    }
    set password(v) {
      this.#u.password = encodeSet(String(v), USER_ENC);
    }
    get host() {
      return this.#u.hostname + (this.#u.port ? ":" + this.#u.port : "");
    }
    set host(v) {
      const m = /^(\[[^\]]*\]|[^:/?#]*)(?::(\d*))?/.exec(String(v));
      if (m && m[1]) {
        this.#u.hostname = m[1].toLowerCase();
        if (m[2] !== undefined) this.port = m[2];
      }
    }
    get hostname() {
      return this.#u.hostname;
    }
    set hostname(v) {
      const h = String(v).toLowerCase();
      if (h && !/[\s#%/:<>?@\\^|]/.test(h.replace(/^\[.*\]$/, "x"))) this.#u.hostname = h;
    }
    get port() {
      return this.#u.port;
    }
    set port(v) {
      const s = String(v);
      if (s === "") this.#u.port = "";
      else if (/^\d+/.test(s) && Number(s.match(/^\d+/)[0]) <= 65535) {
        const n = Number(s.match(/^\d+/)[0]);
        this.#u.port = n === SPECIAL[this.#u.protocol] ? "" : String(n);
      }
    }
    get pathname() {
      return this.#u.pathname;
    }
    set pathname(v) {
      if (this.#u.opaque) return;
      let p = String(v);
      if (!p.startsWith("/")) p = "/" + p;
      this.#u.pathname = "/" + normalizePath(p.split("/").slice(1).map((s) => encodeSet(s, PATH_ENC))).join("/");
    }
    get search() {
      return this.#u.search.length > 1 ? this.#u.search : "";
    }
    set search(v) {
      let s = String(v);
      if (s.startsWith("?")) s = s.slice(1);
      this.#u.search = s ? "?" + encodeSet(s, QUERY_ENC) : "";
      URLSearchParams._attach(this.#params, this, this.#u.search);
    }
    get searchParams() {
      return this.#params;
    }
    get hash() {
      return this.#u.hash.length > 1 ? this.#u.hash : "";
    }
    set hash(v) {
      let s = String(v);
      if (s.startsWith("#")) s = s.slice(1);
      this.#u.hash = s ? "#" + encodeSet(s, FRAG_ENC) : "";
    }
    toString() {
      return this.href;
    }
    toJSON() {
      return this.href;
    }
  }
  define("URL", URL);
  define("URLSearchParams", URLSearchParams);
})();
