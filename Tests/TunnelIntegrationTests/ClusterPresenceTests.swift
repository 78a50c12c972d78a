import Foundation
import Glibc
import Multiplex
import PostgresTestServer
import Testing
import TunnelAudit
import TunnelClient
import TunnelOperator
import TunnelRuntime
import TunnelState
import TunnelTLS

@testable import TunnelGateway

/// Issue #13: two gateway replicas in one process over one shared store (an SQLite file both
/// open, and a real PostgreSQL server): presence with epochs and leases, fencing of an older
/// session, revocations and policies applied at every replica.
@Suite("Cluster presence and propagation", .serialized)
struct ClusterPresenceTests {
    enum SharedStore: String, CaseIterable, CustomTestStringConvertible {
        case sqlite, postgres

        static var tested: [SharedStore] { PostgresTestServer.shouldRun ? [.sqlite, .postgres] : [.sqlite] }
        var testDescription: String { rawValue }
    }

    /// Replicas `a` and `b` on one loop, each with its own connection to the shared store, its
    /// own policy file and audit log; the nodes and operators a test starts.
    final class TwoReplicas {
        let runner: LoopRunner
        let pki: TestPKI
        let stores: [FleetStore]
        /// The PostgreSQL database, for statements a test runs behind the replicas' backs.
        let databaseName: String?
        private(set) var gateways: [Gateway] = []
        private(set) var ports: [UInt16] = []
        let echo: EchoServer
        private(set) var clients: [EdgeClient] = []
        private(set) var operators: [OperatorClient] = []
        static let names = ["a", "b"]

        /// `beforeStart` runs on the shared store before the replicas start.
        init(_ shared: SharedStore, beforeStart: (TwoReplicas) throws -> Void = { _ in }) throws {
            runner = try LoopRunner()
            pki = try TestPKI()
            switch shared {
            case .sqlite:
                stores = [pki.fleet.store, try SQLiteFleetStore(path: pki.fleet.store.path)]
                databaseName = nil
            case .postgres:
                let server = try PostgresTestServer.shared()
                let name = try server.freshDatabase()
                stores = [
                    try PostgresFleetStore(url: server.url(database: name)),
                    try PostgresFleetStore(url: server.url(database: name)),
                ]
                databaseName = name
            }
            echo = try EchoServer(loop: runner.loop)
            try beforeStart(self)
            for (index, name) in Self.names.enumerated() {
                try DurableFile.write(path: policyPath(name), bytes: Array(Self.policy.utf8), mode: 0o644)
                var configuration = pki.gatewayConfiguration()
                configuration.replica = ReplicaIdentity(name: name, advertise: "127.0.0.1:\(7443 + index)")
                configuration.policyPath = policyPath(name)
                configuration.auditDirectory = "\(pki.fleet.directory)/\(name)/audit"
                configuration.auditKeyDirectory = "\(pki.fleet.directory)/\(name)/audit-key"
                let gateway = try Gateway(
                    loop: runner.loop, configuration: configuration, store: stores[index], logger: runner.logger)
                ports.append(try gateway.start().port)
                gateways.append(gateway)
            }
        }

        static let policy = """
            roles:
              admin:
                admin: true
                allow:
                  - services: ["*"]
                    nodes: ["*"]
            """

        func policyPath(_ replica: String) -> String { "\(pki.fleet.directory)/policy-\(replica).yaml" }

        /// An enrolled identity, recorded in the shared store.
        func identity(_ role: TunnelIdentity.Role, _ name: String) throws -> TLSIdentity {
            let identity = try pki.identity(role, name)
            guard stores[0] !== pki.fleet.store else { return identity }
            for node in try pki.fleet.store.nodes() { try stores[0].saveNode(node) }
            for user in try pki.fleet.store.users() { try stores[0].saveUser(user) }
            return identity
        }

        @discardableResult
        func startNode(_ identity: TLSIdentity, at replica: Int) throws -> EdgeClient {
            let configuration = EdgeClientConfiguration(
                gateway: pki.endpoint(port: ports[replica], identity: identity),
                services: ["echo": LocalService(host: "127.0.0.1", port: echo.port)], labels: [:], credentialFiles: nil)
            let client = try EdgeClient(loop: runner.loop, configuration: configuration, logger: runner.logger)
            client.start()
            clients.append(client)
            return client
        }

        /// An operator connected to `replica`; nil if it did not connect.
        func connectOperator(_ identity: TLSIdentity, at replica: Int) -> OperatorClient? {
            let client = try! OperatorClient(
                loop: runner.loop, endpoint: pki.endpoint(port: ports[replica], identity: identity),
                logger: runner.logger)
            operators.append(client)
            var outcome: Result<MuxConnection, OperatorFailure>?
            client.connect { outcome = $0 }
            runner.run(until: { outcome != nil })
            return (try? outcome?.get()) == nil ? nil : client
        }

