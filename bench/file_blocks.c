/* file_blocks.c - writes the data file of the random-read benchmarks
 * (bench/io_compare.sh). No Zokio.
 *
 *   file_blocks PATH MIB
 *
 * Writes MIB MiB of 4 KiB blocks. Block i starts with i and ends with ~i,
 * both as 64-bit little-endian integers, with pseudo-random bytes between,
 * so a reader can check that a read of block i returned block i, whole.
 * The same offsets are read by every reader (Zokio, Tokio, Go):
 *
 *   s = 42; for each read: s += 0x9e3779b97f4a7c15, z = splitmix64 mix of s,
 *   offset = (z % blocks) * 4096
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK    4096
#define PER_CALL 256 /* blocks per write: 1 MiB */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void put_le64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: file_blocks PATH MIB\n");
        return 2;
    }
    char *end;
    long mib = strtol(argv[2], &end, 10);
    if (*end || mib < 1 || mib > (1L << 20)) {
        fprintf(stderr, "file_blocks: bad size '%s' MiB\n", argv[2]);
        return 2;
    }
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    static unsigned char buf[BLOCK * PER_CALL];
    uint64_t blocks = (uint64_t)mib * (1 << 20) / BLOCK, seed = 1;
    for (uint64_t b = 0; b < blocks; b += PER_CALL) {
        for (int k = 0; k < PER_CALL; k++) {
            unsigned char *p = buf + (size_t)k * BLOCK;
            for (int j = 8; j < BLOCK - 8; j += 8) {
                uint64_t r = splitmix64(&seed);
                memcpy(p + j, &r, 8);
            }
            put_le64(p, b + (uint64_t)k);
            put_le64(p + BLOCK - 8, ~(b + (uint64_t)k));
        }
        size_t off = 0;
        while (off < sizeof buf) {
            ssize_t n = write(fd, buf + off, sizeof buf - off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                perror("file_blocks: write");
                return 1;
            }
            off += (size_t)n;
        }
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        perror("file_blocks: fsync/close");
        return 1;
    }
    return 0;
}
