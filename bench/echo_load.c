/* echo_load.c - the load generator for the echo benchmarks, the same for
 * every server (Zokio, Tokio, Go). Plain C: pthreads, epoll, nonblocking
 * sockets; nothing of Zokio is used, so it measures every server alike.
 *
 *   echo_load HOST:PORT CONNS MSG_SIZE SECONDS [THREADS [NAME]]
 *
 * Opens CONNS connections (TCP_NODELAY), spreads them over THREADS threads
 * (default 1), each with its own epoll instance. Every connection
 * ping-pongs: it sends one message of MSG_SIZE bytes, waits for the whole
 * echo, compares every byte with what it sent, and sends the next. The
 * bytes differ per connection and per message (a window into a
 * per-connection random block, shifted every message), so an echo that
 * mixes up connections or messages is caught.
 *
 * Phases: ramp-up (connect all, then one verified round trip on every
 * connection, so every connection is known to be accepted and served),
 * warm-up (1 s), then SECONDS of measurement. Only round trips completed
 * during the measurement count; ramp-up and warm-up are not timed.
 *
 * Prints, NAME coming from the argument or else the env ECHO_SERVER:
 *   RESULT echo_<size>_<conns> NAME <msgs_per_sec> msgs/s
 *   RESULT echo_<size>_<conns>_p50 NAME <us> us
 *   RESULT echo_<size>_<conns>_p99 NAME <us> us
 * Latency is per round trip (send of the first byte to arrival of the last
 * byte of the echo), from a log-linear histogram (3 % resolution).
 * With the env ECHO_SERVER_PID set, the server's CPU time (user + system,
 * all threads, from /proc/PID/stat) over the measurement is also printed,
 * and its user-space part alone (the server's own code; the rest is the
 * kernel's TCP, polling and wake-up work done for it):
 *   RESULT echo_<size>_<conns>_cpu NAME <us> us/msg
 *   RESULT echo_<size>_<conns>_user NAME <us> us/msg
 * and how often its threads went to sleep (voluntary context switches, all
 * threads, from /proc/PID/task/TID/status), per round trip:
 *   RESULT echo_<size>_<conns>_sleeps NAME <n> /msg
 * The load generator's own CPU time over the measurement is always printed:
 * one thread of it takes about a core, so its cost per round trip (which
 * includes, in its sends, waking server threads that went to sleep) bounds
 * the throughput as much as the server's does:
 *   RESULT echo_<size>_<conns>_client NAME <us> us/msg
 *
 * Any mismatched byte, short echo, extra byte, reset or close by the server
 * is a hard error: it is reported and the exit status is 1. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WARMUP_NS     1000000000ull
#define RAMP_LIMIT_NS 60000000000ull
#define PATTERN_SLACK 256 /* the window moves within this many bytes */

/* --- clock and histogram ------------------------------------------------ */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Log-linear buckets: values below 64 ns exactly, then 32 sub-buckets per
 * power of two (about 3 % wide). */
#define HIST_SUB     32
#define HIST_BUCKETS (64 + 58 * HIST_SUB)

static int hist_index(uint64_t v) {
    if (v < 64)
        return (int)v;
    int e = 63 - __builtin_clzll(v); /* >= 6 */
    int sub = (int)((v >> (e - 5)) & (HIST_SUB - 1));
    return 64 + (e - 6) * HIST_SUB + sub;
}

/* The upper bound of a bucket: a percentile is never under-reported. */
static uint64_t hist_value(int i) {
    if (i < 64)
        return (uint64_t)i;
    int e = (i - 64) / HIST_SUB + 6;
    uint64_t sub = (uint64_t)((i - 64) % HIST_SUB);
    return ((HIST_SUB + sub + 1) << (e - 5)) - 1;
}

/* --- connections and workers -------------------------------------------- */

