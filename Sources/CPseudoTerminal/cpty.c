#define _GNU_SOURCE
#include "cpty.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <pty.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

/// Descriptors above this are not swept one by one when close_range is missing (kernels before 5.11).
#define CPTY_MAX_SWEPT_FD 65536

static void say(char *error, size_t size, const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(error, size, format, arguments);
    va_end(arguments);
}

// MARK: - The account

/// What the child needs from the password and group databases, copied out before fork
/// (NSS lookups allocate and lock, so the child cannot make them).
struct account {
    uid_t uid;
    gid_t gid;
    char *name;
    char *home;
    char *shell;
    gid_t *groups;
    int group_count;
    /// Root switches to the user; a non-root process may only start its own user's shell.
    int switch_user;
};

static void account_free(struct account *account) {
    free(account->name);
    free(account->home);
    free(account->shell);
    free(account->groups);
}

static int account_lookup(const char *user, struct account *account, char *error, size_t error_size) {
    memset(account, 0, sizeof *account);
    long suggested = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t size = suggested > 0 ? (size_t)suggested : 16384;
    struct passwd entry;
    struct passwd *found = NULL;
    char *buffer = NULL;
    int rc;
    for (;;) {
        char *grown = realloc(buffer, size);
        if (grown == NULL) {
            free(buffer);
            say(error, error_size, "out of memory looking up user %s", user);
            return -1;
        }
        buffer = grown;
        rc = getpwnam_r(user, &entry, buffer, size, &found);
        if (rc != ERANGE) break;
        size *= 2;
    }
    if (found == NULL) {
        free(buffer);
        if (rc != 0) {
            say(error, error_size, "cannot look up user %s: %s", user, strerror(rc));
        } else {
            say(error, error_size, "no user %s on this node (shell-user must name a local account)", user);
        }
        return -1;
    }
    uid_t self = geteuid();
    if (self != 0 && entry.pw_uid != self) {
        say(error, error_size,
            "this client runs as uid %u, not root, so it can start a shell only for its own user, not for %s "
            "(run the client as root, or set shell-user to the user it runs as)",
            (unsigned)self, user);
        free(buffer);
        return -1;
    }
    account->uid = entry.pw_uid;
    account->gid = entry.pw_gid;
    account->switch_user = self == 0;
    account->name = strdup(entry.pw_name);
    account->home = strdup(entry.pw_dir != NULL && entry.pw_dir[0] != '\0' ? entry.pw_dir : "/");
    account->shell = strdup(entry.pw_shell != NULL && entry.pw_shell[0] != '\0' ? entry.pw_shell : "/bin/sh");
    free(buffer);
    if (account->name == NULL || account->home == NULL || account->shell == NULL) {
        account_free(account);
        say(error, error_size, "out of memory looking up user %s", user);
        return -1;
    }
    if (account->switch_user) {
        int count = 32;
        for (;;) {
            gid_t *groups = realloc(account->groups, (size_t)count * sizeof(gid_t));
            if (groups == NULL) {
                account_free(account);
                say(error, error_size, "out of memory listing the groups of %s", user);
                return -1;
            }
            account->groups = groups;
            int wanted = count;
            if (getgrouplist(account->name, account->gid, account->groups, &wanted) >= 0) {
                account->group_count = wanted;
                break;
            }
            // -1 means too small; `wanted` now holds the size needed (glibc), else grow anyway.
            count = wanted > count ? wanted : count * 2;
        }
    }
    return 0;
}

int cpty_check_user(const char *user, char *error, size_t error_size) {
    struct account account;
    if (account_lookup(user, &account, error, error_size) != 0) return -1;
    account_free(&account);
    return 0;
}

// MARK: - Spawning

/// What the child reports through the close-on-exec pipe when it cannot exec.
enum child_step { STEP_SETSID = 1, STEP_CONTROLLING_TERMINAL, STEP_STANDARD_DESCRIPTORS, STEP_GROUPS, STEP_GID, STEP_UID,
                  STEP_DIRECTORY, STEP_EXEC };

static const char *step_text(int step) {
    switch (step) {
    case STEP_SETSID: return "start a new session";
    case STEP_CONTROLLING_TERMINAL: return "take the terminal as its controlling terminal";
    case STEP_STANDARD_DESCRIPTORS: return "attach the terminal to stdin, stdout and stderr";
    case STEP_GROUPS: return "set its supplementary groups";
    case STEP_GID: return "set its group id";
    case STEP_UID: return "set its user id";
    case STEP_DIRECTORY: return "change to its home directory or /";
    case STEP_EXEC: return "execute the shell";
    default: return "start";
    }
}

/// Everything exec needs, built before fork.
struct launch {
    /// argv[0], then `-c` and the command when there is one (the strings are borrowed).
    char *argv[4];
    char *envp[7];
};

static void launch_free(struct launch *launch) {
    free(launch->argv[0]);
    for (int index = 0; launch->envp[index] != NULL; index++) free(launch->envp[index]);
}

