/* The pure protocol code of protocol.c: every client message type decoded
 * into its typed form, every malformed field refused with the text the
 * client is sent and the place among the engine's checks where it is
 * reported, and the server's messages encoded as JSON the client parses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync/protocol.h"

static int decode(const char *json, cvx__sync_msg_t *m) { return cvx__sync_decode(json, strlen(json), m); }

/* ---- accepted ---------------------------------------------------------------------- */

static void test_connect(void **state) {
    (void)state;
    cvx__sync_msg_t m;
    assert_int_equal(decode("{\"type\":\"Connect\",\"sessionId\":\"0a1b\",\"connectionCount\":3,"
                            "\"lastCloseReason\":null,\"maxObservedTimestamp\":\"AAAAAAAAAAA=\",\"clientTs\":17}",
                            &m),
                     CVX_OK);
    assert_int_equal(m.type, CVX__SYNC_CONNECT);
    assert_int_equal(m.fault, CVX__SYNC_OK);
    assert_string_equal(m.error, "");
    assert_string_equal(m.session_id, "0a1b");
    cvx__sync_msg_free(&m);
    /* No session, or one that is not a string: none. */
    const char *none[] = {"{\"type\":\"Connect\"}", "{\"type\":\"Connect\",\"sessionId\":5}",
                          "{\"type\":\"Connect\",\"sessionId\":null}"};
    for (size_t i = 0; i < sizeof none / sizeof *none; i++) {
        assert_int_equal(decode(none[i], &m), CVX_OK);
        assert_string_equal(m.session_id, "");
        cvx__sync_msg_free(&m);
    }
    /* 79 bytes is the most kept. */
    char msg[200];
    snprintf(msg, sizeof msg, "{\"type\":\"Connect\",\"sessionId\":\"%079d\"}", 7);
    assert_int_equal(decode(msg, &m), CVX_OK);
    assert_int_equal(strlen(m.session_id), CVX__SYNC_SESSION_MAX);
    cvx__sync_msg_free(&m);
}

static void test_modify_query_set(void **state) {
    (void)state;
    cvx__sync_msg_t m;
    assert_int_equal(
        decode("{\"type\":\"ModifyQuerySet\",\"baseVersion\":3,\"newVersion\":4,\"modifications\":["
               "{\"type\":\"Add\",\"queryId\":0,\"udfPath\":\"users:list\",\"args\":[{\"b\":[1,2],\"a\":\"x\"}]},"
               "{\"type\":\"Remove\",\"queryId\":4294967295},"
               "{\"type\":\"Add\",\"queryId\":9,\"udfPath\":\"messages:page\",\"args\":[],\"journal\":\"j1\"},"
               "{\"type\":\"Add\",\"queryId\":10,\"udfPath\":\"users:count\",\"journal\":\"\"},"
               "{\"type\":\"Add\",\"queryId\":11,\"udfPath\":\"users:count\",\"args\":{\"n\":1},\"journal\":5}]}",
               &m),
        CVX_OK);
    assert_int_equal(m.type, CVX__SYNC_MODIFY_QUERY_SET);
    assert_true(m.base_version == 3 && m.new_version == 4);
    assert_int_equal(m.nmods, 5);
    assert_int_equal(m.adds, 4);
    assert_int_equal(m.others, 1);
    const cvx__sync_mod_t *d = m.mods;
    assert_int_equal(d[0].op, CVX__SYNC_ADD);
    assert_int_equal(d[0].query_id, 0);
    assert_string_equal(d[0].udf_path, "users:list");
    assert_int_equal(d[0].udf_path_len, 10);
    /* Canonical: fields sorted, no blanks. */
    assert_string_equal(d[0].args, "{\"a\":\"x\",\"b\":[1,2]}");
    assert_int_equal(d[0].args_len, strlen(d[0].args));
    assert_null(d[0].journal);
    assert_int_equal(d[1].op, CVX__SYNC_REMOVE);
    assert_int_equal(d[1].query_id, UINT32_MAX);
    assert_string_equal(d[2].args, "{}");
    assert_string_equal(d[2].journal, "j1");
    /* No args is {}; an empty journal, or one not a string, is none. */
    assert_string_equal(d[3].args, "{}");
    assert_null(d[3].journal);
    assert_string_equal(d[4].args, "{\"n\":1}");
    assert_null(d[4].journal);
    for (size_t i = 0; i < m.nmods; i++) assert_int_equal(d[i].fault, CVX__SYNC_MOD_OK);
    cvx__sync_msg_free(&m);
    /* No modifications; the largest versions. */
    assert_int_equal(decode("{\"type\":\"ModifyQuerySet\",\"baseVersion\":0,\"newVersion\":4294967294,"
                            "\"modifications\":[]}",
                            &m),
                     CVX_OK);
    assert_int_equal(m.nmods, 0);
    assert_true(m.new_version == 4294967294.0);
    cvx__sync_msg_free(&m);
}

