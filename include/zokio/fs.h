/*
 * zokio/fs.h - files and directories.
 *
 * On the io_uring backend these are real io_uring operations (openat,
 * read/write at an offset, fsync, statx, renameat, unlinkat, mkdirat);
 * on epoll, which cannot wait for files, the same system calls run on the
 * runtime's blocking pool. Listing a directory always runs on the pool
 * (io_uring has no getdents). Blocking-style calls suspend only the
 * calling coroutine task; reads and writes also have future forms.
 *
 * Cancelling a call (aborting its task, a cancel scope, dropping a future)
 * cancels the operation in the kernel on io_uring. On the blocking pool a
 * call that has not started never will; one that has is waited for, and
 * that wait blocks the worker thread until the system call returns (its
 * arguments and buffer are the caller's memory): quick for files, but an
 * open of a FIFO waits for its other end. A descriptor such a call opened
 * after all is closed.
 *
 * Errors common to every call (besides those listed with it): -EINVAL for
 * a NULL argument; -EPERM outside a coroutine task of a runtime (outside a
 * worker thread, for futures); -EBADF for a call in flight when another
 * task closed the file (zk_file_close(); one whose system call had
 * already started, on a pool thread or in the kernel, finishes and
 * returns its own result); -ECANCELED when the calling task was aborted
 * while it waited; -ENOMEM; and the error of the underlying system call,
 * negated (-ENOENT, -EACCES, -EISDIR, -ENOSPC...).
 */
#ifndef ZOKIO_FS_H
#define ZOKIO_FS_H

#include <fcntl.h>
#include <stdint.h>

#include "io.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zk_file zk_file;

/*
 * Opens `path` with open(2) flags (O_RDONLY, O_WRONLY or O_RDWR, plus
 * O_CREAT, O_TRUNC, O_APPEND, O_EXCL, O_DIRECTORY...; O_CLOEXEC is always
 * added) and `mode` for a created file. Returns 0 and sets `*out`, or
 * -ENOENT, -EEXIST (O_EXCL), -EACCES...
 *
 * A FIFO opens as with open(2), on both backends: without O_NONBLOCK, an
 * open for reading waits until a writer has opened it, one for writing
 * until a reader has (O_RDWR does not wait); with O_NONBLOCK, one for
 * reading returns at once and one for writing with no reader is -ENXIO.
 * On io_uring such a wait is a request the kernel cancels; on the
 * blocking pool, see above.
 */
ZK_EXTERN int zk_file_open(const char *path, int flags, unsigned mode,
                           zk_file **out);

/* Reads up to `len` bytes at `offset` (the file position is not used or
 * moved). Returns the number read, 0 at or past the end, or an error:
 * -ESPIPE on a file that has no position (a FIFO, a terminal: lseek(2)
 * fails on it), on both backends, before anything is read. */
ZK_EXTERN int64_t zk_file_read_at(zk_file *f, void *buf, size_t len,
                                  uint64_t offset);

/* Writes up to `len` bytes at `offset`. Returns the number written or an
 * error: -ESPIPE on a file that has no position, as for reads. */
ZK_EXTERN int64_t zk_file_write_at(zk_file *f, const void *buf, size_t len,
                                   uint64_t offset);

/* Writes all `len` bytes at `offset`. Returns 0 or the first error
 * (-ESPIPE as for zk_file_write_at()). */
ZK_EXTERN int zk_file_write_all_at(zk_file *f, const void *buf, size_t len,
                                   uint64_t offset);

/* fsync(2), or fdatasync(2) when `data_only`. Returns 0 or an error. */
ZK_EXTERN int zk_file_sync(zk_file *f, bool data_only);

/* What zk_file_metadata() and zk_fs_metadata() report. */
typedef struct zk_metadata {
    uint64_t size; /* bytes */
    uint32_t mode; /* type and permission bits, as st_mode */
    uint32_t nlink;
    uint32_t uid, gid;
    uint64_t ino;
    int64_t mtime_ns; /* last modification, ns since the Unix epoch */
    bool is_file, is_dir, is_symlink;
} zk_metadata;

/* The metadata of an open file. Returns 0 or an error. */
ZK_EXTERN int zk_file_metadata(zk_file *f, zk_metadata *out);

/* Closes the file: other tasks' calls in flight end with -EBADF (one
 * whose system call had already started finishes it and returns its
 * result; a call still queued on the blocking pool never starts); the
 * descriptor is closed when the last one is done. The handle's memory
 * goes with the close: once it returned, no task may start a new call on
 * `f` (or close it again). Returns 0, or -EINVAL for NULL. */
ZK_EXTERN int zk_file_close(zk_file *f);

/* Future forms of read_at / write_at (the same outputs). */
ZK_EXTERN void zk_file_read_at_future_init(zk_io_future *fut, zk_file *f,
                                           void *buf, size_t len,
                                           uint64_t offset);
ZK_EXTERN void zk_file_write_at_future_init(zk_io_future *fut, zk_file *f,
                                            const void *buf, size_t len,
                                            uint64_t offset);

/*
 * Reads a whole file into a buffer allocated with malloc (NUL-terminated
 * for convenience; the terminator is not counted in `*len`). The caller
 * frees `*data`. Returns 0, or -ENOENT, -EISDIR, -EFBIG (the file
 * has more than 1 GiB, 2^30 bytes, or grew past that while it was read:
 * one of exactly 1 GiB is read)...; on error `*data` is NULL.
 */
ZK_EXTERN int zk_fs_read_file(const char *path, void **data, size_t *len);

/* Creates or truncates `path` (mode 0644 before the umask) and writes
 * `len` bytes. Returns 0 or an error. */
ZK_EXTERN int zk_fs_write_file(const char *path, const void *data, size_t len);

/* The metadata of `path` (following symlinks unless `nofollow`). */
ZK_EXTERN int zk_fs_metadata(const char *path, bool nofollow, zk_metadata *out);

/* rename(2). Returns 0 or an error (-ENOENT, -EXDEV...). */
ZK_EXTERN int zk_fs_rename(const char *from, const char *to);

/* Removes a file (not a directory: -EISDIR). Returns 0 or an error. */
ZK_EXTERN int zk_fs_remove_file(const char *path);

/* Removes an empty directory. Returns 0, -ENOTEMPTY, -ENOTDIR... */
ZK_EXTERN int zk_fs_remove_dir(const char *path);

/* Creates a directory with `mode` (before the umask). Returns 0, -EEXIST,
 * -ENOENT (a parent is missing)... */
ZK_EXTERN int zk_fs_create_dir(const char *path, unsigned mode);

/*
 * Lists the names in directory `path` (without "." and ".."), in no
 * particular order, into a malloc'd array of malloc'd strings: free it
 * with zk_fs_names_free(). Returns 0 and sets `*names`, `*count`, or
 * -ENOENT, -ENOTDIR, -EACCES...
 */
ZK_EXTERN int zk_fs_read_dir(const char *path, char ***names, size_t *count);

/* Frees what zk_fs_read_dir() returned. NULL is a no-op. */
ZK_EXTERN void zk_fs_names_free(char **names, size_t count);

#ifdef __cplusplus
}
#endif
#endif
