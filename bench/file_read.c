/*
 * file_read.c - Zokio's random 4 KiB file reads for bench/io_compare.sh:
 * COUNT reads of 4 KiB blocks of PATH (written by file_blocks.c) at the
 * shared offset sequence, CONCURRENCY coroutine tasks sharing one zk_file,
 * every block checked against its stamp. 2 workers; ZOKIO_IO_BACKEND picks
 * the backend (io_uring reads, or pread on the blocking pool with epoll).
 *
 *   bench_file_read PATH COUNT CONCURRENCY
 *
 * Prints "RESULT file_rand_read_4k zokio <reads/s> reads/s".
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <zokio.h>

#define BLOCK 4096

static uint64_t *offs;
static long count;
static _Atomic long next_read;
static _Atomic int bad;
static zk_file *file;

static uint64_t le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int64_t reader(void *arg) {
    (void)arg;
    unsigned char buf[BLOCK];
    for (;;) {
        long i = atomic_fetch_add(&next_read, 1);
        if (i >= count)
            return 0;
        int64_t n = zk_file_read_at(file, buf, BLOCK, offs[i]);
        uint64_t idx = offs[i] / BLOCK;
        if (n != BLOCK || le64(buf) != idx || le64(buf + BLOCK - 8) != ~idx) {
            atomic_fetch_add(&bad, 1);
            return -1;
        }
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t bench_main(void *arg) {
    const char *path = arg;
    int rc = zk_file_open(path, O_RDONLY, 0, &file);
    zk_metadata md;
    if (rc == 0)
        rc = zk_file_metadata(file, &md);
    if (rc != 0 || md.size < BLOCK) {
        fprintf(stderr, "bench_file_read: %s: %s\n", path,
                rc ? zk_strerror(rc) : "no whole block");
        return 1;
    }
    uint64_t blocks = md.size / BLOCK, s = 42;
    for (long i = 0; i < count; i++) {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        offs[i] = (z % blocks) * BLOCK;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: bench_file_read PATH COUNT CONCURRENCY\n");
        return 2;
    }
    count = atol(argv[2]);
    long conc = atol(argv[3]);
    if (count < 1 || conc < 1) {
        fprintf(stderr, "COUNT and CONCURRENCY must be positive\n");
        return 2;
    }
    offs = malloc((size_t)count * sizeof *offs);
    zk_builder *b = zk_builder_new();
    zk_builder_set_workers(b, 2);
    zk_runtime *rt;
    int rc = zk_builder_build(b, &rt);
    zk_builder_free(b);
    if (rc != 0 || !offs) {
        fprintf(stderr, "runtime: %s\n", zk_strerror(rc));
        return 1;
    }
    int64_t r = 1;
    if (zk_block_on(rt, bench_main, argv[1], &r) != 0 || r != 0)
        return 1;
    double t0 = now_s();
    zk_task **h = malloc((size_t)conc * sizeof *h);
    for (long i = 0; i < conc; i++)
        if (zk_runtime_spawn(rt, reader, NULL, &h[i]) != 0)
            return 1;
    for (long i = 0; i < conc; i++)
        zk_task_join(&h[i], NULL);
    double secs = now_s() - t0;
    int ok = atomic_load(&bad) == 0;
    zk_file_close(file);
    zk_runtime_free(rt);
    free(h);
    free(offs);
    if (!ok) {
        fprintf(stderr, "bench_file_read: a block read back wrong\n");
        printf("ERROR file_rand_read_4k zokio\n");
        return 1;
    }
    printf("RESULT file_rand_read_4k zokio %.0f reads/s\n",
           (double)count / secs);
    return 0;
}
