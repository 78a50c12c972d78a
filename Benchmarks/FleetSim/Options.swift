import Foundation

/// The simulator's command line. Every flag is `--name VALUE`; see `usage`.
struct Options {
    var gatewayHost = "127.0.0.1"
    var gatewayPort: UInt16 = 7443
    var serverName = "localhost"
    var nodes = 0
    var namePrefix = "sim-"
    var identities: String?
    var token: String?
    var enrollConcurrency = 32
    var enrollOnly = false
    var loops = 2
    var sourceBase = "127.1.0.1"
    var operatorBundles: [String] = []
    var streamsPerOperator = 10
    var streamRate = 0.0
    var sizes: [(bytes: Int, weight: Int)] = [(1024, 50), (64 * 1024, 30), (1 << 20, 15), (16 << 20, 5)]
    var services: [(name: String, weight: Int)] = [("echo", 3), ("sink", 1)]
    var duration = 0.0
    var flapFraction = 0.0
    var flapInterval = 60.0
    var flapDowntime = 1.0
    var stallTimeout = 30.0
    var settleTimeout = 120.0
    var onlineTimeout = 600.0
    var report: String?
    var nodeState: String?
    var statusInterval = 1.0
    var loadDelay = 0.0
    var linger = 0.0
    var openBeforeHello = false
    var connectRate = 0.0
    var fullHandshakes = false

    static let usage = """
        fleet-sim: N virtual nodes and M virtual operators in one process, on the real protocol.
          --gateway HOST:PORT        the gateway (127.0.0.1:7443)
          --server-name NAME         the name the gateway's certificate carries (localhost)
          --nodes N                  virtual nodes, named PREFIX00000 … (0)
          --name-prefix P            (sim-)
          --identities DIR           enrolled keys and certificates, reused across runs
          --token TOKEN              join token to enroll the nodes DIR does not hold yet
          --enroll-concurrency N     enrollments in flight (32)
          --enroll-only              enroll, report, exit
          --loops N                  event loops (threads) (2)
          --source-base IP           node i dials from IP + i, so each node is its own source (127.1.0.1)
          --operator-bundle FILE     an operator bundle from `tunnel user add`; repeat for more operators
          --streams-per-operator N   concurrent streams each operator keeps open (10)
          --stream-rate R            new streams per second per operator, 0 for as fast as they finish (0)
          --sizes SIZE:WEIGHT,...    stream sizes (1K:50,64K:30,1M:15,16M:5)
          --services NAME:WEIGHT,... echo and sink (echo:3,sink:1)
          --duration D               operator load time; 0 runs until SIGINT/SIGTERM (0)
          --flap-fraction F          fraction of nodes dropped every flap interval (0)
          --flap-interval D          (60s)
          --flap-downtime D          how long a dropped node stays away before it redials (1s)
          --stall-timeout D          a stream without progress this long is lost (30s)
          --settle-timeout D         after the load, how long to wait for streams and nodes (120s)
          --online-timeout D         how long to wait for the whole fleet at start (600s)
          --report FILE              the final report as JSON
          --node-state FILE          at the end, one line per node: name online sessions last-connect-unix
          --status-interval D        status line period (1s)
          --load-delay D             once the fleet is online, wait this long (idle) before the operators start (0)
          --linger D                 after the report, keep the nodes connected and idle this long (0)
          --open-before-hello        operators open streams once TLS is up, before the gateway's HELLO
          --connect-rate R           nodes first dial at R a second, in order; 0 dials all at once (0)
          --full-handshakes          nodes keep no session tickets: every reconnect is a full handshake
        SIGUSR1 marks a gateway (re)start: an EPISODE line then says how long every node took to come back.
        Exit status 1 if any byte was wrong or any stream was lost without a reason; 2 for bad usage.
        """

