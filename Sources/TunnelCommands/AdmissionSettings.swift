import ArgumentParser
import Glibc
import TunnelGateway

/// The gateway's admission limits as settings. docs/TUNNEL.md §7 lists what a peer gets at each.
enum AdmissionSettings {
    typealias Field<Value> = WritableKeyPath<GatewaySettings, Value> & Sendable

    /// One limit: its key, its field, its default (the `AdmissionLimits` default), its help and
    /// the least it may be: a count its `minimum`, a duration a second.
    private enum Limit: Sendable {
        case count(String, Field<Int>, Int, minimum: Int = 1, String)
        case duration(String, Field<Duration>, Duration, String)

        var setting: Setting<GatewaySettings> {
            switch self {
            case .count(let key, let field, let value, _, let help):
                Setting(key, .integer, .defaultValue(String(value)), field, help: help, example: String(value))
            case .duration(let key, let field, let value, let help):
                Setting(
                    key, .duration, .defaultValue(DurationText.format(value)), field, help: help,
                    example: DurationText.format(value))
            }
        }

        func check(_ settings: GatewaySettings) throws(CommandFailure) {
            switch self {
            case .count(let key, let field, _, let minimum, _):
                let value = settings[keyPath: field]
                guard value >= minimum else {
                    throw .usage("\(key) must be at least \(minimum) (got \(value))", .configInvalid)
                }
            case .duration(let key, let field, _, _):
                let value = settings[keyPath: field]
                guard value >= .seconds(1) else {
                    throw .usage("\(key) must be at least 1s (got \(DurationText.format(value)))", .configInvalid)
                }
            }
        }
    }

    private static let limits: [Limit] = {
        let defaults = AdmissionLimits()
        return [
            .count(
                "max-pending-handshakes", \.admission.pendingHandshakes, defaults.pendingHandshakes,
                "TLS handshakes in progress at once; beyond it the oldest of the busiest source is dropped"),
            .count(
                "max-pending-handshakes-per-source", \.admission.pendingHandshakesPerSource,
                defaults.pendingHandshakesPerSource, "TLS handshakes in progress from one IPv4 address or IPv6 /64"),
            .count(
                "accepts-per-turn", \.admission.acceptsPerTurn, defaults.acceptsPerTurn,
                "New connections taken from the kernel's accept queue per loop turn (none more once 10 ms went by)"),
            .count(
                "max-enrollment-connections", \.admission.enrollmentConnections, defaults.enrollmentConnections,
                "Enrollment connections (no certificate) open at once"),
            .count(
                "max-enrollment-connections-per-source", \.admission.enrollmentConnectionsPerSource,
                defaults.enrollmentConnectionsPerSource, "Enrollment connections open at once from one source"),
            .duration(
                "enrollment-deadline", \.admission.enrollmentDeadline, defaults.enrollmentDeadline,
                "An enrollment connection is closed this long after it opens, whatever it does"),
            .count(
                "connections-per-source-per-minute", \.admission.connectionsPerSourcePerMinute,
                defaults.connectionsPerSourcePerMinute,
                "New connections one source may make a minute (those that authenticate are not counted)"),
            .count(
                "enrollments-per-source-per-minute", \.admission.enrollmentsPerSourcePerMinute,
                defaults.enrollmentsPerSourcePerMinute, "Enrollment requests one source may make a minute"),
            .duration(
                "refusal-summary-interval", \.admission.refusalSummaryInterval, defaults.refusalSummaryInterval,
                "Refusals are audited as one count per source or operator per interval"),
            .count(
                "streams-per-operator-per-node", \.admission.streamsPerOperatorPerNode,
                defaults.streamsPerOperatorPerNode,
                "Streams one operator may have open to one node (admins: the node's capacity)"),
            // The reserve may be 0, and stays below a node's capacity (`check`).
            .count(
                "admin-reserved-streams-per-node", \.admission.adminReservedStreamsPerNode,
                defaults.adminReservedStreamsPerNode, minimum: 0,
                "Streams of each node kept for operators whose role has admin: true"),
            .count(
                "stream-records-per-operator-per-minute", \.admission.streamRecordsPerOperatorPerMinute,
                defaults.streamRecordsPerOperatorPerMinute,
                "Stream opens and denials of one operator audited one by one a minute; more opens are refused, more denials counted"
            ),
        ]
    }()

