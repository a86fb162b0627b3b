/*
 * echo_server.c - Zokio's TCP echo server for bench/io_compare.sh: the
 * same load generator (bench/echo_load.c) drives it, Tokio's and Go's.
 *
 *   bench_echo_server PORT      (ZOKIO_IO_BACKEND=io_uring|epoll picks
 *                                the backend; 2 workers, or ECHO_WORKERS;
 *                                64 KiB stacks, or ECHO_STACK_KIB KiB)
 *
 * One coroutine task per connection, reading into a 4 KiB buffer and
 * writing back what it read: the straight-line code a user would write.
 * SIGTERM stops it cleanly (the runtime cancels the connections); with
 * ZOKIO_BENCH_METRICS=1 it then prints every worker's counters.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <zokio.h>

#include "bench.h"

static int64_t serve(void *arg) {
    zk_stream *s = arg;
    char buf[4096];
    int64_t n;
    while ((n = zk_stream_read(s, buf, sizeof buf)) > 0)
        if (zk_stream_write_all(s, buf, (size_t)n) != 0)
            break;
    zk_stream_close(s);
    return 0;
}

/* The connections' stack size: 64 KiB, or ECHO_STACK_KIB for diagnosis
 * (bench/README, "Where 1,000 connections stand"). */
static size_t conn_stack = 64 * 1024;

static int64_t accept_loop(void *arg) {
    zk_listener *l = arg;
    for (;;) {
        zk_stream *s;
        int rc = zk_listener_accept(l, &s, NULL);
        if (rc != 0) {
            if (rc == -EMFILE || rc == -ENFILE || rc == -ECONNABORTED)
                continue;
            if (rc == -ECANCELED)
                return 0; /* stopped by SIGTERM */
            fprintf(stderr, "accept: %s\n", zk_strerror(rc));
            return rc;
        }
        zk_tcp_set_nodelay(s, true);
        zk_spawn_opts opts = {.stack_size = conn_stack, .name = "conn"};
        zk_task *t;
        if (zk_spawn_ex(NULL, &opts, serve, s, &t) != 0) {
            zk_stream_close(s);
            continue;
        }
        zk_task_detach(&t);
    }
}

static int64_t server_main(void *arg) {
    zk_addr addr;
    char text[32];
    snprintf(text, sizeof text, "127.0.0.1:%s", (const char *)arg);
    if (zk_addr_parse(text, &addr) != 0) {
        fprintf(stderr, "bad port\n");
        return 2;
    }
    zk_listener *l;
    int rc = zk_tcp_listen(&addr, 4096, &l);
    if (rc != 0) {
        fprintf(stderr, "listen: %s\n", zk_strerror(rc));
        return 1;
    }
    fprintf(stderr, "zokio echo server on %s (%s)\n", text,
            zk_io_backend_name(zk_runtime_io_backend(zk_runtime_current())));
    zk_signal *term;
    if ((rc = zk_signal_listen(SIGTERM, &term)) != 0) {
        fprintf(stderr, "signal: %s\n", zk_strerror(rc));
        return 1;
    }
    zk_task *acceptor;
    if ((rc = zk_spawn(accept_loop, l, &acceptor)) != 0) {
        fprintf(stderr, "spawn: %s\n", zk_strerror(rc));
        return 1;
    }
    zk_signal_recv(term);
    bench_print_metrics(zk_runtime_current());
    zk_task_abort(acceptor);
    zk_task_join(&acceptor, NULL);
    zk_signal_close(term);
    zk_listener_close(l);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    zk_builder *b = zk_builder_new();
    /* The benchmarks compare 2 workers with Tokio's 2; ECHO_WORKERS is
     * for diagnosis (bench/README, "Two workers against one"). */
    const char *workers = getenv("ECHO_WORKERS");
    zk_builder_set_workers(b, workers ? strtoul(workers, NULL, 10) : 2);
    const char *stack_kib = getenv("ECHO_STACK_KIB");
    if (stack_kib) {
        conn_stack = strtoul(stack_kib, NULL, 10) * 1024;
        if (conn_stack < ZK_STACK_MIN || conn_stack > ZK_STACK_MAX) {
            fprintf(stderr, "ECHO_STACK_KIB: out of [%zu, %zu]\n",
                    ZK_STACK_MIN / 1024, ZK_STACK_MAX / 1024);
            return 2;
        }
    }
    zk_runtime *rt;
    int rc = zk_builder_build(b, &rt);
    zk_builder_free(b);
    if (rc != 0) {
        fprintf(stderr, "runtime: %s\n", zk_strerror(rc));
        return 1;
    }
    int64_t result = 0;
    rc = zk_block_on(rt, server_main, argv[1], &result);
    zk_runtime_free(rt);
    return rc != 0 ? 1 : (int)result;
}
