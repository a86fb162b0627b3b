/*
 * uring_recv_modes.c - a one-thread echo server on plain liburing (no
 * Zokio), to measure what three ways of receiving on io_uring cost the
 * kernel and user space, apart from any runtime:
 *
 *   shared  a multishot receive per connection into one ring of provided
 *           buffers shared by all connections; each message is copied
 *           into the connection's own buffer and sent from there (what
 *           Zokio's read-ahead does, minus incremental consumption);
 *   own     a multishot receive per connection from a ring of provided
 *           buffers of its own, holding just the connection's buffer,
 *           given back after each send: the kernel receives straight into
 *           it, no copy;
 *   single  a single-shot receive (waiting for readiness first) into the
 *           connection's buffer, submitted again after each send;
 *   poll    readiness from io_uring (a multishot poll per connection) and
 *           the receive as a plain recv(2) into the connection's buffer;
 *   epoll   no io_uring at all: readiness from epoll_wait(2) and recv(2),
 *           as Tokio's and Zokio's epoll backend receive, for the baseline.
 *
 * Usage: RECV_MODE=shared|own|single|poll|epoll bench_uring_recv_modes PORT
 * (bash bench/recv_modes.sh runs them in turn under echo_load). Two
 * switches, for the modes that receive through the ring (not poll): with
 * RING_SEND=1 the echo is a send submitted through the ring, so that one
 * system call (the next wait) submits a batch of them, instead of send(2);
 * with RING_DEFER=1 the ring is made SINGLE_ISSUER | DEFER_TASKRUN: the
 * kernel runs the receives' completion work only inside that wait, for the
 * whole batch, instead of at the exit of whichever system call comes next.
 * A third, SEND_DELAY=K (shared mode, with send(2)), holds each echo back
 * until K later messages were received (all are sent before the server
 * waits): how much the distance between a socket's receive and its send
 * costs, as when a runtime queues the woken task behind others.
 * On SIGTERM, in shared mode on x86-64, it prints the average cycles (TSC)
 * of the copy's two halves: reading the provided buffer the kernel filled
 * (into a buffer kept in the cache), and writing the connection's buffer
 * (from that cached one).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#define CYCLES() __rdtsc()
#else
#define CYCLES() 0ull
#endif

#define MAX_CONNS      4096 /* connections; `own` needs a group id each */
#define BUF_SIZE       4096
#define SHARED_BUFFERS 256 /* a power of two */
#define SHARED_GROUP   0

enum recv_mode { MODE_SHARED, MODE_OWN, MODE_SINGLE, MODE_POLL, MODE_EPOLL };

static enum recv_mode mode;
static struct io_uring ring;
static char *conn_bufs; /* MAX_CONNS buffers of BUF_SIZE */
static int conn_fd[MAX_CONNS];
static struct io_uring_buf_ring *own_ring[MAX_CONNS];
static struct io_uring_buf_ring *shared_ring;
static char *shared_mem;

/* The copy's halves in shared mode (see the header). */
static char staging[BUF_SIZE] __attribute__((aligned(64)));
static unsigned long long cycles_read, cycles_write, copies;

static volatile sig_atomic_t stop;

/* RING_SEND and RING_DEFER (see the header). A ring send completes
 * silently unless it fails; a failure's completion carries this bit and
 * closes the connection. */
static bool ring_send, ring_defer;
#define SEND_FAILED_BIT (1ull << 62)

/* SEND_DELAY: the echoes held back, oldest first (connection, length). */
#define HELD_MAX 8192u /* a power of two, above any SEND_DELAY used */
static unsigned send_delay;
static struct {
    int c;
    size_t n;
} held[HELD_MAX];
static unsigned held_head, held_tail;

static void on_term(int sig) {
    (void)sig;
    stop = 1;
}

static void die(const char *what, int err) {
    fprintf(stderr, "uring_recv_modes: %s: %s\n", what, strerror(err));
    exit(1);
}

static char *conn_buf(int c) {
    return conn_bufs + (size_t)c * BUF_SIZE;
}

/* Echoes n bytes of connection c's buffer; a short send ends it (with one
 * message in flight per connection, as echo_load sends, it does not
 * happen, and the load generator would report the reset). */
static bool echo_send(int c, size_t n) {
    if (send(conn_fd[c], conn_buf(c), n, MSG_NOSIGNAL) == (ssize_t)n)
        return true;
    close(conn_fd[c]);
    conn_fd[c] = -1; /* what is still armed on it ends with an error */
    return false;
}

/* Sends held echoes, oldest first, until at most `keep` are held. */
static void held_send(unsigned keep) {
    while (held_tail - held_head > keep) {
        unsigned i = held_head++ & (HELD_MAX - 1);
        echo_send(held[i].c, held[i].n);
    }
}

