/*
 * id_parse_fuzz.c — libFuzzer target for document-id parsing.
 *
 * Any text cvx_id_parse accepts must be canonical: formatting the parsed id
 * gives back exactly the input. And any (table, internal id) made from the
 * input bytes must format to text that parses back to the same id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "value/value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cvx_id_t id;
    cvx_err_t err = {0};
    char text[CVX_ID_MAX_LEN + 1];
    int rc = cvx_id_parse((const char *)data, size, &id, &err);
    if (rc == CVX_OK) {
        size_t n = cvx_id_format(&id, text);
        CHECK(n == size && memcmp(text, data, size) == 0);
        CHECK(id.table != 0);
    } else {
        CHECK(rc == CVX_E_INVALID_VALUE && strncmp(err.msg, "invalid id \"", 12) == 0);
    }

    if (size >= 4 + CVX_ID_INTERNAL_LEN) {
        cvx_id_t made, back;
        memcpy(&made.table, data, 4);
        if (made.table == 0) made.table = 1;
        memcpy(made.internal, data + 4, CVX_ID_INTERNAL_LEN);
        size_t n = cvx_id_format(&made, text);
        CHECK(n >= 31 && n <= CVX_ID_MAX_LEN);
        CHECK(cvx_id_parse(text, n, &back, &err) == CVX_OK);
        CHECK(back.table == made.table && memcmp(back.internal, made.internal, CVX_ID_INTERNAL_LEN) == 0);
    }
    return 0;
}
