/*
 * powercut.so: an LD_PRELOAD shim that makes a SIGKILL behave like a power cut for the files
 * under one folder. Test-only (Tests/SystemTests/UplinkPowerCutTests.swift).
 *
 * Model: a file's data is durable only once fsync/fdatasync of that file returned; anything
 * written since is lost by a cut. Namespace operations (create, rename, unlink) are taken as
 * durable when made (the shim does not model lost directory entries; the agent fsyncs the
 * folder after its renames anyway).
 *
 * How: before every write to a tracked file (write, pwrite, writev, pwritev, ftruncate,
 * O_TRUNC) the bytes about to be overwritten are appended to the file's undo log in
 * $POWERCUT_LOG (one log per path); fsync/fdatasync restart the log with the file's size.
 * After the process is killed, `powercut_restore` (run by the constructor of the next process
 * started with POWERCUT_RESTORE=1) applies each log backwards and truncates the file to its
 * synced size: every file is back to its last synced content. SQLite's -shm files are deleted
 * (their content is not durable; SQLite rebuilds them). A line
 * "restored files=F records=R bytes=B" goes to $POWERCUT_LOG/restores.
 *
 * Env: POWERCUT_DIR (absolute folder whose files are tracked), POWERCUT_LOG (absolute folder for
 * the logs, outside POWERCUT_DIR), POWERCUT_RESTORE=1 (restore first, in the constructor).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FD 4096
static char *fd_path[MAX_FD];
static char track_dir[1024];
static char log_dir[1024];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* Raw syscalls: never re-enter the interposed functions. */
static ssize_t raw_pread(int fd, void *b, size_t n, off_t o) { return syscall(SYS_pread64, fd, b, n, o); }
static ssize_t raw_pwrite(int fd, const void *b, size_t n, off_t o) { return syscall(SYS_pwrite64, fd, b, n, o); }
static ssize_t raw_write(int fd, const void *b, size_t n) { return syscall(SYS_write, fd, b, n); }
static int raw_open(const char *p, int flags, int mode) { return (int)syscall(SYS_openat, AT_FDCWD, p, flags, mode); }
static int raw_close(int fd) { return (int)syscall(SYS_close, fd); }
static int raw_ftruncate(int fd, off_t n) { return (int)syscall(SYS_ftruncate, fd, n); }

static int tracked(const char *path) {
    size_t n = strlen(track_dir);
    return n > 0 && path && strncmp(path, track_dir, n) == 0 && path[n] == '/';
}

static void log_name(const char *path, char *out, size_t cap) {
    size_t o = (size_t)snprintf(out, cap, "%s/", log_dir);
    for (const char *p = path; *p && o + 4 < cap; p++) out[o++] = (*p == '/') ? '%' : *p;
    snprintf(out + o, cap - o, ".undo");
}

static off_t file_size(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_size : 0;
}

/* Restarts the undo log of `path`: synced size `size`, no records. */
static void log_reset(const char *path, off_t size) {
    char name[2048];
    log_name(path, name, sizeof name);
    int l = raw_open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (l < 0) return;
    int64_t s = size;
    raw_write(l, &s, sizeof s);
    raw_close(l);
}

/* Appends the bytes [off, off+len) of fd (clipped to its size) as an undo record. */
static void log_undo(int fd, off_t off, size_t len) {
    const char *path = fd_path[fd];
    char name[2048];
    log_name(path, name, sizeof name);
    struct stat st;
    if (stat(name, &st) != 0) log_reset(path, file_size(fd));
    off_t size = file_size(fd);
    size_t keep = off >= size ? 0 : (size_t)((off + (off_t)len > size) ? size - off : (off_t)len);
    int l = raw_open(name, O_WRONLY | O_APPEND | O_CLOEXEC, 0600);
    if (l < 0) return;
    char *buf = malloc(16 + keep);
    int64_t hdr[2] = {off, (int64_t)keep};
    memcpy(buf, hdr, 16);
    if (keep) raw_pread(fd, buf + 16, keep, off);
    raw_write(l, buf, 16 + keep); /* one write: a record is whole or (killed before) absent */
    free(buf);
    raw_close(l);
}

