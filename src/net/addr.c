/*
 * addr.c - parsing and formatting socket addresses, and name resolution
 * on the blocking pool.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zokio/net.h"
#include "zokio/task.h"

/* Splits "host:port" / "[host]:port" into `host` (brackets removed) and a
 * port number. Returns 0 or -EINVAL. */
static int zk__split_host_port(const char *text, char *host, size_t size,
                               unsigned *port) {
    const char *colon, *hs = text, *he;
    if (text[0] == '[') {
        he = strchr(text, ']');
        if (he == NULL || he[1] != ':')
            return -EINVAL;
        hs = text + 1;
        colon = he + 1;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL || memchr(text, ':', (size_t)(colon - text)))
            return -EINVAL; /* unbracketed IPv6 is ambiguous */
        he = colon;
    }
    size_t n = (size_t)(he - hs);
    if (n == 0 || n >= size)
        return -EINVAL;
    memcpy(host, hs, n);
    host[n] = '\0';
    const char *p = colon + 1;
    if (*p == '\0' || strlen(p) > 5)
        return -EINVAL;
    unsigned v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v > 65535)
        return -EINVAL;
    *port = v;
    return 0;
}

static int zk__addr_literal(const char *host, unsigned port, bool bracketed,
                            zk_addr *out) {
    memset(out, 0, sizeof *out);
    if (!bracketed && inet_pton(AF_INET, host, &out->u.in4.sin_addr) == 1) {
        out->u.in4.sin_family = AF_INET;
        out->u.in4.sin_port = htons((uint16_t)port);
        out->len = sizeof out->u.in4;
        return 0;
    }
    if (bracketed) {
        /* A host too long for any address with a scope is not one (and
         * must not be cut down to a prefix that happens to parse). */
        char h[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
        if (strlen(host) >= sizeof h)
            return -EINVAL;
        memcpy(h, host, strlen(host) + 1);
        char *scope = strchr(h, '%');
        unsigned scope_id = 0;
        if (scope) {
            *scope++ = '\0';
            scope_id = if_nametoindex(scope);
            if (scope_id == 0) {
                /* Digits only: strtoul alone would take "+5" or " 7". */
                char *end;
                unsigned long v = strtoul(scope, &end, 10);
                if (*scope < '0' || *scope > '9' || *end != '\0' ||
                    v > UINT32_MAX)
                    return -EINVAL;
                scope_id = (unsigned)v;
            }
        }
        if (inet_pton(AF_INET6, h, &out->u.in6.sin6_addr) == 1) {
            out->u.in6.sin6_family = AF_INET6;
            out->u.in6.sin6_port = htons((uint16_t)port);
            out->u.in6.sin6_scope_id = scope_id;
            out->len = sizeof out->u.in6;
            return 0;
        }
    }
    return -EINVAL;
}

int zk_addr_parse(const char *text, zk_addr *out) {
    if (text == NULL || out == NULL)
        return -EINVAL;
    char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    unsigned port;
    int rc = zk__split_host_port(text, host, sizeof host, &port);
    if (rc != 0)
        return rc;
    return zk__addr_literal(host, port, text[0] == '[', out);
}

int zk_addr_unix(const char *path, zk_addr *out) {
    if (path == NULL || out == NULL || path[0] == '\0')
        return -EINVAL;
    memset(out, 0, sizeof *out);
    size_t n = strlen(path);
    if (n >= sizeof out->u.un.sun_path)
        return -ENAMETOOLONG;
    out->u.un.sun_family = AF_UNIX;
    memcpy(out->u.un.sun_path, path, n + 1);
    out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

int zk_addr_format(const zk_addr *a, char *buf, size_t size) {
    if (a == NULL || buf == NULL)
        return -EINVAL;
    char ip[INET6_ADDRSTRLEN];
    int n;
    switch (a->u.sa.sa_family) {
    case AF_INET:
        inet_ntop(AF_INET, &a->u.in4.sin_addr, ip, sizeof ip);
        n = snprintf(buf, size, "%s:%u", ip, ntohs(a->u.in4.sin_port));
        break;
    case AF_INET6:
        inet_ntop(AF_INET6, &a->u.in6.sin6_addr, ip, sizeof ip);
        n = snprintf(buf, size, "[%s]:%u", ip, ntohs(a->u.in6.sin6_port));
        break;
    case AF_UNIX:
        n = snprintf(buf, size, "%s", a->u.un.sun_path);
        break;
    default:
        return -EINVAL;
    }
    if (n < 0)
        return -EINVAL;
    return (size_t)n >= size ? -ENOSPC : n;
}

int zk_addr_port(const zk_addr *a) {
    if (a == NULL)
        return -EINVAL;
    if (a->u.sa.sa_family == AF_INET)
        return ntohs(a->u.in4.sin_port);
    if (a->u.sa.sa_family == AF_INET6)
        return ntohs(a->u.in6.sin6_port);
    return -EINVAL;
}

/* ---------------------------------------------------------------------- */
/* Resolution on the blocking pool                                        */
/* ---------------------------------------------------------------------- */

/* Shared by the resolving task and the blocking call: a task aborted while
 * it waits leaves, and the call frees this when it ends. */
typedef struct zk__resolve {
    _Atomic int refs;
    char host[256];
    unsigned port;
    size_t max, n;
    int rc;
    zk_addr addrs[];
} zk__resolve;

static void zk__resolve_unref(zk__resolve *r) {
    if (atomic_fetch_sub(&r->refs, 1) == 1)
        free(r);
}

static int zk__gai_error(int e) {
    switch (e) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
        return -ENOENT;
    case EAI_AGAIN:
        return -EAGAIN;
    case EAI_MEMORY:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

static int64_t zk__resolve_run(void *arg) {
    zk__resolve *r = arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    char port[8];
    snprintf(port, sizeof port, "%u", r->port);
    int e = getaddrinfo(r->host, port, &hints, &res);
    if (e != 0) {
        r->rc = zk__gai_error(e);
    } else {
        for (struct addrinfo *ai = res; ai && r->n < r->max; ai = ai->ai_next) {
            if (ai->ai_addrlen > sizeof r->addrs[0].u)
                continue;
            zk_addr *a = &r->addrs[r->n++];
            memset(a, 0, sizeof *a);
            memcpy(&a->u, ai->ai_addr, ai->ai_addrlen);
            a->len = ai->ai_addrlen;
        }
        freeaddrinfo(res);
        r->rc = r->n > 0 ? (int)r->n : -ENOENT;
    }
    zk__resolve_unref(r);
    return 0;
}

int zk_resolve(const char *host_port, zk_addr *out, size_t max) {
    if (host_port == NULL || out == NULL || max == 0)
        return -EINVAL;
    char host[256];
    unsigned port;
    int rc = zk__split_host_port(host_port, host, sizeof host, &port);
    if (rc != 0)
        return rc;
    bool bracketed = host_port[0] == '[';
    if (zk__addr_literal(host, port, bracketed, out) == 0)
        return 1;
    if (bracketed) /* brackets hold an IPv6 literal, never a name */
        return -EINVAL;
    if (!zk_in_coroutine())
        return -EPERM;
    if (max > 64)
        max = 64;
    zk__resolve *r = calloc(1, sizeof *r + max * sizeof(zk_addr));
    if (!r)
        return -ENOMEM;
    atomic_init(&r->refs, 2);
    memcpy(r->host, host, sizeof r->host);
    r->port = port;
    r->max = max;
    zk_task *t;
    rc = zk_spawn_blocking(NULL, zk__resolve_run, r, &t);
    if (rc != 0) {
        free(r);
        return rc;
    }
    rc = zk_task_join(&t, NULL);
    if (t != NULL) {
        /* This task was aborted while waiting: leave the lookup to finish
         * on its own. */
        zk_task_detach(&t);
        zk__resolve_unref(r);
        return rc;
    }
    if (rc == -ECANCELED) { /* aborted before it started: it never runs */
        free(r);
        return rc;
    }
    rc = r->rc;
    if (rc > 0)
        memcpy(out, r->addrs, (size_t)rc * sizeof(zk_addr));
    zk__resolve_unref(r);
    return rc;
}
