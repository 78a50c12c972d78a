import ArgumentParser
import Glibc
import TunnelGateway

/// The gateway's admission limits as settings. docs/TUNNEL.md §7 lists what a peer gets at each.
enum AdmissionSettings {
    /// One setting per limit, its default the `AdmissionLimits` default.
    static let specs: [SettingSpec] = {
        let defaults = AdmissionLimits()
        func count(_ key: String, _ value: Int, _ help: String) -> SettingSpec {
            SettingSpec(key, .integer, .defaultValue(String(value)), help: help, example: String(value))
        }
        func duration(_ key: String, _ value: Duration, _ help: String) -> SettingSpec {
            SettingSpec(key, .duration, .defaultValue(DurationText.format(value)), help: help, example: DurationText.format(value))
        }
        return [
            count("max-pending-handshakes", defaults.pendingHandshakes, "TLS handshakes in progress at once; beyond it the oldest of the busiest source is dropped"),
            count("max-pending-handshakes-per-source", defaults.pendingHandshakesPerSource, "TLS handshakes in progress from one IPv4 address or IPv6 /64"),
            count("max-enrollment-connections", defaults.enrollmentConnections, "Enrollment connections (no certificate) open at once"),
            count("max-enrollment-connections-per-source", defaults.enrollmentConnectionsPerSource, "Enrollment connections open at once from one source"),
            duration("enrollment-deadline", defaults.enrollmentDeadline, "An enrollment connection is closed this long after it opens, whatever it does"),
            count("connections-per-source-per-minute", defaults.connectionsPerSourcePerMinute, "New connections one source may make a minute (those that authenticate are not counted)"),
            count("enrollments-per-source-per-minute", defaults.enrollmentsPerSourcePerMinute, "Enrollment requests one source may make a minute"),
            duration("refusal-summary-interval", defaults.refusalSummaryInterval, "Refusals are audited as one count per source or operator per interval"),
            count("streams-per-operator-per-node", defaults.streamsPerOperatorPerNode, "Streams one operator may have open to one node (admins: the node's capacity)"),
            count("admin-reserved-streams-per-node", defaults.adminReservedStreamsPerNode, "Streams of each node kept for operators whose role has admin: true"),
            count("stream-records-per-operator-per-minute", defaults.streamRecordsPerOperatorPerMinute, "Stream opens and denials of one operator audited one by one a minute; more opens are refused, more denials counted"),
        ]
    }()

    /// The limits from resolved settings (checked by `check` before the gateway starts).
    static func limits(_ s: ResolvedSettings) -> AdmissionLimits {
        var limits = AdmissionLimits()
        limits.pendingHandshakes = s.integer("max-pending-handshakes")!
        limits.pendingHandshakesPerSource = s.integer("max-pending-handshakes-per-source")!
        limits.enrollmentConnections = s.integer("max-enrollment-connections")!
        limits.enrollmentConnectionsPerSource = s.integer("max-enrollment-connections-per-source")!
        limits.enrollmentDeadline = s.duration("enrollment-deadline")!
        limits.connectionsPerSourcePerMinute = s.integer("connections-per-source-per-minute")!
        limits.enrollmentsPerSourcePerMinute = s.integer("enrollments-per-source-per-minute")!
        limits.refusalSummaryInterval = s.duration("refusal-summary-interval")!
        limits.streamsPerOperatorPerNode = s.integer("streams-per-operator-per-node")!
        limits.adminReservedStreamsPerNode = s.integer("admin-reserved-streams-per-node")!
        limits.streamRecordsPerOperatorPerMinute = s.integer("stream-records-per-operator-per-minute")!
        return limits
    }

