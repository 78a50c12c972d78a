extension FailureCode {
    /// Each code's name and fix: a switch, so a new code cannot compile without them.
    package var entry: (name: String, fix: String) {
        switch self {
        case .configInvalid:
            (
                "config-invalid",
                "correct the named file, line or flag; `--check-config` shows every value and where it came from"
            )
        case .usage:
            (
                "usage",
                "correct the named argument or flag; `tunnel help COMMAND` shows what each takes"
            )
        case .bundleInvalid:
            (
                "bundle-invalid",
                "ask an admin for a new operator bundle (`tunnel user add NAME`) and `tunnel login` it"
            )
        case .localFile:
            (
                "local-file",
                "check the named path: that it exists (or must not), its permissions, and free disk space"
            )
        case .systemResource:
            (
                "system-resource",
                "this machine refused a descriptor, pipe or terminal: check `ulimit -n`, free memory, and that stdin/stdout are usable"
            )
        case .programMissing:
            (
                "program-missing",
                "install the named program (Debian: openssh-client, openssh-server, kubectl, tar) or put it on PATH"
            )
        case .certificateMissing:
            (
                "certificate-missing",
                "operators: `tunnel login BUNDLE` (an admin makes one with `tunnel user add`); nodes: enroll with `tunnel client --token TOKEN`"
            )
        case .certificateExpired:
            (
                "certificate-expired",
                "operators: ask an admin for a new bundle (`tunnel user add NAME`), and `tunnel renew` before expiry next time; nodes re-enroll by themselves when their client runs"
            )
        case .gatewayUnreachable:
            (
                "gateway-unreachable",
                "check that the gateway runs (`systemctl status tunnel-gateway`) and that `gateway` in your config names its address and port"
            )
        case .gatewayCAMismatch:
            (
                "gateway-ca-mismatch",
                "the gateway-ca file must be the CA of this gateway: install a fresh bundle (`tunnel login`), or take gateway-ca.crt from the gateway's pki-dir"
            )
        case .clockSkew:
            (
                "clock-skew",
                "set this machine's clock (systemd-timesyncd or chrony); certificates are checked against it"
            )
        case .gatewayRequestFailed:
            (
                "gateway-request-failed",
                "the sentence is the gateway's answer: correct the request, or read the gateway's log (`journalctl -u tunnel-gateway`)"
            )
        case .enrollmentRefused:
            (
                "enrollment-refused",
                "ask an admin for a new join token (`tunnel token create NODE`); a token works once and expires"
            )
        case .portInUse:
            (
                "port-in-use",
                "stop what listens there, or choose another address (--listen)"
            )
        case .dataDirectoryInUse:
            (
                "data-dir-in-use",
                "stop the gateway the sentence names (its pid), or give this one its own data directory (--data-dir)"
            )
        case .serviceNotDialable:
            (
                "service-not-dialable",
                "start the service on the node, or correct its HOST:PORT in the client's services"
            )
        case .auditInvalid:
            (
                "audit-invalid",
                "keep the copy as evidence; the named record is where the log stops being trustworthy (docs/AUDIT.md §7)"
            )
        case .auditNotFound:
            (
                "audit-not-found",
                "`tunnel audit ls` lists the streams and sessions there are; check --dir and the time range"
            )
        case .streamEnded:
            (
                "stream-ended",
                "retry; if it keeps happening, run `tunnel doctor` here and `tunnel doctor --node` on the node"
            )
        case .unknownNode:
            (
                "unknown-node",
                "check the name with `tunnel nodes`; on the node, `systemctl status tunnel-client` and `tunnel doctor --node`"
            )
        case .unknownService:
            (
                "unknown-service",
                "`tunnel nodes` lists each node's services; add it to the node's `services` (or shell-user, log-sources)"
            )
        case .serviceUnreachable:
            (
                "service-unreachable",
                "start the service on the node, or correct its HOST:PORT in the client's services (`tunnel doctor --node` on the node)"
            )
        case .badRequest:
            (
                "bad-request",
                "use the same tunnel release on both ends (`tunnel version`)"
            )
        case .wrongRole:
            (
                "wrong-role",
                "use an operator bundle for operator commands and a node certificate for `tunnel client`"
            )
        case .replaced:
            (
                "replaced",
                "another machine uses the same node identity: give each machine its own join token"
            )
        case .nodeDisconnected:
            (
                "node-disconnected",
                "the node went away during the stream: retry once `tunnel nodes` lists it again"
            )
        case .denied:
            (
                "denied",
                "ask an admin for a role that allows this service on this node (`tunnel policy show`)"
            )
        case .revoked:
            (
                "revoked",
                "your identity was revoked or expired unrenewed: ask an admin for a new bundle (operators) or a new token (nodes)"
            )
        case .auditUnavailable:
            (
                "audit-unavailable",
                "on the gateway: free disk space or fix the audit directory; streams resume once the log can be written"
            )
        case .nodeBusy:
            (
                "node-busy",
                "retry when some of the node's streams have closed; an admin can raise its stream limits"
            )
        }
    }
}