static void note_open(int fd, const char *path, int flags) {
    if (fd < 0 || fd >= MAX_FD || !tracked(path)) return;
    pthread_mutex_lock(&mu);
    free(fd_path[fd]);
    fd_path[fd] = strdup(path);
    char name[2048];
    log_name(path, name, sizeof name);
    struct stat st;
    if (stat(name, &st) != 0) log_reset(path, (flags & O_TRUNC) ? 0 : file_size(fd));
    pthread_mutex_unlock(&mu);
}

#define REAL(ret, name, ...) static ret (*real_##name)(__VA_ARGS__); if (!real_##name) real_##name = dlsym(RTLD_NEXT, #name)

static int open_common(const char *path, int flags, int mode, int (*real)(const char *, int, ...), int dirfd, int (*realat)(int, const char *, int, ...)) {
    char abs[1024];
    const char *p = path;
    if (path && path[0] != '/' && dirfd == AT_FDCWD) {
        if (getcwd(abs, sizeof abs) && strlen(abs) + strlen(path) + 2 < sizeof abs) {
            strcat(abs, "/");
            strcat(abs, path);
            p = abs;
        }
    }
    if ((flags & O_TRUNC) && tracked(p)) {
        /* Truncation at open is a write: log the old content first. */
        int fd0 = raw_open(p, O_RDONLY | O_CLOEXEC, 0);
        if (fd0 >= 0 && fd0 < MAX_FD) {
            pthread_mutex_lock(&mu);
            fd_path[fd0] = strdup(p);
            log_undo(fd0, 0, (size_t)file_size(fd0));
            free(fd_path[fd0]);
            fd_path[fd0] = NULL;
            pthread_mutex_unlock(&mu);
        }
        if (fd0 >= 0) raw_close(fd0);
    }
    int fd = realat ? realat(dirfd, path, flags, mode) : real(path, flags, mode);
    note_open(fd, p, flags);
    return fd;
}

int open(const char *path, int flags, ...) {
    REAL(int, open, const char *, int, ...);
    int mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) { va_list a; va_start(a, flags); mode = va_arg(a, int); va_end(a); }
    return open_common(path, flags, mode, real_open, AT_FDCWD, NULL);
}
int open64(const char *path, int flags, ...) {
    REAL(int, open64, const char *, int, ...);
    int mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) { va_list a; va_start(a, flags); mode = va_arg(a, int); va_end(a); }
    return open_common(path, flags, mode, real_open64, AT_FDCWD, NULL);
}
int openat(int dirfd, const char *path, int flags, ...) {
    REAL(int, openat, int, const char *, int, ...);
    int mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) { va_list a; va_start(a, flags); mode = va_arg(a, int); va_end(a); }
    return open_common(path, flags, mode, NULL, dirfd, real_openat);
}
int openat64(int dirfd, const char *path, int flags, ...) {
    REAL(int, openat64, int, const char *, int, ...);
    int mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) { va_list a; va_start(a, flags); mode = va_arg(a, int); va_end(a); }
    return open_common(path, flags, mode, NULL, dirfd, real_openat64);
}

int close(int fd) {
    REAL(int, close, int);
    if (fd >= 0 && fd < MAX_FD && fd_path[fd]) {
        pthread_mutex_lock(&mu);
        free(fd_path[fd]);
        fd_path[fd] = NULL;
        pthread_mutex_unlock(&mu);
    }
    return real_close(fd);
}

static int is_tracked_fd(int fd) { return fd >= 0 && fd < MAX_FD && fd_path[fd] != NULL; }

ssize_t write(int fd, const void *b, size_t n) {
    REAL(ssize_t, write, int, const void *, size_t);
    if (!is_tracked_fd(fd)) return real_write(fd, b, n);
    pthread_mutex_lock(&mu);
    int fl = fcntl(fd, F_GETFL);
    off_t at = (fl & O_APPEND) ? file_size(fd) : lseek(fd, 0, SEEK_CUR);
    if (fd_path[fd]) log_undo(fd, at, n);
    ssize_t r = real_write(fd, b, n);
    pthread_mutex_unlock(&mu);
    return r;
}

