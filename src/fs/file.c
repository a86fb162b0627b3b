/*
 * file.c - files and path operations through the I/O driver (io_uring
 * operations, or the blocking pool on epoll: see op.c's
 * zk__op_needs_pool).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/op.h"
#include "runtime/runtime.h"
#include "zokio/combine.h"
#include "zokio/fs.h"

static zk__io_handle *zk__fh(zk_file *f) {
    return (zk__io_handle *)f;
}

/* ---------------------------------------------------------------------- */
/* Opening                                                                */
/* ---------------------------------------------------------------------- */

/* One openat operation; returns the new descriptor or an error. With
 * `may_block`, io_uring makes it a blocking open (see zk__uring_prep). */
static int zk__openat(const char *path, int flags, unsigned mode,
                      bool may_block) {
    zk__io_op op;
    zk__op_init(&op, ZK__OP_OPENAT, NULL);
    op.a.p.path = path;
    op.a.p.flags = flags;
    op.a.p.mode = mode;
    op.may_block = may_block;
    return (int)zk__op_await(&op);
}

/*
 * io_uring opened `fd`, a FIFO for reading, without waiting for a writer
 * as open(2) does (the kernel's first attempt does not block and succeeds
 * at once for a reader). Waits for one: the first of a blocking open of
 * the path (it returns once a writer is there) and a poll of `fd` (it is
 * ready once a writer wrote, or came and went, since `fd` was opened:
 * what the blocking open would miss if it started after that writer
 * left). `fd` stays open meanwhile, so a writer that came finds a reader
 * and is not refused. Returns 0, keeping `fd`, or an error.
 */
static int zk__fifo_wait_writer(const char *path, int flags, unsigned mode,
                                int fd) {
    zk__io_op open_op, poll_op;
    zk__op_init(&open_op, ZK__OP_OPENAT, NULL);
    open_op.a.p.path = path;
    open_op.a.p.flags = flags;
    open_op.a.p.mode = mode;
    open_op.may_block = true;
    zk__op_init(&poll_op, ZK__OP_POLL_IN, NULL);
    poll_op.fd = fd;
    zk_future *both[2] = {&open_op.base, &poll_op.base};
    int64_t res;
    int which = zk_select(both, 2, &res);
    if (which < 0)
        return which; /* both dropped: a descriptor made was closed */
    if (res < 0)
        return (int)res;
    if (which == 0)
        close((int)res); /* it only said that a writer came: keep `fd` */
    return 0;
}

int zk_file_open(const char *path, int flags, unsigned mode, zk_file **out) {
    if (path == NULL || out == NULL)
        return -EINVAL;
    *out = NULL;
    zk_runtime *rt = zk__runtime_current();
    bool ring = rt != NULL && zk_runtime_io_backend(rt) == ZK_IO_IO_URING;
    bool waits = !(flags & O_NONBLOCK);
    int fd = zk__openat(path, flags, mode, false);
    /* A FIFO for writing that has no reader: the ring's open does not wait
     * for one as a blocking open(2) does (on epoll, on the pool). */
    if (fd == -ENXIO && ring && waits)
        fd = zk__openat(path, flags, mode, true);
    if (fd < 0)
        return fd;
    bool unseekable = lseek(fd, 0, SEEK_CUR) < 0 && errno == ESPIPE;
    struct stat st;
    int rc = 0;
    if (ring && waits && unseekable && (flags & O_ACCMODE) == O_RDONLY &&
        fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode))
        rc = zk__fifo_wait_writer(path, flags, mode, fd);
    zk__io_handle *h;
    if (rc == 0)
        rc = rt ? zk__handle_new(rt, fd, ZK__HANDLE_FILE, &h) : -EPERM;
    if (rc != 0) {
        close(fd);
        return rc;
    }
    h->unseekable = unseekable;
    *out = (zk_file *)h;
    return 0;
}

int zk_file_close(zk_file *f) {
    if (f == NULL)
        return -EINVAL;
    return zk__handle_close(zk__fh(f));
}