    /// Counts must be positive (the admins' reserve may be 0 and stays below a node's
    /// `capacity`), durations at least a second.
    static func check(_ limits: AdmissionLimits, nodeCapacity: Int) throws(CommandFailure) {
        let counts: [(String, Int, Int)] = [
            ("max-pending-handshakes", limits.pendingHandshakes, 1), ("max-pending-handshakes-per-source", limits.pendingHandshakesPerSource, 1),
            ("max-enrollment-connections", limits.enrollmentConnections, 1), ("max-enrollment-connections-per-source", limits.enrollmentConnectionsPerSource, 1),
            ("connections-per-source-per-minute", limits.connectionsPerSourcePerMinute, 1), ("enrollments-per-source-per-minute", limits.enrollmentsPerSourcePerMinute, 1),
            ("streams-per-operator-per-node", limits.streamsPerOperatorPerNode, 1), ("admin-reserved-streams-per-node", limits.adminReservedStreamsPerNode, 0),
            ("stream-records-per-operator-per-minute", limits.streamRecordsPerOperatorPerMinute, 1),
        ]
        for (key, value, minimum) in counts where value < minimum {
            throw .usage("\(key) must be at least \(minimum) (got \(value))", .configInvalid)
        }
        guard limits.adminReservedStreamsPerNode < nodeCapacity else {
            throw .usage("admin-reserved-streams-per-node must be below a node's \(nodeCapacity) streams (got \(limits.adminReservedStreamsPerNode))", .configInvalid)
        }
        for (key, value) in [("enrollment-deadline", limits.enrollmentDeadline), ("refusal-summary-interval", limits.refusalSummaryInterval)] where value < .seconds(1) {
            throw .usage("\(key) must be at least 1s (got \(DurationText.format(value)))", .configInvalid)
        }
    }

    /// Raises this process's open-file limit to its hard limit, then says whether the anonymous
    /// caps leave half of it to nodes and operators. Returns the limit in force.
    static func checkDescriptors(_ limits: AdmissionLimits) throws(CommandFailure) -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return Int.max }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        let descriptors = Int(clamping: limit.rlim_cur)
        if let problem = limits.problem(descriptorLimit: descriptors) { throw .usage(problem, .configInvalid) }
        return descriptors
    }
}

/// The admission settings' flags on `tunnel gateway`, kept apart from its other flags.
struct AdmissionFlags: ParsableArguments {
    private static let schema = Schemas.gateway
    @Option(help: schema.argumentHelp("max-pending-handshakes")) var maxPendingHandshakes: String?
    @Option(help: schema.argumentHelp("max-pending-handshakes-per-source")) var maxPendingHandshakesPerSource: String?
    @Option(help: schema.argumentHelp("max-enrollment-connections")) var maxEnrollmentConnections: String?
    @Option(help: schema.argumentHelp("max-enrollment-connections-per-source")) var maxEnrollmentConnectionsPerSource: String?
    @Option(help: schema.argumentHelp("enrollment-deadline")) var enrollmentDeadline: String?
    @Option(help: schema.argumentHelp("connections-per-source-per-minute")) var connectionsPerSourcePerMinute: String?
    @Option(help: schema.argumentHelp("enrollments-per-source-per-minute")) var enrollmentsPerSourcePerMinute: String?
    @Option(help: schema.argumentHelp("refusal-summary-interval")) var refusalSummaryInterval: String?
    @Option(help: schema.argumentHelp("streams-per-operator-per-node")) var streamsPerOperatorPerNode: String?
    @Option(help: schema.argumentHelp("admin-reserved-streams-per-node")) var adminReservedStreamsPerNode: String?
    @Option(help: schema.argumentHelp("stream-records-per-operator-per-minute")) var streamRecordsPerOperatorPerMinute: String?

    var flags: [String: [String]] {
        given([("max-pending-handshakes", maxPendingHandshakes), ("max-pending-handshakes-per-source", maxPendingHandshakesPerSource),
               ("max-enrollment-connections", maxEnrollmentConnections), ("max-enrollment-connections-per-source", maxEnrollmentConnectionsPerSource),
               ("enrollment-deadline", enrollmentDeadline), ("connections-per-source-per-minute", connectionsPerSourcePerMinute),
               ("enrollments-per-source-per-minute", enrollmentsPerSourcePerMinute), ("refusal-summary-interval", refusalSummaryInterval),
               ("streams-per-operator-per-node", streamsPerOperatorPerNode), ("admin-reserved-streams-per-node", adminReservedStreamsPerNode),
               ("stream-records-per-operator-per-minute", streamRecordsPerOperatorPerMinute)])
    }
}
