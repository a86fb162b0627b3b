/*
 * internal.h - what the rest of the library needs from signal.c.
 */
#ifndef ZK__SIGNAL_INTERNAL_H
#define ZK__SIGNAL_INTERNAL_H

/*
 * In a child between fork(2) and execve(2): gives every signal zokio has
 * its handler on the disposition it had before (default, or ignored), as
 * exec would, so a signal arriving before the exec does not run zokio's
 * handler (or a chained one) in the child. Async-signal-safe.
 */
void zk__signal_reset_in_child(void);

#endif
