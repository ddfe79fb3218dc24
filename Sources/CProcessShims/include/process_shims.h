#ifndef MM_PROCESS_SHIMS_H
#define MM_PROCESS_SHIMS_H

/// prctl is variadic, so Swift cannot call it; these wrappers are typed.

/// Asks the kernel to send `signal` to this process when the thread that forked it exits.
/// Returns 0 on success, -1 with errno set.
int mm_set_parent_death_signal(int signal);

#endif
