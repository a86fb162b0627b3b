/*
 * io_helpers.h - for the I/O tests: every I/O test file runs once per
 * backend (ctest sets ZOKIO_IO_BACKEND), and every test proves it leaked
 * no file descriptor.
 */
#ifndef ZK_TEST_IO_HELPERS_H
#define ZK_TEST_IO_HELPERS_H

#include <dirent.h>
#include <sys/resource.h>

#include "helpers.h"

/* Open descriptors of the process. */
static inline int zk_test_fd_count(void) {
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory itself */
}

/* The backend this run was asked to test. */
static inline zk_io_backend zk_test_backend(void) {
    const char *env = getenv("ZOKIO_IO_BACKEND");
    if (env && strcmp(env, "epoll") == 0)
        return ZK_IO_EPOLL;
    if (env && strcmp(env, "io_uring") == 0)
        return ZK_IO_IO_URING;
    return ZK_IO_AUTO;
}

/* An I/O test: the runtime-level test body runs between two descriptor
 * counts that must agree. */
#define ZK_IO_TEST(suite, name)                                                \
    static void suite##_##name##_io(void);                                     \
    ZK_TEST(suite, name) {                                                     \
        int fds_before = zk_test_fd_count();                                   \
        suite##_##name##_io();                                                 \
        cr_assert_eq(zk_test_fd_count(), fds_before,                           \
                     "file descriptors leaked");                               \
    }                                                                          \
    static void suite##_##name##_io(void)

/* Raises the soft descriptor limit to at least `n` (within the hard one). */
static inline void zk_test_raise_nofile(rlim_t n) {
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < n) {
        rl.rlim_cur = n < rl.rlim_max ? n : rl.rlim_max;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
}

/* A loopback listener on a free port; its address goes to `addr`. */
static inline zk_listener *zk_test_listen(zk_addr *addr) {
    zk_addr any;
    cr_assert_eq(zk_addr_parse("127.0.0.1:0", &any), 0);
    zk_listener *l = NULL;
    int rc = zk_tcp_listen(&any, 0, &l);
    cr_assert_eq(rc, 0, "listen: %s", zk_strerror(rc));
    cr_assert_eq(zk_listener_local_addr(l, addr), 0);
    return l;
}

#endif
