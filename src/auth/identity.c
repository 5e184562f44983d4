/* Claims -> Convex's UserIdentity: tokenIdentifier (issuer|subject),
 * subject, issuer, the OpenID Connect standard claims under Convex's
 * camelCase names, then every custom claim under its own name. Registered
 * JWT claims (aud, exp, ...) say how the token is used, not who the user
 * is: they are not copied. */
#include <string.h>

#include "auth/auth_int.h"

/* OpenID Connect claim -> UserIdentity field. */
static const struct {
    const char *claim, *field;
} STANDARD[] = {
    {"name", "name"},
    {"given_name", "givenName"},
    {"family_name", "familyName"},
    {"nickname", "nickname"},
    {"preferred_username", "preferredUsername"},
    {"profile", "profileUrl"},
    {"picture", "pictureUrl"},
    {"email", "email"},
    {"email_verified", "emailVerified"},
    {"gender", "gender"},
    {"birthdate", "birthday"},
    {"zoneinfo", "timezone"},
    {"locale", "language"},
    {"phone_number", "phoneNumber"},
    {"phone_number_verified", "phoneNumberVerified"},
    {"address", "address"},
    {"updated_at", "updatedAt"},
};

static const char *const REGISTERED[] = {"iss", "sub", "aud", "exp", "nbf", "iat", "jti"};

static bool in_list(const char *name, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(name, list[i])) return true;
    return false;
}

static bool is_standard(const char *name, bool as_field) {
    for (size_t i = 0; i < CVX_ARRAY_LEN(STANDARD); i++)
        if (!strcmp(name, as_field ? STANDARD[i].field : STANDARD[i].claim)) return true;
    return false;
}

static void field(cvx_buf_t *out, const char *name) {
    cvx_buf_append_char(out, ',');
    cvx_buf_append_json_string(out, name, strlen(name));
    cvx_buf_append_char(out, ':');
}

/* Some issuers send booleans as "true"/"false" and updated_at as a
 * number; Convex's UserIdentity has booleans and a string. */
static void standard_value(cvx_buf_t *out, const char *f, const cvx_value_t *v) {
    bool boolean = !strcmp(f, "emailVerified") || !strcmp(f, "phoneNumberVerified");
    if (boolean && v->type == CVX_T_STRING && (!strcmp(v->u.str.ptr, "true") || !strcmp(v->u.str.ptr, "false"))) {
        cvx_buf_append_str(out, v->u.str.ptr);
    } else if (!strcmp(f, "updatedAt") && v->type != CVX_T_STRING) {
        cvx_buf_t s = {0};
        cvx_json_write(&s, v);
        cvx_buf_append_json_string(out, s.data ? s.data : "", s.len);
        cvx_buf_free(&s);
    } else {
        cvx_json_write(out, v);
    }
}

static void head(cvx_buf_t *out, const char *issuer, size_t ilen, const char *subject, size_t slen,
                 const char *token_identifier, size_t tlen) {
    cvx_buf_append_str(out, "{\"tokenIdentifier\":");
    if (token_identifier) {
        cvx_buf_append_json_string(out, token_identifier, tlen);
    } else {
        cvx_buf_t t = {0};
        cvx_buf_append(&t, issuer, ilen);
        cvx_buf_append_char(&t, '|');
        cvx_buf_append(&t, subject, slen);
        cvx_buf_append_json_string(out, t.data, t.len);
        cvx_buf_free(&t);
    }
    cvx_buf_append_str(out, ",\"subject\":");
    cvx_buf_append_json_string(out, subject, slen);
    cvx_buf_append_str(out, ",\"issuer\":");
    cvx_buf_append_json_string(out, issuer, ilen);
}

int cvx__identity_of_claims(const cvx_value_t *claims, cvx_buf_t *out, cvx_err_t *err) {
    const cvx_value_t *iss = cvx_obj_get_cstr(claims, "iss"), *sub = cvx_obj_get_cstr(claims, "sub");
    if (!iss || iss->type != CVX_T_STRING || !sub || sub->type != CVX_T_STRING)
        return cvx_err_set(err, CVX_E_AUTH, "the token has no subject (sub) or issuer (iss)");
    size_t start = out->len;
    head(out, iss->u.str.ptr, iss->u.str.len, sub->u.str.ptr, sub->u.str.len, NULL, 0);
    for (size_t i = 0; i < CVX_ARRAY_LEN(STANDARD); i++) {
        const cvx_value_t *v = cvx_obj_get_cstr(claims, STANDARD[i].claim);
        if (!v || v->type == CVX_T_NULL) continue;
        field(out, STANDARD[i].field);
        standard_value(out, STANDARD[i].field, v);
    }
    for (size_t i = 0; i < claims->u.obj.len; i++) {
        const cvx_field_t *f = &claims->u.obj.fields[i];
        /* A custom claim never shadows a field above. */
        if (in_list(f->name, REGISTERED, CVX_ARRAY_LEN(REGISTERED)) || is_standard(f->name, false) ||
            is_standard(f->name, true) || !strcmp(f->name, "tokenIdentifier") || !strcmp(f->name, "subject") ||
            !strcmp(f->name, "issuer"))
            continue;
        field(out, f->name);
        cvx_json_write(out, f->value);
    }
    cvx_buf_append_char(out, '}');
    if (out->oom) {
        out->len = start;
        return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    return CVX_OK;
}

int cvx_auth_identity_from_attributes(const char *json, size_t len, cvx_buf_t *out, cvx_err_t *err) {
    cvx_arena_t *a = cvx_arena_new(1024);
    if (!a) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    cvx_value_t *v;
    int rc = cvx_json_parse(a, json, len, &v, err);
    if (rc == CVX_OK && v->type != CVX_T_OBJECT) rc = cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "not an object");
    const cvx_value_t *sub = NULL, *iss = NULL, *tid = NULL;
    if (rc == CVX_OK) {
        sub = cvx_obj_get_cstr(v, "subject");
        iss = cvx_obj_get_cstr(v, "issuer");
        tid = cvx_obj_get_cstr(v, "tokenIdentifier");
        if ((sub && sub->type != CVX_T_STRING) || (iss && iss->type != CVX_T_STRING) ||
            (tid && tid->type != CVX_T_STRING))
            rc = cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "subject, issuer and tokenIdentifier must be strings");
    }
    if (rc) {
        cvx_arena_free(a);
        if (rc != CVX_E_NOMEM) {
            err->code = rc = CVX_E_INVALID_ARGUMENT;
            cvx_err_prefix(err, "the identity to act as must be a JSON object of UserIdentity fields");
        }
        return rc;
    }
    size_t start = out->len;
    head(out, iss ? iss->u.str.ptr : "", iss ? iss->u.str.len : 0, sub ? sub->u.str.ptr : "", sub ? sub->u.str.len : 0,
         tid ? tid->u.str.ptr : NULL, tid ? tid->u.str.len : 0);
    for (size_t i = 0; i < v->u.obj.len; i++) {
        const cvx_field_t *f = &v->u.obj.fields[i];
        if (!strcmp(f->name, "tokenIdentifier") || !strcmp(f->name, "subject") || !strcmp(f->name, "issuer")) continue;
        field(out, f->name);
        cvx_json_write(out, f->value);
    }
    cvx_buf_append_char(out, '}');
    cvx_arena_free(a);
    if (out->oom) {
        out->len = start;
        return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    return CVX_OK;
}
