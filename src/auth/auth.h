/*
 * auth — who is calling: users' JSON Web Tokens checked against the app's
 * auth providers, and the UserIdentity a function sees.
 *
 * Owns: the providers an app declares (Convex's auth.config: OpenID Connect
 * issuers `{domain, applicationID}` and `{type: "customJwt", issuer, jwks,
 * algorithm, applicationID?}`, carried in the app's cvx.auth record,
 * docs/abi.md "Authentication"); their signing keys, fetched with libcurl
 * (discovery document, then JWKS), cached, and refetched when a token names
 * a key the cache does not hold; verifying a token (RS256 and ES256 with
 * OpenSSL's libcrypto; iss, aud, exp, nbf and iat with a small clock skew);
 * turning its claims into Convex's UserIdentity JSON.
 *
 * A refused token is an error (CVX_E_AUTH) whose message says why and is
 * safe to show the client: it never quotes the token or a key.
 *
 * Threads: every function may be called from any thread. cvx_auth_verify
 * may wait on the network (a key fetch, bounded by fetch_timeout_ms): call
 * it from a worker, never from an event loop.
 */
#ifndef CVX_AUTH_H
#define CVX_AUTH_H

#include <stdint.h>

#include "util/util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Tokens longer than this are refused before any parsing. */
#define CVX_AUTH_MAX_TOKEN 16384

typedef struct cvx_auth cvx_auth_t;

/* A zero field takes its default. */
typedef struct {
    uint32_t clock_skew_s;     /* exp / nbf / iat tolerance; default 30 */
    uint32_t refetch_ms;       /* a token naming an unknown key refetches its
                                  provider's keys at most this often; default 1000 */
    uint32_t keys_ttl_s;       /* keys older than this are refetched at their
                                  next use (and kept if that fails); default 3600 */
    uint32_t fetch_timeout_ms; /* one discovery or JWKS request; default 10000 */
    /* Plain http to any host; by default only to loopback addresses (a
     * test issuer), every other issuer must be https. */
    bool allow_http;
} cvx_auth_config_t;

int cvx_auth_new(const cvx_auth_config_t *cfg, cvx_auth_t **out, cvx_err_t *err);
void cvx_auth_free(cvx_auth_t *a);

/* Replaces the providers with those of an app's cvx.auth record (JSON
 * text; NULL or len 0: none). A string field may be {"env": "NAME"}: the
 * value of that variable in `env_json` (an object of name -> string, the
 * deployment's environment variables; NULL: none); a provider naming a
 * variable that is not set is off (one line saying so is appended to
 * `warnings`, which may be NULL, and refused tokens say it too). Keys
 * already fetched for an unchanged provider are kept. On error (a
 * malformed record, an issuer that is not an http(s) URL) the providers
 * stay as they were and the message names the provider. */
int cvx_auth_set_providers(cvx_auth_t *a, const char *record, size_t len, const char *env_json, size_t env_len,
                           cvx_buf_t *warnings, cvx_err_t *err);
/* Appends the providers as a JSON array of their resolved records. */
void cvx_auth_describe(cvx_auth_t *a, cvx_buf_t *out);
size_t cvx_auth_count(cvx_auth_t *a);

/* Checks a token (its compact form, without "Bearer "). On success appends
 * the caller's UserIdentity (a JSON object: tokenIdentifier, subject,
 * issuer, the standard claims present in Convex's names, then custom
 * claims) to `identity` and sets *expires to the last second it is
 * accepted (Unix seconds: its exp plus the clock skew). On
 * refusal CVX_E_AUTH with the reason. May fetch keys (see Threads). */
int cvx_auth_verify(cvx_auth_t *a, const char *token, size_t len, cvx_buf_t *identity, int64_t *expires,
                    cvx_err_t *err);

/* Answers from the tokens verified lately only: true with the identity
 * appended and *expires set when this very token verified under the
 * current providers and has not expired since; never parses, checks a
 * signature or touches the network, so the event loop may call it. */
bool cvx_auth_lookup(cvx_auth_t *a, const char *token, size_t len, cvx_buf_t *identity, int64_t *expires);

/* The identity an admin acts as (`cvx run --identity`, the dashboard):
 * UserIdentity attributes (a JSON object, e.g. {"subject", "issuer",
 * "name"}) -> a UserIdentity, tokenIdentifier made issuer|subject when not
 * given. CVX_E_INVALID_ARGUMENT when it is not an object of such fields. */
int cvx_auth_identity_from_attributes(const char *json, size_t len, cvx_buf_t *identity, cvx_err_t *err);

#ifdef __cplusplus
}
#endif
#endif
