/* cold_lines.c - what the first load from a cold cache line costs, by how
 * the lines lie in memory. No Zokio.
 *
 *   cold_lines [EVICT_MIB]
 *
 * A runtime's round trip on one of 1,000 connections first loads lines
 * that connection last touched a round trip ago. Zokio's first such load is
 * from the resumed coroutine's stack: one line on a page of its own, the
 * stacks a stack's size apart. Tokio's is from its task's cell: small
 * blocks of the heap, packed. This program puts 1,000 lines in each of
 * those layouts, evicts the caches and the TLB by writing EVICT_MIB MiB
 * [256] of other memory, then follows a chain of pointers through the 1,000
 * lines in a random order (each load waits for the one before, as the
 * resumed code does) and prints the median nanoseconds per load of 15 such
 * passes.
 *
 * What differs between the layouts is, presumably, the page walk: a line
 * on a page of its own needs a translation the TLB no longer holds, and
 * the walk's own loads (the page-table entries, and under a hypervisor the
 * host's entries too) are cold as well, the more so the farther apart the
 * pages are (entries of pages 8 apart or more share no cache line).
 * Transparent huge pages can help only where the host backs the guest's
 * memory with huge pages too.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define LINES  1000
#define PASSES 15
#define HUGE   ((size_t)2 << 20)

static unsigned char *evict_buf;
static size_t evict_size;
static size_t order[LINES]; /* the chain's random order */

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void evict(void) {
    for (size_t i = 0; i < evict_size; i += 64)
        evict_buf[i]++;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Links the lines into one cycle in `order` and returns the median ns per
 * load of PASSES passes, each after an eviction. */
static double chase(char **line) {
    for (size_t i = 0; i < LINES; i++)
        *(char **)line[order[i]] = line[order[(i + 1) % LINES]];
    double per_load[PASSES];
    for (int pass = 0; pass < PASSES; pass++) {
        evict();
        char *p = line[order[0]];
        double t0 = now_ns();
        for (size_t i = 0; i < LINES; i++)
            p = *(char **)p;
        per_load[pass] = (now_ns() - t0) / LINES;
        if (p != line[order[0]]) { /* uses p: the loads are not elided */
            fprintf(stderr, "the chain is broken\n");
            exit(1);
        }
    }
    qsort(per_load, PASSES, sizeof per_load[0], by_value);
    return per_load[PASSES / 2];
}

/* Line i at `offset` into the i-th `stride`-sized block of a 2 MiB-aligned
 * mapping; with `huge`, the mapping is offered to transparent huge pages. */
static void measure(const char *layout, size_t stride, size_t offset,
                    int huge) {
    size_t size = LINES * stride + 2 * HUGE;
    char *map = mmap(NULL, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    char *base = (char *)(((uintptr_t)map + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
    madvise(base, LINES * stride + HUGE,
            huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    char *line[LINES];
    for (size_t i = 0; i < LINES; i++) {
        line[i] = base + i * stride + offset;
        memset(line[i], 0, 64);
    }
    printf("%-50s %7.1f ns\n", layout, chase(line));
    munmap(map, size);
}

int main(int argc, char **argv) {
    long mib = argc > 1 ? strtol(argv[1], NULL, 10) : 256;
    if (mib <= 0) {
        fprintf(stderr, "usage: cold_lines [EVICT_MIB > 0]\n");
        return 2;
    }
    evict_size = (size_t)mib << 20;
    evict_buf = mmap(NULL, evict_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (evict_buf == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    memset(evict_buf, 1, evict_size);
    uint64_t s = 42; /* a fixed shuffle: every run follows the same chain */
    for (size_t i = 0; i < LINES; i++)
        order[i] = i;
    for (size_t i = LINES - 1; i > 0; i--) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        size_t j = (size_t)(s >> 33) % (i + 1);
        size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    printf("1,000 lines, caches evicted with %ld MiB; ns per dependent load:\n",
           mib);
    /* The top line of 1,000 coroutine stacks, each with its guard page:
     * 256 KiB (ZK_STACK_DEFAULT), 64 KiB (the echo benchmark's), 16 KiB
     * (ZK_STACK_MIN). */
    measure("a line per page, 260 KiB apart (256 KiB stacks)", 260 << 10,
            (256 << 10) - 64, 0);
    measure("a line per page, 68 KiB apart (64 KiB stacks)", 68 << 10,
            (64 << 10) - 64, 0);
    measure("a line per page, 20 KiB apart (16 KiB stacks)", 20 << 10,
            (16 << 10) - 64, 0);
    measure("a line per page, pages adjacent", 4 << 10, (4 << 10) - 64, 0);
    measure("a line per page, 68 KiB apart, huge pages", 68 << 10,
            (64 << 10) - 64, 1);
    measure("packed, 256 B apart (small heap blocks)", 256, 0, 0);
    return 0;
}
