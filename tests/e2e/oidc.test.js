// The test issuer of auth.test.js (oidc.js) checked on its own, with
// node's crypto as the verifier and no cvx server: its discovery document
// and JWKS, that its tokens verify with the published keys (ES256 in raw
// r||s form), that its forgeries do not, rotation, and the customJwt
// data: URI.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac, createPublicKey, verify } from "node:crypto";
import { customJwtKeys, decode, startIssuer } from "./oidc.js";

let issuer;
before(async () => {
  issuer = await startIssuer();
});
after(async () => {
  await issuer?.close();
});

const getJson = async (url) => {
  const r = await fetch(url);
  assert.equal(r.status, 200, url);
  return r.json();
};

/** Verifies a compact JWT against a JWKS the way a server would; returns
 * its payload or throws saying why not. */
function check(token, jwks) {
  const [h, p, s] = token.split(".");
  const header = JSON.parse(Buffer.from(h, "base64url"));
  if (header.alg !== "RS256" && header.alg !== "ES256") throw new Error(`unsupported algorithm ${header.alg}`);
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  if (!jwk) throw new Error("unknown key");
  if (jwk.alg !== header.alg) throw new Error("algorithm does not match the key");
  const key = createPublicKey({ key: jwk, format: "jwk" });
  const sig = Buffer.from(s, "base64url");
  if (header.alg === "ES256" && sig.length !== 64) throw new Error("ES256 signature is not r||s");
  const ok = verify("sha256", Buffer.from(`${h}.${p}`), header.alg === "ES256" ? { key, dsaEncoding: "ieee-p1363" } : key, sig);
  if (!ok) throw new Error("bad signature");
  return JSON.parse(Buffer.from(p, "base64url"));
}

test("discovery and JWKS: the issuer, jwks_uri, one RSA and one P-256 key with kid, alg and use", async () => {
  const d = await getJson(`${issuer.url}/.well-known/openid-configuration`);
  assert.equal(d.issuer, issuer.url);
  assert.equal(d.jwks_uri, `${issuer.url}/jwks`);
  const jwks = await getJson(d.jwks_uri);
  assert.deepEqual(jwks.keys.map((k) => [k.kty, k.alg, k.use]), [["RSA", "RS256", "sig"], ["EC", "ES256", "sig"]]);
  assert.equal(jwks.keys[1].crv, "P-256");
  for (const k of jwks.keys) {
    assert.equal(typeof k.kid, "string");
    assert.equal(k.d, undefined, "no private part is published");
  }
  assert.equal(Buffer.from(jwks.keys[0].n, "base64url").length, 256, "RSA 2048");
  assert.deepEqual([issuer.counts.discovery, issuer.counts.jwks], [1, 1]);
  assert.ok(Date.now() - issuer.lastJwksAt < 5000);
});

test("tokens verify with the published keys and carry the registered claims", async () => {
  const jwks = await getJson(`${issuer.url}/jwks`);
  const t0 = Math.floor(Date.now() / 1000);
  const rs = issuer.token({ sub: "ada", email: "ada@example.com" });
  const es = issuer.token({ sub: "bob" }, { alg: "ES256", expiresIn: 15, notBefore: -5 });
  const p = check(rs, jwks);
  assert.equal(p.iss, issuer.url);
  assert.equal(p.aud, "cvx-test");
  assert.equal(p.sub, "ada");
  assert.equal(p.email, "ada@example.com");
  assert.ok(Math.abs(p.iat - t0) <= 1 && p.exp === p.iat + 3600);
  assert.equal(decode(rs).header.kid, issuer.keys.RS256.kid);
  const q = check(es, jwks);
  assert.equal(decode(es).header.alg, "ES256");
  assert.equal(q.exp - q.iat, 15);
  assert.equal(q.nbf, q.iat - 5);
  assert.notEqual(issuer.token({ sub: "ada" }), issuer.token({ sub: "ada" }), "each token is distinct (jti)");
  // options: no exp, other audience, claims removed, header overrides
  const bare = decode(issuer.token({ sub: "x", aud: undefined }, { expiresIn: null, header: { typ: "at+jwt" } }));
  assert.equal(bare.payload.exp, undefined);
  assert.equal(bare.payload.aud, undefined);
  assert.equal(bare.header.typ, "at+jwt");
  assert.equal(decode(issuer.token({ sub: "x" }, { audience: "other" })).payload.aud, "other");
  assert.ok(issuer.issued.has(rs) && issuer.issued.has(es));
});