/* ---------------------------------------------------------------------- */
/* Reading and writing                                                    */
/* ---------------------------------------------------------------------- */

static void zk__rw_init(zk_io_future *fut, zk_file *f, void *buf, size_t len,
                        uint64_t offset, zk__op_code code) {
    zk__io_op *op = (zk__io_op *)fut;
    if (f == NULL || (buf == NULL && len > 0) || offset > INT64_MAX) {
        zk__op_init_failed(op, -EINVAL);
        return;
    }
    if (zk__fh(f)->unseekable) {
        zk__op_init_failed(op, -ESPIPE);
        return;
    }
    zk__op_init(op, code, zk__fh(f));
    op->a.rw.buf = buf;
    op->a.rw.len = len > INT_MAX ? INT_MAX : len;
    op->a.rw.off = (int64_t)offset;
}

void zk_file_read_at_future_init(zk_io_future *fut, zk_file *f, void *buf,
                                 size_t len, uint64_t offset) {
    zk__rw_init(fut, f, buf, len, offset, ZK__OP_READ);
}

void zk_file_write_at_future_init(zk_io_future *fut, zk_file *f,
                                  const void *buf, size_t len,
                                  uint64_t offset) {
    zk__rw_init(fut, f, (void *)buf, len, offset, ZK__OP_WRITE);
}

int64_t zk_file_read_at(zk_file *f, void *buf, size_t len, uint64_t offset) {
    zk_io_future fut;
    zk_file_read_at_future_init(&fut, f, buf, len, offset);
    return zk_await(&fut.base);
}

int64_t zk_file_write_at(zk_file *f, const void *buf, size_t len,
                         uint64_t offset) {
    zk_io_future fut;
    zk_file_write_at_future_init(&fut, f, buf, len, offset);
    return zk_await(&fut.base);
}

