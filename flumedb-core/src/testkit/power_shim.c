/* An LD_PRELOAD shim for the power-loss tests (flumedb-core testkit::power): logs every
 * write, truncate, fsync and directory operation on paths under $FLUMEDB_POWER_DIR to
 * $FLUMEDB_POWER_TRACE, with the data written, in the order the calls completed.
 *
 * Record: one header line "op\toffset\tlength\tpath\tpath2\n", then `length` data bytes for
 * op W. Ops: C create, M mkdir, W write, T truncate, S fsync/fdatasync of a file, Y fsync of a
 * directory, R rename (path -> path2), U unlink. One mutex serialises the calls it logs, so
 * the trace order is the order they took effect.
 *
 * Renames and unlinks made without libc (raw syscalls: rustix, which tempfile's `persist` and
 * fjall's file removal use) are not seen when they happen. The shim keeps every traced path it
 * created with its inode; when a directory is fsync'd (the moment they become durable), each
 * known entry of it that is gone is logged as renamed (its inode is there under another name)
 * or unlinked, before the fsync. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static char root[PATH_MAX];
static size_t root_len;
static int trace_fd = -1;

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

static void raw_write(const void *buf, size_t len) {
    static ssize_t (*w)(int, const void *, size_t);
    if (!w) w = REAL(write);
    const char *p = buf;
    while (len > 0) {
        ssize_t n = w(trace_fd, p, len);
        if (n <= 0) { if (n < 0 && errno == EINTR) continue; abort(); }
        p += n; len -= (size_t)n;
    }
}

__attribute__((constructor)) static void init(void) {
    const char *dir = getenv("FLUMEDB_POWER_DIR");
    const char *trace = getenv("FLUMEDB_POWER_TRACE");
    if (!dir || !trace) return;
    snprintf(root, sizeof root, "%s/", dir);
    root_len = strlen(root);
    int (*o)(const char *, int, ...) = dlsym(RTLD_NEXT, "open");
    trace_fd = o(trace, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (trace_fd < 0) abort();
}

static int traced(const char *path) {
    return trace_fd >= 0 && path && strncmp(path, root, root_len) == 0;
}

/* The absolute form of `path` (relative to `dirfd`); tests use absolute paths already. */
static void absolute(int dirfd, const char *path, char *out) {
    if (!path) { out[0] = 0; return; }
    if (path[0] == '/') { snprintf(out, PATH_MAX, "%s", path); return; }
    char base[PATH_MAX] = "";
    if (dirfd == AT_FDCWD) {
        if (!getcwd(base, sizeof base)) base[0] = 0;
    } else {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
        ssize_t n = readlink(link, base, sizeof base - 1);
        base[n > 0 ? n : 0] = 0;
    }
    snprintf(out, PATH_MAX, "%s/%s", base, path);
}

static void fd_path(int fd, char *out) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, PATH_MAX - 1);
    out[n > 0 ? n : 0] = 0;
}

static void record(char op, long long off, const void *data, size_t len, const char *p1,
                   const char *p2) {
    char head[2 * PATH_MAX + 96];
    int n = snprintf(head, sizeof head, "%c\t%lld\t%zu\t%s\t%s\n", op, off, len, p1, p2 ? p2 : "");
    raw_write(head, (size_t)n);
    if (op == 'W' && len > 0) raw_write(data, len);
}

/* Every traced path the trace created, with its inode (under the lock). */
#define MAX_KNOWN 16384
static struct known { char *path; ino_t ino; } known[MAX_KNOWN];
static int n_known;

static void learn(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    for (int i = 0; i < n_known; i++) {
        if (strcmp(known[i].path, path) == 0) { known[i].ino = st.st_ino; return; }
    }
    if (n_known == MAX_KNOWN) abort();
    known[n_known].path = strdup(path);
    known[n_known].ino = st.st_ino;
    n_known++;
}

static void forget(int i) {
    free(known[i].path);
    known[i] = known[--n_known];
}

/* A rename logged: `a` and everything under it (a directory) is now under `b`. */
static void moved(const char *a, const char *b) {
    size_t la = strlen(a);
    for (int i = 0; i < n_known; i++) {
        const char *p = known[i].path;
        if (strncmp(p, a, la) == 0 && (p[la] == 0 || p[la] == '/')) {
            char next[PATH_MAX];
            snprintf(next, sizeof next, "%s%s", b, p + la);
            free(known[i].path);
            known[i].path = strdup(next);
        }
    }
}

static int parent_is(const char *path, const char *dir) {
    size_t ld = strlen(dir);
    return strncmp(path, dir, ld) == 0 && path[ld] == '/' && !strchr(path + ld + 1, '/');
}

