// A loopback OpenID Connect issuer for the authentication tests, with node's
// built-ins only: per-run keys (RSA 2048 for RS256, P-256 for ES256, each
// with a kid), the discovery document and the JWKS served over plain http
// on 127.0.0.1, compact JWTs signed with them, tokens forged the ways an
// attacker would, key rotation, and counts of what the server fetched.
// customJwtKeys() makes the other kind of provider, whose JWKS is a data:
// URI in auth.config.ts instead of a URL.
import http from "node:http";
import { createHmac, generateKeyPairSync, randomBytes, sign as cryptoSign } from "node:crypto";

const now = () => Math.floor(Date.now() / 1000);
export const b64url = (buf) => Buffer.from(buf).toString("base64url");
const part = (obj) => b64url(JSON.stringify(obj));

/** A signing key: { kid, alg, privateKey, publicKey, jwk }. */
export function makeKey(alg = "RS256", kid = `${alg.toLowerCase()}-${randomBytes(6).toString("hex")}`) {
  const { privateKey, publicKey } =
    alg === "RS256"
      ? generateKeyPairSync("rsa", { modulusLength: 2048 })
      : alg === "ES256"
        ? generateKeyPairSync("ec", { namedCurve: "P-256" })
        : (() => {
            throw new Error(`makeKey: no ${alg}`);
          })();
  return { kid, alg, privateKey, publicKey, jwk: { ...publicKey.export({ format: "jwk" }), kid, alg, use: "sig" } };
}

/** The JWS signature of `data` (a string) for RS256 or ES256; ES256 in
 * JOSE's raw r||s form, as RFC 7518 wants it, not DER. */
function signature(alg, key, data) {
  if (alg === "RS256") return cryptoSign("sha256", Buffer.from(data), key);
  if (alg === "ES256") return cryptoSign("sha256", Buffer.from(data), { key, dsaEncoding: "ieee-p1363" });
  throw new Error(`signature: no ${alg}`);
}

/** A compact JWT of `claims` signed with `key` (from makeKey). `header`
 * entries override or (set to undefined) remove the header's. */
export function signWith(key, claims, { header = {} } = {}) {
  const h = { alg: key.alg, typ: "JWT", kid: key.kid, ...header };
  const input = `${part(h)}.${part(claims)}`;
  return `${input}.${b64url(signature(key.alg, key.privateKey, input))}`;
}

/** The JWKS document of some keys. */
export const jwksOf = (keys) => ({ keys: keys.map((k) => k.jwk) });

/** The registered claims of a token from `iss` for `aud`, then `claims`.
 * Options, in seconds relative to now: expiresIn (default 3600; null: no
 * exp), notBefore (sets nbf), issuedAt (default 0; null: no iat). A claim
 * given as undefined in `claims` is left out. */
function payload(iss, aud, claims, { expiresIn = 3600, notBefore, issuedAt = 0 } = {}) {
  const t = now();
  const p = { iss, ...(aud !== undefined && { aud }), ...(issuedAt !== null && { iat: t + issuedAt }) };
  if (expiresIn !== null) p.exp = t + expiresIn;
  if (notBefore !== undefined) p.nbf = t + notBefore;
  p.jti = randomBytes(8).toString("hex"); // every token distinct, as an IdP's are
  return JSON.parse(JSON.stringify({ ...p, ...claims }));
}

/** An OIDC issuer on 127.0.0.1 (an ephemeral port). Its `url` is the
 * `issuer` of its discovery document and of its tokens, and the `domain`
 * of the provider in auth.config.ts. */