    static func parse(_ arguments: [String]) throws -> Options {
        var options = Options()
        var rest = arguments[...]
        func value(_ flag: String) throws -> String {
            guard let next = rest.popFirst() else { throw UsageError("\(flag) needs a value") }
            return next
        }
        while let flag = rest.popFirst() {
            switch flag {
            case "--gateway":
                let text = try value(flag)
                guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
                    throw UsageError("--gateway wants HOST:PORT, not \(text)")
                }
                options.gatewayHost = String(text[..<colon])
                options.gatewayPort = port
            case "--server-name": options.serverName = try value(flag)
            case "--nodes": options.nodes = try integer(value(flag), flag)
            case "--name-prefix": options.namePrefix = try value(flag)
            case "--identities": options.identities = try value(flag)
            case "--token": options.token = try value(flag)
            case "--enroll-concurrency": options.enrollConcurrency = max(1, try integer(value(flag), flag))
            case "--enroll-only": options.enrollOnly = true
            case "--loops": options.loops = max(1, try integer(value(flag), flag))
            case "--source-base": options.sourceBase = try value(flag)
            case "--operator-bundle": options.operatorBundles.append(try value(flag))
            case "--streams-per-operator": options.streamsPerOperator = max(1, try integer(value(flag), flag))
            case "--stream-rate": options.streamRate = try number(value(flag), flag)
            case "--sizes": options.sizes = try weighted(value(flag), flag).map { (try byteCount($0.0, flag), $0.1) }
            case "--services":
                options.services = try weighted(value(flag), flag)
                guard options.services.allSatisfy({ ["echo", "sink"].contains($0.name) }) else {
                    throw UsageError("--services knows echo and sink")
                }
            case "--duration": options.duration = try seconds(value(flag), flag)
            case "--flap-fraction": options.flapFraction = try number(value(flag), flag)
            case "--flap-interval": options.flapInterval = try seconds(value(flag), flag)
            case "--flap-downtime": options.flapDowntime = try seconds(value(flag), flag)
            case "--stall-timeout": options.stallTimeout = try seconds(value(flag), flag)
            case "--settle-timeout": options.settleTimeout = try seconds(value(flag), flag)
            case "--online-timeout": options.onlineTimeout = try seconds(value(flag), flag)
            case "--report": options.report = try value(flag)
            case "--node-state": options.nodeState = try value(flag)
            case "--status-interval": options.statusInterval = max(0.1, try seconds(value(flag), flag))
            case "--load-delay": options.loadDelay = try seconds(value(flag), flag)
            case "--linger": options.linger = try seconds(value(flag), flag)
            case "--open-before-hello": options.openBeforeHello = true
            case "--connect-rate": options.connectRate = try number(value(flag), flag)
            case "--full-handshakes": options.fullHandshakes = true
            case "--help", "-h": throw UsageError(nil)
            default: throw UsageError("unknown flag \(flag)")
            }
        }
        if options.nodes > 0, options.identities == nil { throw UsageError("--nodes needs --identities DIR") }
        if options.flapFraction < 0 || options.flapFraction > 1 {
            throw UsageError("--flap-fraction is between 0 and 1")
        }
        return options
    }
}

struct UsageError: Error {
    let message: String?
    init(_ message: String?) { self.message = message }
}

private func integer(_ text: String, _ flag: String) throws -> Int {
    guard let value = Int(text), value >= 0 else { throw UsageError("\(flag) wants a whole number, not \(text)") }
    return value
}

private func number(_ text: String, _ flag: String) throws -> Double {
    guard let value = Double(text), value >= 0 else { throw UsageError("\(flag) wants a number, not \(text)") }
    return value
}

/// `500ms`, `30s`, `5m`, `1h`, or plain seconds.
func seconds(_ text: String, _ flag: String) throws -> Double {
    let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
    for (suffix, scale) in units where text.hasSuffix(suffix) {
        if let value = Double(text.dropLast(suffix.count)), value >= 0 { return value * scale }
    }
    return try number(text, flag)
}

/// `512`, `64K`, `16M`, `1G`.
private func byteCount(_ text: String, _ flag: String) throws -> Int {
    let scale = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30][String(text.suffix(1))]
    guard let value = Int(scale == nil ? text : String(text.dropLast())), value > 0 else {
        throw UsageError("\(flag): \(text) is not a size like 64K")
    }
    return value * (scale ?? 1)
}

/// `A:3,B:1` into names and weights (a missing weight is 1).
private func weighted(_ text: String, _ flag: String) throws -> [(String, Int)] {
    try text.split(separator: ",").map { item in
        let parts = item.split(separator: ":")
        guard (1...2).contains(parts.count), let weight = parts.count == 2 ? Int(parts[1]) : 1, weight > 0 else {
            throw UsageError("\(flag): \(item) is not NAME:WEIGHT")
        }
        return (String(parts[0]), weight)
    }
}

/// Picks from a weighted list.
func pick<Item>(_ items: [(Item, Int)], using generator: inout some RandomNumberGenerator) -> Item {
    var ticket = Int.random(in: 0..<items.reduce(0) { $0 + $1.1 }, using: &generator)
    for (item, weight) in items {
        if ticket < weight { return item }
        ticket -= weight
    }
    return items[items.count - 1].0
}
