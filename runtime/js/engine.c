/* The JavaScript guest: QuickJS-ng compiled to wasm32-wasip1, speaking the
 * cvx_1 ABI (docs/abi.md) like any Rust guest.
 *
 * Two exports do the work. cvx_js_load runs once, at deploy: it creates
 * the engine, evaluates the prelude (runtime/js/prelude: the `Convex`
 * global the `convex` npm library calls, and the web APIs) and the app's
 * bundle, and answers the analysis (every function, the schema, crons,
 * HTTP routes) as its output. The host then snapshots this instance's
 * memory and globals into a new module (src/wasm/snapshot.c), so every
 * later call starts from the initialised heap. cvx_js_invoke is each
 * call's entry: it asks the host which function it is (__convex_call_info),
 * runs it through the prelude's __cvx.invoke, drives the job queue and
 * timers until the returned promise settles, and reports the outcome.
 *
 * The natives here are what the prelude cannot write in JavaScript: host
 * calls, UTF-8, digests, randomness. Everything about Convex's syscall
 * shapes lives in the prelude, where the JSON is. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quickjs.h"
#include "sha.h"

/* The cvx_1 imports, cvx_<name> for each entry of the ABI's one list of
 * host functions. A kind becomes ", type name"; CVX__PARAMS drops the
 * leading comma, and turns an empty list into (void): its arguments are
 * that list behind an empty first one, and CVX__PARAMS_PICK counts them
 * (up to four parameters; a fifth is a compile error). */
#define CVX__ID(...) __VA_ARGS__
#define IN(p) , const void *p
#define OUT(p) , void *p
#define LEN(p) , int32_t p
#define I32(p) , int32_t p
#define CVX__RESULT_I32 int32_t
#define CVX__RESULT_I64 int64_t
#define CVX__RESULT_F64 double
#define CVX__PARAMS_NONE(first) void
#define CVX__PARAMS_SOME(first, ...) __VA_ARGS__
#define CVX__PARAMS_PICK(_1, _2, _3, _4, _5, which, ...) which
#define CVX__PARAMS_(...)                                                                                    \
    CVX__PARAMS_PICK(__VA_ARGS__, CVX__PARAMS_SOME, CVX__PARAMS_SOME, CVX__PARAMS_SOME, CVX__PARAMS_SOME,     \
                     CVX__PARAMS_NONE, _)(__VA_ARGS__)
