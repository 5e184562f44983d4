/* Cron expressions: parsing and "when is the next run". Standard 5-field
 * syntax in UTC. When both day-of-month and day-of-week are restricted, a
 * day matches if either does (the traditional cron rule). */
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int field(const char *s, size_t n, int lo, int hi, uint64_t *bits, bool *any, cvx_err_t *err, const char *what) {
    *bits = 0;
    *any = n == 1 && s[0] == '*';
    char buf[64];
    if (n == 0 || n >= sizeof buf) return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "cron %s field is empty or too long", what);
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *save = NULL;
    for (char *part = strtok_r(buf, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
        int a = lo, b = hi, step = 1;
        char *slash = strchr(part, '/');
        if (slash) {
            *slash = '\0';
            char *end;
            long v = strtol(slash + 1, &end, 10);
            if (*end || v < 1 || v > hi) return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "cron %s field: bad step \"%s\"", what, slash + 1);
            step = (int)v;
        }
        if (strcmp(part, "*") != 0) {
            char *dash = strchr(part, '-');
            char *end;
            long x = strtol(part, &end, 10);
            if (end == part || (dash ? end != dash : *end))
                return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "cron %s field: \"%s\" is not a number or range", what, part);
            a = b = (int)x;
            if (dash) {
                long y = strtol(dash + 1, &end, 10);
                if (*end || end == dash + 1) return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "cron %s field: bad range \"%s\"", what, part);
                b = (int)y;
            } else if (slash) {
                b = hi; /* "5/15": from 5 to the end */
            }
            if (a < lo || b > hi || a > b)
                return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "cron %s field: %s is outside %d-%d", what, part, lo, hi);
        }
        for (int v = a; v <= b; v += step) *bits |= 1ull << v;
    }
    return CVX_OK;
}

int cvx_cron_parse(const char *expr, cvx_cron_spec_t *out, cvx_err_t *err) {
    memset(out, 0, sizeof *out);
    const char *names[] = {"minute", "hour", "day-of-month", "month", "day-of-week"};
    const int lo[] = {0, 0, 1, 1, 0}, hi[] = {59, 23, 31, 12, 7};
    uint64_t bits[5];
    bool any[5];
    const char *p = expr;
    for (int i = 0; i < 5; i++) {
        while (*p == ' ' || *p == '\t') p++;
        size_t n = strcspn(p, " \t");
        if (n == 0)
            return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "cron expression \"%s\" needs 5 fields (minute hour day month weekday)", expr);
        int rc = field(p, n, lo[i], hi[i], &bits[i], &any[i], err, names[i]);
        if (rc) return rc;
        p += n;
    }
    while (*p == ' ' || *p == '\t') p++;
    if (*p) return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "cron expression \"%s\" has more than 5 fields", expr);
    out->minute = bits[0];
    out->hour = (uint32_t)bits[1];
    out->dom = (uint32_t)bits[2];
    out->month = (uint16_t)bits[3];
    uint64_t dow = bits[4];
    if (dow & (1ull << 7)) dow |= 1; /* 7 is Sunday too */
    out->dow = (uint8_t)(dow & 0x7f);
    out->dom_any = any[2];
    out->dow_any = any[4];
    return CVX_OK;
}

static bool day_matches(const cvx_cron_spec_t *c, const struct tm *t) {
    bool dom = (c->dom >> t->tm_mday) & 1, dow = (c->dow >> t->tm_wday) & 1;
    if (c->dom_any && c->dow_any) return true;
    if (c->dom_any) return dow;
    if (c->dow_any) return dom;
    return dom || dow;
}

uint64_t cvx_cron_next(const cvx_cron_spec_t *c, uint64_t after_ms) {
    time_t t = (time_t)(after_ms / 60000 + 1) * 60; /* the next whole minute */
    for (int guard = 0; guard < 5 * 366 * 24 * 60; guard++) {
        struct tm tm;
        gmtime_r(&t, &tm);
        if (!((c->month >> (tm.tm_mon + 1)) & 1)) {
            /* Skip to the first day of the next month. */
            tm.tm_mday = 1;
            tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
            tm.tm_mon++;
            t = timegm(&tm);
            continue;
        }
        if (!day_matches(c, &tm)) {
            t += 86400 - (tm.tm_hour * 3600 + tm.tm_min * 60);
            continue;
        }
        if (!((c->hour >> tm.tm_hour) & 1)) {
            t += 3600 - tm.tm_min * 60;
            continue;
        }
        if (!((c->minute >> tm.tm_min) & 1)) {
            t += 60;
            continue;
        }
        return (uint64_t)t * 1000;
    }
    return 0;
}
