/*
 * wasm_sections_fuzz.c — libFuzzer target for the wasm binary readers
 * (src/wasm/binary.c): cvx_wasm_custom_sections and cvx_wasm_imports, and
 * the cvx.fn / cvx.schema record framing read from their output (the same
 * u32-LE length + JSON framing src/abi/app.c reads), each record parsed
 * with the value layer's JSON parser.
 *
 * These readers run on every module a user deploys, before Wasmtime sees
 * it, so they must survive any bytes. Checked, besides "no crash":
 *  - on success every section, name and import lies inside the input, and
 *    an import's kind is 0..4;
 *  - on failure the outputs are NULL / 0 and the error is CVX_E_BAD_MODULE
 *    with a message;
 *  - both readers agree on the header: one refuses it iff the other does;
 *  - a JSON record the parser accepts passes cvx_value_check.
 *
 * The first input byte is a mode: if its low bit is set, the rest is
 * prefixed with a valid header ("\0asm" 1 0 0 0) so the fuzzer spends its
 * time on sections rather than on rediscovering the magic.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "value/value.h"
#include "wasm/wasm.h"

static bool inside(const void *p, size_t n, const uint8_t *base, size_t len) {
    const uint8_t *q = p;
    return n == 0 || (q >= base && q <= base + len && n <= (size_t)(base + len - q));
}

static bool is_header_error(const cvx_err_t *err) {
    return strstr(err->msg, "not a WebAssembly module") || strstr(err->msg, "components are not supported") ||
           strstr(err->msg, "unsupported WebAssembly binary version");
}

/* Splits a metadata section into framed records and parses each. */
static void parse_records(const uint8_t *p, size_t n) {
    const uint8_t *end = p + n;
    cvx_arena_t *a = cvx_arena_new(4096);
    if (!a) return;
    while (p < end) {
        if (end - p < 4) break; /* "truncated record header" */
        uint32_t len = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        p += 4;
        if ((size_t)(end - p) < len) break; /* "record is truncated" */
        cvx_value_t *v = NULL;
        cvx_err_t err = {0};
        if (cvx_json_parse(a, (const char *)p, len, &v, &err) == CVX_OK) {
            CHECK(v != NULL);
            CHECK(cvx_value_check(v, CVX_CHECK_VALUE, &err) == CVX_OK);
        } else {
            CHECK(v == NULL && err.msg[0] != '\0');
        }
        p += len;
    }
    cvx_arena_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    uint8_t mode = data[0];
    data++, size--;
    /* A private heap copy of exactly the input, so any overread is caught. */
    size_t hdr = (mode & 1) ? 8 : 0;
    uint8_t *buf = malloc(size + hdr > 0 ? size + hdr : 1);
    if (!buf) return 0;
    memcpy(buf, "\0asm\x01\0\0\0", hdr);
    if (size) memcpy(buf + hdr, data, size);
    size_t len = size + hdr;

    cvx_custom_section_t *secs = (cvx_custom_section_t *)1;
    size_t nsecs = 99;
    cvx_err_t err1 = {0};
    int rc1 = cvx_wasm_custom_sections(buf, len, &secs, &nsecs, &err1);
    if (rc1 == CVX_OK) {
        CHECK(nsecs == 0 || secs != NULL);
        for (size_t i = 0; i < nsecs; i++) {
            CHECK(inside(secs[i].name, secs[i].name_len, buf, len));
            CHECK(inside(secs[i].data, secs[i].len, buf, len));
            /* The name comes before the data, in the same section. */
            CHECK((const uint8_t *)secs[i].name + secs[i].name_len <= secs[i].data);
            if ((secs[i].name_len == 6 && memcmp(secs[i].name, "cvx.fn", 6) == 0) ||
                (secs[i].name_len == 10 && memcmp(secs[i].name, "cvx.schema", 10) == 0))
                parse_records(secs[i].data, secs[i].len);
        }
        cvx_free(secs);
    } else {
        CHECK(rc1 == CVX_E_BAD_MODULE);
        CHECK(secs == NULL && nsecs == 0);
        CHECK(err1.msg[0] != '\0');
    }

    cvx_wasm_import_t *im = (cvx_wasm_import_t *)1;
    size_t nim = 99;
    cvx_err_t err2 = {0};
    int rc2 = cvx_wasm_imports(buf, len, &im, &nim, &err2);
    if (rc2 == CVX_OK) {
        CHECK(nim == 0 || im != NULL);
        for (size_t i = 0; i < nim; i++) {
            CHECK(inside(im[i].module, im[i].module_len, buf, len));
            CHECK(inside(im[i].name, im[i].name_len, buf, len));
            CHECK(im[i].kind <= 4);
        }
        cvx_free(im);
    } else {
        CHECK(rc2 == CVX_E_BAD_MODULE);
        CHECK(im == NULL && nim == 0);
        CHECK(err2.msg[0] != '\0');
    }

    /* Both readers share the header and section walk. */
    CHECK((rc1 != CVX_OK && is_header_error(&err1)) == (rc2 != CVX_OK && is_header_error(&err2)));
    if (rc1 != CVX_OK && strstr(err1.msg, "section header")) CHECK(rc2 != CVX_OK);
    if (rc2 != CVX_OK && strstr(err2.msg, "section header")) CHECK(rc1 != CVX_OK);

    free(buf);
    return 0;
}
