/*
 * criterion/criterion.h (ThreadSanitizer builds only) - the subset of
 * Criterion's API that zokio's tests use, backed by runner.c.
 *
 * Why: Criterion cannot start in a process that runs ThreadSanitizer (its
 * inter-process arena fails to initialise: Criterion issue #274, open
 * upstream). The TSan leg of CI compiles the very same test files against
 * this header instead. Like Criterion, every test runs in its own forked
 * process under a timeout, and a failed assertion fails only that test.
 */
#ifndef ZK_TSAN_CRITERION_SHIM_H
#define ZK_TSAN_CRITERION_SHIM_H

#include <string.h>

typedef struct zk_shim_test {
    const char *suite;
    const char *name;
    void (*fn)(void);
    struct zk_shim_test *next;
} zk_shim_test;

void zk_shim_register(zk_shim_test *t);
void zk_shim_set_timeout(const char *suite, double seconds);
__attribute__((noreturn, format(printf, 4, 5))) void
zk_shim_fail(const char *file, int line, const char *expr, const char *fmt,
             ...);

struct zk_shim_suite_opts {
    double timeout;
};

#define TestSuite(sname, ...)                                                  \
    __attribute__((constructor)) static void zk_shim_suite_##sname(void) {     \
        struct zk_shim_suite_opts o = {__VA_ARGS__};                           \
        zk_shim_set_timeout(#sname, o.timeout);                                \
    }

#define Test(sname, tname)                                                     \
    static void sname##_##tname##_fn(void);                                    \
    __attribute__((constructor)) static void sname##_##tname##_reg(void) {     \
        static zk_shim_test t = {#sname, #tname, sname##_##tname##_fn, 0};     \
        zk_shim_register(&t);                                                  \
    }                                                                          \
    static void sname##_##tname##_fn(void)

#define cr_assert(cond, ...)                                                   \
    do {                                                                       \
        if (!(cond))                                                           \
            zk_shim_fail(__FILE__, __LINE__, #cond, " " __VA_ARGS__);          \
    } while (0)
#define cr_assert_not(cond, ...)   cr_assert(!(cond), __VA_ARGS__)
#define cr_assert_eq(a, b, ...)    cr_assert((a) == (b), __VA_ARGS__)
#define cr_assert_neq(a, b, ...)   cr_assert((a) != (b), __VA_ARGS__)
#define cr_assert_lt(a, b, ...)    cr_assert((a) < (b), __VA_ARGS__)
#define cr_assert_gt(a, b, ...)    cr_assert((a) > (b), __VA_ARGS__)
#define cr_assert_geq(a, b, ...)   cr_assert((a) >= (b), __VA_ARGS__)
#define cr_assert_leq(a, b, ...)   cr_assert((a) <= (b), __VA_ARGS__)
#define cr_assert_null(p, ...)     cr_assert((p) == NULL, __VA_ARGS__)
#define cr_assert_not_null(p, ...) cr_assert((p) != NULL, __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...)                                            \
    cr_assert(strcmp((a), (b)) == 0, __VA_ARGS__)
#define cr_assert_str_neq(a, b, ...)                                           \
    cr_assert(strcmp((a), (b)) != 0, __VA_ARGS__)

#endif
