/*
 * test_fs.c - files and directories, on both backends (io_uring file
 * operations; the blocking pool on epoll) and both runtime kinds.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "io_helpers.h"

ZK_SUITE(fs);

typedef struct fsdir {
    char path[64];
} fsdir;

static void fsdir_make(fsdir *d) {
    snprintf(d->path, sizeof d->path, "/tmp/zokio-fs-XXXXXX");
    cr_assert_not_null(mkdtemp(d->path));
}

static void join_path(char *out, size_t size, const fsdir *d,
                      const char *name) {
    snprintf(out, size, "%s/%s", d->path, name);
}

static int64_t whole_file_root(void *arg) {
    fsdir *d = arg;
    char a[128], b[128];
    join_path(a, sizeof a, d, "a.txt");
    join_path(b, sizeof b, d, "b.txt");
    const char text[] = "zokio writes files";
    cr_assert_eq(zk_fs_write_file(a, text, sizeof text - 1), 0);
    void *data;
    size_t len;
    cr_assert_eq(zk_fs_read_file(a, &data, &len), 0);
    cr_assert_eq(len, sizeof text - 1);
    cr_assert_str_eq(data, text);
    free(data);

    zk_metadata md;
    cr_assert_eq(zk_fs_metadata(a, false, &md), 0);
    cr_assert_eq(md.size, sizeof text - 1);
    cr_assert(md.is_file && !md.is_dir);
    cr_assert_gt(md.mtime_ns, 0);

    cr_assert_eq(zk_fs_rename(a, b), 0);
    cr_assert_eq(zk_fs_read_file(a, &data, &len), -ENOENT);
    cr_assert_null(data);
    cr_assert_eq(zk_fs_metadata(a, false, &md), -ENOENT);
    cr_assert_eq(zk_fs_remove_file(b), 0);
    cr_assert_eq(zk_fs_remove_file(b), -ENOENT);
    cr_assert_eq(zk_fs_rename(a, b), -ENOENT);

    /* An empty file and a larger one (several reads). */
    cr_assert_eq(zk_fs_write_file(a, "", 0), 0);
    cr_assert_eq(zk_fs_read_file(a, &data, &len), 0);
    cr_assert_eq(len, 0);
    free(data);
    size_t big = 300 * 1000;
    char *buf = malloc(big);
    for (size_t i = 0; i < big; i++)
        buf[i] = (char)(i * 31 + 7);
    cr_assert_eq(zk_fs_write_file(a, buf, big), 0);
    cr_assert_eq(zk_fs_read_file(a, &data, &len), 0);
    cr_assert_eq(len, big);
    cr_assert_eq(memcmp(data, buf, big), 0);
    free(data);
    free(buf);
    cr_assert_eq(zk_fs_remove_file(a), 0);
    return 0;
}

ZK_IO_TEST(fs, whole_files_metadata_rename_remove) {
    fsdir d;
    fsdir_make(&d);
    zk_test_run(whole_file_root, &d);
    cr_assert_eq(rmdir(d.path), 0);
}

static int64_t offsets_root(void *arg) {
    fsdir *d = arg;
    char p[128];
    join_path(p, sizeof p, d, "f");
    zk_file *f;
    cr_assert_eq(zk_file_open(p, O_RDWR | O_CREAT | O_EXCL, 0600, &f), 0);
    zk_file *f2;
    cr_assert_eq(zk_file_open(p, O_RDWR | O_CREAT | O_EXCL, 0600, &f2),
                 -EEXIST);
    cr_assert_eq(zk_file_write_all_at(f, "world", 5, 6), 0);
    cr_assert_eq(zk_file_write_at(f, "hello ", 6, 0), 6);
    char buf[16] = {0};
    cr_assert_eq(zk_file_read_at(f, buf, sizeof buf, 0), 11);
    cr_assert_str_eq(buf, "hello world");
    cr_assert_eq(zk_file_read_at(f, buf, 4, 6), 4);
    cr_assert_eq(memcmp(buf, "worl", 4), 0);
    cr_assert_eq(zk_file_read_at(f, buf, 4, 100), 0); /* past the end */
    cr_assert_eq(zk_file_sync(f, false), 0);
    cr_assert_eq(zk_file_sync(f, true), 0);
    zk_metadata md;
    cr_assert_eq(zk_file_metadata(f, &md), 0);
    cr_assert_eq(md.size, 11);
    cr_assert_eq(md.mode & 0777, 0600);

    /* Future form with a deadline that does not expire. */
    zk_io_future fut;
    zk_file_read_at_future_init(&fut, f, buf, 5, 0);
    cr_assert_eq(zk_await_timeout(&fut.base, ZK_SEC(10)), 5);

    cr_assert_eq(zk_file_close(f), 0);
    /* A read-only file refuses writes. */
    cr_assert_eq(zk_file_open(p, O_RDONLY, 0, &f), 0);
    cr_assert_eq(zk_file_write_at(f, "x", 1, 0), -EBADF);
    cr_assert_eq(zk_file_close(f), 0);
    cr_assert_eq(zk_fs_remove_file(p), 0);
    return 0;
}

