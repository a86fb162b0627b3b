/*
 * scope.h - what the rest of the library needs from cancel scopes
 * (zokio/scope.h): the cancellation an await of the calling task would see.
 */
#ifndef ZK__SCOPE_H
#define ZK__SCOPE_H

#include "task.h"
#include "zokio/scope.h"

/*
 * For awaits of coroutine task `t` (the caller) inside the scope chain that
 * starts at `inner` (not NULL): returns -ECANCELED when a scope of the
 * chain was cancelled, else -ETIMEDOUT when the nearest deadline of the
 * chain has passed, else 0. `*nearest` receives that deadline
 * (ZK_INSTANT_MAX: none). The task's own abort is not looked at.
 */
int zk__scope_chain_status(zk__task *t, const zk_scope *inner,
                           zk_instant *nearest);

/*
 * What the calling task's next await would fail with: -ECANCELED (task
 * aborted, or a scope it is in cancelled), -ETIMEDOUT (the nearest
 * deadline of its scopes passed), or 0 (also outside a task). For
 * blocking-style calls whose fast path completes without awaiting.
 */
int zk__cancel_status(void);

#endif
