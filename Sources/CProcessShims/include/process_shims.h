#ifndef MM_PROCESS_SHIMS_H
#define MM_PROCESS_SHIMS_H

/// prctl is variadic, so Swift cannot call it; these wrappers are typed.

/// Asks the kernel to send `signal` to this process when the thread that forked it exits.
/// Returns 0 on success, -1 with errno set.
int mm_set_parent_death_signal(int signal);

#include <spawn.h>

/// Adds "close every descriptor >= lowest" to a posix_spawn file-actions list (glibc 2.34+,
/// posix_spawn_file_actions_addclosefrom_np), so a child inherits exactly stdin, stdout and
/// stderr, never a socket of its parent that was opened without CLOEXEC. Returns 0 or an errno.
int mm_spawn_file_actions_close_from(posix_spawn_file_actions_t *actions, int lowest);

#endif