static void test_authenticate(void **state) {
    (void)state;
    cvx__sync_msg_t m;
    assert_int_equal(decode("{\"type\":\"Authenticate\",\"tokenType\":\"Admin\",\"value\":\"k3y\",\"baseVersion\":2,"
                            "\"impersonating\":{}}",
                            &m),
                     CVX_OK);
    assert_int_equal(m.type, CVX__SYNC_AUTHENTICATE);
    assert_int_equal(m.token_type, CVX__SYNC_TOKEN_ADMIN);
    assert_string_equal(m.token, "k3y");
    assert_true(m.base_version == 2);
    cvx__sync_msg_free(&m);
    /* An admin key that is not a string is a wrong key (an AuthError), not
     * a protocol error. */
    assert_int_equal(decode("{\"type\":\"Authenticate\",\"tokenType\":\"Admin\",\"value\":1,\"baseVersion\":0}", &m),
                     CVX_OK);
    assert_null(m.token);
    cvx__sync_msg_free(&m);
    assert_int_equal(decode("{\"type\":\"Authenticate\",\"tokenType\":\"User\",\"value\":\"jwt\",\"baseVersion\":0}",
                            &m),
                     CVX_OK);
    assert_int_equal(m.token_type, CVX__SYNC_TOKEN_USER);
    cvx__sync_msg_free(&m);
    assert_int_equal(decode("{\"type\":\"Authenticate\",\"tokenType\":\"None\",\"baseVersion\":4294967294}", &m),
                     CVX_OK);
    assert_int_equal(m.token_type, CVX__SYNC_TOKEN_NONE);
    cvx__sync_msg_free(&m);
}

static void test_calls(void **state) {
    (void)state;
    cvx__sync_msg_t m;
    assert_int_equal(decode("{\"type\":\"Mutation\",\"requestId\":9007199254740991,\"udfPath\":\"users:create\","
                            "\"args\":[{\"z\":{\"$integer\":\"AQAAAAAAAAA=\"},\"a\":null}],\"componentPath\":null}",
                            &m),
                     CVX_OK);
    assert_int_equal(m.type, CVX__SYNC_MUTATION);
    assert_true(m.request_id == 9007199254740991.0);
    assert_string_equal(m.udf_path, "users:create");
    assert_string_equal(m.args.data, "{\"a\":null,\"z\":{\"$integer\":\"AQAAAAAAAAA=\"}}");
    cvx__sync_msg_free(&m);
    assert_int_equal(decode("{\"type\":\"Action\",\"requestId\":0,\"udfPath\":\"users:signup\"}", &m), CVX_OK);
    assert_int_equal(m.type, CVX__SYNC_ACTION);
    assert_string_equal(m.args.data, "{}");
    cvx__sync_msg_free(&m);
    /* Telemetry: anything goes. */
    assert_int_equal(decode("{\"type\":\"Event\",\"eventType\":[1,{\"x\":\"\\u0000\"}]}", &m), CVX_OK);
    assert_int_equal(m.type, CVX__SYNC_EVENT);
    cvx__sync_msg_free(&m);
}

