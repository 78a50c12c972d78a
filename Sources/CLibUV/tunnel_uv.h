#ifndef TUNNEL_CLIBUV_H
#define TUNNEL_CLIBUV_H

/// Shims over libuv for Swift. libuv models handle "inheritance" as a shared
/// struct prefix and leaves some socket options to the raw file descriptor;
/// neither is expressible from Swift, so each gap gets one small prefixed
/// `static inline` function here.

#include <uv.h>

#include <errno.h>
#include <limits.h>
#include <linux/sockios.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

// MARK: - Handle casts (every uv_*_t starts with the uv_handle_t fields)

static inline uv_handle_t *tunnel_uv_tcp_as_handle(uv_tcp_t *tcp) { return (uv_handle_t *)tcp; }
static inline uv_stream_t *tunnel_uv_tcp_as_stream(uv_tcp_t *tcp) { return (uv_stream_t *)tcp; }
static inline uv_handle_t *tunnel_uv_pipe_as_handle(uv_pipe_t *pipe) { return (uv_handle_t *)pipe; }
static inline uv_stream_t *tunnel_uv_pipe_as_stream(uv_pipe_t *pipe) { return (uv_stream_t *)pipe; }
static inline uv_handle_t *tunnel_uv_timer_as_handle(uv_timer_t *timer) { return (uv_handle_t *)timer; }
static inline uv_handle_t *tunnel_uv_signal_as_handle(uv_signal_t *signal) { return (uv_handle_t *)signal; }
static inline uv_handle_t *tunnel_uv_async_as_handle(uv_async_t *async) { return (uv_handle_t *)async; }
static inline uv_handle_t *tunnel_uv_prepare_as_handle(uv_prepare_t *prepare) { return (uv_handle_t *)prepare; }
static inline uv_req_t *tunnel_uv_getaddrinfo_as_req(uv_getaddrinfo_t *req) { return (uv_req_t *)req; }

/// Memory for whichever stream handle a StreamConnection owns: a TCP socket or a pipe.
typedef union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
} tunnel_uv_stream_storage;

static inline uv_tcp_t *_Nonnull tunnel_uv_storage_tcp(tunnel_uv_stream_storage *_Nonnull storage) { return &storage->tcp; }
static inline uv_pipe_t *_Nonnull tunnel_uv_storage_pipe(tunnel_uv_stream_storage *_Nonnull storage) { return &storage->pipe; }
/// The fields both members begin with: what handle and stream calls take, whichever member it is.
static inline uv_handle_t *_Nonnull tunnel_uv_storage_handle(tunnel_uv_stream_storage *_Nonnull storage) {
    return (uv_handle_t *)storage;
}
static inline uv_stream_t *_Nonnull tunnel_uv_storage_stream(tunnel_uv_stream_storage *_Nonnull storage) {
    return (uv_stream_t *)storage;
}

// MARK: - Buffers

/// uv_buf_t takes a `char *` and an `unsigned int` length; this takes what Swift has.
static inline uv_buf_t tunnel_uv_buf(void *base, size_t length) {
    return uv_buf_init((char *)base, (unsigned int)length);
}

// MARK: - Socket options libuv does not expose

/// Sets TCP_USER_TIMEOUT: how long sent data may stay unacknowledged before
/// the kernel drops the connection. Needs an open socket (after connect/accept).
static inline int tunnel_uv_tcp_set_user_timeout(uv_tcp_t *tcp, unsigned int milliseconds) {
    uv_os_fd_t fd;
    int rc = uv_fileno((const uv_handle_t *)tcp, &fd);
    if (rc != 0) return rc;
    if (setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &milliseconds, sizeof milliseconds) != 0) return -errno;
    return 0;
}

/// Sets the keepalive probe interval and count; libuv 1.44's uv_tcp_keepalive
/// only sets the idle delay and leaves the kernel defaults (75 s x 9) for these.
static inline int tunnel_uv_tcp_set_keepalive_probes(uv_tcp_t *tcp, int interval_seconds, int probe_count) {
    uv_os_fd_t fd;
    int rc = uv_fileno((const uv_handle_t *)tcp, &fd);
    if (rc != 0) return rc;
    if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_seconds, sizeof interval_seconds) != 0) return -errno;
    if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probe_count, sizeof probe_count) != 0) return -errno;
    return 0;
}

