/* libcurl, loaded on first use.
 *
 * Linked normally, libcurl brings about 25 more shared libraries (GnuTLS,
 * Kerberos, LDAP, SSH, ...) whose loading, relocation and constructors
 * took more than half of `cvx serve`'s start-up (docs/decisions.md). Only
 * actions that fetch and the CLI's client need it, so the binary is linked
 * without it and these definitions of the few curl functions cvx calls
 * forward to the real ones, found with dlopen/dlsym the first time
 * cvx_curl_load runs. Before a successful load they fail the way libcurl
 * reports failures (NULL, CURLE_FAILED_INIT), never crash. */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>

#include "util/util.h"

static struct {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *c, CURLoption opt, ...);
    CURLcode (*easy_perform)(CURL *c);
    CURLcode (*easy_getinfo)(CURL *c, CURLINFO info, ...);
    const char *(*easy_strerror)(CURLcode code);
    void (*easy_cleanup)(CURL *c);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
} fn;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool loaded;
static char load_error[512];

static void load(void) {
    /* Debian's libcurl4 (OpenSSL) and libcurl3-gnutls name it differently. */
    static const char *const names[] = {"libcurl.so.4", "libcurl-gnutls.so.4", "libcurl.so"};
    void *h = NULL;
    for (size_t i = 0; i < CVX_ARRAY_LEN(names) && !h; i++) h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(load_error, sizeof load_error, "libcurl could not be loaded (%s); install libcurl4",
                 e ? e : "not found");
        return;
    }
    struct {
        const char *name;
        void **slot;
    } syms[] = {
        {"curl_global_init", (void **)&fn.global_init},       {"curl_easy_init", (void **)&fn.easy_init},
        {"curl_easy_setopt", (void **)&fn.easy_setopt},       {"curl_easy_perform", (void **)&fn.easy_perform},
        {"curl_easy_getinfo", (void **)&fn.easy_getinfo},     {"curl_easy_strerror", (void **)&fn.easy_strerror},
        {"curl_easy_cleanup", (void **)&fn.easy_cleanup},     {"curl_slist_append", (void **)&fn.slist_append},
        {"curl_slist_free_all", (void **)&fn.slist_free_all},
    };
    for (size_t i = 0; i < CVX_ARRAY_LEN(syms); i++) {
        *syms[i].slot = dlsym(h, syms[i].name);
        if (!*syms[i].slot) {
            snprintf(load_error, sizeof load_error, "libcurl has no %s; it is too old (cvx needs 7.85 or newer)",
                     syms[i].name);
            return;
        }
    }
    /* Not thread-safe in libcurl before 7.84: it runs here, once. */
    CURLcode cc = fn.global_init(CURL_GLOBAL_DEFAULT);
    if (cc != CURLE_OK) {
        snprintf(load_error, sizeof load_error, "libcurl failed to initialise (%s)", fn.easy_strerror(cc));
        return;
    }
    loaded = true;
}

int cvx_curl_load(cvx_err_t *err) {
    pthread_once(&once, load);
    return loaded ? CVX_OK : cvx_err_set(err, CVX_E_INTERNAL, "%s", load_error);
}

CURLcode curl_global_init(long flags) {
    (void)flags; /* cvx_curl_load initialises it */
    return cvx_curl_load(NULL) == CVX_OK ? CURLE_OK : CURLE_FAILED_INIT;
}

CURL *curl_easy_init(void) { return loaded ? fn.easy_init() : NULL; }

/* The variadic argument's type follows from the option's number range,
 * as in libcurl itself. */
CURLcode curl_easy_setopt(CURL *c, CURLoption opt, ...) {
    if (!loaded) return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, opt);
    CURLcode rc;
    if (opt < CURLOPTTYPE_OBJECTPOINT) rc = fn.easy_setopt(c, opt, va_arg(ap, long));
    else if (opt < CURLOPTTYPE_FUNCTIONPOINT) rc = fn.easy_setopt(c, opt, va_arg(ap, void *));
    else if (opt < CURLOPTTYPE_OFF_T) rc = fn.easy_setopt(c, opt, va_arg(ap, void (*)(void)));
    else if (opt < CURLOPTTYPE_BLOB) rc = fn.easy_setopt(c, opt, va_arg(ap, curl_off_t));
    else rc = fn.easy_setopt(c, opt, va_arg(ap, void *));
    va_end(ap);
    return rc;
}

/* Every CURLINFO takes a pointer to where the answer goes. */
CURLcode curl_easy_getinfo(CURL *c, CURLINFO info, ...) {
    if (!loaded) return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, info);
    CURLcode rc = fn.easy_getinfo(c, info, va_arg(ap, void *));
    va_end(ap);
    return rc;
}

/* A transfer is the slow wait of an action: its worker slot is free meanwhile. */
CURLcode curl_easy_perform(CURL *c) {
    if (!loaded) return CURLE_FAILED_INIT;
    cvx_blocking(true);
    CURLcode rc = fn.easy_perform(c);
    cvx_blocking(false);
    return rc;
}

const char *curl_easy_strerror(CURLcode code) { return loaded ? fn.easy_strerror(code) : load_error; }

void curl_easy_cleanup(CURL *c) {
    if (loaded) fn.easy_cleanup(c);
}

struct curl_slist *curl_slist_append(struct curl_slist *l, const char *s) {
    return loaded ? fn.slist_append(l, s) : NULL;
}

void curl_slist_free_all(struct curl_slist *l) {
    if (loaded) fn.slist_free_all(l);
}