/// `prefix` followed by `text` in new memory, or NULL.
static char *joined(const char *prefix, const char *text) {
    size_t prefix_length = strlen(prefix), text_length = strlen(text);
    char *result = malloc(prefix_length + text_length + 1);
    if (result == NULL) return NULL;
    memcpy(result, prefix, prefix_length);
    memcpy(result + prefix_length, text, text_length + 1);
    return result;
}

static int launch_build(const struct account *account, const char *term, const char *command, struct launch *launch) {
    memset(launch, 0, sizeof *launch);
    const char *slash = strrchr(account->shell, '/');
    // Debian's login.defs ENV_SUPATH and ENV_PATH.
    const char *path = account->uid == 0 ? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                                         : "/usr/local/bin:/usr/bin:/bin";
    // A leading '-' in argv[0] is how login(1) tells a shell to be a login shell.
    int ok = (launch->argv[0] = joined("-", slash != NULL ? slash + 1 : account->shell)) != NULL
        && (launch->envp[0] = joined("TERM=", term)) != NULL
        && (launch->envp[1] = joined("HOME=", account->home)) != NULL
        && (launch->envp[2] = joined("USER=", account->name)) != NULL
        && (launch->envp[3] = joined("LOGNAME=", account->name)) != NULL
        && (launch->envp[4] = joined("SHELL=", account->shell)) != NULL
        && (launch->envp[5] = joined("PATH=", path)) != NULL;
    if (!ok) {
        launch_free(launch);
        return -1;
    }
    // A login shell that runs one command (`-bash -c CMD`) reads the same profile first.
    if (command != NULL) {
        launch->argv[1] = "-c";
        launch->argv[2] = (char *)command;
    }
    return 0;
}