/* ---- refused ----------------------------------------------------------------------- */

typedef struct {
    const char *msg;
    cvx__sync_fault_t fault;
    const char *error;
} refusal_t;

static void expect_refusals(const refusal_t *cases, size_t n) {
    for (size_t i = 0; i < n; i++) {
        cvx__sync_msg_t m;
        int rc = decode(cases[i].msg, &m);
        if (rc != CVX_E_INVALID_ARGUMENT || m.fault != cases[i].fault || strcmp(m.error, cases[i].error) != 0)
            fail_msg("%s\n  gave %d, fault %d: %s\n  want fault %d: %s", cases[i].msg, rc, (int)m.fault, m.error,
                     (int)cases[i].fault, cases[i].error);
        cvx__sync_msg_free(&m);
    }
}

static void test_refused_envelope(void **state) {
    (void)state;
    static const refusal_t cases[] = {
        {"[1]", CVX__SYNC_FAULT, "message is not a JSON object"},
        {"null", CVX__SYNC_FAULT, "message is not a JSON object"},
        {"{}", CVX__SYNC_FAULT, "message has no \"type\""},
        {"{\"type\":7}", CVX__SYNC_FAULT, "message has no \"type\""},
        {"{\"type\":\"Ev\\u0000ent\"}", CVX__SYNC_FAULT, "\"type\" contains a NUL character"},
        {"{\"type\":\"Subscribe\"}", CVX__SYNC_FAULT, "unknown message type \"Subscribe\""},
        {"{\"type\":\"connect\"}", CVX__SYNC_FAULT, "unknown message type \"connect\""},
        {"{\"type\":\"Connect\",\"sessionId\":\"a\\u0000b\"}", CVX__SYNC_FAULT,
         "\"sessionId\" contains a NUL character"},
        {"{\"type\":\"Connect\",\"sessionId\":\"01234567890123456789012345678901234567890123456789012345678901234567"
         "890123456789\"}",
         CVX__SYNC_FAULT, "sessionId is longer than 79 bytes"},
    };
    expect_refusals(cases, sizeof cases / sizeof *cases);
    cvx__sync_msg_t m;
    assert_int_equal(decode("{\"type\":", &m), CVX_E_INVALID_ARGUMENT);
    assert_int_equal(m.type, 0);
    assert_int_equal(m.fault, CVX__SYNC_FAULT);
    assert_string_equal(m.error, "message is not valid JSON: invalid JSON at byte 8: unexpected end of input");
    cvx__sync_msg_free(&m);
}