test("forged tokens fail verification, each for its own reason", async () => {
  const jwks = await getJson(`${issuer.url}/jwks`);
  assert.throws(() => check(issuer.forge.none({ sub: "x" }), jwks), /unsupported algorithm none/);
  assert.ok(issuer.forge.none({ sub: "x" }).endsWith("."));
  const hs = issuer.forge.hs256WithPublicKey({ sub: "x" });
  assert.throws(() => check(hs, jwks), /unsupported algorithm HS256/);
  // it is a real HMAC with the public key's PEM: a naive verifier would accept it
  const [h, p, s] = hs.split(".");
  assert.equal(createHmac("sha256", issuer.publicPem).update(`${h}.${p}`).digest("base64url"), s);
  assert.throws(() => check(issuer.forge.tamperedSignature({ sub: "x" }), jwks), /bad signature/);
  assert.throws(() => check(issuer.forge.tamperedSignature({ sub: "x" }, { alg: "ES256" }), jwks), /bad signature/);
  const tp = issuer.forge.tamperedPayload({ sub: "x" });
  assert.equal(decode(tp).payload.sub, "admin");
  assert.throws(() => check(tp, jwks), /bad signature/);
  assert.throws(() => check(issuer.forge.unknownKid({ sub: "x" }), jwks), /unknown key/);
  assert.throws(() => check(issuer.forge.wrongKeySameKid({ sub: "x" }), jwks), /bad signature/);
  assert.throws(() => check(issuer.forge.wrongKeySameKid({ sub: "x" }, { alg: "ES256" }), jwks), /bad signature/);
});

test("rotate(): a new kid replaces the old in the JWKS; new tokens use it", async () => {
  const before = await getJson(`${issuer.url}/jwks`);
  const old = issuer.token({ sub: "r" });
  const { oldKid, newKid } = issuer.rotate();
  assert.notEqual(oldKid, newKid);
  const after = await getJson(`${issuer.url}/jwks`);
  assert.deepEqual(after.keys.map((k) => k.kid).sort(), [newKid, before.keys[1].kid].sort());
  const fresh = issuer.token({ sub: "r" });
  assert.equal(decode(fresh).header.kid, newKid);
  assert.equal(check(fresh, after).sub, "r");
  assert.throws(() => check(old, after), /unknown key/);
  const t = Date.now();
  await issuer.settle(300);
  assert.ok(Date.now() - issuer.lastJwksAt >= 300 && Date.now() - t < 1000);
});

test("the /token endpoint signs for ?sub=, with CORS", async () => {
  const r = await fetch(`${issuer.url}/token?sub=page-user&name=Page%20User&ttl=60`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("access-control-allow-origin"), "*");
  const { token } = await r.json();
  const p = check(token, await getJson(`${issuer.url}/jwks`));
  assert.deepEqual([p.sub, p.name, p.exp - p.iat], ["page-user", "Page User", 60]);
  assert.equal((await fetch(`${issuer.url}/token`)).status, 400);
  assert.equal((await fetch(`${issuer.url}/nowhere`)).status, 404);
});

test("customJwtKeys: an ES256 JWKS as a data: URI, and tokens it verifies", () => {
  const custom = customJwtKeys({ issuer: "http://127.0.0.1:1/custom" });
  const m = custom.jwksDataUri.match(/^data:text\/plain;charset=utf-8;base64,([A-Za-z0-9+/=]+)$/);
  assert.ok(m, custom.jwksDataUri);
  const jwks = JSON.parse(Buffer.from(m[1], "base64"));
  assert.deepEqual(jwks.keys.map((k) => [k.kty, k.crv, k.alg, k.use]), [["EC", "P-256", "ES256", "sig"]]);
  const p = check(custom.token({ sub: "c1" }), jwks);
  assert.deepEqual([p.iss, p.aud, p.sub], ["http://127.0.0.1:1/custom", "cvx-custom", "c1"]);
});
