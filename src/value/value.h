/*
 * value — Convex values in C.
 *
 * Owns: the value tree (null, int64, float64, boolean, string, bytes, array,
 * object), convex-encoded JSON in both directions (§1 of
 * docs/protocol.md), the shape and size limits with errors that
 * name the offending path, document ids (§2), the total order of values and
 * an order-preserving byte encoding of values for index keys.
 *
 * Memory: every value is allocated in a cvx_arena_t owned by the caller and
 * lives until that arena is reset or freed. Values are immutable once built,
 * except through the cvx_obj_* / cvx_arr_* builders used while building.
 * Strings and bytes are not NUL-terminated in general (len is authoritative),
 * but the parser and builders do add a terminating NUL for convenience.
 *
 * Objects keep their fields sorted by name (bytewise) with no duplicates: the
 * canonical form Convex uses, which makes comparison, encoding and output
 * deterministic.
 *
 * Out of memory: every function that allocates returns CVX_E_NOMEM (and sets
 * err) instead of aborting.
 */
#ifndef CVX_VALUE_H
#define CVX_VALUE_H

#include "util/util.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CVX_T_NULL = 1,
    CVX_T_INT64,
    CVX_T_FLOAT64,
    CVX_T_BOOL,
    CVX_T_STRING,
    CVX_T_BYTES,
    CVX_T_ARRAY,
    CVX_T_OBJECT,
} cvx_type_t;

typedef struct cvx_value cvx_value_t;

typedef struct {
    const char *name; /* NUL-terminated */
    size_t name_len;
    cvx_value_t *value;
} cvx_field_t;

struct cvx_value {
    cvx_type_t type;
    union {
        int64_t i;
        double f;
        bool b;
        struct {
            const char *ptr;
            size_t len;
        } str; /* CVX_T_STRING (UTF-8) and CVX_T_BYTES */
        struct {
            cvx_value_t **items;
            size_t len;
            size_t cap; /* slots allocated; 0 (or < len) means "not growable
                           in place": the next push copies into the arena */
        } arr;
        struct {
            cvx_field_t *fields; /* sorted by name, unique */
            size_t len;
            size_t cap; /* as for arr.cap */
        } obj;
    } u;
};

/* ---- limits (docs/protocol.md §1) ---------------------------------------- */

#define CVX_MAX_DEPTH 64
#define CVX_MAX_DOC_DEPTH 16
#define CVX_MAX_VALUE_SIZE (32u << 20)
#define CVX_MAX_DOC_SIZE (1u << 20)
#define CVX_MAX_ARGS_SIZE (16u << 20)
#define CVX_MAX_FIELDS 1024
#define CVX_MAX_ARRAY_LEN 8192
#define CVX_MAX_FIELD_NAME 1024
#define CVX_MAX_TABLE_NAME 64

/* ---- constructors (allocate in `a`; NULL on out-of-memory) --------------- */

cvx_value_t *cvx_null(cvx_arena_t *a);
cvx_value_t *cvx_int64(cvx_arena_t *a, int64_t v);
cvx_value_t *cvx_float64(cvx_arena_t *a, double v);
cvx_value_t *cvx_bool(cvx_arena_t *a, bool v);
cvx_value_t *cvx_string(cvx_arena_t *a, const char *s, size_t n); /* copies s */
cvx_value_t *cvx_bytes(cvx_arena_t *a, const void *p, size_t n);  /* copies p */
/* Empty containers with room for `cap` entries (they grow as needed). */
cvx_value_t *cvx_array(cvx_arena_t *a, size_t cap);
cvx_value_t *cvx_object(cvx_arena_t *a, size_t cap);

/* Appends v (not copied: must live in the same or a longer-lived arena). */
int cvx_arr_push(cvx_arena_t *a, cvx_value_t *arr, cvx_value_t *v);
/* Inserts or replaces field `name` keeping fields sorted; copies the name.
 * Does not validate the name (the JSON parser and cvx_value_check do). */
