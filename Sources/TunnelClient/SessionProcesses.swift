import Glibc

/// The processes of one session, read from /proc. A shell's jobs run in process groups of
/// their own (job control), so a signal to the shell's group alone misses a foreground
/// `sleep`; the session holds them all.
package enum SessionProcesses {
    /// The process groups with at least one live member in session `session`. Bounded by the
    /// number of processes on the machine; a process that ends during the scan is skipped, and
    /// so is a zombie: it can take no signal, and an orphan one stays until whoever reaps
    /// orphans does (in a container that may be never).
    package static func groups(inSession session: pid_t) -> Set<pid_t> {
        guard let directory = opendir("/proc") else { return [] }
        defer { closedir(directory) }
        var groups: Set<pid_t> = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let pid = pid_t(name), let member = statFields(of: pid), member.session == session, !member.ended
            else { continue }
            groups.insert(member.group)
        }
        return groups
    }

    /// Fields 3, 5 and 6 of /proc/PID/stat: ended (a zombie, or dead), process group and
    /// session. The command name (field 2) may hold spaces and parentheses, so the fields are
    /// counted from its last `)`.
    private static func statFields(of pid: pid_t) -> (ended: Bool, group: pid_t, session: pid_t)? {
        let descriptor = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count > 0, let nameEnd = buffer[..<count].lastIndex(of: UInt8(ascii: ")")) else { return nil }
        // After the name: state, ppid, pgrp, session.
        let fields = buffer[(nameEnd + 1)..<count].split(separator: UInt8(ascii: " "), maxSplits: 5)
        guard fields.count >= 4, let group = pid_t(String(decoding: fields[2], as: UTF8.self)),
            let session = pid_t(String(decoding: fields[3], as: UTF8.self))
        else { return nil }
        let state = fields[0].first
        return (state == UInt8(ascii: "Z") || state == UInt8(ascii: "X"), group, session)
    }
}