static ssize_t pwrite_common(int fd, const void *b, size_t n, off_t o) {
    pthread_mutex_lock(&mu);
    if (fd_path[fd]) log_undo(fd, o, n);
    ssize_t r = raw_pwrite(fd, b, n, o);
    pthread_mutex_unlock(&mu);
    return r;
}
ssize_t pwrite(int fd, const void *b, size_t n, off_t o) {
    REAL(ssize_t, pwrite, int, const void *, size_t, off_t);
    if (!is_tracked_fd(fd)) return real_pwrite(fd, b, n, o);
    return pwrite_common(fd, b, n, o);
}
ssize_t pwrite64(int fd, const void *b, size_t n, off_t o) {
    REAL(ssize_t, pwrite64, int, const void *, size_t, off_t);
    if (!is_tracked_fd(fd)) return real_pwrite64(fd, b, n, o);
    return pwrite_common(fd, b, n, o);
}

static size_t iov_len(const struct iovec *v, int c) { size_t t = 0; for (int i = 0; i < c; i++) t += v[i].iov_len; return t; }

ssize_t writev(int fd, const struct iovec *v, int c) {
    REAL(ssize_t, writev, int, const struct iovec *, int);
    if (!is_tracked_fd(fd)) return real_writev(fd, v, c);
    pthread_mutex_lock(&mu);
    int fl = fcntl(fd, F_GETFL);
    off_t at = (fl & O_APPEND) ? file_size(fd) : lseek(fd, 0, SEEK_CUR);
    if (fd_path[fd]) log_undo(fd, at, iov_len(v, c));
    ssize_t r = real_writev(fd, v, c);
    pthread_mutex_unlock(&mu);
    return r;
}
ssize_t pwritev(int fd, const struct iovec *v, int c, off_t o) {
    REAL(ssize_t, pwritev, int, const struct iovec *, int, off_t);
    if (!is_tracked_fd(fd)) return real_pwritev(fd, v, c, o);
    pthread_mutex_lock(&mu);
    if (fd_path[fd]) log_undo(fd, o, iov_len(v, c));
    ssize_t r = real_pwritev(fd, v, c, o);
    pthread_mutex_unlock(&mu);
    return r;
}

static int truncate_common(int fd, off_t n) {
    pthread_mutex_lock(&mu);
    off_t size = file_size(fd);
    if (fd_path[fd] && n < size) log_undo(fd, n, (size_t)(size - n));
    int r = raw_ftruncate(fd, n);
    pthread_mutex_unlock(&mu);
    return r;
}
int ftruncate(int fd, off_t n) {
    REAL(int, ftruncate, int, off_t);
    if (!is_tracked_fd(fd)) return real_ftruncate(fd, n);
    return truncate_common(fd, n);
}
int ftruncate64(int fd, off_t n) {
    REAL(int, ftruncate64, int, off_t);
    if (!is_tracked_fd(fd)) return real_ftruncate64(fd, n);
    return truncate_common(fd, n);
}

static int sync_common(int fd, int (*real)(int)) {
    int r = real(fd);
    if (r == 0 && is_tracked_fd(fd)) {
        pthread_mutex_lock(&mu);
        if (fd_path[fd]) log_reset(fd_path[fd], file_size(fd));
        pthread_mutex_unlock(&mu);
    }
    return r;
}
int fsync(int fd) { REAL(int, fsync, int); return sync_common(fd, real_fsync); }
int fdatasync(int fd) { REAL(int, fdatasync, int); return sync_common(fd, real_fdatasync); }

int rename(const char *a, const char *b) {
    REAL(int, rename, const char *, const char *);
    int r = real_rename(a, b);
    if (r == 0 && (tracked(a) || tracked(b))) {
        char la[2048], lb[2048];
        log_name(a, la, sizeof la);
        log_name(b, lb, sizeof lb);
        pthread_mutex_lock(&mu);
        unlink(lb);
        if (tracked(a) && tracked(b)) syscall(SYS_rename, la, lb); else unlink(la);
        for (int i = 0; i < MAX_FD; i++) if (fd_path[i] && strcmp(fd_path[i], a) == 0) { free(fd_path[i]); fd_path[i] = strdup(b); }
        pthread_mutex_unlock(&mu);
    }
    return r;
}

