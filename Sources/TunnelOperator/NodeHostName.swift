import TunnelText

/// The host-name suffix that routes `ssh` through the tunnel: `ssh root@node-17.tunnel`.
public let sshHostSuffix = ".tunnel"

/// The node name in a host name from ssh's `%h`: `node-17.tunnel` → `node-17`.
///
/// Exactly one trailing `.tunnel` is removed (case-insensitively, since ssh lower-cases);
/// a name without the suffix is taken as it is. Returns nil when what remains is not a valid
/// node name, so `tunnel proxy` can refuse with a clear message.
public func nodeName(fromSSHHost host: String) -> String? {
    // ASCII only: `lowercased()` would turn the Kelvin sign (U+212A) into `k`, an alias.
    var name = Names.asciiLowercased(host)
    if name.hasSuffix(".") { name.removeLast() }
    if name.hasSuffix(sshHostSuffix) { name.removeLast(sshHostSuffix.count) }
    return NameKind.node.accepts(name) ? name : nil
}