ZK_IO_TEST(fs, read_write_at_offsets_sync) {
    fsdir d;
    fsdir_make(&d);
    zk_test_run(offsets_root, &d);
    cr_assert_eq(rmdir(d.path), 0);
}

static int64_t dirs_root(void *arg) {
    fsdir *d = arg;
    char sub[128], p[160];
    join_path(sub, sizeof sub, d, "sub");
    cr_assert_eq(zk_fs_create_dir(sub, 0755), 0);
    cr_assert_eq(zk_fs_create_dir(sub, 0755), -EEXIST);
    char deep[200];
    snprintf(deep, sizeof deep, "%s/x/y", sub);
    cr_assert_eq(zk_fs_create_dir(deep, 0755), -ENOENT);
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/file%d", sub, i);
        cr_assert_eq(zk_fs_write_file(p, "x", 1), 0);
    }
    char **names;
    size_t n;
    cr_assert_eq(zk_fs_read_dir(sub, &names, &n), 0);
    cr_assert_eq(n, 5);
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        int k;
        cr_assert_eq(sscanf(names[i], "file%d", &k), 1);
        seen |= 1 << k;
    }
    cr_assert_eq(seen, 31);
    zk_fs_names_free(names, n);
    zk_metadata md;
    cr_assert_eq(zk_fs_metadata(sub, false, &md), 0);
    cr_assert(md.is_dir);
    void *data;
    size_t len;
    cr_assert_eq(zk_fs_read_file(sub, &data, &len), -EISDIR);
    cr_assert_eq(zk_fs_remove_dir(sub), -ENOTEMPTY);
    cr_assert_eq(zk_fs_remove_file(sub), -EISDIR);
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/file%d", sub, i);
        cr_assert_eq(zk_fs_remove_file(p), 0);
    }
    cr_assert_eq(zk_fs_read_dir(sub, &names, &n), 0);
    cr_assert_eq(n, 0);
    zk_fs_names_free(names, n);
    cr_assert_eq(zk_fs_remove_dir(sub), 0);
    cr_assert_eq(zk_fs_read_dir(sub, &names, &n), -ENOENT);
    cr_assert_null(names);
    cr_assert_eq(zk_fs_read_dir("/etc/hostname", &names, &n), -ENOTDIR);
    return 0;
}

ZK_IO_TEST(fs, directories) {
    fsdir d;
    fsdir_make(&d);
    zk_test_run(dirs_root, &d);
    cr_assert_eq(rmdir(d.path), 0);
}

typedef struct reader {
    zk_file *f;
    int id;
    atomic_int *bad;
} reader;

#define BLOCKS 256

static int64_t random_reads(void *arg) {
    reader *r = arg;
    uint32_t x = 12345u + (uint32_t)r->id;
    char buf[4096];
    for (int i = 0; i < 64; i++) {
        x = x * 1664525u + 1013904223u;
        uint32_t blk = (x >> 8) % BLOCKS;
        if (zk_file_read_at(r->f, buf, sizeof buf, (uint64_t)blk * 4096) !=
                4096 ||
            buf[0] != (char)blk || buf[4095] != (char)blk)
            atomic_fetch_add(r->bad, 1);
    }
    return 0;
}

static int64_t random_root(void *arg) {
    fsdir *d = arg;
    char p[128];
    join_path(p, sizeof p, d, "blocks");
    zk_file *f;
    cr_assert_eq(zk_file_open(p, O_RDWR | O_CREAT | O_TRUNC, 0600, &f), 0);
    char blk[4096];
    for (int b = 0; b < BLOCKS; b++) {
        memset(blk, b, sizeof blk);
        cr_assert_eq(
            zk_file_write_all_at(f, blk, sizeof blk, (uint64_t)b * 4096), 0);
    }
    atomic_int bad = 0;
    reader rs[32];
    zk_task *h[32];
    for (int i = 0; i < 32; i++) {
        rs[i] = (reader){f, i, &bad};
        cr_assert_eq(zk_spawn(random_reads, &rs[i], &h[i]), 0);
    }
    zk_test_join_all(h, 32);
    cr_assert_eq(atomic_load(&bad), 0);
    zk_file_close(f);
    zk_fs_remove_file(p);
    return 0;
}