int cvx_obj_set(cvx_arena_t *a, cvx_value_t *obj, const char *name, size_t name_len, cvx_value_t *v);
/* Removes a field if present; returns true if it was there. */
bool cvx_obj_remove(cvx_value_t *obj, const char *name, size_t name_len);
/* NULL when absent. Binary search. */
cvx_value_t *cvx_obj_get(const cvx_value_t *obj, const char *name, size_t name_len);
cvx_value_t *cvx_obj_get_cstr(const cvx_value_t *obj, const char *name);
/* Follows a dotted field path ("a.b.c") through nested objects; NULL when
 * any step is missing or not an object. */
cvx_value_t *cvx_obj_get_path(const cvx_value_t *obj, const char *path, size_t path_len);

/* Deep copy into another arena. */
cvx_value_t *cvx_value_clone(cvx_arena_t *a, const cvx_value_t *v);

const char *cvx_type_name(cvx_type_t t); /* "null", "int64", "float64", ... */

/* ---- convex-encoded JSON ------------------------------------------------- */

/* Parses convex-encoded JSON (RFC 8259 plus the $integer / $float / $bytes
 * wrappers) into a value in arena `a`. A JSON number is always float64.
 * Enforces the generic value limits: depth <= CVX_MAX_DEPTH, <= 1024 fields,
 * <= 8192 array items, field names 1..1024 chars of ASCII 32..126 not
 * starting with '$', total input <= CVX_MAX_VALUE_SIZE. Duplicate field names
 * are an error. Errors are CVX_E_INVALID_VALUE with a message that names the
 * location, e.g. `field "a.b[3]": nesting deeper than 64` or
 * `invalid JSON at byte 17: expected ':'`. *out is NULL on failure. */
int cvx_json_parse(cvx_arena_t *a, const char *json, size_t len, cvx_value_t **out, cvx_err_t *err);

/* Appends the convex-encoded JSON of v to out. int64 as {"$integer":..},
 * non-finite floats and -0 as {"$float":..}, bytes as {"$bytes":..}. Finite
 * floats are written with the shortest of %.15g/%.16g/%.17g that
 * round-trips, integral ones up to 2^53 without exponent ("1"). Compact (no
 * whitespace). An undefined (NULL) item or field value is written as null;
 * cvx_value_check rejects such values. */
int cvx_json_write(cvx_buf_t *out, const cvx_value_t *v);

/* ---- validation ---------------------------------------------------------- */

typedef enum {
    CVX_CHECK_VALUE,    /* any value: generic limits */
    CVX_CHECK_DOCUMENT, /* a user document body: an object, depth <= 16,
                           encoded size <= 1 MiB, top-level field names must
                           not start with '_' (system fields are added by
                           the store) */
    CVX_CHECK_STORED,   /* a document as stored: like DOCUMENT but _id and
                           _creationTime are allowed */
} cvx_check_t;

/* Checks v against the limits for `kind`; on failure names the path. */
int cvx_value_check(const cvx_value_t *v, cvx_check_t kind, cvx_err_t *err);

/* Size of the convex-encoded JSON of v, without building it. */
size_t cvx_value_json_size(const cvx_value_t *v);

/* Valid table name: [A-Za-z_][A-Za-z0-9_]*, 1..64 chars. System tables
 * start with '_'. */
bool cvx_table_name_valid(const char *s, size_t n);

/* ---- ordering ------------------------------------------------------------ */

/* Total order: null < int64 < float64 < boolean < string < bytes < array <
 * object; numbers by value with NaN last among floats and -0 < +0; strings
 * and bytes bytewise; arrays element-wise then by length; objects by
 * (name, value) pairs in field order then by length. Returns <0, 0, >0.
 * NULL stands for "undefined" (a missing field) and sorts before null. */
int cvx_value_compare(const cvx_value_t *a, const cvx_value_t *b);
bool cvx_value_equal(const cvx_value_t *a, const cvx_value_t *b);

/* Appends an order-preserving, self-delimiting encoding of v to out:
 * memcmp order of two encodings equals cvx_value_compare order, and a
 * concatenation of encodings (a compound index key) sorts field by field.
 * NULL encodes "undefined". */
