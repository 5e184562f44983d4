/*
 * validator_compile_fuzz.c — libFuzzer target for validators
 * (src/value/validator.c): Convex's validator JSON and cvx type
 * descriptors, both read from an uploaded module's metadata, compiled to
 * a tree and then run on every call's arguments and return value.
 *
 * The input is JSON; what parses is compiled three ways (as Convex's
 * validator JSON, as a type descriptor, and, if an array, as a function's
 * `args`). Checked, besides "no crash":
 *  - a refused validator comes with CVX_E_INVALID_VALUE and a message;
 *  - an accepted one prints non-empty, and an object's fields come back
 *    sorted and NUL-terminated from cvx_validator_fields;
 *  - checking a fixed set of values (every type, objects, nested arrays,
 *    ids of a user and of a system table, alone and as object keys) and
 *    the input itself gives
 *    CVX_OK or CVX_E_ARGS with one of Convex's message forms after the
 *    prefix; v.any() accepts everything.
 */
#include <string.h>

#include "fuzz.h"
#include "value/value.h"

static const char *const VALUES[] = {
    "null",
    "{\"$integer\":\"AQAAAAAAAAA=\"}",
    "1.5",
    "true",
    "\"s\"",
    "{\"$bytes\":\"AAE=\"}",
    "[]",
    "{}",
    "{\"a\":1}",
    "[1,\"x\",[null,[true]]]",
    "{\"author\":\"ada\",\"body\":\"x\",\"n\":{\"$integer\":\"AgAAAAAAAAA=\"}}",
    "{\"kind\":\"post\",\"tags\":[\"a\",\"b\"],\"meta\":{\"k\":{\"$float\":\"AAAAAAAA+H8=\"}}}",
    "{\"x\":{\"y\":{\"z\":[{}, {\"w\":null}]}}}",
};

static cvx_arena_t *fixed_arena;
static const cvx_value_t *fixed[sizeof VALUES / sizeof VALUES[0] + 4];
static size_t nfixed;

/* Ids of table 10001 are from "users", of table 5 from a system table,
 * of any other table from no table. */
static const char *table_of(void *ctx, const char *s, size_t n) {
    cvx_id_t id;
    cvx_err_t err;
    if (cvx_id_parse(s, n, &id, &err)) return NULL;
    return id.table == 10001 ? "users" : id.table == 5 ? "_storage" : NULL;
}

static void init_fixed(void) {
    if (fixed_arena) return;
    fixed_arena = cvx_arena_new(4096);
    CHECK(fixed_arena != NULL);
    cvx_err_t err;
    for (size_t i = 0; i < sizeof VALUES / sizeof VALUES[0]; i++) {
        cvx_value_t *v;
        CHECK(cvx_json_parse(fixed_arena, VALUES[i], strlen(VALUES[i]), &v, &err) == CVX_OK);
        fixed[nfixed++] = v;
    }
    static const uint32_t tables[] = {10001, 5};
    cvx_chacha_t rng;
    cvx_chacha_seed(&rng, "ids", 3);
    for (size_t i = 0; i < 2; i++) {
        cvx_id_t id;
        char text[CVX_ID_MAX_LEN + 1];
        cvx_id_generate(tables[i], &rng, 1700000000000ull, &id);
        size_t n = cvx_id_format(&id, text);
        fixed[nfixed++] = cvx_string(fixed_arena, text, n);
        /* And as a key, for records keyed by ids. */
        cvx_value_t *o = cvx_object(fixed_arena, 1);
        CHECK(o && cvx_obj_set(fixed_arena, o, text, n, cvx_bool(fixed_arena, true)) == CVX_OK);
        fixed[nfixed++] = o;
    }
}

#define PREFIX "E: "

static void check_value(const cvx_validator_t *v, const cvx_value_t *x) {
    cvx_err_t err = {0};
    int rc = cvx_validator_check(v, x, table_of, NULL, PREFIX, &err);
    if (cvx_validator_is_any(v)) CHECK(rc == CVX_OK);
    if (rc == CVX_OK) return;
    CHECK(rc == CVX_E_ARGS);
    CHECK(strncmp(err.msg, PREFIX, 3) == 0);
    const char *m = err.msg + 3;
    /* A message that filled the error buffer was cut: a long value quoted
     * first (the literal case) may push the rest out. */
    bool cut = strlen(err.msg) == CVX_ERR_MSG_MAX - 1;
    CHECK(strncmp(m, "Value does not match validator.\n", 32) == 0 ||
          strncmp(m, "Object is missing the required field `", 38) == 0 ||
          strncmp(m, "Object contains extra field `", 29) == 0 || strncmp(m, "Found ID \"", 10) == 0 ||
          (m[0] == '`' && (cut || strstr(m, "` does not match literal validator `v.literal("))));
}

static void check_compiled(const cvx_validator_t *v, const cvx_value_t *input) {
    cvx_buf_t b = {0};
    cvx_validator_print(&b, v);
    CHECK(b.len > 0 && !b.oom);
    cvx_buf_free(&b);
    const char *names[64];
    bool optional[64];
    size_t n = cvx_validator_fields(v, names, optional, 64);
    for (size_t i = 0; i < n && i < 64; i++) {
        (void)strlen(names[i]);
        /* cvx_value_t objects are sorted and unique; args may repeat a name. */
        if (i) CHECK(strcmp(names[i - 1], names[i]) <= 0);
    }
    for (size_t i = 0; i < nfixed; i++) check_value(v, fixed[i]);
    check_value(v, input);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    init_fixed();
    cvx_arena_t *a = cvx_arena_new(4096);
    if (!a) return 0;
    cvx_value_t *json;
    cvx_err_t err = {0};
    if (cvx_json_parse(a, (const char *)data, size, &json, &err) != CVX_OK) {
        cvx_arena_free(a);
        return 0;
    }
    const cvx_validator_t *v = NULL;
    int rc = cvx_validator_from_convex(a, json, &v, &err);
    if (rc == CVX_OK) check_compiled(v, json);
    else CHECK(rc == CVX_E_INVALID_VALUE && err.msg[0] != '\0');

    rc = cvx_validator_from_type(a, json, &v, &err);
    if (rc == CVX_OK) check_compiled(v, json);
    else CHECK(rc == CVX_E_INVALID_VALUE && err.msg[0] != '\0');

    if (json->type == CVX_T_ARRAY) {
        rc = cvx_validator_from_args(a, json, &v, &err);
        if (rc == CVX_OK) check_compiled(v, json);
        else CHECK(rc == CVX_E_INVALID_VALUE && err.msg[0] != '\0');
    }
    cvx_arena_free(a);
    return 0;
}
