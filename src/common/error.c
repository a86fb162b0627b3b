/* error.c - names and descriptions of every error code zokio returns. */
#include <errno.h>

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

const char *zk_strerror(int code) {
    const zk__errinfo *e = zk__errinfo_find(code);
    return e ? e->text : "unknown error";
}

const char *zk_err_name(int code) {
    const zk__errinfo *e = zk__errinfo_find(code);
    return e ? e->name : "EUNKNOWN";
}

#define ZK__STR2(x) #x
#define ZK__STR(x)  ZK__STR2(x)

const char *zk_version(void) {
    return ZK__STR(ZK_VERSION_MAJOR) "." ZK__STR(ZK_VERSION_MINOR) "." ZK__STR(
        ZK_VERSION_PATCH);
}
