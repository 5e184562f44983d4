/* The files `cvx init` writes, embedded at build time from templates/
 * (see cmake/embed.cmake): paths start with the variant they belong to,
 * "common/" (every app) or "rust/", "typescript/", "mixed/". Text may
 * contain {{NAME}} and {{SDK_PATH}}. */
#ifndef CVX_TEMPLATES_H
#define CVX_TEMPLATES_H

#include <stddef.h>

typedef struct {
    const char *path; /* relative; NULL ends the list */
    const unsigned char *data;
    size_t len;
} cvx_template_file_t;

extern const cvx_template_file_t cvx_templates[];

#endif
