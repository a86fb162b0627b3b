/* error.c - names and descriptions of every error code zokio returns. */
#define _GNU_SOURCE /* strerrorname_np, strerrordesc_np */
#include <errno.h>
#include <string.h>

#include "zokio/common.h"

typedef struct zk__errinfo {
    int code;
    const char *name;
    const char *text;
} zk__errinfo;

/* The codes the library returns, with what they mean in zokio's terms. */
static const zk__errinfo zk__errors[] = {
    {0, "OK", "success"},
    {EINVAL, "EINVAL", "invalid argument"},
    {ENOMEM, "ENOMEM", "out of memory"},
    {EPERM, "EPERM",
     "operation not permitted here (outside a task or runtime)"},
    {ECANCELED, "ECANCELED", "operation cancelled"},
    {ETIMEDOUT, "ETIMEDOUT", "operation timed out"},
    {ESHUTDOWN, "ESHUTDOWN", "runtime is shutting down"},
    {EALREADY, "EALREADY", "already done (the task had already finished)"},
    {EDEADLK, "EDEADLK", "would deadlock (a task joining itself)"},
    {EBUSY, "EBUSY", "resource busy (runtime already driven, or in use)"},
    {EAGAIN, "EAGAIN", "resource temporarily unavailable"},
    {EOVERFLOW, "EOVERFLOW",
     "overflow (too many permits, or a receiver fell behind)"},
    {ENOTSUP, "ENOTSUP", "not supported"},
    {EBADF, "EBADF", "bad or closed handle"},
    {EPIPE, "EPIPE", "broken pipe (peer closed)"},
    {ECONNRESET, "ECONNRESET", "connection reset by peer"},
    {ECONNREFUSED, "ECONNREFUSED", "connection refused"},
    {EMFILE, "EMFILE", "too many open files"},
    {ENOENT, "ENOENT", "no such file or directory"},
    {ENOSPC, "ENOSPC", "no space left"},
    {ECHILD, "ECHILD",
     "nothing to wait for (no child process, or an empty task group)"},
    /* From the operating system, passed on as they come. */
    {E2BIG, "E2BIG", "argument list too long"},
    {EACCES, "EACCES", "permission denied"},
    {EADDRINUSE, "EADDRINUSE", "address already in use"},
    {EAFNOSUPPORT, "EAFNOSUPPORT", "address family not supported"},
    {ECONNABORTED, "ECONNABORTED", "connection aborted"},
    {EDESTADDRREQ, "EDESTADDRREQ",
     "destination address required (a socket not connected)"},
    {EEXIST, "EEXIST", "file exists"},
    {EFBIG, "EFBIG", "file too large"},
    {EIO, "EIO", "input/output error"},
    {EISDIR, "EISDIR", "is a directory"},
    {EMSGSIZE, "EMSGSIZE", "message too long"},
    {ENAMETOOLONG, "ENAMETOOLONG", "name too long"},
    {ENETUNREACH, "ENETUNREACH", "network unreachable"},
    {ENFILE, "ENFILE", "too many open files in the system"},
    {ENOEXEC, "ENOEXEC", "not an executable"},
    {ENOSYS, "ENOSYS", "function not implemented by the kernel"},
    {ENOTCONN, "ENOTCONN", "socket not connected"},
    {ENOTDIR, "ENOTDIR", "not a directory"},
    {ENOTEMPTY, "ENOTEMPTY", "directory not empty"},
    {ENOTSOCK, "ENOTSOCK", "not a socket"},
    {ENXIO, "ENXIO", "no such device or address"},
    {ESPIPE, "ESPIPE", "not seekable (a pipe, FIFO or socket)"},
    {ESRCH, "ESRCH", "no such process"},
    {EXDEV, "EXDEV", "not on the same file system"},
};

static const zk__errinfo *zk__errinfo_find(int code) {
    if (code < 0)
        code = -code;
    for (size_t i = 0; i < sizeof zk__errors / sizeof zk__errors[0]; i++) {
        if (zk__errors[i].code == code)
            return &zk__errors[i];
    }
    return NULL;
}

/* Any other system error (an errno the operating system passed on that no
 * header lists) is still named where the C library can: glibc's tables are
 * static strings, safe from any thread. */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 32)
#define ZK__LIBC_ERRNAMES 1
#endif

const char *zk_strerror(int code) {
    const zk__errinfo *e = zk__errinfo_find(code);
    if (e)
        return e->text;
#ifdef ZK__LIBC_ERRNAMES
    const char *text = strerrordesc_np(code < 0 ? -code : code);
    if (text)
        return text;
#endif
    return "unknown error";
}

const char *zk_err_name(int code) {
    const zk__errinfo *e = zk__errinfo_find(code);
    if (e)
        return e->name;
#ifdef ZK__LIBC_ERRNAMES
    const char *name = strerrorname_np(code < 0 ? -code : code);
    if (name)
        return name;
#endif
    return "EUNKNOWN";
}

#define ZK__STR2(x) #x
#define ZK__STR(x)  ZK__STR2(x)

const char *zk_version(void) {
    return ZK__STR(ZK_VERSION_MAJOR) "." ZK__STR(ZK_VERSION_MINOR) "." ZK__STR(
        ZK_VERSION_PATCH);
}