int unlink(const char *p) {
    REAL(int, unlink, const char *);
    int r = real_unlink(p);
    if (r == 0 && tracked(p)) {
        char l[2048];
        log_name(p, l, sizeof l);
        real_unlink(l);
    }
    return r;
}

/* Applies every undo log backwards; deletes -shm files of the tracked folder. */
static void powercut_restore(void) {
    DIR *d = opendir(log_dir);
    if (!d) return;
    long files = 0, records = 0, bytes = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".undo") != 0) continue;
        char logp[2048], target[1024];
        snprintf(logp, sizeof logp, "%s/%s", log_dir, e->d_name);
        size_t t = 0;
        for (size_t i = 0; i + 5 < n && t + 1 < sizeof target; i++) target[t++] = e->d_name[i] == '%' ? '/' : e->d_name[i];
        target[t] = 0;
        int l = raw_open(logp, O_RDONLY | O_CLOEXEC, 0);
        if (l < 0) continue;
        off_t lsize = file_size(l);
        char *buf = malloc(lsize > 0 ? (size_t)lsize : 1);
        ssize_t got = raw_pread(l, buf, (size_t)lsize, 0);
        raw_close(l);
        if (got < (ssize_t)sizeof(int64_t)) { free(buf); unlink(logp); continue; }
        int64_t synced;
        memcpy(&synced, buf, 8);
        /* Index the whole records. */
        size_t cap = 64, count = 0;
        size_t *at = malloc(cap * sizeof *at);
        size_t pos = 8;
        while (pos + 16 <= (size_t)got) {
            int64_t hdr[2];
            memcpy(hdr, buf + pos, 16);
            if (hdr[1] < 0 || pos + 16 + (size_t)hdr[1] > (size_t)got) break;
            if (count == cap) { cap *= 2; at = realloc(at, cap * sizeof *at); }
            at[count++] = pos;
            pos += 16 + (size_t)hdr[1];
        }
        int fd = raw_open(target, O_WRONLY | O_CLOEXEC, 0);
        if (fd >= 0) {
            for (size_t i = count; i-- > 0;) {
                int64_t hdr[2];
                memcpy(hdr, buf + at[i], 16);
                if (hdr[1] > 0) raw_pwrite(fd, buf + at[i] + 16, (size_t)hdr[1], hdr[0]);
                records++;
                bytes += hdr[1];
            }
            raw_ftruncate(fd, synced);
            fsync(fd);
            raw_close(fd);
            files++;
        }
        free(at);
        free(buf);
        unlink(logp);
    }
    closedir(d);
    DIR *t = opendir(track_dir);
    if (t) {
        while ((e = readdir(t))) {
            size_t n = strlen(e->d_name);
            if (n > 4 && strcmp(e->d_name + n - 4, "-shm") == 0) {
                char p[2048];
                snprintf(p, sizeof p, "%s/%s", track_dir, e->d_name);
                unlink(p);
            }
        }
        closedir(t);
    }
    char sp[2048];
    snprintf(sp, sizeof sp, "%s/restores", log_dir);
    int s = raw_open(sp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (s >= 0) {
        char line[200];
        int k = snprintf(line, sizeof line, "restored files=%ld records=%ld bytes=%ld\n", files, records, bytes);
        raw_write(s, line, (size_t)k);
        raw_close(s);
    }
}

__attribute__((constructor)) static void powercut_init(void) {
    const char *d = getenv("POWERCUT_DIR"), *l = getenv("POWERCUT_LOG");
    if (!d || !l) return;
    snprintf(track_dir, sizeof track_dir, "%s", d);
    snprintf(log_dir, sizeof log_dir, "%s", l);
    mkdir(log_dir, 0700);
    const char *r = getenv("POWERCUT_RESTORE");
    if (r && strcmp(r, "1") == 0) powercut_restore();
}