export async function startIssuer({ audience = "cvx-test" } = {}) {
  let rsa = makeKey("RS256");
  const ec = makeKey("ES256");
  let published = [rsa, ec];
  const counts = { discovery: 0, jwks: 0, token: 0, other: 0 };
  let lastJwksAt = 0;
  /** Every token made here, so a test can check none was logged. */
  const issued = new Set();
  const keep = (t) => (issued.add(t), t);

  const server = http.createServer((req, res) => {
    const u = new URL(req.url, "http://127.0.0.1");
    const json = (status, body) => {
      res.writeHead(status, { "content-type": "application/json", "access-control-allow-origin": "*", "cache-control": "no-store" });
      res.end(JSON.stringify(body));
    };
    if (req.method === "OPTIONS") {
      res.writeHead(204, { "access-control-allow-origin": "*", "access-control-allow-headers": "*", "access-control-allow-methods": "GET" });
      return res.end();
    }
    if (u.pathname === "/.well-known/openid-configuration") {
      counts.discovery++;
      return json(200, {
        issuer: issuer.url,
        jwks_uri: `${issuer.url}/jwks`,
        authorization_endpoint: `${issuer.url}/authorize`,
        token_endpoint: `${issuer.url}/token`,
        response_types_supported: ["id_token"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["RS256", "ES256"],
      });
    }
    if (u.pathname === "/jwks") {
      counts.jwks++;
      lastJwksAt = Date.now();
      return json(200, jwksOf(published));
    }
    // A token for the page of the browser test: /token?sub=ada&name=Ada&ttl=3600
    if (u.pathname === "/token") {
      counts.token++;
      const sub = u.searchParams.get("sub");
      if (!sub) return json(400, { error: "sub is required" });
      const claims = { sub };
      for (const k of ["name", "email"]) if (u.searchParams.has(k)) claims[k] = u.searchParams.get(k);
      const ttl = Number(u.searchParams.get("ttl") ?? 3600);
      return json(200, { token: issuer.token(claims, { expiresIn: ttl }) });
    }
    counts.other++;
    json(404, { error: "not found" });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));

  const issuer = {
    url: `http://127.0.0.1:${server.address().port}`,
    audience,
    counts,
    issued,
    /** When the JWKS was last served (ms since the epoch; 0: never). */
    get lastJwksAt() {
      return lastJwksAt;
    },
    /** The current keys. */
    get keys() {
      return { RS256: rsa, ES256: ec };
    },
    /** The RSA public key as PEM, the secret of the HS256 confusion attack. */
    get publicPem() {
      return rsa.publicKey.export({ type: "spki", format: "pem" });
    },
    /** A JWT from this issuer: `claims` over iss, aud, iat, exp, jti.
     * Options: alg ("RS256" | "ES256"), kid, key (another makeKey()),
     * header (overrides), audience, expiresIn, notBefore, issuedAt. */
    token(claims = {}, { alg = "RS256", key, kid, header = {}, audience: aud = audience, ...times } = {}) {
      key ??= alg === "ES256" ? ec : rsa;
      const p = payload(issuer.url, aud, claims, times);
      return keep(signWith(key, p, { header: { ...(kid !== undefined && { kid }), ...header } }));
    },
    /** Adds a new RS256 key (a new kid) and drops the old one from the
     * JWKS; later RS256 tokens are signed with the new key. */
    rotate() {
      const old = rsa;
      const fresh = makeKey("RS256");
      rsa = fresh;
      published = [fresh, ec];
      return { oldKid: old.kid, newKid: fresh.kid, oldKey: old };
    },
    /** Resolves once `ms` have passed since the JWKS was last served: the
     * server refetches a provider's keys at most once a second. */
    async settle(ms = 1100) {
      const wait = lastJwksAt + ms - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    },
    /** Tokens an attacker would make. */
    forge: {
      /** alg "none", no signature. */
      none(claims = {}) {
        const p = payload(issuer.url, audience, claims);
        return keep(`${part({ alg: "none", typ: "JWT" })}.${part(p)}.`);
      },
      /** HS256 with the RSA public key's PEM as the HMAC secret, the kid of
       * the RSA key (the algorithm-confusion attack). */
      hs256WithPublicKey(claims = {}) {
        const p = payload(issuer.url, audience, claims);
        const input = `${part({ alg: "HS256", typ: "JWT", kid: rsa.kid })}.${part(p)}`;
        return keep(`${input}.${b64url(createHmac("sha256", issuer.publicPem).update(input).digest())}`);
      },
      /** A good token whose signature has one bit flipped. */
      tamperedSignature(claims = {}, opts = {}) {
        const [h, p, s] = issuer.token(claims, opts).split(".");
        const sig = Buffer.from(s, "base64url");
        sig[sig.length >> 1] ^= 0x01;
        return keep(`${h}.${p}.${b64url(sig)}`);
      },
      /** A good token's signature over other claims (sub changed). */
      tamperedPayload(claims = {}, forged = { sub: "admin" }, opts = {}) {
        const [h, p, s] = issuer.token(claims, opts).split(".");
        const changed = { ...JSON.parse(Buffer.from(p, "base64url")), ...forged };
        return keep(`${h}.${part(changed)}.${s}`);
      },
      /** Signed with a key the JWKS does not hold, under a kid it does not list. */
      unknownKid(claims = {}, opts = {}) {
        const stranger = makeKey(opts.alg ?? "RS256", `unpublished-${randomBytes(6).toString("hex")}`);
        return issuer.token(claims, { ...opts, key: stranger });
      },
      /** Signed with a key the JWKS does not hold, under the kid of one it does. */
      wrongKeySameKid(claims = {}, opts = {}) {
        const alg = opts.alg ?? "RS256";
        const stranger = makeKey(alg, (alg === "ES256" ? ec : rsa).kid);
        return issuer.token(claims, { ...opts, key: stranger });
      },
    },
    close() {
      server.closeAllConnections?.();
      return new Promise((r) => server.close(() => r()));
    },
  };
  return issuer;
}

/** A customJwt provider's side: an ES256 (or RS256) key, its JWKS as the
 * data: URI Convex's docs use, and tokens from `issuer`. */
export function customJwtKeys({ issuer, audience = "cvx-custom", alg = "ES256" }) {
  const key = makeKey(alg);
  const jwks = jwksOf([key]);
  const issued = new Set();
  return {
    issuer,
    audience,
    alg,
    key,
    jwks,
    jwksDataUri: `data:text/plain;charset=utf-8;base64,${Buffer.from(JSON.stringify(jwks)).toString("base64")}`,
    issued,
    /** Same options as the OIDC issuer's token(). */
    token(claims = {}, { key: k = key, header = {}, audience: aud = audience, ...times } = {}) {
      const t = signWith(k, payload(issuer, aud, claims, times), { header });
      issued.add(t);
      return t;
    },
  };
}

/** The parts of a compact JWT, decoded (for checks in tests). */
export function decode(token) {
  const [h, p] = token.split(".");
  return { header: JSON.parse(Buffer.from(h, "base64url")), payload: JSON.parse(Buffer.from(p, "base64url")) };
}
