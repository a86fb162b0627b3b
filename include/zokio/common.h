/*
 * zokio/common.h - export macro, error reporting and basic types shared by
 * every area of the API.
 *
 * Error convention: every fallible call returns 0 (or a non-negative count)
 * on success and a negative errno value on failure. errno itself is never
 * read or written as a result channel, because a coroutine task may resume on
 * a different thread than the one it suspended on.
 */
#ifndef ZOKIO_COMMON_H
#define ZOKIO_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(ZOKIO_BUILDING)
#define ZK_EXTERN __attribute__((visibility("default")))
#else
#define ZK_EXTERN
#endif

#define ZK_VERSION_MAJOR 0
#define ZK_VERSION_MINOR 1
#define ZK_VERSION_PATCH 0

/*
 * Returns a human readable description of an error code returned by any
 * zokio function. Accepts the negative form (as returned) or the positive
 * errno value. Never returns NULL. A system error no header lists gets
 * the C library's description where it has one; a code that is no error
 * at all yields "unknown error".
 * The returned string is static and safe to use from any thread.
 */
ZK_EXTERN const char *zk_strerror(int code);

/*
 * Returns the symbolic name of an error code ("ECANCELED" for -ECANCELED).
 * Accepts negative or positive codes. Never returns NULL; a system error
 * no header lists gets the C library's name where it has one, a code that
 * is no error at all "EUNKNOWN". The returned string is static.
 */
ZK_EXTERN const char *zk_err_name(int code);

/* Returns the library version as "major.minor.patch". */
ZK_EXTERN const char *zk_version(void);

#ifdef __cplusplus
}
#endif
#endif