ZK_IO_TEST(fs, concurrent_random_block_reads) {
    fsdir d;
    fsdir_make(&d);
    zk_test_run(random_root, &d);
    cr_assert_eq(rmdir(d.path), 0);
}

static int64_t bad_root(void *arg) {
    (void)arg;
    zk_file *f;
    void *data;
    size_t len;
    char **names;
    size_t n;
    zk_metadata md;
    char buf[4];
    cr_assert_eq(zk_file_open(NULL, O_RDONLY, 0, &f), -EINVAL);
    cr_assert_eq(zk_file_open("/tmp", O_RDONLY, 0, NULL), -EINVAL);
    cr_assert_eq(zk_file_open("/nonexistent/zokio", O_RDONLY, 0, &f), -ENOENT);
    cr_assert_eq(zk_fs_read_file("/nonexistent/zokio", &data, &len), -ENOENT);
    cr_assert_eq(zk_fs_read_file(NULL, &data, &len), -EINVAL);
    cr_assert_eq(zk_fs_write_file("/nonexistent/dir/x", "x", 1), -ENOENT);
    cr_assert_eq(zk_fs_write_file(NULL, "x", 1), -EINVAL);
    cr_assert_eq(zk_file_read_at(NULL, buf, 4, 0), -EINVAL);
    cr_assert_eq(zk_file_write_at(NULL, buf, 4, 0), -EINVAL);
    cr_assert_eq(zk_file_sync(NULL, false), -EINVAL);
    cr_assert_eq(zk_file_metadata(NULL, &md), -EINVAL);
    cr_assert_eq(zk_fs_metadata(NULL, false, &md), -EINVAL);
    cr_assert_eq(zk_fs_rename(NULL, "x"), -EINVAL);
    cr_assert_eq(zk_fs_read_dir(NULL, &names, &n), -EINVAL);
    cr_assert_eq(zk_file_close(NULL), -EINVAL);
    zk_fs_names_free(NULL, 0);
    return 0;
}

ZK_IO_TEST(fs, bad_arguments_and_missing_files) {
    zk_test_run(bad_root, NULL);
}

/*
 * A write queued while the file is closed: on epoll it waits on the
 * blocking pool (its one thread kept busy), and the close comes first, so
 * the write must not start: -EBADF, the file unchanged. On io_uring the
 * kernel has likely done the write by the close, which then stands (fs.h:
 * a call already started returns its own result).
 */
typedef struct queued_write {
    zk_file *f;
    int pipefd[2];
    atomic_int blocker_started;
    atomic_int submitted;
} queued_write;

/* Keeps the pool's only thread busy until the root writes to the pipe. */
static int64_t pool_blocker(void *arg) {
    queued_write *q = arg;
    atomic_store(&q->blocker_started, 1);
    char c;
    return read(q->pipefd[0], &c, 1);
}

static int64_t queued_writer(void *arg) {
    queued_write *q = arg;
    zk_io_future fut;
    zk_file_write_at_future_init(&fut, q->f, "NEW", 3, 0);
    return zk_test_await_after_flag(&fut.base, &q->submitted);
}

static int64_t close_queued_write_root(void *arg) {
    fsdir *d = arg;
    queued_write q;
    memset(&q, 0, sizeof q);
    char path[128];
    join_path(path, sizeof path, d, "queued");
    cr_assert_eq(zk_fs_write_file(path, "OLD", 3), 0);
    cr_assert_eq(zk_file_open(path, O_RDWR, 0, &q.f), 0);
    cr_assert_eq(pipe(q.pipefd), 0);
    zk_task *b, *w;
    cr_assert_eq(zk_spawn_blocking(NULL, pool_blocker, &q, &b), 0);
    zk_test_wait_flag(&q.blocker_started);
    cr_assert_eq(zk_spawn(queued_writer, &q, &w), 0);
    zk_test_wait_flag(&q.submitted); /* the write is in flight */
    cr_assert_eq(zk_file_close(q.f), 0);
    cr_assert_eq(write(q.pipefd[1], "x", 1), 1); /* frees the pool thread */
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&w, &r), 0);
    cr_assert_eq(zk_task_join(&b, NULL), 0);
    close(q.pipefd[0]);
    close(q.pipefd[1]);
    void *data;
    size_t len;
    cr_assert_eq(zk_fs_read_file(path, &data, &len), 0);
    cr_assert_eq(len, 3);
    if (zk_test_backend() == ZK_IO_EPOLL || r == -EBADF) {
        cr_assert_eq(r, -EBADF);
        cr_assert_eq(memcmp(data, "OLD", 3), 0);
    } else {
        cr_assert_eq(r, 3);
        cr_assert_eq(memcmp(data, "NEW", 3), 0);
    }
    free(data);
    cr_assert_eq(zk_fs_remove_file(path), 0);
    return 0;
}