static struct io_uring_sqe *sqe_get(void) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    if (sqe == NULL) {
        io_uring_submit(&ring);
        sqe = io_uring_get_sqe(&ring);
    }
    return sqe;
}

/* Registers a ring of `entries` provided buffers as group `group`. */
static struct io_uring_buf_ring *buf_ring_make(unsigned entries, int group) {
    size_t bytes = (entries * sizeof(struct io_uring_buf) + 4095) & ~4095ul;
    struct io_uring_buf_ring *br = aligned_alloc(4096, bytes);
    if (br == NULL)
        die("buffer ring", ENOMEM);
    memset(br, 0, bytes);
    io_uring_buf_ring_init(br);
    struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)br,
                                   .ring_entries = entries,
                                   .bgid = (uint16_t)group};
    int rc = io_uring_register_buf_ring(&ring, &reg, 0);
    if (rc != 0)
        die("io_uring_register_buf_ring", -rc);
    return br;
}

static void own_give_back(int c) {
    io_uring_buf_ring_add(own_ring[c], conn_buf(c), BUF_SIZE, 0, 0, 0);
    io_uring_buf_ring_advance(own_ring[c], 1);
}

static void shared_give_back(unsigned bid) {
    io_uring_buf_ring_add(shared_ring, shared_mem + (size_t)bid * BUF_SIZE,
                          BUF_SIZE, (uint16_t)bid,
                          io_uring_buf_ring_mask(SHARED_BUFFERS), 0);
    io_uring_buf_ring_advance(shared_ring, 1);
}

/* Starts connection c's receive (user data c + 1; 0 is the accept). */
static void recv_arm(int c) {
    struct io_uring_sqe *sqe = sqe_get();
    if (mode == MODE_POLL) {
        io_uring_prep_poll_multishot(sqe, conn_fd[c], POLLIN);
    } else if (mode == MODE_SINGLE) {
        io_uring_prep_recv(sqe, conn_fd[c], conn_buf(c), BUF_SIZE, 0);
        sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    } else {
        io_uring_prep_recv_multishot(sqe, conn_fd[c], NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = mode == MODE_OWN ? (uint16_t)(c + 1) : SHARED_GROUP;
    }
    io_uring_sqe_set_data64(sqe, (uint64_t)c + 1);
}

static void accepted(int *nconns, int fd) {
    if (*nconns == MAX_CONNS) {
        close(fd);
        return;
    }
    int c = (*nconns)++, one = 1;
    conn_fd[c] = fd;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (mode == MODE_OWN) {
        own_ring[c] = buf_ring_make(1, c + 1);
        own_give_back(c);
    }
    recv_arm(c);
}

/* Connection c is readable: receives what came with recv(2) and echoes
 * it; false when the connection ended (closed). As in received(), a short
 * send ends it too: with one message in flight, it does not happen. */
static bool echo_ready(int c) {
    char *buf = conn_buf(c);
    ssize_t n = recv(conn_fd[c], buf, BUF_SIZE, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return true;
    if (n <= 0 || send(conn_fd[c], buf, (size_t)n, MSG_NOSIGNAL) != n) {
        close(conn_fd[c]);
        return false;
    }
    return true;
}

/* The epoll mode's whole server: level-triggered readiness of every
 * connection and of the listener in one epoll instance. */
static void epoll_serve(int l) {
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) != 0)
        die("epoll", errno);
    int nconns = 0;
    struct epoll_event evs[1024];
    while (!stop) {
        int n = epoll_wait(ep, evs, 1024, -1);
        if (n < 0 && errno != EINTR)
            die("epoll_wait", errno);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == 0) {
                int fd = accept4(l, NULL, NULL, SOCK_NONBLOCK);
                if (fd < 0)
                    continue;
                if (nconns == MAX_CONNS) {
                    close(fd);
                    continue;
                }
                int c = nconns++, one = 1;
                conn_fd[c] = fd;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                ev.data.u64 = (uint64_t)c + 1;
                if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
                    die("epoll_ctl", errno);
            } else {
                echo_ready((int)evs[i].data.u64 - 1);
            }
        }
    }
}