int cvx_key_append(cvx_buf_t *out, const cvx_value_t *v);
/* Decodes one encoded value from the front of `key`; *used = bytes taken
 * (set only on success; *out is NULL on failure, and also on success when
 * the value is undefined). Accepts only what cvx_key_append writes (e.g.
 * object fields must be in order), nested at most CVX_MAX_DEPTH deep; any
 * other bytes are CVX_E_INVALID_VALUE. */
int cvx_key_decode(cvx_arena_t *a, const uint8_t *key, size_t len, cvx_value_t **out, size_t *used,
                   cvx_err_t *err);

/* ---- document ids (docs/protocol.md §2) --------------------------------- */

#define CVX_ID_INTERNAL_LEN 16
#define CVX_ID_MAX_LEN 40 /* text length bound, without NUL */
#define CVX_FIRST_USER_TABLE 10001u

typedef struct {
    uint32_t table;                          /* table number */
    uint8_t internal[CVX_ID_INTERNAL_LEN];   /* 14 random bytes + BE u16 days */
} cvx_id_t;

/* Writes the base32 text of id into out (NUL-terminated); returns length. */
size_t cvx_id_format(const cvx_id_t *id, char out[CVX_ID_MAX_LEN + 1]);
/* Parses id text. Rejects unknown characters, bad length, non-canonical
 * encodings and bad checksums with CVX_E_INVALID_VALUE and a message that
 * quotes the id. */
int cvx_id_parse(const char *s, size_t n, cvx_id_t *out, cvx_err_t *err);
/* A fresh id for `table` with random bytes from `rng` (or the OS when rng is
 * NULL) and the day count from `now_ms`. */
void cvx_id_generate(uint32_t table, cvx_chacha_t *rng, uint64_t now_ms, cvx_id_t *out);


/* ---- validators (validator.c) ------------------------------------------------ */

/* A compiled validator: Convex's v.* (or a cvx type descriptor), checked
 * with Convex's error texts. Lives in the arena it was compiled into and
 * points into the JSON it was compiled from, which must live as long. */
typedef struct cvx_validator cvx_validator_t;

/* From Convex's JSON form ({"type": "object", "value": {"name":
 * {"fieldType": {"type": "string"}, "optional": false}}}, as a TypeScript
 * validator's `.json`). CVX_E_INVALID_VALUE names what is malformed. */
int cvx_validator_from_convex(cvx_arena_t *a, const cvx_value_t *json, const cvx_validator_t **out, cvx_err_t *err);
/* From a cvx type descriptor (docs/abi.md §4): an `optional` is absent or
 * null; an unknown descriptor accepts anything. */
int cvx_validator_from_type(cvx_arena_t *a, const cvx_value_t *type, const cvx_validator_t **out, cvx_err_t *err);
/* An object validator from a metadata record's `args` ([{"name", "type"}]). */
int cvx_validator_from_args(cvx_arena_t *a, const cvx_value_t *args, const cvx_validator_t **out, cvx_err_t *err);
/* True for v.any() (and NULL): nothing to check. */
bool cvx_validator_is_any(const cvx_validator_t *v);
/* An object validator's fields (names NUL-terminated, sorted) into the
 * arrays, at most `max`; returns how many it has (0 if not an object). */
size_t cvx_validator_fields(const cvx_validator_t *v, const char **names, bool *optional, size_t max);

/* The name of the table an id names, for v.id checks; NULL when it names
 * no table. */
typedef const char *(*cvx_id_table_fn)(void *ctx, const char *id, size_t len);

/* Checks x against v. CVX_OK, or CVX_E_ARGS with Convex's message after
 * `prefix` (e.g. "ArgumentValidationError: "; may be NULL). Without
 * table_of, v.id accepts any well-formed id. */
int cvx_validator_check(const cvx_validator_t *v, const cvx_value_t *x, cvx_id_table_fn table_of, void *ctx,
                        const char *prefix, cvx_err_t *err);
/* Appends v as Convex prints it: v.object({name: v.string()}). */
void cvx_validator_print(cvx_buf_t *out, const cvx_validator_t *v);
/* Appends x as Convex prints values in messages: {name: "Ada", n: 1.0}. */
void cvx_value_print(cvx_buf_t *out, const cvx_value_t *x);

#ifdef __cplusplus
}
#endif
#endif
