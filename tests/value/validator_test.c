/* value/validator: Convex's v.* compiled from its JSON form or from cvx type
 * descriptors, and checked with Convex's own messages. Clients and the
 * TypeScript tests compare these texts byte for byte with what Convex
 * says, so the expected strings below are whole messages, not fragments.
 * Validator JSON reaches the compiler from an uploaded module, so anything
 * malformed or absurdly deep must come back as an error. */
#include "support/testutil.h"

#include <math.h>
#include <string.h>

static cvx_arena_t *arena;

static int setup(void **state) {
    arena = cvx_arena_new(1 << 14);
    return arena ? 0 : -1;
}

static int teardown(void **state) {
    cvx_arena_free(arena);
    return 0;
}

/* JSON with ' for " so that the validators below stay readable. */
static cvx_value_t *J(const char *text) {
    char *s = cvx_arena_strndup(arena, text, strlen(text));
    for (char *p = s; *p; p++)
        if (*p == '\'') *p = '"';
    cvx_value_t *v = NULL;
    cvx_err_t err;
    if (cvx_json_parse(arena, s, strlen(s), &v, &err)) fail_msg("bad test JSON %s: %s", s, err.msg);
    return v;
}

/* Compiles Convex's validator JSON. */
static const cvx_validator_t *V(const char *json) {
    const cvx_validator_t *v = NULL;
    cvx_err_t err;
    if (cvx_validator_from_convex(arena, J(json), &v, &err)) fail_msg("validator %s: %s", json, err.msg);
    assert_non_null(v);
    return v;
}

/* Compiles a cvx type descriptor. */
static const cvx_validator_t *T(const char *json) {
    const cvx_validator_t *v = NULL;
    cvx_err_t err;
    if (cvx_validator_from_type(arena, J(json), &v, &err)) fail_msg("descriptor %s: %s", json, err.msg);
    assert_non_null(v);
    return v;
}

static const char *printed(const cvx_validator_t *v) {
    static char text[1024];
    cvx_buf_t b = {0};
    cvx_validator_print(&b, v);
    snprintf(text, sizeof text, "%s", b.data ? b.data : "");
    cvx_buf_free(&b);
    return text;
}

static const char *value_printed(const cvx_value_t *x) {
    static char text[1024];
    cvx_buf_t b = {0};
    cvx_value_print(&b, x);
    snprintf(text, sizeof text, "%s", b.data ? b.data : "");
    cvx_buf_free(&b);
    return text;
}

/* Tables of the ids in these tests: users 10001, messages 10002, and the
 * system table _storage 5. */
static const char *table_of(void *ctx, const char *s, size_t n) {
    cvx_id_t id;
    cvx_err_t err;
    if (cvx_id_parse(s, n, &id, &err)) return NULL;
    switch (id.table) {
    case 10001: return "users";
    case 10002: return "messages";
    case 5: return "_storage";
    default: return NULL;
    }
}

static const char *new_id(uint32_t table) {
    static char text[4][CVX_ID_MAX_LEN + 1];
    static int next;
    cvx_id_t id;
    cvx_id_generate(table, NULL, 1700000000000ull, &id);
    char *s = text[next++ % 4];
    cvx_id_format(&id, s);
    return s;
}

/* `leaf` wrapped `levels` times in `before` ... `after` (arena text). */
static const char *nested(int levels, const char *before, const char *leaf, const char *after) {
    cvx_buf_t b = {0};
    for (int i = 0; i < levels; i++) cvx_buf_append_str(&b, before);
    cvx_buf_append_str(&b, leaf);
    for (int i = 0; i < levels; i++) cvx_buf_append_str(&b, after);
    char *s = cvx_arena_strndup(arena, b.data, b.len);
    cvx_buf_free(&b);
    return s;
}

static void accepts(const cvx_validator_t *v, const char *value) {
    cvx_err_t err;
    int rc = cvx_validator_check(v, J(value), table_of, NULL, NULL, &err);
    if (rc) fail_msg("%s refused %s: %s", printed(v), value, err.msg);
}

static void rejects(const cvx_validator_t *v, const char *value, const char *msg) {
    cvx_err_t err = {0};
    int rc = cvx_validator_check(v, J(value), table_of, NULL, NULL, &err);
    if (rc == CVX_OK) fail_msg("%s accepted %s", printed(v), value);
    assert_int_equal(rc, CVX_E_ARGS);
    if (msg) assert_string_equal(err.msg, msg);
}