int zk_file_write_all_at(zk_file *f, const void *buf, size_t len,
                         uint64_t offset) {
    if (f == NULL || (buf == NULL && len > 0))
        return -EINVAL;
    const char *p = buf;
    while (len > 0) {
        int64_t n = zk_file_write_at(f, p, len, offset);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return -EIO;
        p += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

int zk_file_sync(zk_file *f, bool data_only) {
    if (f == NULL)
        return -EINVAL;
    zk__io_op op;
    zk__op_init(&op, ZK__OP_FSYNC, zk__fh(f));
    op.a.sync.datasync = data_only;
    return (int)zk__op_await(&op);
}

/* ---------------------------------------------------------------------- */
/* Metadata                                                               */
/* ---------------------------------------------------------------------- */

static void zk__metadata_from(const struct statx *st, zk_metadata *out) {
    memset(out, 0, sizeof *out);
    out->size = st->stx_size;
    out->mode = st->stx_mode;
    out->nlink = st->stx_nlink;
    out->uid = st->stx_uid;
    out->gid = st->stx_gid;
    out->ino = st->stx_ino;
    out->mtime_ns =
        (int64_t)st->stx_mtime.tv_sec * 1000000000 + st->stx_mtime.tv_nsec;
    out->is_file = S_ISREG(st->stx_mode);
    out->is_dir = S_ISDIR(st->stx_mode);
    out->is_symlink = S_ISLNK(st->stx_mode);
}

static int zk__statx(zk__io_handle *h, const char *path, int flags,
                     zk_metadata *out) {
    struct statx st;
    zk__io_op op;
    zk__op_init(&op, ZK__OP_STATX, h);
    op.a.p.path = path;
    op.a.p.flags = flags;
    op.a.p.statx = &st;
    int rc = (int)zk__op_await(&op);
    if (rc == 0)
        zk__metadata_from(&st, out);
    return rc;
}

int zk_file_metadata(zk_file *f, zk_metadata *out) {
    if (f == NULL || out == NULL)
        return -EINVAL;
    return zk__statx(zk__fh(f), "", AT_EMPTY_PATH, out);
}

int zk_fs_metadata(const char *path, bool nofollow, zk_metadata *out) {
    if (path == NULL || out == NULL)
        return -EINVAL;
    return zk__statx(NULL, path, nofollow ? AT_SYMLINK_NOFOLLOW : 0, out);
}

/* ---------------------------------------------------------------------- */
/* Paths                                                                  */
/* ---------------------------------------------------------------------- */

static int zk__path_op(zk__op_code code, const char *path, const char *path2,
                       int flags, unsigned mode) {
    if (path == NULL || (code == ZK__OP_RENAMEAT && path2 == NULL))
        return -EINVAL;
    zk__io_op op;
    zk__op_init(&op, code, NULL);
    op.a.p.path = path;
    op.a.p.path2 = path2;
    op.a.p.flags = flags;
    op.a.p.mode = mode;
    return (int)zk__op_await(&op);
}

int zk_fs_rename(const char *from, const char *to) {
    return zk__path_op(ZK__OP_RENAMEAT, from, to, 0, 0);
}

int zk_fs_remove_file(const char *path) {
    return zk__path_op(ZK__OP_UNLINKAT, path, NULL, 0, 0);
}

int zk_fs_remove_dir(const char *path) {
    return zk__path_op(ZK__OP_UNLINKAT, path, NULL, AT_REMOVEDIR, 0);
}

int zk_fs_create_dir(const char *path, unsigned mode) {
    return zk__path_op(ZK__OP_MKDIRAT, path, NULL, 0, mode);
}

/* ---------------------------------------------------------------------- */
/* Whole files                                                            */
/* ---------------------------------------------------------------------- */

#define ZK__READ_FILE_MAX (1u << 30)

/* zk_fs_read_file() with the largest size it accepts, `max`, as a
 * parameter: tests give a small one to check the bounds without reading a
 * gigabyte. Not static for that reason (tests/test_fs.c). */
int zk__fs_read_file_max(const char *path, void **data, size_t *len,
                         size_t max);

int zk__fs_read_file_max(const char *path, void **data, size_t *len,
                         size_t max) {
    if (path == NULL || data == NULL || len == NULL)
        return -EINVAL;
    *data = NULL;
    *len = 0;
    zk_file *f;
    int rc = zk_file_open(path, O_RDONLY, 0, &f);
    if (rc != 0)
        return rc;
    zk_metadata md;
    rc = zk_file_metadata(f, &md);
    if (rc == 0 && md.is_dir)
        rc = -EISDIR;
    if (rc == 0 && md.size > max)
        rc = -EFBIG;
    /* Room for the data, one byte more and the terminator: the end of the
     * file is only seen by a read that returns 0, and the buffer must
     * still have room for that read when the file has exactly `max` bytes
     * (its one byte, if it comes, says the file grew past `max`). */
    size_t limit = max + 2;
    size_t cap = rc == 0 ? (size_t)md.size + 2 : 0, n = 0;
    if (cap < 4096)
        cap = 4096;
    char *buf = rc == 0 ? malloc(cap) : NULL;
    if (rc == 0 && buf == NULL)
        rc = -ENOMEM;
    /* Read to the end: the size may have changed since statx. Invariant:
     * n <= max, so n + 1 < limit and the buffer can still grow. */
    while (rc == 0) {
        if (n + 1 >= cap) {
            size_t ncap = cap > limit / 2 ? limit : cap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                rc = -ENOMEM;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        int64_t r = zk_file_read_at(f, buf + n, cap - 1 - n, n);
        if (r < 0)
            rc = (int)r;
        else if (r == 0)
            break;
        else if ((n += (size_t)r) > max)
            rc = -EFBIG;
    }
    zk_file_close(f);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

int zk_fs_read_file(const char *path, void **data, size_t *len) {
    return zk__fs_read_file_max(path, data, len, ZK__READ_FILE_MAX);
}

int zk_fs_write_file(const char *path, const void *data, size_t len) {
    if (path == NULL || (data == NULL && len > 0))
        return -EINVAL;
    zk_file *f;
    int rc = zk_file_open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644, &f);
    if (rc != 0)
        return rc;
    rc = zk_file_write_all_at(f, data, len, 0);
    zk_file_close(f);
    return rc;
}