/// The child, between fork and exec: system calls only. On failure it reports the step and
/// errno through `report_fd` and exits 127, as a shell does for a command it cannot run.
static void child(const struct account *account, const struct launch *launch, int master, int slave,
                  int report_fd, int swept_fd_limit) {
    int step = 0;
    // The parent's handlers (libuv's) must not run here, and an ignored signal would stay
    // ignored in the shell: everything back to default, then unblocked.
    struct sigaction default_action;
    memset(&default_action, 0, sizeof default_action);
    default_action.sa_handler = SIG_DFL;
    for (int number = 1; number < NSIG; number++) {
        if (number != SIGKILL && number != SIGSTOP) sigaction(number, &default_action, NULL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    if (setsid() < 0) { step = STEP_SETSID; goto fail; }
    if (ioctl(slave, TIOCSCTTY, 0) < 0) { step = STEP_CONTROLLING_TERMINAL; goto fail; }
    for (int fd = 0; fd <= 2; fd++) {
        if (dup2(slave, fd) < 0) { step = STEP_STANDARD_DESCRIPTORS; goto fail; }
    }
    if (slave > 2) close(slave);
    close(master);
    if (account->switch_user) {
        if (setgroups((size_t)account->group_count, account->groups) < 0) { step = STEP_GROUPS; goto fail; }
        if (setgid(account->gid) < 0) { step = STEP_GID; goto fail; }
        if (setuid(account->uid) < 0) { step = STEP_UID; goto fail; }
        // Belt and braces: a user other than root must not be able to become root again.
        if (account->uid != 0 && setuid(0) == 0) { errno = EPERM; step = STEP_UID; goto fail; }
    }
    // As login(1) does: a missing home directory is no reason to refuse the shell.
    if (chdir(account->home) < 0 && chdir("/") < 0) { step = STEP_DIRECTORY; goto fail; }
    // No descriptor of the client (its TLS socket, say) may leak into the shell; the report
    // pipe closes at exec, which is how the parent learns that exec succeeded.
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
        for (int fd = 3; fd < swept_fd_limit; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    execve(account->shell, launch->argv, launch->envp);
    step = STEP_EXEC;
fail:;
    int report[2] = {step, errno};
    ssize_t written;
    do written = write(report_fd, report, sizeof report); while (written < 0 && errno == EINTR);
    _exit(127);
}

/// Makes `*fd` close-on-exec and at least 3, moving it if it is a standard descriptor.
static int keep_above_stdio(int *fd) {
    if (*fd > 2) return fcntl(*fd, F_SETFD, FD_CLOEXEC);
    int moved = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
    if (moved < 0) return -1;
    close(*fd);
    *fd = moved;
    return 0;
}

int cpty_spawn_login_shell(const char *user, const char *term, const char *command, unsigned short columns,
                           unsigned short rows, cpty_shell *shell, char *error, size_t error_size) {
    struct account account;
    if (account_lookup(user, &account, error, error_size) != 0) return -1;
    struct launch launch;
    if (launch_build(&account, term, command, &launch) != 0) {
        account_free(&account);
        say(error, error_size, "out of memory preparing the shell of %s", user);
        return -1;
    }
    long open_max = sysconf(_SC_OPEN_MAX);
    int swept_fd_limit = open_max > 0 && open_max < CPTY_MAX_SWEPT_FD ? (int)open_max : CPTY_MAX_SWEPT_FD;
    int result = -1;
    int master = -1, slave = -1;
    int report[2] = {-1, -1};
    struct winsize size = {.ws_row = rows, .ws_col = columns};
    if (openpty(&master, &slave, NULL, NULL, &size) < 0) {
        say(error, error_size, "cannot open a pseudo-terminal: %s", strerror(errno));
        goto done;
    }
    // Other children of the client must not inherit the terminal; and neither side may be a
    // standard descriptor (a client started with one closed), or the child's dup2 onto 0-2
    // would clobber it.
    if (keep_above_stdio(&master) < 0 || keep_above_stdio(&slave) < 0) {
        say(error, error_size, "cannot move the pseudo-terminal's descriptors: %s", strerror(errno));
        goto done;
    }
    if (pipe2(report, O_CLOEXEC) < 0) {
        say(error, error_size, "cannot make a pipe: %s", strerror(errno));
        goto done;
    }
    // Blocked across fork, so no signal handler of the parent runs in the child before the
    // child has reset them all.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    pid_t pid = fork();
    if (pid == 0) child(&account, &launch, master, slave, report[1], swept_fd_limit);
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (pid < 0) {
        say(error, error_size, "cannot fork: %s", strerror(fork_errno));
        goto done;
    }
    close(report[1]);
    report[1] = -1;
    int child_report[2];
    ssize_t got;
    do got = read(report[0], child_report, sizeof child_report); while (got < 0 && errno == EINTR);
    if (got == (ssize_t)sizeof child_report) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        say(error, error_size, "the shell %s of %s could not %s: %s", account.shell, user, step_text(child_report[0]),
            strerror(child_report[1]));
        goto done;
    }
    shell->master_fd = master;
    shell->pid = pid;
    master = -1;
    result = 0;
done:
    if (master >= 0) close(master);
    if (slave >= 0) close(slave);
    if (report[0] >= 0) close(report[0]);
    if (report[1] >= 0) close(report[1]);
    launch_free(&launch);
    account_free(&account);
    return result;
}

// MARK: - Terminal size and reaping

int cpty_set_window_size(int fd, unsigned short columns, unsigned short rows) {
    struct winsize size = {.ws_row = rows, .ws_col = columns};
    return ioctl(fd, TIOCSWINSZ, &size) < 0 ? -errno : 0;
}

int cpty_window_size(int fd, unsigned short *columns, unsigned short *rows) {
    struct winsize size;
    if (ioctl(fd, TIOCGWINSZ, &size) < 0) return -errno;
    *columns = size.ws_col;
    *rows = size.ws_row;
    return 0;
}

int cpty_reap(pid_t pid, int *status) {
    int raw;
    pid_t reaped;
    do reaped = waitpid(pid, &raw, WNOHANG); while (reaped < 0 && errno == EINTR);
    if (reaped < 0) return -errno;
    if (reaped == 0) return 0;
    *status = WIFSIGNALED(raw) ? 128 + WTERMSIG(raw) : WEXITSTATUS(raw);
    return 1;
}

// MARK: - The operator's local terminal

struct saved_descriptor {
    int fd;
    int flags;
    int is_terminal;
    struct termios settings;
};

/// Process-wide, like the descriptors themselves, so the atexit handler can reach it.
static struct saved_descriptor saved[3];
static int saved_count;
static int restore_registered;

int cpty_local_save(int fd) {
    if (saved_count == (int)(sizeof saved / sizeof saved[0])) return -ENOSPC;
    struct saved_descriptor *entry = &saved[saved_count];
    entry->fd = fd;
    entry->flags = fcntl(fd, F_GETFL);
    if (entry->flags < 0) return -errno;
    entry->is_terminal = tcgetattr(fd, &entry->settings) == 0;
    if (!restore_registered) {
        if (atexit(cpty_local_restore) != 0) return -ENOMEM;
        restore_registered = 1;
    }
    saved_count++;
    return 0;
}

int cpty_local_make_raw(int fd) {
    for (int index = 0; index < saved_count; index++) {
        if (saved[index].fd != fd || !saved[index].is_terminal) continue;
        struct termios raw = saved[index].settings;
        cfmakeraw(&raw);
        // TCSADRAIN, not TCSAFLUSH: keys typed ahead while connecting are kept and sent.
        return tcsetattr(fd, TCSADRAIN, &raw) < 0 ? -errno : 0;
    }
    return -EINVAL;
}

void cpty_local_restore(void) {
    for (int index = saved_count - 1; index >= 0; index--) {
        if (saved[index].is_terminal) tcsetattr(saved[index].fd, TCSADRAIN, &saved[index].settings);
        fcntl(saved[index].fd, F_SETFL, saved[index].flags);
    }
    saved_count = 0;
}