/* ---- kinds ------------------------------------------------------------------------ */

static void test_each_simple_kind_accepts_only_its_type(void **state) {
    static const char *const values[] = {"null", "{'$integer':'AQAAAAAAAAA='}", "1.5", "true", "'s'",
                                         "{'$bytes':'AAE='}", "[]", "{}"};
    static const struct {
        const char *json;
        const char *printed;
        int accepts; /* index into values */
    } kinds[] = {
        {"{'type':'null'}", "v.null()", 0},       {"{'type':'int64'}", "v.int64()", 1},
        {"{'type':'bigint'}", "v.int64()", 1},    {"{'type':'float64'}", "v.float64()", 2},
        {"{'type':'number'}", "v.float64()", 2},  {"{'type':'boolean'}", "v.boolean()", 3},
        {"{'type':'string'}", "v.string()", 4},   {"{'type':'bytes'}", "v.bytes()", 5},
    };
    for (size_t k = 0; k < CVX_ARRAY_LEN(kinds); k++) {
        const cvx_validator_t *v = V(kinds[k].json);
        assert_string_equal(printed(v), kinds[k].printed);
        assert_false(cvx_validator_is_any(v));
        for (size_t i = 0; i < CVX_ARRAY_LEN(values); i++) {
            if ((int)i == kinds[k].accepts) accepts(v, values[i]);
            else rejects(v, values[i], NULL);
        }
    }
    const cvx_validator_t *any = V("{'type':'any'}");
    assert_true(cvx_validator_is_any(any));
    assert_true(cvx_validator_is_any(NULL));
    assert_string_equal(printed(any), "v.any()");
    for (size_t i = 0; i < CVX_ARRAY_LEN(values); i++) accepts(any, values[i]);
}

static void test_no_match_names_value_and_validator(void **state) {
    /* At the top level the path is empty, and Convex leaves its line empty. */
    rejects(V("{'type':'string'}"), "1", "Value does not match validator.\n\nValue: 1.0\nValidator: v.string()");
    rejects(V("{'type':'number'}"), "{'$integer':'AQAAAAAAAAA='}",
            "Value does not match validator.\n\nValue: 1\nValidator: v.float64()");
    rejects(V("{'type':'object','value':{'n':{'fieldType':{'type':'float64'},'optional':false}}}"),
            "{'n':'not a number'}",
            "Value does not match validator.\nPath: .n\nValue: \"not a number\"\nValidator: v.float64()");
}

static void test_prefix_comes_before_the_message(void **state) {
    cvx_err_t err;
    const cvx_validator_t *v = V("{'type':'null'}");
    assert_int_equal(cvx_validator_check(v, J("false"), NULL, NULL, "ArgumentValidationError: ", &err), CVX_E_ARGS);
    assert_string_equal(err.msg, "ArgumentValidationError: Value does not match validator.\n\nValue: false\nValidator: v.null()");
    assert_int_equal(err.code, CVX_E_ARGS);
}

/* ---- objects ---------------------------------------------------------------------- */

#define POST                                                                                                         \
    "{'type':'object','value':{'author':{'fieldType':{'type':'string'},'optional':false},"                            \
    "'body':{'fieldType':{'type':'string'},'optional':false}}}"

static void test_missing_required_field_message(void **state) {
    rejects(V(POST), "{'body':'x'}",
            "Object is missing the required field `author`. Consider wrapping the field validator in "
            "`v.optional(...)` if this is expected.\n\nObject: {body: \"x\"}\nValidator: v.object({author: v.string(), "
            "body: v.string()})");
    accepts(V(POST), "{'author':'ada','body':'x'}");
}

static void test_extra_field_message(void **state) {
    rejects(V(POST), "{'author':'ada','body':'x','extra':1}",
            "Object contains extra field `extra` that is not in the validator.\n\nObject: {author: \"ada\", body: \"x\", "
            "extra: 1.0}\nValidator: v.object({author: v.string(), body: v.string()})");
    /* Fields are sorted by name: an extra one before the others too. */
    rejects(V(POST), "{'a':null,'author':'ada','body':'x'}", NULL);
    rejects(V("{'type':'object','value':{}}"), "{'x':1}",
            "Object contains extra field `x` that is not in the validator.\n\nObject: {x: 1.0}\nValidator: v.object({})");
    accepts(V("{'type':'object','value':{}}"), "{}");
}