static void test_refused_modify_query_set(void **state) {
    (void)state;
#define MQS(base, next, mods)                                                                                         \
    "{\"type\":\"ModifyQuerySet\",\"baseVersion\":" base ",\"newVersion\":" next ",\"modifications\":[" mods "]}"
#define ADD(id) "{\"type\":\"Add\",\"queryId\":" id ",\"udfPath\":\"users:count\",\"args\":[{}]}"
    static const refusal_t cases[] = {
        {"{\"type\":\"ModifyQuerySet\",\"newVersion\":1,\"modifications\":[]}", CVX__SYNC_FAULT,
         "ModifyQuerySet needs baseVersion, newVersion and modifications"},
        {"{\"type\":\"ModifyQuerySet\",\"baseVersion\":0,\"newVersion\":1,\"modifications\":{}}", CVX__SYNC_FAULT,
         "ModifyQuerySet needs baseVersion, newVersion and modifications"},
        {MQS("0", "1.5", ""), CVX__SYNC_FAULT, "ModifyQuerySet needs baseVersion, newVersion and modifications"},
        {MQS("-1", "1", ""), CVX__SYNC_FAULT, "ModifyQuerySet needs baseVersion, newVersion and modifications"},
        {MQS("0", "9007199254740992", ""), CVX__SYNC_FAULT,
         "ModifyQuerySet needs baseVersion, newVersion and modifications"},
        {MQS("0", "\"1\"", ""), CVX__SYNC_FAULT, "ModifyQuerySet needs baseVersion, newVersion and modifications"},
        {MQS("0", "{\"$integer\":\"AQAAAAAAAAA=\"}", ""), CVX__SYNC_FAULT,
         "ModifyQuerySet needs baseVersion, newVersion and modifications"},
        /* NaN: refused before any cast. */
        {MQS("0", "{\"$float\":\"AAAAAAAA+H8=\"}", ""), CVX__SYNC_FAULT,
         "ModifyQuerySet needs baseVersion, newVersion and modifications"},
        /* Reported after the baseVersion is compared with the set's. */
        {MQS("0", "4294967295", ""), CVX__SYNC_FAULT_AFTER_BASE,
         "ModifyQuerySet newVersion 4294967295 is out of range"},
        {MQS("5", "5", ""), CVX__SYNC_FAULT_AFTER_BASE,
         "ModifyQuerySet newVersion 5 must be greater than baseVersion 5"},
        {MQS("5", "2", ""), CVX__SYNC_FAULT_AFTER_BASE,
         "ModifyQuerySet newVersion 2 must be greater than baseVersion 5"},
        /* Reported at the modification, after the ones before it. */
        {MQS("0", "1", ADD("1") ",7"), CVX__SYNC_FAULT_IN_MODS,
         "query set modification 1 needs a type and a queryId"},
        {MQS("0", "1", "{\"type\":\"Add\"}"), CVX__SYNC_FAULT_IN_MODS,
         "query set modification 0 needs a type and a queryId"},
        {MQS("0", "1", "{\"queryId\":1}"), CVX__SYNC_FAULT_IN_MODS,
         "query set modification 0 needs a type and a queryId"},
        {MQS("0", "1", "{\"type\":\"Remove\",\"queryId\":-1}"), CVX__SYNC_FAULT_IN_MODS,
         "query set modification 0 needs a type and a queryId"},
        {MQS("0", "1", "{\"type\":\"Remove\",\"queryId\":{\"$float\":\"AAAAAAAA+H8=\"}}"), CVX__SYNC_FAULT_IN_MODS,
         "query set modification 0 needs a type and a queryId"},
        {MQS("0", "1", "{\"type\":\"Remove\",\"queryId\":4294967296}"), CVX__SYNC_FAULT_IN_MODS,
         "queryId 4294967296 is out of range"},
        {MQS("0", "1", "{\"type\":\"Add\\u0000\",\"queryId\":1}"), CVX__SYNC_FAULT_IN_MODS,
         "\"type\" contains a NUL character"},
        {MQS("0", "1", "{\"type\":\"Replace\",\"queryId\":1}"), CVX__SYNC_FAULT_IN_MODS,
         "unknown query set modification \"Replace\""},
        {MQS("0", "1", "{\"type\":\"Add\",\"queryId\":1,\"udfPath\":\"a\\u0000b\",\"journal\":\"\\u0000\"}"),
         CVX__SYNC_FAULT_IN_MODS, "\"udfPath\" contains a NUL character"},
        {MQS("0", "1", "{\"type\":\"Add\",\"queryId\":1,\"udfPath\":\"a\",\"journal\":\"\\u0000\"}"),
         CVX__SYNC_FAULT_IN_MODS, "\"journal\" contains a NUL character"},
        {MQS("0", "1", "{\"type\":\"Add\",\"queryId\":1,\"udfPath\":5}"), CVX__SYNC_FAULT_IN_MODS,
         "Add of query 1 needs a udfPath and args: [object]"},
        {MQS("0", "1", "{\"type\":\"Add\",\"queryId\":2,\"udfPath\":\"a\",\"args\":[1]}"), CVX__SYNC_FAULT_IN_MODS,
         "Add of query 2 needs a udfPath and args: [object]"},
        {MQS("0", "1", "{\"type\":\"Add\",\"queryId\":3,\"udfPath\":\"a\",\"args\":[{},{}]}"), CVX__SYNC_FAULT_IN_MODS,
         "Add of query 3 needs a udfPath and args: [object]"},
        {MQS("0", "1", "{\"type\":\"Add\",\"queryId\":4,\"udfPath\":\"a\",\"args\":\"x\"}"), CVX__SYNC_FAULT_IN_MODS,
         "Add of query 4 needs a udfPath and args: [object]"},
    };
    expect_refusals(cases, sizeof cases / sizeof *cases);
    /* What comes before the fault is decoded, for the engine's checks:
     * the modifications up to the faulty one, which is last; the counts
     * for the query limit cover them all. */
    cvx__sync_msg_t m;
    assert_int_equal(decode(MQS("2", "3",
                                ADD("1") ",{\"type\":\"Remove\",\"queryId\":5},{\"type\":\"Add\",\"queryId\":6}," ADD(
                                    "7") "," ADD("8")),
                            &m),
                     CVX_E_INVALID_ARGUMENT);
    assert_int_equal(m.type, CVX__SYNC_MODIFY_QUERY_SET);
    assert_int_equal(m.fault, CVX__SYNC_FAULT_IN_MODS);
    assert_string_equal(m.error, "Add of query 6 needs a udfPath and args: [object]");
    assert_true(m.base_version == 2 && m.new_version == 3);
    assert_int_equal(m.nmods, 3);
    assert_int_equal(m.adds, 4);
    assert_int_equal(m.others, 1);
    assert_int_equal(m.mods[0].fault, CVX__SYNC_MOD_OK);
    assert_int_equal(m.mods[1].fault, CVX__SYNC_MOD_OK);
    assert_int_equal(m.mods[2].fault, CVX__SYNC_MOD_BAD_ADD);
    assert_int_equal(m.mods[2].op, CVX__SYNC_ADD);
    assert_int_equal(m.mods[2].query_id, 6);
    cvx__sync_msg_free(&m);
    assert_int_equal(decode(MQS("0", "1", ADD("1") ",{\"type\":\"Bad\",\"queryId\":2}"), &m), CVX_E_INVALID_ARGUMENT);
    assert_int_equal(m.nmods, 2);
    assert_int_equal(m.mods[1].fault, CVX__SYNC_MOD_BAD);
    cvx__sync_msg_free(&m);
    /* A type "Add" with a NUL after it counts as an Add for the limit, as
     * it always has (the fault is reported after the limit check). */
    assert_int_equal(decode(MQS("0", "1", "{\"type\":\"Add\\u0000x\",\"queryId\":1}"), &m), CVX_E_INVALID_ARGUMENT);
    assert_int_equal(m.adds, 1);
    assert_int_equal(m.others, 0);
    cvx__sync_msg_free(&m);
#undef ADD
#undef MQS
}

