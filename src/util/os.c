/* Clocks, OS randomness and whole-file I/O. */
#define _GNU_SOURCE
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

uint64_t cvx_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t cvx_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int cvx_os_random(void *out, size_t n) {
    uint8_t *p = out;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            return CVX_E_IO;
        }
        p += got;
        n -= (size_t)got;
    }
    return CVX_OK;
}

int cvx_read_file(const char *path, cvx_buf_t *out, cvx_err_t *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cvx_err_set(err, CVX_E_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size > 0 && cvx_buf_reserve(out, (size_t)st.st_size)) {
        close(fd);
        return cvx_err_set(err, CVX_E_NOMEM, "out of memory reading %s", path);
    }
    for (;;) {
        if (cvx_buf_reserve(out, 65536)) {
            close(fd);
            return cvx_err_set(err, CVX_E_NOMEM, "out of memory reading %s", path);
        }
        ssize_t n = read(fd, out->data + out->len, out->cap - out->len - 1);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            return cvx_err_set(err, CVX_E_IO, "cannot read %s: %s", path, strerror(e));
        }
        if (n == 0) break;
        out->len += (size_t)n;
    }
    out->data[out->len] = '\0';
    close(fd);
    return CVX_OK;
}

int cvx_map_file(const char *path, const uint8_t **data, size_t *len, cvx_err_t *err) {
    static const uint8_t empty[1];
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cvx_err_set(err, CVX_E_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return cvx_err_set(err, CVX_E_IO, "cannot stat %s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return cvx_err_set(err, CVX_E_IO, "%s is not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        *data = empty;
        return CVX_OK;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return cvx_err_set(err, CVX_E_IO, "cannot map %s: %s", path, strerror(e));
    *data = p;
    *len = (size_t)st.st_size;
    return CVX_OK;
}

void cvx_unmap_file(const uint8_t *data, size_t len) {
    if (data && len) munmap((void *)data, len);
}

int cvx_write_file_atomic(const char *path, const void *data, size_t n, cvx_err_t *err) {
    return cvx_write_file_mode(path, data, n, 0644, err);
}

int cvx_write_file_private(const char *path, const void *data, size_t n, cvx_err_t *err) {
    return cvx_write_file_mode(path, data, n, 0600, err);
}

int cvx_write_file_mode(const char *path, const void *data, size_t n, unsigned mode, cvx_err_t *err) {
    char tmp[4096];
    /* A unique temporary name: two threads may write the same path at
     * once (two uploads of identical content). */
    if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp)
        return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "path too long: %s", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) return cvx_err_set(err, CVX_E_IO, "cannot create %s: %s", tmp, strerror(errno));
    /* mkostemp made it 0600; the mode asked for, whatever the umask. */
    fchmod(fd, (mode_t)mode);
    const char *p = data;
    size_t left = n;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            unlink(tmp);
            return cvx_err_set(err, CVX_E_IO, "cannot write %s: %s", tmp, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return cvx_err_set(err, CVX_E_IO, "cannot fsync %s: %s", tmp, strerror(e));
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return cvx_err_set(err, CVX_E_IO, "cannot rename %s to %s: %s", tmp, path, strerror(e));
    }
    return CVX_OK;
}

/* mkdir -p; `mode` for the last component, 0755 for the parents it
 * creates (a data directory's parents are not its business). */
static int mkdirs_mode(const char *path, unsigned mode, cvx_err_t *err) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "bad directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, c == '\0' ? (mode_t)mode : 0755) != 0 && errno != EEXIST)
                return cvx_err_set(err, CVX_E_IO, "cannot create directory %s: %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return cvx_err_set(err, CVX_E_IO, "%s exists and is not a directory", path);
    return CVX_OK;
}

int cvx_mkdirs(const char *path, cvx_err_t *err) {
    return mkdirs_mode(path, 0755, err);
}

int cvx_mkdirs_private(const char *path, cvx_err_t *err) {
    int rc = mkdirs_mode(path, 0700, err);
    /* Created 0700 now, or made so if an older cvx created it 0755. */
    if (!rc) cvx_make_private(path);
    return rc;
}

void cvx_make_private(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0 || !(st.st_mode & 077)) return;
    /* Best effort: a file of another user (EPERM) or a file system
     * without modes stays as it is rather than stopping the server. */
    (void)chmod(path, st.st_mode & 0700);
}

void cvx_sleep_ns(uint64_t ns) {
    struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static _Thread_local void (*blocking_fn)(void *, bool);
static _Thread_local void *blocking_ctx;

void cvx_set_blocking_hook(void (*fn)(void *ctx, bool begin), void *ctx) {
    blocking_fn = fn;
    blocking_ctx = ctx;
}

bool cvx_thread_deprioritize(int nice) {
#ifdef __linux__
    pid_t tid = (pid_t)syscall(SYS_gettid);
    errno = 0;
    int cur = getpriority(PRIO_PROCESS, (id_t)tid);
    if (cur == -1 && errno) return false;
    return setpriority(PRIO_PROCESS, (id_t)tid, CVX_MIN(cur + nice, 19)) == 0;
#else
    (void)nice;
    return false;
#endif
}

void cvx_blocking(bool begin) {
    if (blocking_fn) blocking_fn(blocking_ctx, begin);
}