ZK_IO_TEST(fs, a_call_queued_when_its_file_closes_never_starts) {
    fsdir d;
    fsdir_make(&d);
    zk_builder *bld = zk_test_builder();
    zk_builder_set_blocking_threads(bld, 1);
    zk_runtime *rt = NULL;
    cr_assert_eq(zk_builder_build(bld, &rt), 0);
    zk_builder_free(bld);
    zk_test_run_on(rt, close_queued_write_root, &d);
    rmdir(d.path);
}

ZK_IO_TEST(fs, outside_a_task) {
    zk_file *f;
    cr_assert_eq(zk_file_open("/etc/hostname", O_RDONLY, 0, &f), -EPERM);
    char **names;
    size_t n;
    cr_assert_eq(zk_fs_read_dir("/tmp", &names, &n), -EPERM);
}

#if !ZK_TEST_MT && !defined(ZK_TEST_EMULATED)
/*
 * An open that blocks (of a FIFO that has no writer yet), its task aborted
 * while the call runs: the task ends with -ECANCELED and the descriptor the
 * call made after all is closed, not leaked (ZK_IO_TEST counts them).
 * io_uring cancels the open in the kernel. Epoll runs it on the blocking
 * pool and its drop waits for the call, blocking the worker; a thread
 * outside the runtime then opens the writing end, which ends the call.
 *
 * Which thread is in which system call is read from /proc/self/task/N/
 * syscall, so this runs on the current-thread runtime (the worker is the
 * thread that called zk_block_on) and not under qemu-user (whose /proc
 * shows the host's system calls).
 */
typedef struct fifo_open {
    char path[128];
    pid_t worker;
    atomic_bool dropping; /* the root is about to abort the opener */
    atomic_bool stop;     /* the root is done: the writer thread exits */
} fifo_open;

/* The system call thread `tid` of this process is in, or -1 (running). */
static long thread_syscall(pid_t tid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long nr = -1;
    if (fscanf(f, "%ld", &nr) != 1)
        nr = -1;
    fclose(f);
    return nr;
}

/* True when a thread of this process other than `except` is in system
 * call `nr`. */
static bool some_thread_in(long nr, pid_t except) {
    DIR *d = opendir("/proc/self/task");
    cr_assert_not_null(d);
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        pid_t tid = (pid_t)atoi(e->d_name);
        found = tid > 0 && tid != except && thread_syscall(tid) == nr;
    }
    closedir(d);
    return found;
}

/* Once the worker blocks in the drop (a futex wait, on epoll), opens the
 * FIFO's writing end without blocking: that ends the reader's open. */