static void test_optional_fields_may_be_absent_but_not_wrong(void **state) {
    const cvx_validator_t *v = V("{'type':'object','value':{'name':{'fieldType':{'type':'string'},'optional':false},"
                                 "'age':{'fieldType':{'type':'number'},'optional':true}}}");
    assert_string_equal(printed(v), "v.object({age: v.optional(v.float64()), name: v.string()})");
    accepts(v, "{'name':'ada'}");
    accepts(v, "{'name':'ada','age':36}");
    /* Optional means absent, not null. */
    rejects(v, "{'name':'ada','age':null}", "Value does not match validator.\nPath: .age\nValue: null\nValidator: v.float64()");
    rejects(v, "[]", "Value does not match validator.\n\nValue: []\nValidator: v.object({age: v.optional(v.float64()), name: "
                     "v.string()})");
}

static void test_paths_name_the_nested_mismatch(void **state) {
    const cvx_validator_t *v =
        V("{'type':'object','value':{'posts':{'fieldType':{'type':'array','value':" POST "},'optional':false}}}");
    accepts(v, "{'posts':[]}");
    rejects(v, "{'posts':[{'author':'a','body':'b'},{'author':'a','body':7}]}",
            "Value does not match validator.\nPath: .posts[1].body\nValue: 7.0\nValidator: v.string()");
    rejects(v, "{'posts':[{'author':'a','body':'b'},{'body':'b'}]}",
            "Object is missing the required field `author`. Consider wrapping the field validator in "
            "`v.optional(...)` if this is expected.\nPath: .posts[1]\nObject: {body: \"b\"}\nValidator: "
            "v.object({author: v.string(), body: v.string()})");
}

/* A path longer than the 16 segments kept shows its innermost part. */
static void test_deep_paths_are_shortened_from_the_outside(void **state) {
    const char *json = nested(20, "{'type':'array','value':", "{'type':'string'}", "}");
    rejects(V(json), nested(20, "[", "1", "]"),
            "Value does not match validator.\nPath: ...[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]\nValue: "
            "1.0\nValidator: v.string()");
}

/* ---- arrays, records, unions, literals ------------------------------------------- */

static void test_arrays_check_every_item(void **state) {
    const cvx_validator_t *v = V("{'type':'array','value':{'type':'int64'}}");
    assert_string_equal(printed(v), "v.array(v.int64())");
    accepts(v, "[]");
    accepts(v, "[{'$integer':'AQAAAAAAAAA='},{'$integer':'AgAAAAAAAAA='}]");
    rejects(v, "[{'$integer':'AQAAAAAAAAA='},2]",
            "Value does not match validator.\nPath: [1]\nValue: 2.0\nValidator: v.int64()");
    rejects(v, "{}", "Value does not match validator.\n\nValue: {}\nValidator: v.array(v.int64())");
}

static void test_records_check_keys_and_values(void **state) {
    const cvx_validator_t *v = V("{'type':'record','keys':{'type':'string'},'values':{'fieldType':{'type':'number'},"
                                 "'optional':false}}");
    assert_string_equal(printed(v), "v.record(v.string(), v.float64())");
    accepts(v, "{}");
    accepts(v, "{'a':1,'b':2}");
    rejects(v, "{'a':1,'b':'2'}", "Value does not match validator.\nPath: .values()\nValue: \"2\"\nValidator: v.float64()");
    rejects(v, "[]", "Value does not match validator.\n\nValue: []\nValidator: v.record(v.string(), v.float64())");
    const cvx_validator_t *lit = V("{'type':'record','keys':{'type':'union','value':[{'type':'literal','value':'a'},"
                                   "{'type':'literal','value':'b'}]},'values':{'fieldType':{'type':'any'},'optional':true}}");
    assert_string_equal(printed(lit), "v.record(v.union(v.literal(\"a\"), v.literal(\"b\")), v.optional(v.any()))");
    accepts(lit, "{'a':1,'b':null}");
    /* A key is no value of the object: its text is printed as a string. */
    rejects(lit, "{'a':1,'c':2}",
            "Value does not match validator.\nPath: .keys()\nValue: \"c\"\nValidator: v.union(v.literal(\"a\"), "
            "v.literal(\"b\"))");
}

/* A record keyed by ids of another table must report the key (which lives
 * only while the check runs), not crash on it. */
