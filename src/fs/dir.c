/*
 * dir.c - listing a directory, on the blocking pool (io_uring has no
 * getdents).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "zokio/fs.h"
#include "zokio/task.h"

/* Shared by the task and the blocking call, so a task aborted while
 * waiting can leave: whoever lets go last frees it. */
typedef struct zk__listing {
    _Atomic int refs;
    int rc;
    char **names;
    size_t count;
    char path[];
} zk__listing;

static void zk__listing_unref(zk__listing *l) {
    if (atomic_fetch_sub(&l->refs, 1) == 1) {
        zk_fs_names_free(l->names, l->count);
        free(l);
    }
}

static int64_t zk__listing_run(void *arg) {
    zk__listing *l = arg;
    DIR *d = opendir(l->path);
    if (d == NULL) {
        l->rc = -errno;
        zk__listing_unref(l);
        return 0;
    }
    size_t cap = 0;
    struct dirent *e;
    for (;;) {
        errno = 0;
        if ((e = readdir(d)) == NULL) {
            l->rc = -errno;
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (l->count == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(l->names, cap * sizeof *nn);
            if (!nn) {
                l->rc = -ENOMEM;
                break;
            }
            l->names = nn;
        }
        if ((l->names[l->count] = strdup(e->d_name)) == NULL) {
            l->rc = -ENOMEM;
            break;
        }
        l->count++;
    }
    closedir(d);
    zk__listing_unref(l);
    return 0;
}

int zk_fs_read_dir(const char *path, char ***names, size_t *count) {
    if (path == NULL || names == NULL || count == NULL)
        return -EINVAL;
    *names = NULL;
    *count = 0;
    if (!zk_in_coroutine())
        return -EPERM;
    size_t n = strlen(path);
    zk__listing *l = calloc(1, sizeof *l + n + 1);
    if (!l)
        return -ENOMEM;
    atomic_init(&l->refs, 2);
    memcpy(l->path, path, n + 1);
    zk_task *t;
    int rc = zk_spawn_blocking(NULL, zk__listing_run, l, &t);
    if (rc != 0) {
        free(l);
        return rc;
    }
    rc = zk_task_join(&t, NULL);
    if (t != NULL) { /* aborted while waiting: the listing ends alone */
        zk_task_detach(&t);
        zk__listing_unref(l);
        return rc;
    }
    if (rc == -ECANCELED) {
        /* The pool's task was cancelled (by the runtime's shutdown). If
         * the listing never ran, its reference is let go here too; if it
         * ran, what it listed is freed with the last reference. */
        if (atomic_load(&l->refs) == 2)
            zk__listing_unref(l);
        zk__listing_unref(l);
        return rc;
    }
    rc = l->rc;
    if (rc == 0) {
        *names = l->names;
        *count = l->count;
        l->names = NULL;
        l->count = 0;
    }
    zk__listing_unref(l);
    return rc;
}

void zk_fs_names_free(char **names, size_t count) {
    if (names == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}