static void *fifo_writer(void *arg) {
    fifo_open *c = arg;
    while (!atomic_load(&c->stop)) {
        if (atomic_load(&c->dropping) &&
            thread_syscall(c->worker) == SYS_futex) {
            int fd = open(c->path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
            if (fd >= 0) {
                close(fd);
                return NULL;
            }
        }
        zk_test_real_sleep(ZK_MS(1));
    }
    return NULL;
}

static int64_t fifo_opener(void *arg) {
    fifo_open *c = arg;
    zk_file *f = NULL;
    int rc = zk_file_open(c->path, O_RDONLY, 0, &f);
    if (rc == 0)
        zk_file_close(f); /* the abort came too late: not this test's aim */
    return rc;
}

static int64_t fifo_abort_root(void *arg) {
    fifo_open *c = arg;
    c->worker = (pid_t)syscall(SYS_gettid);
    pthread_t writer;
    cr_assert_eq(pthread_create(&writer, NULL, fifo_writer, c), 0);
    zk_task *h;
    cr_assert_eq(zk_spawn(fifo_opener, c, &h), 0);
    if (zk_test_backend() == ZK_IO_EPOLL) {
        /* The call has started on a pool thread before the abort. */
        zk_instant give_up = zk_now() + ZK_TEST_GUARD;
        while (!some_thread_in(SYS_openat, c->worker)) {
            cr_assert_lt(zk_now(), give_up, "the open never started");
            zk_sleep(ZK_MS(1));
        }
    } else {
        zk_yield(); /* the opener's open is handed to the kernel */
    }
    atomic_store(&c->dropping, true);
    cr_assert_eq(zk_task_abort(h), 0);
    int64_t r;
    cr_assert_eq(zk_task_join(&h, &r), -ECANCELED);
    cr_assert_eq(r, -ECANCELED);
    atomic_store(&c->stop, true);
    cr_assert_eq(pthread_join(writer, NULL), 0);
    return 0;
}

ZK_IO_TEST(fs, open_aborted_while_the_call_runs_leaks_no_descriptor) {
    fsdir d;
    fsdir_make(&d);
    fifo_open c = {.worker = 0};
    join_path(c.path, sizeof c.path, &d, "fifo");
    cr_assert_eq(mkfifo(c.path, 0600), 0);
    zk_test_run(fifo_abort_root, &c);
    cr_assert_eq(unlink(c.path), 0);
    cr_assert_eq(rmdir(d.path), 0);
}
#endif

/* ---------------------------------------------------------------------- */
/* FIFOs and files without a position                                     */
/* ---------------------------------------------------------------------- */

/* Waiting opens are seen through /proc/.../wchan, which emulation does not
 * show: not under qemu. */
#if !defined(ZK_TEST_EMULATED)
/* True when a thread of this process other than the caller sleeps in
 * kernel function `fn` (its wchan): an open(2) of a FIFO waiting for its
 * other end is in wait_for_partner, whether it runs on a pool thread
 * (epoll) or in one of io_uring's kernel workers (iou-wrk, a thread of
 * this process too). */
static bool some_thread_sleeps_in(const char *fn) {
    DIR *d = opendir("/proc/self/task");
    cr_assert_not_null(d);
    pid_t self = (pid_t)syscall(SYS_gettid);
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        pid_t tid = (pid_t)atoi(e->d_name);
        if (tid <= 0 || tid == self)
            continue;
        char path[64], wchan[64] = "";
        snprintf(path, sizeof path, "/proc/self/task/%d/wchan", (int)tid);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        if (fgets(wchan, sizeof wchan, f) == NULL)
            wchan[0] = '\0';
        fclose(f);
        found = strcmp(wchan, fn) == 0;
    }
    closedir(d);
    return found;
}

typedef struct fifo_pair {
    char path[128];
    int opener_flags;    /* the task's zk_file_open */
    int other_flags;     /* the thread's open(2) of the other end */
    atomic_bool other;   /* the thread is about to open the other end */
    atomic_bool gave_up; /* no open ever waited: it opened it anyway */
    atomic_bool stop;    /* the opener is done: close it and exit */
    bool opened_after;   /* the opener's open returned after `other` */
    /* Not 0: the other end also waits until this thread is gone, or
     * stuck in its exit (see thread_gone_or_stuck_exiting). */
    _Atomic pid_t after_tid;
} fifo_pair;

/* Whether thread `tid` of this process is gone, or stuck in its exit
 * waiting for its io_uring worker threads: the kernel's cancellation at
 * a thread's exit may miss an open its worker has just begun, and the
 * exit then waits for that open to end. */