/// Sets TCP_NOTSENT_LOWAT: the kernel reports the socket writable, and takes more bytes, only
/// while fewer than `bytes` of what it holds are still unsent. Bytes that would queue in the kernel
/// wait in user space instead, where a scheduler can still put a keystroke ahead of them.
static inline int tunnel_uv_tcp_set_notsent_lowat(uv_tcp_t *tcp, unsigned int bytes) {
    uv_os_fd_t fd;
    int rc = uv_fileno((const uv_handle_t *)tcp, &fd);
    if (rc != 0) return rc;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &bytes, sizeof bytes) != 0) return -errno;
    return 0;
}

/// Sends what the kernel takes at once of `length` bytes straight to the stream, when libuv has
/// nothing queued ahead of them (0 otherwise, and on any error: libuv's own write of the rest then
/// meets the error and reports it). `ends_segment` (TCP only) sends with MSG_EOR, which ends the
/// kernel's segment with these bytes, so the next write starts a new one, and the kernel takes a
/// new segment only while its unsent bytes are under TCP_NOTSENT_LOWAT: without it a write is
/// appended to the last segment (up to 64 KiB with GSO) unchecked, and the unsent bytes pass the
/// mark by tens of KiB.
static inline size_t tunnel_uv_try_send(uv_stream_t *stream, const void *base, size_t length, int ends_segment) {
    if (uv_stream_get_write_queue_size(stream) != 0) return 0;
    if (!ends_segment) {
        uv_buf_t buffer = uv_buf_init((char *)base, length > UINT_MAX ? UINT_MAX : (unsigned int)length);
        int sent = uv_try_write(stream, &buffer, 1);
        return sent < 0 ? 0 : (size_t)sent;
    }
    uv_os_fd_t fd;
    if (uv_fileno((const uv_handle_t *)stream, &fd) != 0) return 0;
    ssize_t sent;
    do {
        sent = send(fd, base, length, MSG_EOR | MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    return sent < 0 ? 0 : (size_t)sent;
}

/// Bytes the kernel holds for a TCP connection that it has not sent yet (SIOCOUTQNSD).
static inline int tunnel_uv_tcp_unsent_bytes(uv_tcp_t *tcp, int *bytes) {
    uv_os_fd_t fd;
    int rc = uv_fileno((const uv_handle_t *)tcp, &fd);
    if (rc != 0) return rc;
    if (ioctl(fd, SIOCOUTQNSD, bytes) != 0) return -errno;
    return 0;
}

/// What the kernel knows of a TCP connection's path (TCP_INFO): its smoothed round-trip time in
/// microseconds, its most recent delivery rate in bytes per second, and whether that rate was
/// limited by the application (then it is only a lower bound of the path's). The kernel's struct
/// (linux/tcp.h) cannot be included next to glibc's older one, which uv.h brings in and which
/// stops before the delivery rate; the kernel only ever appends to it, so the two fields are read
/// at their fixed offsets, and count as unknown (0) on a kernel too old to fill them.
static inline int tunnel_uv_tcp_path(uv_tcp_t *tcp, unsigned int *microseconds, unsigned long long *delivery_rate,
                                     int *application_limited) {
    enum { delivery_rate_offset = 160, application_limited_byte = 7 };
    uv_os_fd_t fd;
    int rc = uv_fileno((const uv_handle_t *)tcp, &fd);
    if (rc != 0) return rc;
    union {
        struct tcp_info info;
        unsigned char bytes[256];
    } kernel;
    memset(&kernel, 0, sizeof kernel);
    socklen_t length = sizeof kernel;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &kernel, &length) != 0) return -errno;
    *microseconds = kernel.info.tcpi_rtt;
    *delivery_rate = 0;
    if (length >= delivery_rate_offset + sizeof *delivery_rate)
        memcpy(delivery_rate, kernel.bytes + delivery_rate_offset, sizeof *delivery_rate);
    *application_limited = kernel.bytes[application_limited_byte] & 1;
    return 0;
}