static void test_record_id_keys_from_another_table(void **state) {
    const cvx_validator_t *v = V("{'type':'record','keys':{'type':'id','tableName':'users'},'values':{'fieldType':"
                                 "{'type':'boolean'},'optional':false}}");
    char value[128], msg[512];
    const char *user = new_id(10001), *message = new_id(10002), *file = new_id(5);
    snprintf(value, sizeof value, "{'%s':true}", user);
    accepts(v, value);
    snprintf(value, sizeof value, "{'%s':true}", message);
    snprintf(msg, sizeof msg,
             "Found ID \"%s\" from table `messages`, which does not match the table name in validator "
             "`v.id(\"users\")`.Path: .keys()",
             message);
    rejects(v, value, msg);
    snprintf(value, sizeof value, "{'%s':true}", file);
    snprintf(msg, sizeof msg,
             "Found ID \"%s\" from a system table, which does not match the table name in validator "
             "`v.id(\"users\")`.Path: .keys()",
             file);
    rejects(v, value, msg);
    const cvx_validator_t *lit = V("{'type':'record','keys':{'type':'literal','value':'a'},'values':{'fieldType':"
                                   "{'type':'boolean'},'optional':false}}");
    rejects(lit, "{'b':true}", "`\"b\"` does not match literal validator `v.literal(\"a\")`.Path: .keys()");
}

static void test_unions_accept_any_member_and_report_the_union(void **state) {
    const cvx_validator_t *v =
        V("{'type':'union','value':[{'type':'string'},{'type':'number'}]}");
    assert_string_equal(printed(v), "v.union(v.string(), v.float64())");
    accepts(v, "'x'");
    accepts(v, "1");
    rejects(v, "true", "Value does not match validator.\n\nValue: true\nValidator: v.union(v.string(), v.float64())");
    /* A failed trial inside a member leaves no trace in the path. */
    const cvx_validator_t *objs = V("{'type':'union','value':[" POST ",{'type':'object','value':{'n':{'fieldType':"
                                    "{'type':'array','value':{'type':'null'}},'optional':false}}}]}");
    accepts(objs, "{'n':[null]}");
    rejects(objs, "{'n':[null,1]}",
            "Value does not match validator.\n\nValue: {n: [null, 1.0]}\nValidator: v.union(v.object({author: "
            "v.string(), body: v.string()}), v.object({n: v.array(v.null())}))");
    const cvx_validator_t *inner =
        V("{'type':'array','value':{'type':'union','value':[{'type':'string'},{'type':'number'}]}}");
    rejects(inner, "['a',2,false]",
            "Value does not match validator.\nPath: [2]\nValue: false\nValidator: v.union(v.string(), v.float64())");
    /* One member: its own message. */
    rejects(V("{'type':'union','value':[{'type':'string'}]}"), "1",
            "Value does not match validator.\n\nValue: 1.0\nValidator: v.string()");
    /* No members: nothing matches. */
    rejects(V("{'type':'union','value':[]}"), "null", "Value does not match validator.\n\nValue: null\nValidator: v.union()");
}

static void test_literals_compare_type_and_value(void **state) {
    const cvx_validator_t *s = V("{'type':'literal','value':'a'}");
    assert_string_equal(printed(s), "v.literal(\"a\")");
    accepts(s, "'a'");
    rejects(s, "'b'", "`\"b\"` does not match literal validator `v.literal(\"a\")`.");
    const cvx_validator_t *big = V("{'type':'literal','value':{'$integer':'AwAAAAAAAAA='}}");
    assert_string_equal(printed(big), "v.literal(<bigint>)");
    accepts(big, "{'$integer':'AwAAAAAAAAA='}");
    rejects(big, "3", "`3.0` does not match literal validator `v.literal(<bigint>)`.");
    const cvx_validator_t *t = V("{'type':'literal','value':true}");
    rejects(t, "false", "`false` does not match literal validator `v.literal(true)`.");
    /* Convex prints a number literal through serde_json: "2.0", not "2". */
    const cvx_validator_t *two = V("{'type':'literal','value':2}");
    assert_string_equal(printed(two), "v.literal(2.0)");
    rejects(two, "{'$integer':'AgAAAAAAAAA='}", "`2` does not match literal validator `v.literal(2.0)`.");
    assert_string_equal(printed(V("{'type':'literal','value':0.5}")), "v.literal(0.5)");
    assert_string_equal(printed(V("{'type':'literal','value':0.00001}")), "v.literal(0.00001)");
    assert_string_equal(printed(V("{'type':'literal','value':1e-7}")), "v.literal(1e-7)");
    assert_string_equal(printed(V("{'type':'literal','value':1e16}")), "v.literal(1e16)");
    assert_string_equal(printed(V("{'type':'literal','value':{'$float':'AAAAAAAA+H8='}}")), "v.literal(<number>)");
    const cvx_validator_t *in = V("{'type':'object','value':{'kind':{'fieldType':{'type':'literal','value':'post'},"
                                  "'optional':false}}}");
    /* Convex puts the path straight after the sentence. */
    rejects(in, "{'kind':'page'}", "`\"page\"` does not match literal validator `v.literal(\"post\")`.Path: .kind");
}