static bool thread_gone_or_stuck_exiting(pid_t tid) {
    char path[64], wchan[64] = "";
    snprintf(path, sizeof path, "/proc/self/task/%d/wchan", (int)tid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return true;
    if (fgets(wchan, sizeof wchan, f) == NULL)
        wchan[0] = '\0';
    fclose(f);
    return strcmp(wchan, "io_wq_put_and_exit") == 0;
}

/* Whether the other end may open: an open waits for it, and the thread
 * named by `after_tid`, if any, is gone or stuck exiting. */
static bool other_end_may_open(fifo_pair *c) {
    pid_t after = atomic_load(&c->after_tid);
    return some_thread_sleeps_in("wait_for_partner") &&
           (after == 0 || thread_gone_or_stuck_exiting(after));
}

/* Once an open waits for the FIFO's other end, opens that end without
 * blocking (which ends the wait) and keeps it open until told to stop:
 * a writer that opened and stays silent, or a reader that reads nothing.
 * Opens it after the guard in any case, so a broken open that never
 * waits fails the test instead of hanging it. */
static void *fifo_other_end(void *arg) {
    fifo_pair *c = arg;
    int64_t give_up = zk_test_wall_ns() + ZK_TEST_GUARD;
    while (!atomic_load(&c->stop) && !other_end_may_open(c))
        if (zk_test_wall_ns() > give_up) {
            atomic_store(&c->gave_up, true);
            break;
        } else {
            zk_test_real_sleep(ZK_MS(1));
        }
    atomic_store(&c->other, true);
    int fd = open(c->path, c->other_flags | O_NONBLOCK | O_CLOEXEC);
    while (!atomic_load(&c->stop))
        zk_test_real_sleep(ZK_MS(1));
    if (fd >= 0)
        close(fd);
    return NULL;
}

static int64_t fifo_pair_opener(void *arg) {
    fifo_pair *c = arg;
    zk_file *f = NULL;
    int rc = zk_file_open(c->path, c->opener_flags, 0, &f);
    c->opened_after = atomic_load(&c->other);
    if (rc == 0)
        zk_file_close(f);
    return rc;
}

static int64_t fifo_pair_root(void *arg) {
    fifo_pair *c = arg;
    pthread_t other;
    cr_assert_eq(pthread_create(&other, NULL, fifo_other_end, c), 0);
    zk_task *h;
    cr_assert_eq(zk_spawn(fifo_pair_opener, c, &h), 0);
    int64_t rc;
    cr_assert_eq(zk_task_join(&h, &rc), 0);
    atomic_store(&c->stop, true);
    cr_assert_eq(pthread_join(other, NULL), 0);
    cr_assert_eq(rc, 0, "open: %s", zk_strerror((int)rc));
    cr_assert(!atomic_load(&c->gave_up), "the open never waited");
    cr_assert(c->opened_after, "the open returned before the other end");
    return 0;
}

static void fifo_pair_run(int opener_flags, int other_flags) {
    fsdir d;
    fsdir_make(&d);
    fifo_pair c = {.opener_flags = opener_flags, .other_flags = other_flags};
    join_path(c.path, sizeof c.path, &d, "fifo");
    cr_assert_eq(mkfifo(c.path, 0600), 0);
    zk_test_run(fifo_pair_root, &c);
    cr_assert_eq(unlink(c.path), 0);
    cr_assert_eq(rmdir(d.path), 0);
}

/* As open(2) does, on both backends: the ring's open, which does not
 * block, found no reader (ENXIO) and did not wait for one. */
ZK_IO_TEST(fs, a_fifo_opened_for_writing_waits_for_a_reader) {
    fifo_pair_run(O_WRONLY, O_RDONLY);
}

/* The ring's open of a FIFO for reading returned at once, without a
 * writer; the writer here opens and stays silent, so only an open that
 * waits for it (not a wait for data) sees it. */
ZK_IO_TEST(fs, a_fifo_opened_for_reading_waits_for_a_writer) {
    fifo_pair_run(O_RDONLY, O_WRONLY);
}

#if !ZK_TEST_MT
/*
 * An open waiting for a FIFO's writer, left pending when the first
 * driving thread's zk_block_on() returned and that thread exited, goes on
 * at the next zk_block_on() on another thread (runtime.h). On io_uring the
 * kernel ends the exited thread's requests (-ECANCELED, or -ERESTARTSYS
 * for the open it interrupts), which the open must not report: the open
 * was made again and sees the writer that comes after that thread is
 * gone. (Should the kernel's cancellation miss the open, the thread's
 * exit waits for it: the writer then comes to the open as it is, which
 * returns its descriptor.)
 */
typedef struct open_handover {
    zk_runtime *rt;
    fifo_pair c;
    atomic_int driven; /* the first driver's zk_block_on() returned */
    zk_task *opener;
} open_handover;

static int64_t open_handover_root1(void *arg) {
    open_handover *h = arg;
    cr_assert_eq(zk_spawn(fifo_pair_opener, &h->c, &h->opener), 0);
    zk_yield(); /* the opener's open is made */
    /* The root sleeps, so the worker parks, and parking submits the
     * open from this thread (not a wait for timing: any length makes
     * the park). */
    zk_sleep(ZK_MS(1));
    return 0;
}

static void *open_handover_first_driver(void *arg) {
    open_handover *h = arg;
    atomic_store(&h->c.after_tid, (pid_t)syscall(SYS_gettid));
    cr_assert_eq(zk_block_on(h->rt, open_handover_root1, h, NULL), 0);
    atomic_store(&h->driven, 1);
    return NULL; /* and the thread exits */
}

static int64_t open_handover_root2(void *arg) {
    open_handover *h = arg;
    pthread_t other;
    cr_assert_eq(pthread_create(&other, NULL, fifo_other_end, &h->c), 0);
    int64_t rc;
    cr_assert_eq(zk_task_join(&h->opener, &rc), 0);
    atomic_store(&h->c.stop, true);
    cr_assert_eq(pthread_join(other, NULL), 0);
    cr_assert_eq(rc, 0, "open: %lld (%s)", (long long)rc, zk_strerror((int)rc));
    cr_assert(!atomic_load(&h->c.gave_up), "the open never waited");
    return 0;
}

ZK_IO_TEST(fs, an_open_outlives_the_thread_that_submitted_it) {
    fsdir d;
    fsdir_make(&d);
    open_handover h;
    memset(&h, 0, sizeof h);
    h.c.opener_flags = O_RDONLY;
    h.c.other_flags = O_WRONLY;
    join_path(h.c.path, sizeof h.c.path, &d, "fifo");
    cr_assert_eq(mkfifo(h.c.path, 0600), 0);
    h.rt = zk_test_runtime();
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, open_handover_first_driver, &h), 0);
    /* Not joined yet: its exit may wait for the open (see above). */
    while (!atomic_load(&h.driven))
        zk_test_real_sleep(ZK_MS(1));
    cr_assert_eq(zk_block_on(h.rt, open_handover_root2, &h, NULL), 0);
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(zk_runtime_free(h.rt), 0);
    cr_assert_eq(unlink(h.c.path), 0);
    cr_assert_eq(rmdir(d.path), 0);
}
#endif
#endif

