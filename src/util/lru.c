/* Recency lists for the caches (query results, hot documents). */
#include "util/util.h"

void cvx_lru_unlink(cvx_lru_t *l, cvx_lru_node_t *n) {
    if (n->newer) n->newer->older = n->older;
    else l->newest = n->older;
    if (n->older) n->older->newer = n->newer;
    else l->oldest = n->newer;
    n->newer = n->older = NULL;
}

void cvx_lru_push_newest(cvx_lru_t *l, cvx_lru_node_t *n) {
    n->newer = NULL;
    n->older = l->newest;
    if (l->newest) l->newest->newer = n;
    else l->oldest = n;
    l->newest = n;
}

void cvx_lru_touch(cvx_lru_t *l, cvx_lru_node_t *n) {
    if (l->newest == n) return;
    cvx_lru_unlink(l, n);
    cvx_lru_push_newest(l, n);
}