// MARK: - Socket addresses (always carried in a sockaddr_storage)

/// Parses a numeric IPv4 or IPv6 address (with optional %scope) into `out`.
static inline int tunnel_sockaddr_from_ip(const char *ip, int port, struct sockaddr_storage *out) {
    memset(out, 0, sizeof *out);
    if (uv_ip4_addr(ip, port, (struct sockaddr_in *)out) == 0) return 0;
    memset(out, 0, sizeof *out);
    return uv_ip6_addr(ip, port, (struct sockaddr_in6 *)out);
}

/// Copies an address of either family into `out`; returns UV_EAFNOSUPPORT for others.
static inline int tunnel_sockaddr_copy(const struct sockaddr *address, struct sockaddr_storage *out) {
    memset(out, 0, sizeof *out);
    switch (address->sa_family) {
    case AF_INET: memcpy(out, address, sizeof(struct sockaddr_in)); return 0;
    case AF_INET6: memcpy(out, address, sizeof(struct sockaddr_in6)); return 0;
    default: return UV_EAFNOSUPPORT;
    }
}

static inline int tunnel_sockaddr_is_ipv6(const struct sockaddr_storage *address) {
    return address->ss_family == AF_INET6;
}

static inline int tunnel_sockaddr_port(const struct sockaddr_storage *address) {
    switch (address->ss_family) {
    case AF_INET: return ntohs(((const struct sockaddr_in *)address)->sin_port);
    case AF_INET6: return ntohs(((const struct sockaddr_in6 *)address)->sin6_port);
    default: return 0;
    }
}

/// Writes the numeric host (no port, no brackets) into `buffer`.
static inline int tunnel_sockaddr_ip(const struct sockaddr_storage *address, char *buffer, size_t size) {
    return uv_ip_name((const struct sockaddr *)address, buffer, size);
}

static inline int tunnel_uv_tcp_bind(uv_tcp_t *tcp, const struct sockaddr_storage *address, int ipv6_only) {
    return uv_tcp_bind(tcp, (const struct sockaddr *)address, ipv6_only ? UV_TCP_IPV6ONLY : 0);
}

static inline int tunnel_uv_tcp_connect(uv_connect_t *request, uv_tcp_t *tcp,
                                        const struct sockaddr_storage *address, uv_connect_cb callback) {
    return uv_tcp_connect(request, tcp, (const struct sockaddr *)address, callback);
}

/// Refuses what SocketAddress cannot describe, such as the AF_UNIX name of a Unix socket
/// connection that asks for its IP address.
static inline int tunnel_sockaddr_require_ip(int status, const struct sockaddr_storage *address) {
    if (status != 0) return status;
    return address->ss_family == AF_INET || address->ss_family == AF_INET6 ? 0 : UV_EAFNOSUPPORT;
}

static inline int tunnel_uv_tcp_local_address(const uv_tcp_t *tcp, struct sockaddr_storage *out) {
    int length = (int)sizeof *out;
    memset(out, 0, sizeof *out);
    return tunnel_sockaddr_require_ip(uv_tcp_getsockname(tcp, (struct sockaddr *)out, &length), out);
}

static inline int tunnel_uv_tcp_peer_address(const uv_tcp_t *tcp, struct sockaddr_storage *out) {
    int length = (int)sizeof *out;
    memset(out, 0, sizeof *out);
    return tunnel_sockaddr_require_ip(uv_tcp_getpeername(tcp, (struct sockaddr *)out, &length), out);
}

// MARK: - Unix domain sockets

/// libuv 1.44 silently truncates a path longer than `sun_path` (1.46's uv_pipe_bind2 refuses it),
/// which would bind or connect to some other file; an empty path would name an abstract socket.
/// Both are refused here, before libuv sees them.
static inline int tunnel_uv_unix_path_check(const char *path) {
    size_t length = strlen(path);
    if (length == 0) return UV_EINVAL;
    return length < sizeof(((struct sockaddr_un *)0)->sun_path) ? 0 : UV_ENAMETOOLONG;
}