/* Internal (src/io/uring.c), absent from builds without io_uring. */
void zk__uring_end_unasked(int n) __attribute__((weak));

/* A request the kernel ends unasked (-ECANCELED, though no task was
 * cancelled) is made again, a few times: then the call fails with -EAGAIN
 * instead of waiting forever (io_uring cancels the work it cannot start
 * a worker thread for, as long as RLIMIT_NPROC or pids.max stays
 * reached). The runtime goes on working. */
static int64_t unasked_root(void *arg) {
    const char *path = arg;
    bool uring = zk_runtime_io_backend(zk_runtime_current()) == ZK_IO_IO_URING;
    zk_metadata m;
    if (uring && zk__uring_end_unasked != NULL)
        zk__uring_end_unasked(1);
    cr_assert_eq(zk_fs_metadata(path, false, &m), 0, "made again once");
    if (uring && zk__uring_end_unasked != NULL) {
        zk__uring_end_unasked(1000);
        cr_assert_eq(zk_fs_metadata(path, false, &m), -EAGAIN);
        zk__uring_end_unasked(0);
    }
    cr_assert_eq(zk_fs_metadata(path, false, &m), 0);
    cr_assert_eq(m.size, 0);
    return 0;
}

ZK_IO_TEST(fs, a_request_the_kernel_keeps_ending_unasked_fails_with_eagain) {
    fsdir d;
    fsdir_make(&d);
    char path[128];
    join_path(path, sizeof path, &d, "empty");
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0);
    close(fd);
    zk_test_run(unasked_root, path);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(rmdir(d.path), 0);
}

static int64_t fifo_nonblock_root(void *arg) {
    const char *path = arg;
    zk_file *r, *w;
    /* With O_NONBLOCK nothing waits: a writer without a reader is refused
     * as by open(2); a reader opens at once. */
    cr_assert_eq(zk_file_open(path, O_WRONLY | O_NONBLOCK, 0, &w), -ENXIO);
    cr_assert_eq(zk_file_open(path, O_RDONLY | O_NONBLOCK, 0, &r), 0);
    cr_assert_eq(zk_file_open(path, O_WRONLY | O_NONBLOCK, 0, &w), 0);

    /* No position: reads and writes at an offset are refused, and the
     * write put nothing into the FIFO. */
    char buf[8];
    cr_assert_eq(zk_file_write_at(w, "x", 1, 0), -ESPIPE);
    cr_assert_eq(zk_file_write_all_at(w, "xy", 2, 0), -ESPIPE);
    cr_assert_eq(zk_file_read_at(r, buf, sizeof buf, 0), -ESPIPE);
    zk_io_future fut;
    zk_file_read_at_future_init(&fut, r, buf, sizeof buf, 0);
    cr_assert_eq(zk_await_timeout(&fut.base, ZK_TEST_GUARD), -ESPIPE);
    zk_file_write_at_future_init(&fut, w, "x", 1, 0);
    cr_assert_eq(zk_await_timeout(&fut.base, ZK_TEST_GUARD), -ESPIPE);
    int raw = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    cr_assert_geq(raw, 0);
    cr_assert_eq(read(raw, buf, sizeof buf), -1);
    cr_assert_eq(errno, EAGAIN);
    close(raw);

    /* A whole-file read cannot read at offsets either. */
    void *data;
    size_t len;
    cr_assert_eq(zk_fs_read_file(path, &data, &len), -ESPIPE);
    cr_assert_null(data);
    cr_assert_eq(zk_file_close(w), 0);
    cr_assert_eq(zk_file_close(r), 0);
    return 0;
}