/* Before an fsync of directory `dir`: logs what left it without libc (see the header). */
static void reconcile(const char *dir) {
    for (int i = 0; i < n_known; i++) {
        struct stat st;
        if (!parent_is(known[i].path, dir)) continue;
        if (lstat(known[i].path, &st) == 0) {
            if (st.st_ino == known[i].ino) continue;
            /* Replaced by a rename of another known file: that rename is logged for it. */
            int replaced = 0;
            for (int j = 0; j < n_known; j++) replaced |= j != i && known[j].ino == st.st_ino;
            if (replaced) continue;
        }
        char found[PATH_MAX] = "";
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_ino != known[i].ino || strcmp(e->d_name, ".") == 0 ||
                strcmp(e->d_name, "..") == 0) continue;
            snprintf(found, sizeof found, "%s/%s", dir, e->d_name);
            break;
        }
        if (d) closedir(d);
        if (found[0]) {
            record('R', 0, 0, 0, known[i].path, found);
            /* A name the rename replaced is gone from the table too. */
            for (int j = 0; j < n_known; j++) {
                if (j != i && strcmp(known[j].path, found) == 0) { forget(j); if (i == n_known) i = j; break; }
            }
            moved(known[i].path, found);
        } else {
            record('U', 0, 0, 0, known[i].path, 0);
            forget(i);
            i--;
        }
    }
}

static int do_open(int dirfd, const char *path, int flags, mode_t mode, int at) {
    char abs[PATH_MAX];
    absolute(dirfd, path, abs);
    int t = traced(abs);
    if (t) pthread_mutex_lock(&lock);
    int existed = t && access(abs, F_OK) == 0;
    int fd;
    if (at) {
        static int (*real)(int, const char *, int, ...);
        if (!real) real = dlsym(RTLD_NEXT, "openat");
        fd = real(dirfd, path, flags, mode);
    } else {
        static int (*real)(const char *, int, ...);
        if (!real) real = dlsym(RTLD_NEXT, "open");
        fd = real(path, flags, mode);
    }
    if (t) {
        int saved = errno;
        if (fd >= 0 && !existed && (flags & O_CREAT)) { record('C', 0, 0, 0, abs, 0); learn(abs); }
        else if (fd >= 0 && existed && (flags & O_TRUNC)) record('T', 0, 0, 0, abs, 0);
        pthread_mutex_unlock(&lock);
        errno = saved;
    }
    return fd;
}

#define MODE_ARG(flags) \
    mode_t mode = 0; \
    if ((flags) & (O_CREAT | __O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }

int open(const char *path, int flags, ...) { MODE_ARG(flags); return do_open(AT_FDCWD, path, flags, mode, 0); }
int open64(const char *path, int flags, ...) { MODE_ARG(flags); return do_open(AT_FDCWD, path, flags, mode, 0); }
int openat(int d, const char *path, int flags, ...) { MODE_ARG(flags); return do_open(d, path, flags, mode, 1); }
int openat64(int d, const char *path, int flags, ...) { MODE_ARG(flags); return do_open(d, path, flags, mode, 1); }
int creat(const char *path, mode_t mode) { return do_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode, 0); }
int creat64(const char *path, mode_t mode) { return do_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode, 0); }

/* Runs `call` under the lock when `fd` is a traced file; `*path` gets its path. */
#define FD_CALL(fd, path, t, call) \
    char path[PATH_MAX]; \
    fd_path(fd, path); \
    int t = traced(path); \
    if (t) pthread_mutex_lock(&lock); \
    call; \
    int saved_errno = errno;

#define FD_DONE(t) \
    if (t) pthread_mutex_unlock(&lock); \
    errno = saved_errno;

ssize_t write(int fd, const void *buf, size_t len) {
    static ssize_t (*real)(int, const void *, size_t);
    if (!real) real = REAL(write);
    if (fd == trace_fd || fd <= 2) return real(fd, buf, len);
    FD_CALL(fd, path, t, ssize_t n = real(fd, buf, len));
    if (t && n > 0) record('W', (long long)lseek(fd, 0, SEEK_CUR) - n, buf, (size_t)n, path, 0);
    FD_DONE(t);
    return n;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    static ssize_t (*real)(int, const struct iovec *, int);
    if (!real) real = REAL(writev);
    if (fd == trace_fd || fd <= 2) return real(fd, iov, cnt);
    FD_CALL(fd, path, t, ssize_t n = real(fd, iov, cnt));
    if (t && n > 0) {
        long long off = (long long)lseek(fd, 0, SEEK_CUR) - n;
        ssize_t left = n;
        for (int i = 0; i < cnt && left > 0; i++) {
            size_t part = iov[i].iov_len < (size_t)left ? iov[i].iov_len : (size_t)left;
            record('W', off, iov[i].iov_base, part, path, 0);
            off += (long long)part;
            left -= (ssize_t)part;
        }
    }
    FD_DONE(t);
    return n;
}

static ssize_t do_pwrite(int fd, const void *buf, size_t len, off_t off) {
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real) real = dlsym(RTLD_NEXT, "pwrite64");
    FD_CALL(fd, path, t, ssize_t n = real(fd, buf, len, off));
    if (t && n > 0) record('W', (long long)off, buf, (size_t)n, path, 0);
    FD_DONE(t);
    return n;
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off) { return do_pwrite(fd, buf, len, off); }
ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off) { return do_pwrite(fd, buf, len, off); }