    /// One setting per limit.
    static let declarations = limits.map(\.setting)

    /// Each limit at least its least value, and the admins' reserve below a node's `capacity`.
    static func check(_ settings: GatewaySettings, nodeCapacity: Int) throws(CommandFailure) {
        for limit in limits { try limit.check(settings) }
        let reserve = settings.admission.adminReservedStreamsPerNode
        guard reserve < nodeCapacity else {
            throw .usage(
                "admin-reserved-streams-per-node must be below a node's \(nodeCapacity) streams (got \(reserve))",
                .configInvalid)
        }
    }

    /// Raises this process's open-file limit to its hard limit, then says whether the anonymous
    /// caps leave half of it to nodes and operators. Returns the limit in force and the limits
    /// fitted to it (the hello pool may be cut).
    static func checkDescriptors(_ limits: AdmissionLimits) throws(CommandFailure) -> (
        descriptors: Int, fitted: AdmissionLimits
    ) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (Int.max, limits) }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        let descriptors = Int(clamping: limit.rlim_cur)
        if let problem = limits.problem(descriptorLimit: descriptors) { throw .usage(problem, .configInvalid) }
        return (descriptors, limits.fitted(toDescriptorLimit: descriptors))
    }
}

/// The admission settings' flags on `tunnel gateway`, kept apart from its other flags.
struct AdmissionFlags: ParsableArguments {
    private static let schema = Schemas.gateway
    @Option(help: schema.argumentHelp("max-pending-handshakes")) var maxPendingHandshakes: String?
    @Option(help: schema.argumentHelp("max-pending-handshakes-per-source")) var maxPendingHandshakesPerSource: String?
    @Option(help: schema.argumentHelp("accepts-per-turn")) var acceptsPerTurn: String?
    @Option(help: schema.argumentHelp("max-enrollment-connections")) var maxEnrollmentConnections: String?
    @Option(help: schema.argumentHelp("max-enrollment-connections-per-source")) var maxEnrollmentConnectionsPerSource:
        String?
    @Option(help: schema.argumentHelp("enrollment-deadline")) var enrollmentDeadline: String?
    @Option(help: schema.argumentHelp("connections-per-source-per-minute")) var connectionsPerSourcePerMinute: String?
    @Option(help: schema.argumentHelp("enrollments-per-source-per-minute")) var enrollmentsPerSourcePerMinute: String?
    @Option(help: schema.argumentHelp("refusal-summary-interval")) var refusalSummaryInterval: String?
    @Option(help: schema.argumentHelp("streams-per-operator-per-node")) var streamsPerOperatorPerNode: String?
    @Option(help: schema.argumentHelp("admin-reserved-streams-per-node")) var adminReservedStreamsPerNode: String?
    @Option(help: schema.argumentHelp("stream-records-per-operator-per-minute")) var streamRecordsPerOperatorPerMinute:
        String?

    var flags: [String: [String]] {
        given([
            ("max-pending-handshakes", maxPendingHandshakes),
            ("max-pending-handshakes-per-source", maxPendingHandshakesPerSource),
            ("accepts-per-turn", acceptsPerTurn),
            ("max-enrollment-connections", maxEnrollmentConnections),
            ("max-enrollment-connections-per-source", maxEnrollmentConnectionsPerSource),
            ("enrollment-deadline", enrollmentDeadline),
            ("connections-per-source-per-minute", connectionsPerSourcePerMinute),
            ("enrollments-per-source-per-minute", enrollmentsPerSourcePerMinute),
            ("refusal-summary-interval", refusalSummaryInterval),
            ("streams-per-operator-per-node", streamsPerOperatorPerNode),
            ("admin-reserved-streams-per-node", adminReservedStreamsPerNode),
            ("stream-records-per-operator-per-minute", streamRecordsPerOperatorPerMinute),
        ])
    }
}
