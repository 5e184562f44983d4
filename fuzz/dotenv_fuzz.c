/*
 * dotenv_fuzz.c — libFuzzer target for the .env reader (src/util/dotenv.c).
 *
 * Any text either parses or fails with "line N: ..." naming a line that
 * exists; every variable's line is within the text and increases; a value
 * is never longer than the text, and names never contain '=' or a line end
 * nor start or end with a blank. (Names are checked by the caller.)
 */
#include <string.h>

#include "fuzz.h"
#include "util/util.h"

typedef struct {
    size_t size;
    int lines, last;
} ctx_t;

static int each(void *arg, const char *name, size_t nlen, const char *value, size_t vlen, int line, cvx_err_t *err) {
    ctx_t *c = arg;
    CHECK(line >= 1 && line <= c->lines && line > c->last);
    c->last = line;
    CHECK(nlen <= c->size && vlen <= c->size);
    CHECK(value[vlen] == '\0');
    CHECK(!memchr(name, '=', nlen) && !memchr(name, '\n', nlen));
    /* blanks around a name are not part of it */
    CHECK(nlen == 0 || (name[0] != ' ' && name[0] != '\t' && name[nlen - 1] != ' ' && name[nlen - 1] != '\t'));
    return CVX_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ctx_t c = {size, 1, 0};
    for (size_t i = 0; i < size; i++) c.lines += data[i] == '\n';
    cvx_err_t err = {0};
    int rc = cvx_dotenv_parse((const char *)data, size, each, &c, &err);
    if (rc) {
        CHECK(rc == CVX_E_INVALID_ARGUMENT || rc == CVX_E_NOMEM);
        if (rc == CVX_E_INVALID_ARGUMENT) {
            CHECK(strncmp(err.msg, "line ", 5) == 0);
            int line = atoi(err.msg + 5);
            CHECK(line >= 1 && line <= c.lines && line > c.last);
        }
    }
    return 0;
}