static int do_truncate(int fd, off_t len) {
    static int (*real)(int, off_t);
    if (!real) real = dlsym(RTLD_NEXT, "ftruncate64");
    FD_CALL(fd, path, t, int r = real(fd, len));
    if (t && r == 0) record('T', (long long)len, 0, 0, path, 0);
    FD_DONE(t);
    return r;
}

int ftruncate(int fd, off_t len) { return do_truncate(fd, len); }
int ftruncate64(int fd, off_t len) { return do_truncate(fd, len); }

static int do_sync(int fd, int data) {
    static int (*real_fsync)(int);
    static int (*real_fdatasync)(int);
    if (!real_fsync) real_fsync = REAL(fsync);
    if (!real_fdatasync) real_fdatasync = REAL(fdatasync);
    FD_CALL(fd, path, t, int r = data ? real_fdatasync(fd) : real_fsync(fd));
    if (t && r == 0) {
        struct stat st;
        int dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
        if (dir) reconcile(path);
        record(dir ? 'Y' : 'S', 0, 0, 0, path, 0);
    }
    FD_DONE(t);
    return r;
}

int fsync(int fd) { return do_sync(fd, 0); }
int fdatasync(int fd) { return do_sync(fd, 1); }

static int do_rename(int olddir, const char *old, int newdir, const char *new_, unsigned flags,
                     int kind) {
    char a[PATH_MAX], b[PATH_MAX];
    absolute(olddir, old, a);
    absolute(newdir, new_, b);
    int t = traced(a) || traced(b);
    if (t) pthread_mutex_lock(&lock);
    int r;
    if (kind == 0) {
        static int (*real)(const char *, const char *);
        if (!real) real = REAL(rename);
        r = real(old, new_);
    } else if (kind == 1) {
        static int (*real)(int, const char *, int, const char *);
        if (!real) real = REAL(renameat);
        r = real(olddir, old, newdir, new_);
    } else {
        static int (*real)(int, const char *, int, const char *, unsigned);
        if (!real) real = REAL(renameat2);
        r = real(olddir, old, newdir, new_, flags);
    }
    int saved = errno;
    if (t) {
        if (r == 0) {
            record('R', 0, 0, 0, a, b);
            for (int j = 0; j < n_known; j++) {
                if (strcmp(known[j].path, b) == 0) { forget(j); break; }
            }
            moved(a, b);
        }
        pthread_mutex_unlock(&lock);
    }
    errno = saved;
    return r;
}

int rename(const char *o, const char *n) { return do_rename(AT_FDCWD, o, AT_FDCWD, n, 0, 0); }
int renameat(int od, const char *o, int nd, const char *n) { return do_rename(od, o, nd, n, 0, 1); }
int renameat2(int od, const char *o, int nd, const char *n, unsigned f) { return do_rename(od, o, nd, n, f, 2); }

static int do_path_op(int dirfd, const char *path, char op, int (*call)(void *), void *arg) {
    char abs[PATH_MAX];
    absolute(dirfd, path, abs);
    int t = traced(abs);
    if (t) pthread_mutex_lock(&lock);
    int r = call(arg);
    int saved = errno;
    if (t) {
        if (r == 0) {
            record(op, 0, 0, 0, abs, 0);
            if (op == 'M') learn(abs);
            if (op == 'U') {
                for (int j = 0; j < n_known; j++) {
                    if (strcmp(known[j].path, abs) == 0) { forget(j); break; }
                }
            }
        }
        pthread_mutex_unlock(&lock);
    }
    errno = saved;
    return r;
}

struct args { int dirfd; const char *path; mode_t mode; int flags; };
static int call_mkdir(void *p) { struct args *a = p; static int (*r)(const char *, mode_t); if (!r) r = REAL(mkdir); return r(a->path, a->mode); }
static int call_mkdirat(void *p) { struct args *a = p; static int (*r)(int, const char *, mode_t); if (!r) r = REAL(mkdirat); return r(a->dirfd, a->path, a->mode); }
static int call_unlink(void *p) { struct args *a = p; static int (*r)(const char *); if (!r) r = REAL(unlink); return r(a->path); }
static int call_unlinkat(void *p) { struct args *a = p; static int (*r)(int, const char *, int); if (!r) r = REAL(unlinkat); return r(a->dirfd, a->path, a->flags); }

int mkdir(const char *path, mode_t mode) { struct args a = {AT_FDCWD, path, mode, 0}; return do_path_op(AT_FDCWD, path, 'M', call_mkdir, &a); }
int mkdirat(int d, const char *path, mode_t mode) { struct args a = {d, path, mode, 0}; return do_path_op(d, path, 'M', call_mkdirat, &a); }
int unlink(const char *path) { struct args a = {AT_FDCWD, path, 0, 0}; return do_path_op(AT_FDCWD, path, 'U', call_unlink, &a); }
int unlinkat(int d, const char *path, int flags) { struct args a = {d, path, 0, flags}; return do_path_op(d, path, (flags & AT_REMOVEDIR) ? 'U' : 'U', call_unlinkat, &a); }
