/* The CLI's HTTP client (libcurl) for talking to a running server:
 * deploy, data, logs, env and run --url. */
#include "cli/cli.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

static size_t on_data(char *p, size_t size, size_t n, void *ctx) {
    return cvx_buf_append(ctx, p, size * n) ? 0 : size * n;
}

int cvx_cli_http(const char *method, const char *url, const char *admin_key, const void *body, size_t len,
                 const char *content_type, cvx_buf_t *out, long *status, cvx_err_t *err) {
    int rc = cvx_curl_load(err);
    if (rc) return rc;
    CURL *c = curl_easy_init();
    if (!c) return cvx_err_set(err, CVX_E_NOMEM, "cannot create an HTTP request");
    struct curl_slist *h = NULL;
    char auth[256];
    if (admin_key) {
        snprintf(auth, sizeof auth, "Authorization: Convex %s", admin_key);
        h = curl_slist_append(h, auth);
    }
    char ct[128];
    if (content_type) {
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
        h = curl_slist_append(h, ct);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) rc = cvx_err_set(err, CVX_E_IO, "cannot reach %s: %s", url, curl_easy_strerror(cc));
    else curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return rc;
}

int cvx_gzip(const void *data, size_t len, cvx_buf_t *out, cvx_err_t *err) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return cvx_err_set(err, CVX_E_NOMEM, "cannot start compression");
    size_t bound = deflateBound(&z, (uLong)len);
    if (cvx_buf_reserve(out, bound)) {
        deflateEnd(&z);
        return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out->data + out->len;
    z.avail_out = (uInt)(out->cap - out->len - 1);
    int zr = deflate(&z, Z_FINISH);
    out->len += (size_t)(z.next_out - ((Bytef *)out->data + out->len));
    deflateEnd(&z);
    return zr == Z_STREAM_END ? CVX_OK : cvx_err_set(err, CVX_E_INTERNAL, "compression failed");
}

static const char *key_file(const char *data_dir, char *buf, size_t cap) {
    char path[4200];
    snprintf(path, sizeof path, "%s/admin_key", data_dir);
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
    buf[n] = '\0';
    return n ? buf : NULL;
}

/* Reads the admin key: --admin-key, $CVX_ADMIN_KEY, DIR/admin_key of a
 * local data directory given with --data, or else the key of a `cvx dev`
 * run from here (its data is in .cvx/data, or convex/.cvx/data for an
 * app whose crate is in convex/), so that `cvx env set` and friends work
 * in an app's directory as they are. */
const char *cvx_cli_admin_key(const char *opt, const char *data_dir, char *buf, size_t cap) {
    if (opt) return opt;
    const char *env = getenv("CVX_ADMIN_KEY");
    if (env && *env) return env;
    if (data_dir) return key_file(data_dir, buf, cap);
    const char *k = key_file(".cvx/data", buf, cap);
    return k ? k : key_file("convex/.cvx/data", buf, cap);
}

const char *cvx_cli_url(const cvx_args_t *cl) {
    const char *u = cvx_arg(cl, "url");
    if (!u) u = getenv("CVX_URL");
    return u && *u ? u : "http://127.0.0.1:3210";
}
