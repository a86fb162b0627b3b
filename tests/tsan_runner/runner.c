/*
 * runner.c - runs the tests registered through the shim criterion.h (see
 * there for why it exists): each in a forked process with a timeout,
 * optionally filtered by a substring of "suite::name", and ends with the
 * line "N passed, N failed".
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "criterion/criterion.h"

static zk_shim_test *tests, **tail = &tests;
static double timeout_s = 30;

void zk_shim_register(zk_shim_test *t) {
    *tail = t;
    tail = &t->next;
}

void zk_shim_set_timeout(const char *suite, double seconds) {
    (void)suite;
    if (seconds > 0)
        timeout_s = seconds;
}

void zk_shim_fail(const char *file, int line, const char *expr, const char *fmt,
                  ...) {
    fprintf(stderr, "[----] %s:%d: Assertion Failed: %s\n", file, line, expr);
    if (fmt && fmt[0] && fmt[1]) { /* the macro prefixes a space */
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "[----]  ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
    }
    fflush(stderr);
    _exit(1);
}

static int run_one(zk_shim_test *t) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alarm((unsigned)(timeout_s + 0.5));
        t->fn();
        fflush(stdout);
        exit(0); /* exit(), not _exit(): sanitizer reports run at exit */
    }
    int status;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        fprintf(stderr, "[FAIL] %s::%s: Timed out (%.0f s)\n", t->suite,
                t->name, timeout_s);
    else
        fprintf(stderr, "[FAIL] %s::%s: status %d\n", t->suite, t->name,
                status);
    return 1;
}

int main(int argc, char **argv) {
    const char *filter = NULL;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc)
            filter = argv[++i];
    int passed = 0, failed = 0;
    for (zk_shim_test *t = tests; t; t = t->next) {
        char full[256];
        snprintf(full, sizeof full, "%s::%s", t->suite, t->name);
        if (filter && !strstr(full, filter))
            continue;
        if (run_one(t) == 0) {
            printf("[PASS] %s\n", full);
            passed++;
        } else {
            failed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