#define CVX__PARAMS(list) CVX__PARAMS_(list)
#define CVX_HOSTFN(name, params, result, doc)                                                                \
    __attribute__((import_module("cvx_1"), import_name("__convex_" #name))) CVX__RESULT_##result cvx_##name( \
        CVX__PARAMS(CVX__ID params));
#include "../../src/abi/host_fns.def"
#undef CVX_HOSTFN

/* The request functions, one JSON request in and a result out, by the
 * names the prelude calls them (__cvx.call("db_get", ...)): every import of
 * that type; the others are listed with NULL, and not imported. */
typedef int64_t (*request_fn)(const void *p, int32_t len);
#define CVX_HOSTFN(name, params, result, doc) {#name, _Generic(&cvx_##name, request_fn: cvx_##name, default: NULL)},
static const struct {
    const char *name;
    request_fn fn; /* NULL: not a request function */
} requests[] = {
#include "../../src/abi/host_fns.def"
};
#undef CVX_HOSTFN
#undef IN
#undef OUT
#undef LEN
#undef I32
#undef CVX__ID
#undef CVX__RESULT_I32
#undef CVX__RESULT_I64
#undef CVX__RESULT_F64

/* The prelude (runtime/js/prelude, joined by prelude.cmake). */
#include "prelude.h"

/* Kept in linear memory, so the snapshot keeps them too. */
static JSRuntime *rt;
static JSContext *ctx;
/* Looked up once after the prelude ran, so in the snapshot: every call
 * would otherwise find them by name (atom lookups) again. */
static JSValue g_cvx; /* globalThis.__cvx */
static JSValue g_run_timer;
static JSAtom a_path, a_kind, a_visibility, a_request_id;
/* Math.random's state: xorshift128+, reseeded from the host at every call
 * (seeded ChaCha in queries and mutations, so replays repeat it). */
static uint64_t rng_s0, rng_s1;

/* ---- small helpers ------------------------------------------------------------ */

/* Records why the call is about to trap, then traps: the host turns an
 * "oom" record into its memory-limit error. */
static void die_oom(size_t size) {
    char msg[96];
    int n = snprintf(msg, sizeof msg, "{\"message\":\"out of memory\",\"kind\":\"oom\",\"size\":%zu}", size);
    cvx_panic(msg, n);
    __builtin_trap();
}

/* The pending buffer's `n` bytes, NUL-terminated (malloc'd). */
static char *take_pending(int32_t n) {
    char *buf = malloc((size_t)n + 1);
    if (!buf) die_oom((size_t)n + 1);
    if (n > 0) cvx_read(buf, n);
    buf[n] = '\0';
    return buf;
}

static void output_str(int kind, const char *s, size_t len) { cvx_output(kind, s, (int32_t)len); }

/* An Error carrying a failed host call's code and its error JSON's message
 * and data, for the prelude to shape into what the library expects. */
static JSValue throw_host_error(JSContext *c, int64_t code) {
    int32_t n = cvx_pending_len();
    char *json = take_pending(n);
    JSValue parsed = JS_ParseJSON(c, json, (size_t)n, "<host error>");
    free(json);
    JSValue err = JS_NewError(c);
    if (JS_IsObject(parsed)) {
        JSValue msg = JS_GetPropertyStr(c, parsed, "message");
        JS_SetPropertyStr(c, err, "message", JS_IsString(msg) ? msg : JS_NewString(c, "host call failed"));
        if (!JS_IsString(msg)) JS_FreeValue(c, msg);
        JSValue data = JS_GetPropertyStr(c, parsed, "data");
        if (!JS_IsUndefined(data)) JS_SetPropertyStr(c, err, "data", data);
    } else {
        JS_FreeValue(c, JS_GetException(c));
        JS_SetPropertyStr(c, err, "message", JS_NewString(c, "host call failed"));
    }
    JS_FreeValue(c, parsed);
    JS_SetPropertyStr(c, err, "code", JS_NewInt32(c, (int32_t)code));
    return JS_Throw(c, err);
}

/* The bytes of an ArrayBuffer or a typed array view (not copied). */
static uint8_t *bytes_of(JSContext *c, JSValueConst v, size_t *len) {
    if (JS_IsArrayBuffer(v)) return JS_GetArrayBuffer(c, len, v);
    size_t off = 0, elem = 0, blen = 0;
    JSValue ab = JS_GetTypedArrayBuffer(c, v, &off, len, &elem);
    if (JS_IsException(ab)) return NULL;
    uint8_t *p = JS_GetArrayBuffer(c, &blen, ab);
    JS_FreeValue(c, ab);
    return p ? p + off : NULL;
}

/* ---- natives the prelude builds on ------------------------------------------ */

/* A host call's outcome (its return value n): the host's error thrown, or
 * the n pending bytes as a string or, with `bytes`, an ArrayBuffer. */
static JSValue host_result(JSContext *c, int64_t n, bool bytes) {
    if (n < 0) return throw_host_error(c, -n);
    char *out = take_pending((int32_t)n);
    JSValue v = bytes ? JS_NewArrayBufferCopy(c, (const uint8_t *)out, (size_t)n) : JS_NewStringLen(c, out, (size_t)n);
    free(out);
    return v;
}

/* call(name, requestJson) -> responseJson; throws the host's error. */
static JSValue js_call(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    const char *name = JS_ToCString(c, argv[0]);
    if (!name) return JS_EXCEPTION;
    request_fn fn = NULL;
    for (size_t i = 0; i < sizeof requests / sizeof requests[0] && !fn; i++)
        if (strcmp(requests[i].name, name) == 0) fn = requests[i].fn;
    JS_FreeCString(c, name);
    if (!fn) return JS_ThrowTypeError(c, "unknown host call");
    size_t len;
    const char *req = JS_ToCStringLen(c, &len, argv[1]);
    if (!req) return JS_EXCEPTION;
    int64_t n = fn(req, (int32_t)len);
    JS_FreeCString(c, req);
    return host_result(c, n, false);
}

/* callBytes(name, requestJson) -> ArrayBuffer: for results that are raw
 * bytes (a file's contents). */
static JSValue js_call_bytes(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    size_t len;
    const char *req = JS_ToCStringLen(c, &len, argv[0]);
    if (!req) return JS_EXCEPTION;
    int64_t n = cvx_storage_get(req, (int32_t)len);
    JS_FreeCString(c, req);
    return host_result(c, n, true);
}

/* storeFile(metaJson, bytes) -> storageId JSON. */
static JSValue js_store_file(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    size_t mlen, dlen;
    const char *meta = JS_ToCStringLen(c, &mlen, argv[0]);
    if (!meta) return JS_EXCEPTION;
    uint8_t *data = bytes_of(c, argv[1], &dlen);
    if (!data && dlen) {
        JS_FreeCString(c, meta);
        return JS_EXCEPTION;
    }
    int64_t n = cvx_storage_store(meta, (int32_t)mlen, data ? data : (const uint8_t *)"", (int32_t)dlen);
    JS_FreeCString(c, meta);
    return host_result(c, n, false);
}

/* log(level, text) */
static JSValue js_log(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    int32_t level = 0;
    JS_ToInt32(c, &level, argv[0]);
    size_t len;
    const char *text = JS_ToCStringLen(c, &len, argv[1]);
    if (!text) return JS_EXCEPTION;
    cvx_log(level, text, (int32_t)len);
    JS_FreeCString(c, text);
    return JS_UNDEFINED;
}

/* sleep(ms): setTimeout in actions waits real time. WASI's poll_oneoff
 * (through nanosleep) is the host's to bound by the call's time limit. */
static JSValue js_sleep(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    double ms = 0;
    if (JS_ToFloat64(c, &ms, argv[0])) return JS_EXCEPTION;
    if (ms > 0) {
        struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(((int64_t)ms % 1000) * 1000000)};
        nanosleep(&ts, NULL);
    }
    return JS_UNDEFINED;
}

/* fillRandom(view): crypto.getRandomValues. */
static JSValue js_fill_random(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    size_t len;
    uint8_t *p = bytes_of(c, argv[0], &len);
    if (!p && len) return JS_EXCEPTION;
    if (len) cvx_random_bytes(p, (int32_t)len);
    return JS_UNDEFINED;
}

/* utf8Encode(string) -> Uint8Array, with lone surrogates as U+FFFD as the
 * Encoding standard says. */
static JSValue js_utf8_encode(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    size_t len;
    const char *s = JS_ToCStringLen(c, &len, argv[0]);
    if (!s) return JS_EXCEPTION;
    JSValue out = JS_NewUint8ArrayCopy(c, (const uint8_t *)s, len);
    JS_FreeCString(c, s);
    return out;
}

/* Decodes one UTF-8 sequence at p (n bytes left): the code point, or -1
 * for an invalid sequence (*used is then the bytes to replace by U+FFFD,
 * the maximal subpart as the Encoding standard counts it). */
static int32_t utf8_next(const uint8_t *p, size_t n, size_t *used) {
    uint8_t b = p[0];
    if (b < 0x80) {
        *used = 1;
        return b;
    }
    size_t need;
    uint32_t cp, lo = 0x80, hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1, cp = b & 0x1f;
    else if (b >= 0xe0 && b <= 0xef) {
        need = 2, cp = b & 0x0f;
        if (b == 0xe0) lo = 0xa0;
        if (b == 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
        need = 3, cp = b & 0x07;
        if (b == 0xf0) lo = 0x90;
        if (b == 0xf4) hi = 0x8f;
    } else {
        *used = 1;
        return -1;
    }
    size_t i = 1;
    for (; i <= need; i++) {
        if (i >= n || p[i] < lo || p[i] > hi) {
            *used = i;
            return -1;
        }
        lo = 0x80, hi = 0xbf;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    *used = i;
    return (int32_t)cp;
}

/* utf8Decode(bytes, fatal) -> string; a BOM is the caller's business. */
static JSValue js_utf8_decode(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    size_t len;
    const uint8_t *p = bytes_of(c, argv[0], &len);
    if (!p && len) return JS_EXCEPTION;
    bool fatal = JS_ToBool(c, argv[1]);
    /* Valid input (the usual case) becomes a string directly. */
    size_t i = 0, used;
    while (i < len && utf8_next(p + i, len - i, &used) >= 0) i += used;
    if (i == len) return JS_NewStringLen(c, (const char *)(p ? p : (const uint8_t *)""), len);
    if (fatal) return JS_ThrowTypeError(c, "The encoded data was not valid for encoding utf-8");
    uint8_t *out = malloc(len * 3 + 1), *o = out;
    if (!out) return JS_ThrowOutOfMemory(c);
    for (i = 0; i < len; i += used) {
        int32_t cp = utf8_next(p + i, len - i, &used);
        if (cp < 0) {
            *o++ = 0xef, *o++ = 0xbf, *o++ = 0xbd;
        } else {
            memcpy(o, p + i, used);
            o += used;
        }
    }
    JSValue s = JS_NewStringLen(c, (const char *)out, (size_t)(o - out));
    free(out);
    return s;
}

/* digest(algorithm, bytes) -> ArrayBuffer: SHA-1, SHA-256, SHA-384,
 * SHA-512 (crypto.subtle.digest). */
static JSValue js_digest(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    const char *alg = JS_ToCString(c, argv[0]);
    if (!alg) return JS_EXCEPTION;
    size_t len;
    const uint8_t *p = bytes_of(c, argv[1], &len);
    if (!p && len) {
        JS_FreeCString(c, alg);
        return JS_EXCEPTION;
    }
    uint8_t out[64];
    size_t n = sha_digest(alg, p ? p : (const uint8_t *)"", len, out);
    JS_FreeCString(c, alg);
    if (n == 0) return JS_ThrowDOMException(c, "NotSupportedError", "Unrecognized algorithm name");
    return JS_NewArrayBufferCopy(c, out, n);
}

static uint64_t rng_next(void) {
    uint64_t s1 = rng_s0, s0 = rng_s1;
    rng_s0 = s0;
    s1 ^= s1 << 23;
    rng_s1 = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return rng_s1 + s0;
}

static JSValue js_math_random(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    return JS_NewFloat64(c, (double)(rng_next() >> 11) * 0x1.0p-53);
}

static void rng_reseed(void) {
    uint64_t s[2] = {0, 0};
    cvx_random_bytes(s, sizeof s);
    rng_s0 = s[0] | 1;
    rng_s1 = s[1];
}

static const JSCFunctionListEntry host_fns[] = {
    JS_CFUNC_DEF("call", 2, js_call),
    JS_CFUNC_DEF("callBytes", 1, js_call_bytes),
    JS_CFUNC_DEF("storeFile", 2, js_store_file),
    JS_CFUNC_DEF("log", 2, js_log),
    JS_CFUNC_DEF("fillRandom", 1, js_fill_random),
    JS_CFUNC_DEF("sleep", 1, js_sleep),
    JS_CFUNC_DEF("utf8Encode", 1, js_utf8_encode),
    JS_CFUNC_DEF("utf8Decode", 2, js_utf8_decode),
    JS_CFUNC_DEF("digest", 2, js_digest),
};

/* ---- errors -------------------------------------------------------------------- */

/* Outputs the pending exception as the call's error, through the prelude's
 * formatter (name, message, stack, ConvexError data); a failure inside the
 * formatter falls back to the plain message. */
static void output_exception(void) {
    JSValue exc = JS_GetException(ctx);
    JSValue global = JS_GetGlobalObject(ctx);
    JSValue cvx = JS_GetPropertyStr(ctx, global, "__cvx");
    JSValue fmt = JS_GetPropertyStr(ctx, cvx, "errorJson");
    JSValue json = JS_Call(ctx, fmt, cvx, 1, (JSValueConst *)&exc);
    size_t len;
    const char *s = JS_IsString(json) ? JS_ToCStringLen(ctx, &len, json) : NULL;
    if (s) {
        output_str(1, s, len);
        JS_FreeCString(ctx, s);
    } else {
        JS_FreeValue(ctx, JS_GetException(ctx));
        static const char fallback[] = "{\"message\":\"uncaught exception (it could not be formatted)\"}";
        output_str(1, fallback, sizeof fallback - 1);
    }
    JS_FreeValue(ctx, json);
    JS_FreeValue(ctx, fmt);
    JS_FreeValue(ctx, cvx);
    JS_FreeValue(ctx, global);
    JS_FreeValue(ctx, exc);
}

/* An exception that is QuickJS's own out-of-memory error ends the call as
 * a memory-limit failure, as a failed allocation does in a Rust guest. */
static bool exception_is_oom(void) {
    JSValue exc = JS_GetException(ctx);
    bool oom = false;
    if (JS_IsError(exc)) {
        JSValue msg = JS_GetPropertyStr(ctx, exc, "message");
        const char *s = JS_ToCString(ctx, msg);
        oom = s && strcmp(s, "out of memory") == 0;
        if (s) JS_FreeCString(ctx, s);
        JS_FreeValue(ctx, msg);
    }
    JS_Throw(ctx, exc);
    return oom;
}

/* Runs queued jobs and due timers until `promise` settles. Returns 0 when
 * it settled, -1 on an exception (pending in ctx). */
static int settle(JSValueConst promise) {
    int rc = 0;
    for (;;) {
        if (JS_PromiseState(ctx, promise) != JS_PROMISE_PENDING) break;
        JSContext *jctx;
        int j = JS_ExecutePendingJob(rt, &jctx);
        if (j < 0) {
            rc = -1;
            break;
        }
        if (j > 0) continue;
        /* Nothing queued: the next timer, or the promise can never settle. */
        JSValue more = JS_Call(ctx, g_run_timer, g_cvx, 0, NULL);
        if (JS_IsException(more)) {
            rc = -1;
            break;
        }
        bool fired = JS_ToBool(ctx, more);
        JS_FreeValue(ctx, more);
        if (!fired) {
            JS_ThrowInternalError(ctx, "the function's promise never settled: it awaits something that "
                                       "nothing will resolve");
            rc = -1;
            break;
        }
    }
    return rc;
}

/* Calls __cvx[method](argv...) and, when it returns a promise, runs the
 * job queue and timers until it settles. *out is the value (owned). */
static int call_settled(JSValueConst cvx, const char *method, JSValueConst *argv, int argc, JSValue *out) {
    JSValue fn = JS_GetPropertyStr(ctx, cvx, method);
    JSValue v = JS_Call(ctx, fn, cvx, argc, argv);
    JS_FreeValue(ctx, fn);
    if (JS_IsException(v)) return -1;
    if (JS_IsPromise(v)) {
        int rc = settle(v);
        JSValue r = rc == 0 ? JS_PromiseResult(ctx, v) : JS_UNDEFINED;
        bool rejected = rc == 0 && JS_PromiseState(ctx, v) == JS_PROMISE_REJECTED;
        JS_FreeValue(ctx, v);
        if (rc) return -1;
        if (rejected) {
            JS_Throw(ctx, r);
            return -1;
        }
        v = r;
    }
    *out = v;
    return 0;
}

/* Runs __cvx[method](argv...) to its end, then __cvx[finish] (when not
 * NULL) on what it gave, and outputs the resulting string as the call's
 * value, or the exception as its error. Promises are settled in C: an
 * async wrapper in JavaScript costs each call a promise, its resolving
 * functions and a job (a quarter of a no-op query). */
static int32_t run_prelude(const char *method, const char *finish, JSValueConst *argv, int argc) {
    JSValueConst cvx = g_cvx;
    JSValue v = JS_UNDEFINED;
    int rc = call_settled(cvx, method, argv, argc, &v);
    if (rc == 0 && finish) {
        JSValue w = JS_UNDEFINED;
        rc = call_settled(cvx, finish, (JSValueConst *)&v, 1, &w);
        JS_FreeValue(ctx, v);
        v = w;
    }
    if (rc == 0) {
        size_t len;
        const char *s = JS_ToCStringLen(ctx, &len, v);
        if (s) {
            output_str(0, s, len);
            JS_FreeCString(ctx, s);
        } else {
            rc = -1;
        }
    }
    JS_FreeValue(ctx, v);
    if (rc < 0) {
        if (exception_is_oom()) die_oom(0);
        output_exception();
    }
    return 0;
}

/* ---- exports --------------------------------------------------------------------- */

/* The C stack QuickJS may use before it throws "Maximum call stack size
 * exceeded": below the linked shadow stack (CVX_JS_STACK_SIZE), and
 * reached before Wasmtime's native stack limit (2 MiB, src/wasm/engine.c),
 * so deep recursion is a catchable RangeError, not a trap. A JavaScript
 * call takes about 280 bytes of this and 780 of the native stack: 512 KiB
 * allow about 1800 nested calls and leave the native stack a third spare
 * (at 768 KiB the native stack ran out first). */
#define JS_STACK_LIMIT (512 * 1024)
/* Bytes a call may allocate before a cycle collection. */
#define GC_HEADROOM (4u << 20)

__attribute__((export_name("cvx_js_load"))) int32_t cvx_js_load(int32_t len) {
    char *bundle = take_pending(len);
    rt = JS_NewRuntime();
    if (!rt) die_oom(0);
    JS_SetMaxStackSize(rt, JS_STACK_LIMIT);
    ctx = JS_NewContext(rt);
    if (!ctx) die_oom(0);
    rng_reseed();

    JSValue global = JS_GetGlobalObject(ctx);
    JSValue host = JS_NewObject(ctx);
    JS_SetPropertyFunctionList(ctx, host, host_fns, sizeof host_fns / sizeof host_fns[0]);
    JS_SetPropertyStr(ctx, global, "__cvx_host", host);
    JSValue math = JS_GetPropertyStr(ctx, global, "Math");
    JS_SetPropertyStr(ctx, math, "random", JS_NewCFunction(ctx, js_math_random, "random", 0));
    JS_FreeValue(ctx, math);
    JS_FreeValue(ctx, global);

    JSValue r = JS_Eval(ctx, cvx_js_prelude, sizeof cvx_js_prelude - 1, "cvx:prelude", JS_EVAL_TYPE_GLOBAL);
    if (!JS_IsException(r)) {
        JS_FreeValue(ctx, r);
        /* The app's modules run their top level here, once; a throw there is
         * the deploy's error, with a stack in bundle.js coordinates that the
         * host maps back to the app's files. */
        r = JS_Eval(ctx, bundle, (size_t)len, "bundle.js", JS_EVAL_TYPE_GLOBAL);
    }
    free(bundle);
    if (JS_IsException(r)) {
        if (exception_is_oom()) die_oom(0);
        output_exception();
        return 0;
    }
    JS_FreeValue(ctx, r);
    JSValue global_obj = JS_GetGlobalObject(ctx);
    g_cvx = JS_GetPropertyStr(ctx, global_obj, "__cvx");
    JS_FreeValue(ctx, global_obj);
    g_run_timer = JS_GetPropertyStr(ctx, g_cvx, "runNextTimer");
    a_path = JS_NewAtom(ctx, "path");
    a_kind = JS_NewAtom(ctx, "kind");
    a_visibility = JS_NewAtom(ctx, "visibility");
    a_request_id = JS_NewAtom(ctx, "requestId");
    run_prelude("analyze", NULL, NULL, 0);
    /* The snapshot starts every call with a collected heap and the cycle
     * collector's threshold well above it: left where loading put it,
     * the first allocations of every call ran a full collection of the
     * library's objects (a no-op query: 144 -> 50 us). Reference counting
     * still frees a call's garbage as it goes. */
    JS_RunGC(rt);
    JS_SetGCThreshold(rt, JS_GetGCThreshold(rt) + GC_HEADROOM);
    return 0;
}

/* The value of string field `key` in the host's call info ({"path": ...,
 * "kind": ..., ...}, docs/abi.md): a JS string, or undefined. Parsing it
 * here costs a fraction of JSON.parse in the interpreter, on every call. */
static JSValue info_field(JSContext *c, const char *json, const char *key) {
    size_t klen = strlen(key);
    const char *p = json;
    while ((p = strchr(p, '"')) && !(strncmp(p + 1, key, klen) == 0 && p[klen + 1] == '"' && p[klen + 2] == ':' &&
                                      p[klen + 3] == '"'))
        p++;
    if (!p) return JS_UNDEFINED;
    p += klen + 4;
    char buf[512];
    size_t len = 0;
    for (; *p && *p != '"' && len < sizeof buf - 1; p++) {
        if (*p == '\\' && p[1]) p++; /* the host escapes only quotes and backslashes in these */
        buf[len++] = *p;
    }
    return JS_NewStringLen(c, buf, len);
}

__attribute__((export_name("cvx_js_invoke"))) int32_t cvx_js_invoke(int32_t len) {
    char *args = take_pending(len);
    int64_t n = cvx_call_info();
    char *info = n >= 0 ? take_pending((int32_t)n) : NULL;
    if (!info) {
        static const char msg[] = "{\"message\":\"the host did not say which function to run\"}";
        output_str(1, msg, sizeof msg - 1);
        free(args);
        return 0;
    }
    JS_UpdateStackTop(rt);
    rng_reseed();
    JSValue call = JS_NewObject(ctx);
    JS_SetProperty(ctx, call, a_path, info_field(ctx, info, "path"));
    JS_SetProperty(ctx, call, a_kind, info_field(ctx, info, "kind"));
    JS_SetProperty(ctx, call, a_visibility, info_field(ctx, info, "visibility"));
    JS_SetProperty(ctx, call, a_request_id, info_field(ctx, info, "requestId"));
    free(info);
    JSValue a = JS_NewStringLen(ctx, args, (size_t)len);
    free(args);
    JSValue argv[2] = {call, a};
    run_prelude("start", "finish", argv, 2);
    JS_FreeValue(ctx, call);
    JS_FreeValue(ctx, a);
    return 0;
}
