/*
 * echo_server.c - Zokio's TCP echo server for bench/io_compare.sh: the
 * same load generator (bench/echo_load.c) drives it, Tokio's and Go's.
 *
 *   bench_echo_server PORT      (ZOKIO_IO_BACKEND=io_uring|epoll picks
 *                                the backend; 2 workers, or ECHO_WORKERS;
 *                                64 KiB stacks, or ECHO_STACK_KIB KiB;
 *                                ECHO_TASKS=future: future tasks instead
 *                                of coroutines, for diagnosis)
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
#include <string.h>
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

/*
 * The same loop as a future task, for diagnosis (ECHO_TASKS=future): a
 * state machine polled on the worker's own stack, its state and buffer in
 * the task's block, as a Tokio task's are. What it measures against the
 * coroutine is the price of resuming a stack (bench/README, "Where 1,000
 * connections stand"); the benchmarks compare the coroutine, the code a
 * user would write.
 */
typedef struct conn_future {
    zk_future base;
    zk_stream *s;
    bool io_live; /* `io` was initialised and not yet dropped */
    bool writing; /* echoing buf[done, len) back; else reading */
    int64_t len;  /* bytes read into buf */
    int64_t done; /* bytes of them written back */
    zk_io_future io;
    char buf[4096];
} conn_future;

static zk_poll conn_poll(zk_future *self, zk_context *cx, int64_t *out) {
    conn_future *c = (conn_future *)self;
    for (;;) {
        if (!c->io_live) {
            if (c->writing)
                zk_stream_write_future_init(&c->io, c->s, c->buf + c->done,
                                            (size_t)(c->len - c->done));
            else
                zk_stream_read_future_init(&c->io, c->s, c->buf, sizeof c->buf);
            c->io_live = true;
        }
        int64_t r;
        if (zk_future_poll(&c->io.base, cx, &r) == ZK_PENDING)
            return ZK_PENDING;
        zk_future_drop(&c->io.base);
        c->io_live = false;
        if (r <= 0) { /* the peer closed, or an error */
            *out = 0;
            return ZK_READY;
        }
        if (c->writing) {
            c->done += r;
            c->writing = c->done < c->len;
        } else {
            c->len = r;
            c->done = 0;
            c->writing = true;
        }
    }
}

static void conn_drop(zk_future *self) {
    conn_future *c = (conn_future *)self;
    if (c->io_live)
        zk_future_drop(&c->io.base);
    zk_stream_close(c->s);
}

static const zk_future_ops conn_ops = {conn_poll, conn_drop};

/* The connections' stack size: 64 KiB, or ECHO_STACK_KIB for diagnosis
 * (bench/README, "Where 1,000 connections stand"). */
static size_t conn_stack = 64 * 1024;
static bool conn_as_future; /* ECHO_TASKS=future */

/* Spawns the task serving `s`, which it then owns. */
static int spawn_conn(zk_stream *s, zk_task **t) {
    if (conn_as_future) {
        conn_future c = {.base = {&conn_ops}, .s = s};
        return zk_spawn_future(NULL, &c.base, sizeof c, t);
    }
    zk_spawn_opts opts = {.stack_size = conn_stack, .name = "conn"};
    return zk_spawn_ex(NULL, &opts, serve, s, t);
}

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
        zk_task *t;
        if (spawn_conn(s, &t) != 0) {
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
    const char *tasks = getenv("ECHO_TASKS");
    if (tasks != NULL && strcmp(tasks, "future") != 0 &&
        strcmp(tasks, "coroutine") != 0) {
        fprintf(stderr, "ECHO_TASKS: coroutine or future\n");
        return 2;
    }
    conn_as_future = tasks != NULL && strcmp(tasks, "future") == 0;
    const char *stack_kib = getenv("ECHO_STACK_KIB");
    if (stack_kib) {
        conn_stack = strtoul(stack_kib, NULL, 10) * 1024;
        if (conn_stack < ZK_STACK_MIN || conn_stack > ZK_STACK_MAX) {
            fprintf(stderr, "ECHO_STACK_KIB: out of [%zu, %zu]\n",
                    ZK_STACK_MIN / 1024, ZK_STACK_MAX / 1024);
            return 2;
        }
    }
    zk_builder *b = zk_builder_new();
    /* The benchmarks compare 2 workers with Tokio's 2; ECHO_WORKERS is
     * for diagnosis (bench/README, "Two workers against one"). */
    const char *workers = getenv("ECHO_WORKERS");
    zk_builder_set_workers(b, workers ? strtoul(workers, NULL, 10) : 2);
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