/* A receive's completion on connection c: echo what came. */
static void received(int c, const struct io_uring_cqe *cqe) {
    if (cqe->res == -ENOBUFS) { /* no buffer when data came: again */
        recv_arm(c);
        return;
    }
    if (cqe->res <= 0) { /* the peer left */
        close(conn_fd[c]);
        return;
    }
    char *buf = conn_buf(c);
    if (mode == MODE_POLL) {
        if (!echo_ready(c))
            return;
        if (!(cqe->flags & IORING_CQE_F_MORE))
            recv_arm(c);
        return;
    }
    size_t n = (size_t)cqe->res;
    if (mode == MODE_SHARED) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        unsigned long long t0 = CYCLES();
        memcpy(staging, shared_mem + (size_t)bid * BUF_SIZE, n);
        unsigned long long t1 = CYCLES();
        memcpy(buf, staging, n);
        unsigned long long t2 = CYCLES();
        cycles_read += t1 - t0;
        cycles_write += t2 - t1;
        copies++;
        shared_give_back(bid);
    }
    if (ring_send) {
        /* Sent before the receive armed below (entries go in order). */
        struct io_uring_sqe *sqe = sqe_get();
        io_uring_prep_send(sqe, conn_fd[c], buf, n, MSG_NOSIGNAL);
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
        io_uring_sqe_set_data64(sqe, SEND_FAILED_BIT | ((uint64_t)c + 1));
    } else if (send_delay > 0 && mode == MODE_SHARED) {
        unsigned i = held_tail++ & (HELD_MAX - 1);
        held[i].c = c;
        held[i].n = n;
        held_send(send_delay);
    } else if (!echo_send(c, n)) {
        return;
    }
    if (mode == MODE_OWN)
        own_give_back(c);
    if (mode == MODE_SINGLE || !(cqe->flags & IORING_CQE_F_MORE))
        recv_arm(c);
}

int main(int argc, char **argv) {
    const char *m = getenv("RECV_MODE");
    if (argc != 2 || m == NULL ||
        (strcmp(m, "shared") && strcmp(m, "own") && strcmp(m, "single") &&
         strcmp(m, "poll") && strcmp(m, "epoll"))) {
        fprintf(stderr,
                "usage: RECV_MODE=shared|own|single|poll|epoll %s PORT\n",
                argv[0]);
        return 2;
    }
    mode = !strcmp(m, "own")      ? MODE_OWN
           : !strcmp(m, "single") ? MODE_SINGLE
           : !strcmp(m, "poll")   ? MODE_POLL
           : !strcmp(m, "epoll")  ? MODE_EPOLL
                                  : MODE_SHARED;
    signal(SIGTERM, on_term);
    signal(SIGPIPE, SIG_IGN);
    ring_send = getenv("RING_SEND") && atoi(getenv("RING_SEND"));
    ring_defer = getenv("RING_DEFER") && atoi(getenv("RING_DEFER"));
    send_delay =
        getenv("SEND_DELAY") ? (unsigned)atoi(getenv("SEND_DELAY")) : 0;
    if (send_delay >= HELD_MAX)
        die("SEND_DELAY", EINVAL);
    unsigned flags =
        ring_defer ? IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN
                   : IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    int rc = mode == MODE_EPOLL ? 0 /* no ring */
                                : io_uring_queue_init(4096, &ring, flags);
    if (rc != 0)
        die("io_uring_queue_init", -rc);
    conn_bufs = aligned_alloc(4096, (size_t)MAX_CONNS * BUF_SIZE);
    if (conn_bufs == NULL)
        die("buffers", ENOMEM);
    if (mode == MODE_SHARED) {
        shared_ring = buf_ring_make(SHARED_BUFFERS, SHARED_GROUP);
        shared_mem = aligned_alloc(4096, (size_t)SHARED_BUFFERS * BUF_SIZE);
        if (shared_mem == NULL)
            die("buffers", ENOMEM);
        for (unsigned i = 0; i < SHARED_BUFFERS; i++)
            shared_give_back(i);
    }

    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)atoi(argv[1])),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(l, 4096) != 0)
        die("listen", errno);
    if (mode == MODE_EPOLL) {
        epoll_serve(l);
        return 0;
    }
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_multishot_accept(sqe, l, NULL, NULL, 0);
    io_uring_sqe_set_data64(sqe, 0);

    int nconns = 0;
    while (!stop) {
        if (io_uring_cq_ready(&ring) == 0)
            held_send(0); /* nothing else to do: no echo waits longer */
        rc = io_uring_submit_and_wait(&ring, 1);
        if (rc < 0 && rc != -EINTR)
            die("io_uring_submit_and_wait", -rc);
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            seen++;
            if (cqe->user_data == 0) {
                if (cqe->res >= 0)
                    accepted(&nconns, cqe->res);
                if (!(cqe->flags & IORING_CQE_F_MORE))
                    die("multishot accept ended",
                        cqe->res < 0 ? -cqe->res : EIO);
            } else if (cqe->user_data & SEND_FAILED_BIT) {
                close(conn_fd[(cqe->user_data & ~SEND_FAILED_BIT) - 1]);
            } else {
                received((int)cqe->user_data - 1, cqe);
            }
        }
        io_uring_cq_advance(&ring, seen);
    }
    if (copies > 0 && CYCLES() != 0)
        fprintf(stderr,
                "copies %llu: reading the provided buffer %.0f cycles, "
                "writing the connection's %.0f cycles (averages)\n",
                copies, (double)cycles_read / (double)copies,
                (double)cycles_write / (double)copies);
    return 0;
}