        func status(_ node: String, at replica: Int) -> NodeStatus? {
            gateways[replica].nodeStatuses().first { $0.name == node }
        }

        /// True while `replica` holds a live local session of `node`.
        func holds(_ node: String, at replica: Int) -> Bool {
            gateways[replica].core.nodes[node]?.connection != nil
        }

        func tearDown() {
            for client in clients { client.stop() }
            for client in operators { client.close() }
            echo.close()
            var stopped = 0
            for gateway in gateways { gateway.stop { stopped += 1 } }
            runner.run(until: { stopped == self.gateways.count })
            runner.finish()
        }
    }

    @Test(
        "a node held by one replica is online at every replica, with that replica's name, until its session ends",
        arguments: SharedStore.tested)
    func presenceIsSeenEverywhere(shared: SharedStore) throws {
        let cluster = try TwoReplicas(shared)
        defer { cluster.tearDown() }
        let client = try cluster.startNode(try cluster.identity(.node, "edge-1"), at: 0)
        #expect(cluster.runner.run(until: { cluster.holds("edge-1", at: 0) }))
        for replica in [0, 1] {
            #expect(cluster.status("edge-1", at: replica)?.online == true)
            #expect(cluster.status("edge-1", at: replica)?.replica == "a")
        }
        #expect(cluster.gateways[0].core.nodes["edge-1"]?.epoch == 1)
        client.stop()
        #expect(cluster.runner.run(until: { cluster.status("edge-1", at: 1)?.online == false }))
        #expect(cluster.status("edge-1", at: 1)?.replica == nil)
        // Every record each replica wrote names it, the log's own records too.
        let records = try auditRecords(in: "\(cluster.pki.fleet.directory)/a/audit")
        #expect(records.contains { $0["type"] == .string("node_connect") })
        #expect(records.allSatisfy { $0["replica"] == .string("a") })
    }