static void test_ids_check_format_and_table(void **state) {
    const cvx_validator_t *v = V("{'type':'id','tableName':'users'}");
    assert_string_equal(printed(v), "v.id(\"users\")");
    char value[64], msg[512];
    const char *user = new_id(10001), *message = new_id(10002), *unknown = new_id(10099);
    snprintf(value, sizeof value, "'%s'", user);
    accepts(v, value);
    snprintf(value, sizeof value, "'%s'", message);
    snprintf(msg, sizeof msg,
             "Found ID \"%s\" from table `messages`, which does not match the table name in validator `v.id(\"users\")`.",
             message);
    rejects(v, value, msg);
    /* An id of no table is no match at all. */
    snprintf(value, sizeof value, "'%s'", unknown);
    snprintf(msg, sizeof msg, "Value does not match validator.\n\nValue: \"%s\"\nValidator: v.id(\"users\")", unknown);
    rejects(v, value, msg);
    rejects(v, "'not an id'", "Value does not match validator.\n\nValue: \"not an id\"\nValidator: v.id(\"users\")");
    rejects(v, "1", NULL);
    /* Without a way to name tables, any well-formed id passes. */
    cvx_err_t err;
    assert_int_equal(cvx_validator_check(v, J(value), NULL, NULL, NULL, &err), CVX_OK);
    assert_int_equal(cvx_validator_check(v, J("'not an id'"), NULL, NULL, NULL, &err), CVX_E_ARGS);
}

/* ---- printing --------------------------------------------------------------------- */

static void test_validators_print_as_convex_writes_them(void **state) {
    const cvx_validator_t *v = V(
        "{'type':'object','value':{"
        "'a':{'fieldType':{'type':'array','value':{'type':'bigint'}},'optional':true},"
        "'b':{'fieldType':{'type':'union','value':[{'type':'null'},{'type':'bytes'}]},'optional':false},"
        "'c':{'fieldType':{'type':'record','keys':{'type':'string'},'values':{'fieldType':{'type':'any'},'optional':"
        "false}},'optional':false},"
        "'d':{'fieldType':{'type':'literal','value':'x\\'y'},'optional':false},"
        "'e':{'fieldType':{'type':'id','tableName':'users'},'optional':false}}}");
    assert_string_equal(printed(v), "v.object({a: v.optional(v.array(v.int64())), b: v.union(v.null(), v.bytes()), "
                                    "c: v.record(v.string(), v.any()), d: v.literal(\"x\\\"y\"), e: v.id(\"users\")})");
    cvx_buf_t b = {0};
    cvx_validator_print(&b, NULL);
    assert_string_equal(b.data, "v.any()");
    cvx_buf_free(&b);
}

static void test_values_print_as_convex_writes_them(void **state) {
    assert_string_equal(value_printed(J("{'name':'Ada','n':1}")), "{n: 1.0, name: \"Ada\"}");
    assert_string_equal(value_printed(J("[null,true,[],{}]")), "[null, true, [], {}]");
    assert_string_equal(value_printed(J("{'$integer':'AQAAAAAAAIA='}")), "-9223372036854775807");
    assert_string_equal(value_printed(J("{'$bytes':'AP8='}")), "b\"\\x00\\xff\"");
    assert_string_equal(value_printed(J("'a\\\"b\\\\c\\n\\r\\t\\u0001\\u007f\\u00e9'")),
                        "\"a\\\"b\\\\c\\n\\r\\t\\u{1}\\u{7f}\xc3\xa9\"");
    assert_string_equal(value_printed(NULL), "undefined");
    /* Floats as Rust's {:?}: a fraction always, exponents outside
     * [1e-4, 1e16). */
    static const struct {
        double f;
        const char *text;
    } floats[] = {{100, "100.0"},     {150000, "150000.0"}, {123.456, "123.456"}, {0.1, "0.1"},       {-2.5, "-2.5"},    {1e15, "1000000000000000.0"}, {1e16, "1e16"},
                  {1.5e300, "1.5e300"}, {1e-4, "0.0001"}, {1e-5, "1e-5"},               {0.0, "0.0"},
                  {-0.0, "-0.0"},       {NAN, "NaN"},     {INFINITY, "inf"},           {-INFINITY, "-inf"},
                  {5e-324, "5e-324"},  {0.30000000000000004, "0.30000000000000004"}};
    for (size_t i = 0; i < CVX_ARRAY_LEN(floats); i++)
        assert_string_equal(value_printed(cvx_float64(arena, floats[i].f)), floats[i].text);
}

