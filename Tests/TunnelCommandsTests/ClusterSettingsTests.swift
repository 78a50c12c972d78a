import Testing
import TunnelGateway

@testable import TunnelCommands

/// `--replica-name` and `--advertise` (env TUNNEL_REPLICA_NAME, TUNNEL_ADVERTISE): both or
/// neither, both on a shared store, each checked with one sentence naming the fix.
@Suite struct ClusterSettingsTests {
    func settings(_ environment: [String: String]) throws -> GatewaySettings {
        try GatewaySettings(
            try SettingsLoader.load(
                Schemas.gateway,
                SettingsInput(
                    environment: ["HOME": "/nonexistent-home", "PATH": "/usr/bin"].merging(environment) { $1 })))
    }

    func refusal(_ environment: [String: String]) throws -> String? {
        do {
            _ = try settings(environment).replicaIdentity()
            return nil
        } catch let failure as CommandFailure {
            return failure.message
        }
    }

    @Test func aLoneGatewayOnSQLiteNeedsNoReplicaName() throws {
        #expect(try settings([:]).replicaIdentity() == nil)
    }

    @Test func theEnvironmentNamesTheReplica() throws {
        let identity = try settings([
            "TUNNEL_REPLICA_NAME": "gw-1", "TUNNEL_ADVERTISE": "10.0.0.5:7443",
            "TUNNEL_STORE": "postgres://tunnel@db/tunnel",
        ]).replicaIdentity()
        #expect(identity == ReplicaIdentity(name: "gw-1", advertise: "10.0.0.5:7443"))
    }

    @Test func aSharedStoreNeedsBoth() throws {
        #expect(
            try refusal(["TUNNEL_STORE": "postgres://tunnel@db/tunnel"])?.hasPrefix(
                "a gateway on a shared store is a cluster replica: set replica-name") == true)
        #expect(
            try refusal(["TUNNEL_STORE": "postgres://tunnel@db/tunnel", "TUNNEL_REPLICA_NAME": "gw-1"])?.hasPrefix(
                "replica-name and advertise go together") == true)
        #expect(
            try refusal(["TUNNEL_ADVERTISE": "10.0.0.5:7443"])?.hasPrefix("replica-name and advertise go together")
                == true)
    }

    @Test func badNamesAndUndialableAddressesAreRefused() throws {
        let name = try refusal(["TUNNEL_REPLICA_NAME": "GW_1\u{1b}[2J", "TUNNEL_ADVERTISE": "10.0.0.5:7443"])
        #expect(
            name
                == "replica-name \"GW_1\\x1b[2J\" is not a DNS label: use 1–63 lower-case letters, digits and '-', starting and ending with a letter or digit (e.g. node-17)"
        )
        #expect(
            try refusal(["TUNNEL_REPLICA_NAME": "gw-1", "TUNNEL_ADVERTISE": "0.0.0.0:7443"])?.hasPrefix(
                "advertise 0.0.0.0:7443 is not an address other replicas can dial") == true)
    }
}