    @Test(
        "a newer session of a node on another replica fences the older one, and its epoch is the next one",
        arguments: SharedStore.tested)
    func newerSessionElsewhereFencesTheOlder(shared: SharedStore) throws {
        let cluster = try TwoReplicas(shared)
        defer { cluster.tearDown() }
        let node = try cluster.identity(.node, "edge-1")
        let older = try cluster.startNode(node, at: 0)
        #expect(cluster.runner.run(until: { cluster.holds("edge-1", at: 0) }))
        try cluster.startNode(node, at: 1)
        #expect(cluster.runner.run(until: { cluster.holds("edge-1", at: 1) }))
        #expect(cluster.gateways[1].core.nodes["edge-1"]?.epoch == 2)
        // Replica a learns at its next lease renewal that its session is stale, and closes it.
        #expect(
            cluster.runner.run(
                until: { !cluster.holds("edge-1", at: 0) }, timeout: .seconds(Int(PresenceLedger.renewSeconds) + 5)))
        older.stop()
        #expect(cluster.status("edge-1", at: 0)?.replica == "b")
        #expect(
            cluster.gateways[0].core.nodes["edge-1"]?.lastDisconnectReason?.hasSuffix(
                "replaced by a newer session of edge-1 on replica b") == true)
        #expect(cluster.holds("edge-1", at: 1), "the newer session stays")
    }

    @Test(
        "node and user revocations at one replica end the sessions held at the other within 5 s",
        arguments: SharedStore.tested)
    func revocationsPropagate(shared: SharedStore) throws {
        let cluster = try TwoReplicas(shared)
        defer { cluster.tearDown() }
        try cluster.startNode(try cluster.identity(.node, "edge-1"), at: 0)
        #expect(cluster.runner.run(until: { cluster.holds("edge-1", at: 0) }))
        let bob = try #require(cluster.connectOperator(try cluster.identity(.operator, "bob"), at: 1))
        var bobClosed: Failure?
        bob.onClosed = { bobClosed = $0 }

        #expect(cluster.gateways[1].administer(.revokeNode(name: "edge-1"), actor: "operator alice").failure == nil)
        #expect(cluster.runner.run(until: { !cluster.holds("edge-1", at: 0) }, timeout: .seconds(5)))
        #expect(cluster.gateways[0].administer(.revokeUser(name: "bob"), actor: "operator alice").failure == nil)
        #expect(cluster.runner.run(until: { bobClosed != nil }, timeout: .seconds(5)))
        #expect(bobClosed?.reason.contains("revoked by operator alice") == true)
    }

    @Test("a policy loaded at one replica applies at the other within 5 s", arguments: SharedStore.tested)
    func policyPropagates(shared: SharedStore) throws {
        let cluster = try TwoReplicas(shared)
        defer { cluster.tearDown() }
        let newer = TwoReplicas.policy + "\n  viewer:\n    allow:\n      - services: [echo]\n        nodes: [\"*\"]\n"
        try DurableFile.write(path: cluster.policyPath("a"), bytes: Array(newer.utf8), mode: 0o644)
        cluster.gateways[0].reloadPolicy()
        let version = Gateway.policyVersion(Array(newer.utf8))
        #expect(cluster.gateways[0].authority.policy.version == version)
        #expect(
            cluster.runner.run(until: { cluster.gateways[1].authority.policy.version == version }, timeout: .seconds(5))
        )
        #expect(cluster.gateways[1].authority.policy.roleNames.contains("viewer"))
    }

    @Test("a dead replica's nodes go offline everywhere when its lease ends", arguments: SharedStore.tested)
    func deadReplicasLeasesExpire(shared: SharedStore) throws {
        let cluster = try TwoReplicas(shared)
        defer { cluster.tearDown() }
        _ = try cluster.identity(.node, "edge-9")
        // A replica that claimed the node, then died without releasing it or renewing.
        try cluster.stores[0].heartbeat(replica: "ghost", advertise: "127.0.0.1:9", now: Int64(time(nil)))
        _ = try cluster.stores[0].claimPresence(node: "edge-9", replica: "ghost", leaseUntil: Int64(time(nil)) + 2)
        #expect(cluster.status("edge-9", at: 1)?.replica == "ghost")
        #expect(cluster.runner.run(until: { cluster.status("edge-9", at: 1)?.online == false }, timeout: .seconds(5)))
    }

    @Test("a replica that cannot read the change feed at start replays none of its old changes once it can")
    func unreadableFeedAtStartReplaysNothingOld() throws {
        guard PostgresTestServer.shouldRun else { return }
        let server = try PostgresTestServer.shared()
        let stale = TwoReplicas.policy + "\n  stale:\n    allow:\n      - services: [echo]\n        nodes: [\"*\"]\n"
        let cluster = try TwoReplicas(.postgres) { cluster in
            _ = try cluster.stores[0].appendChange(
                .policy, subject: "old", detail: stale, replica: "gone", now: Int64(time(nil)) - 60)
            try server.execute(
                "ALTER TABLE fleet_changes RENAME TO fleet_changes_away", database: try #require(cluster.databaseName))
        }
        defer { cluster.tearDown() }
        #expect(cluster.gateways.allSatisfy { $0.cluster?.cursor == nil }, "the feed was unreadable at start")
        try server.execute(
            "ALTER TABLE fleet_changes_away RENAME TO fleet_changes", database: try #require(cluster.databaseName))
        // Once the feed reads again, a replica starts at its end: the next change applies, the old one never.
        let fresh = TwoReplicas.policy + "\n  fresh:\n    allow:\n      - services: [echo]\n        nodes: [\"*\"]\n"
        #expect(
            cluster.runner.run(
                until: { cluster.gateways.allSatisfy { $0.cluster?.cursor != nil } }, timeout: .seconds(5)))
        _ = try cluster.stores[0].appendChange(
            .policy, subject: "new", detail: fresh, replica: "other", now: Int64(time(nil)))
        #expect(
            cluster.runner.run(
                until: { cluster.gateways.allSatisfy { $0.authority.policy.roleNames.contains("fresh") } },
                timeout: .seconds(5)))
        for name in TwoReplicas.names {
            let reloads = try auditRecords(in: "\(cluster.pki.fleet.directory)/\(name)/audit").filter {
                $0["type"] == .string("policy_reload")
            }
            #expect(
                reloads.map { $0["policy_version"] } == [.string(Gateway.policyVersion(Array(fresh.utf8)))],
                "replica \(name)")
        }
    }

    @Test(
        "a claim the store refused is made again once the store answers, and the node shows online at the other replica"
    )
    func refusedClaimIsRetried() throws {
        guard PostgresTestServer.shouldRun else { return }
        let server = try PostgresTestServer.shared()
        let cluster = try TwoReplicas(.postgres)
        defer { cluster.tearDown() }
        let database = try #require(cluster.databaseName)
        try server.execute("ALTER TABLE presence RENAME TO presence_away", database: database)
        try cluster.startNode(try cluster.identity(.node, "edge-1"), at: 0)
        #expect(cluster.runner.run(until: { cluster.holds("edge-1", at: 0) }))
        #expect(cluster.gateways[0].cluster?.ledger.sessions["edge-1"] == .pending, "the session goes on unclaimed")
        try server.execute("ALTER TABLE presence_away RENAME TO presence", database: database)
        #expect(cluster.runner.run(until: { cluster.status("edge-1", at: 1)?.replica == "a" }, timeout: .seconds(5)))
        #expect(cluster.gateways[0].cluster?.ledger.sessions["edge-1"] == .held(epoch: 1))
    }
}