/* Whatever its magnitude, a printed float reads back as the same number. */
static void test_printed_floats_read_back_exactly(void **state) {
    cvx_chacha_t rng;
    cvx_chacha_seed(&rng, "floats", 6);
    for (int i = 0; i < 20000; i++) {
        uint64_t bits = cvx_chacha_u64(&rng);
        double f;
        /* Half of them with a small exponent, around the format switches. */
        if (i % 2) bits = (bits & 0x800fffffffffffffull) | ((uint64_t)(1023 - 20 + (int)(bits >> 52) % 80) << 52);
        memcpy(&f, &bits, sizeof f);
        if (!isfinite(f)) continue;
        const char *text = value_printed(cvx_float64(arena, f));
        char *end;
        double back = strtod(text, &end);
        if (*end || back != f) fail_msg("%.17g printed as %s", f, text);
        assert_true(strchr(text, '.') || strchr(text, 'e'));
    }
}

/* ---- cvx type descriptors -------------------------------------------------------- */

static void test_type_descriptors_compile_to_the_same_checks(void **state) {
    assert_string_equal(printed(T("{'type':'string'}")), "v.string()");
    assert_string_equal(printed(T("{'type':'int64'}")), "v.int64()");
    assert_string_equal(printed(T("{'type':'array','items':{'type':'float64'}}")), "v.array(v.float64())");
    assert_string_equal(printed(T("{'type':'id','table':'users'}")), "v.id(\"users\")");
    assert_string_equal(printed(T("{'type':'literal','value':'on'}")), "v.literal(\"on\")");
    assert_string_equal(printed(T("{'type':'record','values':{'type':'boolean'}}")), "v.record(v.string(), v.boolean())");
    assert_string_equal(printed(T("{'type':'union','variants':[{'type':'null'},{'type':'bytes'}]}")),
                        "v.union(v.null(), v.bytes())");
    /* A document, or an object without fields: any object. */
    const cvx_validator_t *doc = T("{'type':'document'}");
    assert_string_equal(printed(doc), "v.record(v.string(), v.any())");
    accepts(doc, "{'a':[1]}");
    rejects(doc, "[]", NULL);
    assert_string_equal(printed(T("{'type':'object'}")), "v.record(v.string(), v.any())");
    /* Unknown descriptors (a newer SDK) accept anything. */
    assert_true(cvx_validator_is_any(T("{'type':'tuple','items':[]}")));
    assert_true(cvx_validator_is_any(T("{'type':'any'}")));
    assert_true(cvx_validator_is_any(T("{}")));
    assert_true(cvx_validator_is_any(T("7")));
}

/* A Rust Option field may be absent or null, and the message says so. */
static void test_rust_options_are_absent_or_null(void **state) {
    const cvx_validator_t *v =
        T("{'type':'object','fields':{'name':{'type':'string'},'age':{'type':'optional','inner':{'type':'int64'}}}}");
    assert_string_equal(printed(v), "v.object({age: v.optional(v.union(v.int64(), v.null())), name: v.string()})");
    accepts(v, "{'name':'ada'}");
    accepts(v, "{'name':'ada','age':null}");
    accepts(v, "{'name':'ada','age':{'$integer':'AQAAAAAAAAA='}}");
    rejects(v, "{'name':'ada','age':1}",
            "Value does not match validator.\nPath: .age\nValue: 1.0\nValidator: v.union(v.int64(), v.null())");
    rejects(v, "{'age':null}", NULL);
}