typedef struct conn {
    int fd;
    int id;
    unsigned char *pattern;   /* MSG_SIZE + PATTERN_SLACK random bytes */
    unsigned char *rbuf;      /* MSG_SIZE + 1: room to notice an extra byte */
    const unsigned char *msg; /* the message in flight, inside pattern */
    size_t sent, rcvd;
    uint64_t seq;      /* messages started on this connection */
    uint64_t t_start;  /* when the message in flight was first sent */
    int want_out;      /* EPOLLOUT registered: a send was partial */
    int ramped;        /* completed its ramp-up round trip */
    uint64_t measured; /* round trips completed while measuring */
} conn;

enum { PHASE_RAMP, PHASE_WARM, PHASE_MEASURE, PHASE_STOP };

static _Atomic int phase = PHASE_RAMP;
static atomic_int ramped_conns;
static atomic_int failed_conns; /* any thread's connection errors so far */
static size_t msg_size;

typedef struct worker {
    pthread_t thread;
    int epfd;
    conn **conns;
    int nconns;
    /* results, read by main after join */
    uint64_t msgs;
    uint64_t mismatched_msgs, mismatched_bytes;
    uint64_t errors;
    uint64_t hist[HIST_BUCKETS];
} __attribute__((aligned(64))) worker;

static void conn_error(worker *w, conn *c, const char *what, int err) {
    if (w->errors < 10)
        fprintf(stderr, "echo_load: connection %d: %s%s%s\n", c->id, what,
                err ? ": " : "", err ? strerror(err) : "");
    w->errors++;
    atomic_fetch_add(&failed_conns, 1);
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
}

static void set_events(worker *w, conn *c, int want_out) {
    if (c->want_out == want_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0),
                             .data.ptr = c};
    epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want_out;
}

/* Sends what is left of the message in flight. Returns -1 on error. */
static int conn_flush(worker *w, conn *c) {
    while (c->sent < msg_size) {
        ssize_t n =
            send(c->fd, c->msg + c->sent, msg_size - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_events(w, c, 1);
                return 0;
            }
            conn_error(w, c, "send", errno);
            return -1;
        }
        c->sent += (size_t)n;
    }
    set_events(w, c, 0);
    return 0;
}

static int conn_start(worker *w, conn *c) {
    /* A window shifted by a step coprime with the slack: consecutive
     * messages of one connection differ, and connections differ. */
    size_t off = (size_t)((c->seq * 97) % PATTERN_SLACK);
    c->msg = c->pattern + off;
    c->seq++;
    c->sent = 0;
    c->rcvd = 0;
    c->t_start = now_ns();
    return conn_flush(w, c);
}

/* The whole echo arrived: verify it, account for it, send the next. */
static void conn_complete(worker *w, conn *c) {
    uint64_t t = now_ns();
    if (memcmp(c->rbuf, c->msg, msg_size) != 0) {
        uint64_t bad = 0;
        for (size_t i = 0; i < msg_size; i++)
            bad += c->rbuf[i] != c->msg[i];
        if (w->mismatched_msgs < 10)
            fprintf(stderr,
                    "echo_load: connection %d: message %llu: %llu of %zu "
                    "bytes differ from what was sent\n",
                    c->id, (unsigned long long)c->seq, (unsigned long long)bad,
                    msg_size);
        w->mismatched_msgs++;
        w->mismatched_bytes += bad;
    }
    int p = atomic_load_explicit(&phase, memory_order_relaxed);
    if (p == PHASE_MEASURE) {
        w->msgs++;
        c->measured++;
        w->hist[hist_index(t - c->t_start)]++;
    } else if (p == PHASE_RAMP && !c->ramped) {
        c->ramped = 1;
        atomic_fetch_add(&ramped_conns, 1);
    }
    conn_start(w, c);
}

static void conn_readable(worker *w, conn *c) {
    for (;;) {
        ssize_t n = recv(c->fd, c->rbuf + c->rcvd, msg_size + 1 - c->rcvd, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_error(w, c, "recv", errno);
            return;
        }
        if (n == 0) {
            conn_error(w, c, "closed by the server", 0);
            return;
        }
        c->rcvd += (size_t)n;
        if (c->rcvd > c->sent) {
            conn_error(w, c, "the server sent bytes that were never sent", 0);
            return;
        }
        if (c->rcvd == msg_size) {
            /* The next message is on its way: its echo cannot be here
             * yet, so wait for epoll rather than try a read now. */
            conn_complete(w, c);
            return;
        }
    }
}

