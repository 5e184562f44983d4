/* Argument and return-value validation, before and after the guest runs:
 * a client sending the wrong shape gets Convex's message naming the field
 * and the validator, and the guest never sees malformed input. The
 * validators were compiled at deploy (app.c) from Convex's JSON or cvx
 * type descriptors; value/validator.c checks them. */
#include "abi/abi_int.h"

#include <string.h>

int cvx_abi_validate_args(const cvx_fn_t *fn, const cvx_value_t *args, cvx_id_table_fn table_of, void *ctx,
                          cvx_err_t *err) {
    if (args->type != CVX_T_OBJECT)
        return cvx_err_set(err, CVX_E_ARGS, "ArgumentValidationError: arguments must be an object, got %s",
                           cvx_type_name(args->type));
    return cvx_validator_check(fn->args_v, args, table_of, ctx, "ArgumentValidationError: ", err);
}

bool cvx_abi_has_returns(const cvx_fn_t *fn) { return !cvx_validator_is_any(fn->returns_v); }

int cvx_abi_validate_returns(const cvx_fn_t *fn, const char *json, size_t len, cvx_id_table_fn table_of, void *ctx,
                             cvx_err_t *err) {
    if (cvx_validator_is_any(fn->returns_v)) return CVX_OK;
    cvx_arena_t *a = cvx_arena_new(len + 1024);
    if (!a) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    cvx_value_t *v;
    int rc = cvx_json_parse(a, json, len, &v, err);
    if (!rc) rc = cvx_validator_check(fn->returns_v, v, table_of, ctx, "ReturnsValidationError: ", err);
    cvx_arena_free(a);
    return rc;
}

int cvx_abi_check_type(const cvx_value_t *type, const cvx_value_t *v, cvx_err_t *err) {
    cvx_arena_t *a = cvx_arena_new(1024);
    if (!a) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    const cvx_validator_t *val;
    int rc = cvx_validator_from_type(a, type, &val, err);
    if (!rc) rc = cvx_validator_check(val, v, NULL, NULL, "ArgumentValidationError: ", err);
    cvx_arena_free(a);
    return rc;
}