static void test_args_become_a_sorted_object(void **state) {
    const cvx_validator_t *v;
    cvx_err_t err;
    assert_int_equal(cvx_validator_from_args(arena,
                                             J("[{'name':'title','type':{'type':'string'}},"
                                               "{'name':'count','type':{'type':'optional','inner':{'type':'int64'}}},"
                                               "{'type':{'type':'string'}},{'name':3}]"),
                                             &v, &err),
                     CVX_OK);
    assert_string_equal(printed(v), "v.object({count: v.optional(v.union(v.int64(), v.null())), title: v.string()})");
    const char *names[4];
    bool optional[4];
    assert_int_equal(cvx_validator_fields(v, names, optional, 4), 2);
    assert_string_equal(names[0], "count");
    assert_true(optional[0]);
    assert_string_equal(names[1], "title");
    assert_false(optional[1]);
    /* A smaller array gets the first fields and the full count. */
    names[1] = NULL;
    assert_int_equal(cvx_validator_fields(v, names, optional, 1), 2);
    assert_string_equal(names[0], "count");
    assert_null(names[1]);
    assert_int_equal(cvx_validator_fields(V("{'type':'string'}"), names, optional, 4), 0);
    assert_int_equal(cvx_validator_fields(NULL, names, optional, 4), 0);
    rejects(v, "{}", "Object is missing the required field `title`. Consider wrapping the field validator in "
                     "`v.optional(...)` if this is expected.\n\nObject: {}\nValidator: v.object({count: "
                     "v.optional(v.union(v.int64(), v.null())), title: v.string()})");
    assert_int_equal(cvx_validator_from_args(arena, J("{}"), &v, &err), CVX_E_INVALID_VALUE);
    assert_string_equal(err.msg, "\"args\" must be an array");
    assert_int_equal(cvx_validator_from_args(arena, NULL, &v, &err), CVX_E_INVALID_VALUE);
    assert_int_equal(cvx_validator_from_args(arena, J("[]"), &v, &err), CVX_OK);
    accepts(v, "{}");
    rejects(v, "{'a':1}", NULL);
}

/* ---- malformed and hostile validators --------------------------------------------- */

static void test_malformed_validators_are_errors(void **state) {
    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"{}", "validator has no \"type\""},
        {"'string'", "validator has no \"type\""},
        {"[{'type':'string'}]", "validator has no \"type\""},
        {"{'type':1}", "validator has no \"type\""},
        {"{'type':'nope'}", "unknown validator type \"nope\""},
        {"{'type':'optional','value':{'type':'string'}}", "unknown validator type \"optional\""},
        {"{'type':'id'}", "v.id validator has no \"tableName\""},
        {"{'type':'id','tableName':5}", "v.id validator has no \"tableName\""},
        {"{'type':'literal'}", "v.literal validator has no \"value\""},
        {"{'type':'array'}", "validator has no \"type\""},
        {"{'type':'array','value':{'type':'wat'}}", "unknown validator type \"wat\""},
        {"{'type':'object'}", "v.object validator has no fields"},
        {"{'type':'object','value':[]}", "v.object validator has no fields"},
        {"{'type':'object','value':{'a':{'type':'string'}}}", "validator has no \"type\""},
        {"{'type':'object','value':{'a':{'fieldType':{'type':'string'}},'b':null}}", "validator has no \"type\""},
        {"{'type':'union'}", "v.union validator has no members"},
        {"{'type':'union','value':{}}", "v.union validator has no members"},
        {"{'type':'union','value':[{'type':'string'},{}]}", "validator has no \"type\""},
        {"{'type':'record','values':{'fieldType':{'type':'string'}}}", "validator has no \"type\""},
        {"{'type':'record','keys':{'type':'string'}}", "validator has no \"type\""},
        {"{'type':'record','keys':{'type':'string'},'values':{'type':'string'}}", "validator has no \"type\""},
    };
    for (size_t i = 0; i < CVX_ARRAY_LEN(bad); i++) {
        const cvx_validator_t *v = NULL;
        cvx_err_t err = {0};
        int rc = cvx_validator_from_convex(arena, J(bad[i].json), &v, &err);
        if (rc != CVX_E_INVALID_VALUE) fail_msg("%s: rc %d", bad[i].json, rc);
        assert_string_equal(err.msg, bad[i].msg);
    }
    const cvx_validator_t *v;
    cvx_err_t err;
    assert_int_equal(cvx_validator_from_convex(arena, NULL, &v, &err), CVX_E_INVALID_VALUE);
    assert_int_equal(cvx_validator_from_type(arena, J("{'type':'id'}"), &v, &err), CVX_E_INVALID_VALUE);
    assert_string_equal(err.msg, "id type has no \"table\"");
    assert_int_equal(cvx_validator_from_type(arena, J("{'type':'literal'}"), &v, &err), CVX_E_INVALID_VALUE);
    assert_string_equal(err.msg, "literal type has no \"value\"");
}