static void test_refused_authenticate_and_calls(void **state) {
    (void)state;
    static const refusal_t cases[] = {
        {"{\"type\":\"Authenticate\",\"baseVersion\":0}", CVX__SYNC_FAULT,
         "Authenticate needs tokenType and baseVersion"},
        {"{\"type\":\"Authenticate\",\"tokenType\":\"None\"}", CVX__SYNC_FAULT,
         "Authenticate needs tokenType and baseVersion"},
        {"{\"type\":\"Authenticate\",\"tokenType\":\"None\",\"baseVersion\":0.5}", CVX__SYNC_FAULT,
         "Authenticate needs tokenType and baseVersion"},
        {"{\"type\":\"Authenticate\",\"tokenType\":\"None\",\"baseVersion\":4294967295}", CVX__SYNC_FAULT,
         "Authenticate baseVersion 4294967295 is out of range"},
        {"{\"type\":\"Authenticate\",\"tokenType\":\"Bearer\",\"baseVersion\":0}", CVX__SYNC_FAULT,
         "unknown tokenType \"Bearer\""},
        {"{\"type\":\"Authenticate\",\"tokenType\":\"N\\u0000\",\"baseVersion\":-1}", CVX__SYNC_FAULT,
         "\"tokenType\" contains a NUL character"},
        {"{\"type\":\"Authenticate\",\"tokenType\":\"Admin\",\"value\":\"k\\u0000\",\"baseVersion\":0}",
         CVX__SYNC_FAULT, "\"value\" contains a NUL character"},
        {"{\"type\":\"Authenticate\",\"tokenType\":\"User\",\"value\":\"t\\u0000\",\"baseVersion\":0}",
         CVX__SYNC_FAULT, "\"value\" contains a NUL character"},
        {"{\"type\":\"Mutation\",\"udfPath\":\"a\",\"args\":[{}]}", CVX__SYNC_FAULT,
         "Mutation needs requestId, udfPath and args: [object]"},
        {"{\"type\":\"Mutation\",\"requestId\":1,\"args\":[{}]}", CVX__SYNC_FAULT,
         "Mutation needs requestId, udfPath and args: [object]"},
        {"{\"type\":\"Mutation\",\"requestId\":1,\"udfPath\":\"a\",\"args\":[null]}", CVX__SYNC_FAULT,
         "Mutation needs requestId, udfPath and args: [object]"},
        {"{\"type\":\"Mutation\",\"requestId\":{\"$float\":\"AAAAAAAA+H8=\"},\"udfPath\":\"a\"}", CVX__SYNC_FAULT,
         "Mutation needs requestId, udfPath and args: [object]"},
        {"{\"type\":\"Action\",\"requestId\":1.25,\"udfPath\":\"a\",\"args\":[{}]}", CVX__SYNC_FAULT,
         "Action needs requestId, udfPath and args: [object]"},
        {"{\"type\":\"Action\",\"requestId\":1,\"udfPath\":\"a\\u0000\",\"args\":7}", CVX__SYNC_FAULT,
         "\"udfPath\" contains a NUL character"},
    };
    expect_refusals(cases, sizeof cases / sizeof *cases);
}