static void *worker_main(void *arg) {
    worker *w = arg;
    struct epoll_event evs[256];
    for (int i = 0; i < w->nconns; i++)
        conn_start(w, w->conns[i]);
    while (atomic_load_explicit(&phase, memory_order_relaxed) != PHASE_STOP) {
        int n = epoll_wait(w->epfd, evs, 256, 50);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("echo_load: epoll_wait");
            w->errors++;
            break;
        }
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (c->fd < 0)
                continue;
            if ((evs[i].events & EPOLLOUT) && conn_flush(w, c) < 0)
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                conn_readable(w, c);
        }
    }
    return NULL;
}

/* --- setup -------------------------------------------------------------- */

static void die(const char *what) {
    perror(what);
    exit(2);
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void raise_nofile(long need) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        die("getrlimit");
    if (rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur >= need)
        return;
    if (rl.rlim_max == RLIM_INFINITY || (long)rl.rlim_max >= need)
        rl.rlim_cur = rl.rlim_max;
    else
        rl.rlim_cur = rl.rlim_max = (rlim_t)need; /* root may raise it */
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        fprintf(stderr, "echo_load: cannot raise RLIMIT_NOFILE to %ld: %s\n",
                need, strerror(errno));
        exit(2);
    }
}

static int connect_one(const struct addrinfo *ai) {
    int fd =
        socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        die("echo_load: socket");
    /* Blocking connect: the ramp-up is not timed, and a full accept
     * queue only slows it down instead of failing it. */
    while (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINTR)
            die("echo_load: connect");
    }
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
        die("echo_load: TCP_NODELAY");
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        die("echo_load: O_NONBLOCK");
    return fd;
}

/* CPU time (user + system, all threads) of process pid in ns, or -1; its
 * user-space part in *user_ns when user_ns is not NULL. */
static double proc_cpu_ns(long pid, double *user_ns) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces: fields are counted after its ')'. */
    char *p = strrchr(buf, ')');
    unsigned long long utime, stime;
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &utime, &stime) != 2)
        return -1;
    double tick_ns = 1e9 / (double)sysconf(_SC_CLK_TCK);
    if (user_ns)
        *user_ns = (double)utime * tick_ns;
    return (double)(utime + stime) * tick_ns;
}

/* Voluntary context switches (a thread blocking: going to sleep) summed
 * over the threads of process pid, or -1. Threads that ended meanwhile are
 * not counted: the servers here keep theirs for their whole life. */
static double proc_sleeps(long pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    double sum = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char file[384], line[128];
        snprintf(file, sizeof file, "%s/%s/status", path, e->d_name);
        FILE *f = fopen(file, "r");
        if (!f)
            continue;
        unsigned long long v;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1)
                sum += (double)v;
        fclose(f);
    }
    closedir(d);
    return sum;
}