/* The JSON parser stops at depth 64, but metadata can be built by other
 * means; the compiler must bound its own recursion. */
static void test_nesting_is_bounded(void **state) {
    cvx_value_t *inner = J("{'type':'string'}"), *tinner = J("{'type':'string'}");
    for (int i = 0; i < 1000; i++) {
        cvx_value_t *o = cvx_object(arena, 2), *t = cvx_object(arena, 2);
        assert_int_equal(cvx_obj_set(arena, o, "type", 4, cvx_string(arena, "array", 5)), CVX_OK);
        assert_int_equal(cvx_obj_set(arena, o, "value", 5, inner), CVX_OK);
        assert_int_equal(cvx_obj_set(arena, t, "type", 4, cvx_string(arena, "array", 5)), CVX_OK);
        assert_int_equal(cvx_obj_set(arena, t, "items", 5, tinner), CVX_OK);
        inner = o, tinner = t;
    }
    const cvx_validator_t *v;
    cvx_err_t err;
    assert_int_equal(cvx_validator_from_convex(arena, inner, &v, &err), CVX_E_INVALID_VALUE);
    assert_string_equal(err.msg, "validator nests deeper than 64");
    assert_int_equal(cvx_validator_from_type(arena, tinner, &v, &err), CVX_E_INVALID_VALUE);
    assert_string_equal(err.msg, "type descriptor nests deeper than 64");
    /* As deep as the parser allows compiles, and checks. */
    accepts(V(nested(62, "{'type':'array','value':", "{'type':'null'}", "}")), nested(62, "[", "null", "]"));
}

/* Compiling and checking under memory pressure fail with NOMEM, cleanly. */
static void test_out_of_memory_is_an_error(void **state) {
    const cvx_value_t *json = J(POST);
    for (uint64_t nth = 1; nth < 20; nth++) {
        cvx_arena_t *small = cvx_arena_new(64);
        assert_non_null(small);
        const cvx_validator_t *v = NULL;
        cvx_err_t err = {0};
        cvx_alloc_fail_after(nth, true);
        int rc = cvx_validator_from_convex(small, json, &v, &err);
        cvx_alloc_fail_after(0, false);
        if (rc) assert_int_equal(rc, CVX_E_NOMEM);
        cvx_arena_free(small);
    }
    const cvx_validator_t *v = V(POST);
    const cvx_value_t *x = J("{}");
    cvx_err_t err;
    cvx_alloc_fail_after(1, true);
    int rc = cvx_validator_check(v, x, NULL, NULL, NULL, &err);
    cvx_alloc_fail_after(0, false);
    assert_int_equal(rc, CVX_E_NOMEM);
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        TEST(test_each_simple_kind_accepts_only_its_type),
        TEST(test_no_match_names_value_and_validator),
        TEST(test_prefix_comes_before_the_message),
        TEST(test_missing_required_field_message),
        TEST(test_extra_field_message),
        TEST(test_optional_fields_may_be_absent_but_not_wrong),
        TEST(test_paths_name_the_nested_mismatch),
        TEST(test_deep_paths_are_shortened_from_the_outside),
        TEST(test_arrays_check_every_item),
        TEST(test_records_check_keys_and_values),
        TEST(test_record_id_keys_from_another_table),
        TEST(test_unions_accept_any_member_and_report_the_union),
        TEST(test_literals_compare_type_and_value),
        TEST(test_ids_check_format_and_table),
        TEST(test_validators_print_as_convex_writes_them),
        TEST(test_values_print_as_convex_writes_them),
        TEST(test_printed_floats_read_back_exactly),
        TEST(test_type_descriptors_compile_to_the_same_checks),
        TEST(test_rust_options_are_absent_or_null),
        TEST(test_args_become_a_sorted_object),
        TEST(test_malformed_validators_are_errors),
        TEST(test_nesting_is_bounded),
        TEST(test_out_of_memory_is_an_error),
    };
    if (getenv("CVX_TEST_FILTER")) cmocka_set_test_filter(getenv("CVX_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