/* An error that quotes the client's string is cut at 511 bytes, never
 * inside a UTF-8 sequence: it goes out in a text frame. */
static void test_long_error_stays_utf8(void **state) {
    (void)state;
    for (size_t pad = 0; pad < 4; pad++) {
        cvx_buf_t msg = {0};
        cvx_buf_append_str(&msg, "{\"type\":\"");
        for (size_t i = 0; i < pad; i++) cvx_buf_append_char(&msg, 'x');
        for (int i = 0; i < 300; i++) cvx_buf_append_str(&msg, "\xe2\x82\xac"); /* U+20AC, 3 bytes */
        cvx_buf_append_str(&msg, "\"}");
        cvx__sync_msg_t m;
        assert_int_equal(cvx__sync_decode(msg.data, msg.len, &m), CVX_E_INVALID_ARGUMENT);
        size_t n = strlen(m.error);
        assert_true(n <= CVX__SYNC_ERROR_MAX && n > CVX__SYNC_ERROR_MAX - 4);
        assert_true(cvx_utf8_valid(m.error, n));
        assert_memory_equal(m.error, "unknown message type \"", 22);
        cvx__sync_msg_free(&m);
        cvx_buf_free(&msg);
    }
}

/* ---- the server's messages ------------------------------------------------------- */

static cvx_value_t *parse(cvx_arena_t *a, const cvx_buf_t *b) {
    cvx_value_t *v;
    cvx_err_t err;
    if (cvx_json_parse(a, b->data, b->len, &v, &err)) fail_msg("%s: %s", err.msg, b->data);
    return v;
}

