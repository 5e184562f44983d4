/*
 * value_int.h — helpers shared by the files of the value layer, not part of
 * its contract.
 *
 * The key decision: error paths ("a.b[3]") are never built on the happy
 * path. Walkers keep a chain of cvx__path_t frames on the C stack, one per
 * level, each pointing at its parent; only when something fails is the
 * chain walked and printed. Cost when nothing fails: two stores per level.
 */
#ifndef CVX_VALUE_INT_H
#define CVX_VALUE_INT_H

#include "value/value.h"

/* One step of a path: a field name (name != NULL) or an array index. */
typedef struct cvx__path {
    const struct cvx__path *parent;
    const char *name;
    size_t name_len;
    size_t index;
} cvx__path_t;

/* Sets err to `field "<path>": <message>`, or just `<message>` when path is
 * NULL (the problem is at the top level). Returns code. */
int cvx__path_err(cvx_err_t *err, int code, const cvx__path_t *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes s as a printable, quoted-safe snippet (escapes '"', '\\' and bytes
 * outside 32..126 as \xNN; cuts after `max` input bytes with "..."). Always
 * NUL-terminates out (cap > 0). Returns the length written. */
size_t cvx__snippet(char *out, size_t cap, const char *s, size_t n, size_t max);

/* NULL if `name` is a valid object field name (1..1024 chars of ASCII
 * 32..126, not starting with '$'); otherwise writes the reason (without a
 * path) into msg and returns msg. */
const char *cvx__field_name_problem(const char *name, size_t n, char *msg, size_t cap);

/* Bytewise order of field names (shorter first on a common prefix). */
int cvx__name_cmp(const char *a, size_t alen, const char *b, size_t blen);

/* Shortest of %.15g/%.16g/%.17g that reads back as v, or an integer without
 * exponent for integral |v| <= 2^53. v must be finite and not -0. Returns
 * the length; out is NUL-terminated. */
#define CVX__DOUBLE_MAX 32
size_t cvx__format_double(double v, char out[CVX__DOUBLE_MAX]);
/* The same through printf/strtod only: the reference for tests. */
size_t cvx__format_double_printf(double v, char out[CVX__DOUBLE_MAX]);

/* True when a float64 must be written as {"$float": ...}: NaN, ±Inf, -0. */
bool cvx__float_needs_wrapper(double v);

/* Little-endian 8 bytes <-> u64 (the wire format of $integer and $float). */
void cvx__store_le64(uint8_t out[8], uint64_t v);
uint64_t cvx__load_le64(const uint8_t in[8]);

#endif