static void sleep_ns(uint64_t ns) {
    struct timespec ts = {(time_t)(ns / 1000000000ull),
                          (long)(ns % 1000000000ull)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static long parse_long(const char *s, const char *what, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) {
        fprintf(stderr, "echo_load: bad %s '%s' (%ld..%ld)\n", what, s, lo, hi);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv) {
    if (argc < 5 || argc > 7) {
        fprintf(stderr, "usage: echo_load HOST:PORT CONNS MSG_SIZE SECONDS "
                        "[THREADS [NAME]]\n"
                        "NAME defaults to the env ECHO_SERVER.\n");
        return 2;
    }
    char host[256];
    const char *colon = strrchr(argv[1], ':');
    if (!colon || colon == argv[1] ||
        (size_t)(colon - argv[1]) >= sizeof host) {
        fprintf(stderr, "echo_load: address must be HOST:PORT\n");
        return 2;
    }
    memcpy(host, argv[1], (size_t)(colon - argv[1]));
    host[colon - argv[1]] = '\0';
    const char *port = colon + 1;
    int nconns = (int)parse_long(argv[2], "CONNS", 1, 1000000);
    msg_size = (size_t)parse_long(argv[3], "MSG_SIZE", 1, 64 << 20);
    long seconds = parse_long(argv[4], "SECONDS", 1, 86400);
    int nthreads = argc > 5 ? (int)parse_long(argv[5], "THREADS", 1, 1024) : 1;
    if (nthreads > nconns)
        nthreads = nconns;
    const char *name = argc > 6 ? argv[6] : getenv("ECHO_SERVER");
    if (!name || !*name)
        name = "unnamed";
    const char *pid_env = getenv("ECHO_SERVER_PID");
    long server_pid =
        pid_env && *pid_env
            ? parse_long(pid_env, "ECHO_SERVER_PID", 1, 0x7fffffff)
            : 0;

    raise_nofile(nconns + 64L);

    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai) {
        fprintf(stderr, "echo_load: %s: %s\n", argv[1], gai_strerror(gai));
        return 2;
    }

    /* Ramp-up, part 1: connect everything before any thread starts. */
    conn *conns = calloc((size_t)nconns, sizeof *conns);
    worker *workers = aligned_alloc(64, sizeof *workers * (size_t)nthreads);
    if (!conns || !workers)
        die("echo_load: malloc");
    memset(workers, 0, sizeof *workers * (size_t)nthreads);
    uint64_t seed = 0x5eed;
    for (int i = 0; i < nconns; i++) {
        conn *c = &conns[i];
        c->id = i;
        c->pattern = malloc(msg_size + PATTERN_SLACK);
        c->rbuf = malloc(msg_size + 1);
        if (!c->pattern || !c->rbuf)
            die("echo_load: malloc");
        for (size_t j = 0; j < msg_size + PATTERN_SLACK; j += 8) {
            uint64_t r = splitmix64(&seed);
            size_t k = msg_size + PATTERN_SLACK - j;
            memcpy(c->pattern + j, &r, k < 8 ? k : 8);
        }
        c->fd = connect_one(ai);
    }
    freeaddrinfo(ai);

    for (int t = 0; t < nthreads; t++) {
        worker *w = &workers[t];
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (w->epfd < 0)
            die("echo_load: epoll_create1");
        w->conns = malloc(sizeof *w->conns * ((size_t)nconns / nthreads + 1));
        if (!w->conns)
            die("echo_load: malloc");
    }
    for (int i = 0; i < nconns; i++) {
        worker *w = &workers[i % nthreads];
        conn *c = &conns[i];
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            die("echo_load: epoll_ctl");
        w->conns[w->nconns++] = c;
    }

    /* Ramp-up, part 2: one verified round trip on every connection. */
    for (int t = 0; t < nthreads; t++)
        if (pthread_create(&workers[t].thread, NULL, worker_main, &workers[t]))
            die("echo_load: pthread_create");
    uint64_t t_ramp = now_ns();
    int ramp_failed = 0;
    while (atomic_load(&ramped_conns) < nconns) {
        if (atomic_load(&failed_conns) || now_ns() - t_ramp > RAMP_LIMIT_NS) {
            fprintf(stderr,
                    "echo_load: ramp-up failed: %d of %d connections served\n",
                    atomic_load(&ramped_conns), nconns);
            ramp_failed = 1;
            break;
        }
        sleep_ns(10000000); /* the main thread only watches */
    }

    uint64_t t0 = 0, t1 = 0;
    double cpu0 = -1, cpu1 = -1, user0 = 0, user1 = 0, own0 = -1, own1 = -1,
           sl0 = -1, sl1 = -1;
    if (!ramp_failed) {
        atomic_store(&phase, PHASE_WARM);
        sleep_ns(WARMUP_NS);
        if (server_pid) {
            cpu0 = proc_cpu_ns(server_pid, &user0);
            sl0 = proc_sleeps(server_pid);
        }
        own0 = proc_cpu_ns((long)getpid(), NULL);
        t0 = now_ns();
        atomic_store(&phase, PHASE_MEASURE);
        sleep_ns((uint64_t)seconds * 1000000000ull);
        t1 = now_ns();
        own1 = proc_cpu_ns((long)getpid(), NULL);
        if (server_pid) {
            cpu1 = proc_cpu_ns(server_pid, &user1);
            sl1 = proc_sleeps(server_pid);
        }
    }
    atomic_store(&phase, PHASE_STOP);
    for (int t = 0; t < nthreads; t++)
        pthread_join(workers[t].thread, NULL);

    uint64_t msgs = 0, bad_msgs = 0, bad_bytes = 0, errors = 0;
    static uint64_t hist[HIST_BUCKETS];
    for (int t = 0; t < nthreads; t++) {
        worker *w = &workers[t];
        msgs += w->msgs;
        bad_msgs += w->mismatched_msgs;
        bad_bytes += w->mismatched_bytes;
        errors += w->errors;
        for (int i = 0; i < HIST_BUCKETS; i++)
            hist[i] += w->hist[i];
    }
    int idle = 0;
    uint64_t min_per_conn = UINT64_MAX;
    for (int i = 0; i < nconns; i++) {
        idle += conns[i].measured == 0;
        if (conns[i].measured < min_per_conn)
            min_per_conn = conns[i].measured;
        if (conns[i].fd >= 0)
            close(conns[i].fd);
    }

    char wl[64];
    snprintf(wl, sizeof wl, "echo_%zu_%d", msg_size, nconns);
    if (bad_msgs || errors || ramp_failed || msgs == 0) {
        fprintf(stderr,
                "echo_load: FAILED %s %s: %llu mismatched messages (%llu "
                "bytes), %llu connection errors%s\n",
                wl, name, (unsigned long long)bad_msgs,
                (unsigned long long)bad_bytes, (unsigned long long)errors,
                ramp_failed ? ", ramp-up failed" : "");
        printf("ERROR %s %s\n", wl, name);
        return 1;
    }

    double secs = (double)(t1 - t0) / 1e9;
    uint64_t p50 = 0, p99 = 0, seen = 0;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += hist[i];
        if (!p50 && seen * 100 >= msgs * 50)
            p50 = hist_value(i);
        if (!p99 && seen * 100 >= msgs * 99)
            p99 = hist_value(i);
    }
    printf("RESULT %s %s %.0f msgs/s\n", wl, name, (double)msgs / secs);
    printf("RESULT %s_p50 %s %.1f us\n", wl, name, (double)p50 / 1e3);
    printf("RESULT %s_p99 %s %.1f us\n", wl, name, (double)p99 / 1e3);
    if (server_pid && cpu0 >= 0 && cpu1 >= 0) {
        printf("RESULT %s_cpu %s %.2f us/msg\n", wl, name,
               (cpu1 - cpu0) / 1e3 / (double)msgs);
        printf("RESULT %s_user %s %.2f us/msg\n", wl, name,
               (user1 - user0) / 1e3 / (double)msgs);
    } else if (server_pid)
        fprintf(stderr, "echo_load: cannot read /proc/%ld/stat\n", server_pid);
    if (server_pid && sl0 >= 0 && sl1 >= 0)
        printf("RESULT %s_sleeps %s %.4f /msg\n", wl, name,
               (sl1 - sl0) / (double)msgs);
    if (own0 >= 0 && own1 >= 0)
        printf("RESULT %s_client %s %.2f us/msg\n", wl, name,
               (own1 - own0) / 1e3 / (double)msgs);
    fprintf(stderr,
            "echo_load: %s %s: %llu round trips in %.2f s, all verified; "
            "%d threads; least served connection: %llu round trips%s\n",
            wl, name, (unsigned long long)msgs, secs, nthreads,
            (unsigned long long)min_per_conn,
            idle ? " (some connections were never served while measuring)"
                 : "");
    return 0;
}