static void test_encoders(void **state) {
    (void)state;
    cvx_buf_t b = {0};
    cvx__sync_put_fatal(&b, "query \"7\" is\nbad");
    assert_string_equal(b.data, "{\"type\":\"FatalError\",\"error\":\"query \\\"7\\\" is\\nbad\"}");
    cvx_buf_reset(&b);
    cvx__sync_put_auth_error(&b, "invalid admin key", 3, true);
    assert_string_equal(b.data, "{\"type\":\"AuthError\",\"error\":\"invalid admin key\",\"baseVersion\":3,"
                                "\"authUpdateAttempted\":true}");

    cvx_buf_t value = {0}, data = {0}, logs = {0}, message = {0};
    cvx_buf_append_str(&value, "{\"n\":1}");
    cvx_buf_append_str(&data, "{\"code\":\"E\"}");
    cvx_buf_append_str(&logs, "[\"[LOG] 'hi'\"]");
    cvx_buf_append_str(&message, "Uncaught Error: \"no\"");
    cvx__sync_outcome_t ok = {true, &value, NULL, &logs}, failed = {false, &message, &data, NULL};
    cvx_buf_reset(&b);
    cvx__sync_put_transition_start(&b, (cvx__sync_version_t){0, 0, 0}, (cvx__sync_version_t){2, 1, 0x0102030405060708});
    cvx__sync_put_query_removed(&b, 4);
    cvx_buf_append_char(&b, ',');
    cvx__sync_put_query_result(&b, 5, &ok, NULL);
    cvx_buf_append_char(&b, ',');
    cvx__sync_put_query_result(&b, 6, &failed, "j");
    cvx__sync_put_transition_end(&b);
    assert_string_equal(
        b.data,
        "{\"type\":\"Transition\",\"startVersion\":{\"querySet\":0,\"identity\":0,\"ts\":\"AAAAAAAAAAA=\"},"
        "\"endVersion\":{\"querySet\":2,\"identity\":1,\"ts\":\"CAcGBQQDAgE=\"},\"modifications\":["
        "{\"type\":\"QueryRemoved\",\"queryId\":4},"
        "{\"type\":\"QueryUpdated\",\"queryId\":5,\"value\":{\"n\":1},\"logLines\":[\"[LOG] 'hi'\"],\"journal\":null},"
        "{\"type\":\"QueryFailed\",\"queryId\":6,\"errorMessage\":\"Uncaught Error: \\\"no\\\"\",\"errorData\":"
        "{\"code\":\"E\"},\"logLines\":[],\"journal\":\"j\"}]}");
    cvx_arena_t *a = cvx_arena_new(4096);
    parse(a, &b);

    cvx_buf_reset(&b);
    cvx__sync_put_call_response(&b, true, 12, &ok, 1);
    assert_string_equal(b.data, "{\"type\":\"MutationResponse\",\"requestId\":12,\"success\":true,\"result\":{\"n\":1},"
                                "\"ts\":\"AQAAAAAAAAA=\",\"logLines\":[\"[LOG] 'hi'\"]}");
    parse(a, &b);
    cvx_buf_reset(&b);
    cvx__sync_put_call_response(&b, true, 13, &failed, 1);
    assert_string_equal(b.data, "{\"type\":\"MutationResponse\",\"requestId\":13,\"success\":false,\"result\":"
                                "\"Uncaught Error: \\\"no\\\"\",\"ts\":null,\"errorData\":{\"code\":\"E\"},"
                                "\"logLines\":[]}");
    parse(a, &b);
    cvx_buf_reset(&b);
    cvx_buf_t empty = {0};
    cvx__sync_outcome_t nothing = {true, &empty, NULL, NULL};
    cvx__sync_put_call_response(&b, false, 14, &nothing, 0);
    assert_string_equal(b.data, "{\"type\":\"ActionResponse\",\"requestId\":14,\"success\":true,\"result\":null,"
                                "\"logLines\":[]}");
    parse(a, &b);
    cvx_arena_free(a);
    cvx_buf_free(&b);
    cvx_buf_free(&value);
    cvx_buf_free(&data);
    cvx_buf_free(&logs);
    cvx_buf_free(&message);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect),
        cmocka_unit_test(test_modify_query_set),
        cmocka_unit_test(test_authenticate),
        cmocka_unit_test(test_calls),
        cmocka_unit_test(test_refused_envelope),
        cmocka_unit_test(test_refused_modify_query_set),
        cmocka_unit_test(test_refused_authenticate_and_calls),
        cmocka_unit_test(test_long_error_stays_utf8),
        cmocka_unit_test(test_encoders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
