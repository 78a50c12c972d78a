#ifndef TUNNEL_CPTY_H
#define TUNNEL_CPTY_H

/// Pseudo-terminals and login shells for the node's `shell` service, and the operator's local
/// terminal for `tunnel shell`. In C because the child between fork and exec must run only
/// async-signal-safe code: no Swift runtime, no allocation, no locks.

#include <stddef.h>
#include <sys/types.h>

/// A login shell running on a new pseudo-terminal.
typedef struct {
    /// The master side (close-on-exec); its one owner closes it, which hangs the terminal up.
    int master_fd;
    /// The shell: leader of a new session and process group, with the terminal as its controlling one.
    pid_t pid;
} cpty_shell;

/// Whether this process may start `user`'s login shell: the user exists, and this process is
/// root or runs as that user. Returns 0, or -1 with a sentence in `error`.
int cpty_check_user(const char *user, char *error, size_t error_size);

/// Starts `user`'s login shell (`-bash` style argv[0]) on a new pseudo-terminal of the given
/// size, in the user's home directory, with only TERM, HOME, USER, LOGNAME, SHELL and PATH set.
/// When root, it becomes the user (groups, gid, uid) before exec. Everything is prepared before
/// fork; the child only makes system calls. Returns once the shell was exec'd: 0, or -1 with a
/// sentence in `error` (including why the child could not exec). A `command` that is not NULL
/// runs through the login shell's `-c` instead of an interactive session.
int cpty_spawn_login_shell(const char *user, const char *term, const char *command, unsigned short columns,
                           unsigned short rows, cpty_shell *shell, char *error, size_t error_size);

/// Sets the terminal size (TIOCSWINSZ); the kernel tells the foreground process group with
/// SIGWINCH. Returns 0 or -errno.
int cpty_set_window_size(int fd, unsigned short columns, unsigned short rows);

/// The terminal size of `fd` (TIOCGWINSZ). Returns 0 or -errno (-ENOTTY when it is no terminal).
int cpty_window_size(int fd, unsigned short *columns, unsigned short *rows);

/// Reaps `pid` if it has ended, without waiting: 1 with `status` as a shell reports it (the exit
/// code, or 128 + N when killed by signal N), 0 while it runs, or -errno.
int cpty_reap(pid_t pid, int *status);

/// Remembers `fd`'s file status flags (libuv makes descriptors non-blocking, which a shell
/// sharing the terminal or pipe would inherit) and, for a terminal, its settings. At most three
/// descriptors. Returns 0 or -errno.
int cpty_local_save(int fd);

/// Puts the terminal `fd`, saved before, in raw mode: keys go through as bytes (Ctrl-C too).
/// Returns 0 or -errno.
int cpty_local_make_raw(int fd);

/// Puts back everything `cpty_local_save` remembered. Idempotent; also runs at exit, so a
/// process that exits without returning (a second Ctrl-C) leaves the terminal usable.
void cpty_local_restore(void);

#endif