/// `path` must have passed tunnel_uv_unix_path_check.
static inline void tunnel_unix_address(const char *path, struct sockaddr_un *address) {
    memset(address, 0, sizeof *address);
    address->sun_family = AF_UNIX;
    strcpy(address->sun_path, path);
}

/// Binds a new socket at `path` whose file is never more open than `mode`, then hands it to
/// `pipe`. Linux creates the file with the socket inode's mode less the umask, so an fchmod before
/// bind narrows it without touching the process-wide umask, which other threads' mkdir and open
/// would see. libuv does not know the path, so it will not unlink it on close: the caller does.
static inline int tunnel_uv_pipe_bind_mode(uv_pipe_t *pipe, const char *path, mode_t mode) {
    int rc = tunnel_uv_unix_path_check(path);
    if (rc != 0) return rc;
    struct sockaddr_un address;
    tunnel_unix_address(path, &address);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (fchmod(fd, mode) != 0 || bind(fd, (const struct sockaddr *)&address, sizeof address) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    rc = uv_pipe_open(pipe, fd);
    if (rc != 0) {
        unlink(path);
        close(fd);
    }
    return rc;
}

/// Returns only the path check's error: libuv reports every other failure to `callback`.
static inline int tunnel_uv_pipe_connect(uv_connect_t *request, uv_pipe_t *pipe, const char *path,
                                         uv_connect_cb callback) {
    int rc = tunnel_uv_unix_path_check(path);
    if (rc != 0) return rc;
    uv_pipe_connect(request, pipe, path, callback);
    return 0;
}

/// Whether something listens on the Unix socket file at `path`: 1 if a connect is accepted or
/// queued, 0 if it is refused (a file left behind by a process that died without unlinking it),
/// or a negative libuv error. Non-blocking, so a listener with a full backlog counts as live
/// (EAGAIN) rather than stalling the caller.
static inline int tunnel_uv_unix_has_listener(const char *path) {
    int rc = tunnel_uv_unix_path_check(path);
    if (rc != 0) return rc;
    struct sockaddr_un address;
    tunnel_unix_address(path, &address);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int error = connect(fd, (const struct sockaddr *)&address, sizeof address) == 0 ? 0 : errno;
    close(fd);
    switch (error) {
    case 0: case EAGAIN: case EINPROGRESS: return 1;
    case ECONNREFUSED: return 0;
    default: return -error;
    }
}

/// The peer's pid, uid and gid as the kernel recorded them at connect time (SO_PEERCRED).
/// UV_EAFNOSUPPORT for a socket of another family (Linux would report placeholder ids for TCP),
/// UV_ENOTSOCK for a pipe or terminal.
static inline int tunnel_uv_peer_credentials(const uv_stream_t *stream, int *pid, unsigned int *uid,
                                             unsigned int *gid) {
    uv_os_fd_t fd;
    int rc = uv_fileno((const uv_handle_t *)stream, &fd);
    if (rc != 0) return rc;
    int domain = 0;
    socklen_t length = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) != 0) return -errno;
    if (domain != AF_UNIX) return UV_EAFNOSUPPORT;
    // struct ucred's layout (the Linux ABI): glibc declares it only under _GNU_SOURCE, which this
    // header cannot switch on for <sys/socket.h>, built separately in the Glibc module.
    struct { pid_t pid; uid_t uid; gid_t gid; } credentials;
    length = sizeof credentials;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return -errno;
    *pid = credentials.pid;
    *uid = credentials.uid;
    *gid = credentials.gid;
    return 0;
}

// MARK: - Name resolution

/// Starts a TCP-only lookup with a numeric service, so "host:port" never
/// consults /etc/services and never yields UDP or raw duplicates.
static inline int tunnel_uv_getaddrinfo_tcp(uv_loop_t *loop, uv_getaddrinfo_t *request, uv_getaddrinfo_cb callback,
                                            const char *host, const char *port) {
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV;
    return uv_getaddrinfo(loop, request, callback, host, port, &hints);
}

#endif