ZK_IO_TEST(fs, a_fifo_has_no_offsets_and_nonblock_opens_do_not_wait) {
    fsdir d;
    fsdir_make(&d);
    char path[128];
    join_path(path, sizeof path, &d, "fifo");
    cr_assert_eq(mkfifo(path, 0600), 0);
    zk_test_run(fifo_nonblock_root, path);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(rmdir(d.path), 0);
}

/* ---------------------------------------------------------------------- */
/* The size limit of whole-file reads                                     */
/* ---------------------------------------------------------------------- */

/* Internal (src/fs/file.c): zk_fs_read_file() with its limit (1 GiB
 * there) as a parameter. Weak, so that a library without it fails the
 * test that uses it instead of the whole file's link. */
int zk__fs_read_file_max(const char *path, void **data, size_t *len, size_t max)
    __attribute__((weak));

typedef struct sized {
    char path[128];
    size_t size, max;
    int rc; /* expected */
} sized;

static void make_sized(const char *path, size_t size) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, (off_t)size), 0); /* sparse: no blocks */
    cr_assert_eq(pwrite(fd, "z", 1, (off_t)size - 1), 1);
    close(fd);
}

static int64_t sized_root(void *arg) {
    sized *s = arg;
    void *data = (void *)1;
    size_t len = 1;
    int rc = s->max ? zk__fs_read_file_max(s->path, &data, &len, s->max)
                    : zk_fs_read_file(s->path, &data, &len);
    cr_assert_eq(rc, s->rc, "read: %s", zk_strerror(rc));
    if (rc == 0) {
        cr_assert_eq(len, s->size);
        if (len > 1)
            cr_assert_eq(((char *)data)[0], '\0');
        cr_assert_eq(((char *)data)[len - 1], 'z');
        cr_assert_eq(((char *)data)[len], '\0');
        free(data);
    } else {
        cr_assert_null(data);
        cr_assert_eq(len, 0);
    }
    return 0;
}

static void read_sized(size_t size, size_t max, int rc) {
    fsdir d;
    fsdir_make(&d);
    sized s = {.size = size, .max = max, .rc = rc};
    join_path(s.path, sizeof s.path, &d, "sized");
    make_sized(s.path, size);
    zk_test_run(sized_root, &s);
    cr_assert_eq(unlink(s.path), 0);
    cr_assert_eq(rmdir(d.path), 0);
}

/* Through the public function: a file of exactly 1 GiB is read (a sparse
 * one), not refused because its buffer was full before the end of the
 * file was seen. It reads a gigabyte into a gigabyte of memory: not under
 * ThreadSanitizer (three times that in shadow memory) or emulation, where
 * read_file_limit_is_inclusive alone checks the bound. */
#if !defined(ZK_TEST_TSAN) && !defined(ZK_TEST_EMULATED)
ZK_IO_TEST(fs, read_file_reads_a_file_of_exactly_1_gib) {
    read_sized((size_t)1 << 30, 0, 0);
}
#endif

ZK_IO_TEST(fs, read_file_refuses_a_file_over_1_gib) {
    read_sized(((size_t)1 << 30) + 1, 0, -EFBIG);
}

/* The same bounds with a small limit: up to the limit the file is read,
 * one byte more is -EFBIG; below and above the first buffer's size. */
ZK_IO_TEST(fs, read_file_limit_is_inclusive) {
    cr_assert_not_null(zk__fs_read_file_max, "no zk__fs_read_file_max");
    size_t maxes[] = {1, 100, 4094, 4095, 4096, 10000};
    for (size_t i = 0; i < sizeof maxes / sizeof *maxes; i++) {
        size_t m = maxes[i];
        if (m > 1)
            read_sized(m - 1, m, 0);
        read_sized(m, m, 0);
        read_sized(m + 1, m, -EFBIG);
    }
}
