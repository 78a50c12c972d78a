import ArgumentParser
import Foundation
import Logging
import TunnelClient
import TunnelOperator
import TunnelRuntime
import TunnelTLS
import TunnelText

/// How an admin command reaches the gateway: its local admin socket (root on the gateway host),
/// or an operator connection whose user has an admin role.
struct AdminOptions: ParsableArguments {
    static let defaultSocket = "/var/lib/tunnel/gateway/admin.sock"

    @Option(
        help:
            "The gateway's admin socket (default \(defaultSocket) when it exists; otherwise your operator login is used)"
    )
    var adminSocket: String?
    @OptionGroup var operatorOptions: OperatorOptions

    /// Sends one request and returns the reply; a refusal or an error reply is one line and exit 1.
    func send(_ request: AdminRequest) throws(CommandFailure) -> AdminReply {
        let socket =
            adminSocket ?? (FileManager.default.fileExists(atPath: Self.defaultSocket) ? Self.defaultSocket : nil)
        var outcome: Result<AdminReply, FleetFailure>?
        if let socket {
            do {
                outcome = try AdminChannel.exchange(request, with: socket)
            } catch {
                throw .failed("cannot start: \(error)", .systemResource)
            }
        } else {
            let (settings, logger) = try operatorOptions.settingsAndLogger()
            _ = try withOperatorSession(settings, logger: logger) { session in
                session.ask(.admin(request), reply: AdminReply.self) { result in
                    outcome = result.mapError { FleetFailure($0.message) }
                    session.finish(0)
                }
            }
        }
        switch outcome {
        case .success(let reply):
            if let failure = reply.failure { throw .failed(failure.message, .gatewayRequestFailed) }
            return reply
        case .failure(let failure):
            throw .failed(failure.message, .gatewayRequestFailed)
        case nil:
            throw .failed("no reply from the gateway", .gatewayRequestFailed)
        }
    }
}

extension AdminOptions {
    /// Sends a request answered by a sentence saying what was done, and returns the sentence.
    func done(_ request: AdminRequest) throws(CommandFailure) -> String {
        guard case .done(let message) = try send(request) else { throw unexpectedReply }
        return message
    }
}

/// A reply of another kind than the request calls for.
let unexpectedReply = CommandFailure.failed(
    "the gateway answered with another kind of reply than asked for (is this tunnel older than the gateway?)",
    .gatewayRequestFailed)

/// Parses `k=v` labels from repeated flags.
func parseLabels(_ entries: [String], flag: String) throws(CommandFailure) -> [String: String] {
    var labels: [String: String] = [:]
    for entry in entries {
        let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty else {
            throw .usage("\(flag): \"\(entry)\" is not KEY=VALUE (e.g. site=plant-a)", .usage)
        }
        labels[parts[0]] = parts[1]
    }
    return labels
}

/// Parses a duration flag like `1h` or `90s` into seconds.
func durationSeconds(_ text: String, flag: String) throws(CommandFailure) -> Int64 {
    do throws(ValueProblem) {
        let seconds = DurationText.seconds(try DurationText.parse(text))
        guard seconds > 0 else { throw ValueProblem("\"\(text)\" is not a positive duration") }
        return seconds
    } catch {
        throw .usage("\(flag): \(error.text)", .usage)
    }
}

/// Prints rows as aligned columns, the first row being the header.
func printTable(_ rows: [[String]]) {
    print(tableText(rows), terminator: "")
}

/// Rows as aligned columns, one line each. Every cell is escaped (`InertText`): cells hold what
/// nodes, peers and old audit records said, and a newline or an escape sequence in one must
/// neither forge a row nor reach the terminal.
func tableText(_ rows: [[String]]) -> String {
    let cells = rows.map { $0.map { InertText.escape($0) } }
    let widths = cells[0].indices.map { column in cells.map { $0[column].count }.max() ?? 0 }
    return cells.map { row in
        zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
            .trimmingCharacters(in: .whitespaces)
    }.joined(separator: "\n") + "\n"
}

/// A sentence from the gateway, printed for a person: escaped like table cells.
func printReply(_ text: String?) {
    print(InertText.escape(text ?? ""))
}

func labelText(_ labels: [String: String]) -> String {
    labels.isEmpty ? "-" : labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
}

// MARK: - tunnel token

public struct TokenCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Join tokens: one command on a new node enrolls it.",
        subcommands: [TokenCreateCommand.self, TokenListCommand.self])
    public init() {}
}

public struct TokenCreateCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create a join token (printed once; the gateway keeps only its hash).",
        discussion: "On the node: tunnel client --gateway GATEWAY:7443 --token TOKEN --service ssh=127.0.0.1:22")

    @Option(help: "The token enrolls exactly this node name") var node: String?
    @Option(help: "The token enrolls names starting with this prefix") var namePrefix: String?
    @Option(help: "How long the token stays valid") var ttl = "1h"
    @Option(help: "How many nodes may enroll with it") var uses = 1
    @Option(help: "Label given to every node enrolled with it, KEY=VALUE; repeatable") var label: [String] = []
    @OptionGroup var admin: AdminOptions

    public init() {}

    public func run() throws {
        let spec = TokenSpec(
            nodeName: node, namePrefix: namePrefix, lifetimeSeconds: try durationSeconds(ttl, flag: "--ttl"),
            uses: uses, labels: try parseLabels(label, flag: "--label"))
        guard case .token(let token, let message) = try admin.send(.createToken(spec)) else { throw unexpectedReply }
        print(token)
        FileHandle.standardError.write(Data("\(InertText.escape(message))\n".utf8))
    }
}

public struct TokenListCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ls", abstract: "List join tokens (never their secrets).")
    @OptionGroup var admin: AdminOptions
    @OptionGroup var output: OutputOptions
    public init() {}

    public func run() throws {
        guard case .tokens(let tokens) = try admin.send(.listTokens) else { throw unexpectedReply }
        if output.isJSON { return printJSON(tokens) }
        let now = Int64(Date().timeIntervalSince1970)
        printTable(
            [["ID", "ENROLLS", "LABELS", "USES", "EXPIRES", "CREATED BY"]]
                + tokens.map {
                    [
                        $0.id, $0.nodeName ?? $0.namePrefix.map { "\($0)*" } ?? "any name", labelText($0.labels),
                        "\($0.usesCount)/\($0.usesAllowed)",
                        $0.expiresAt <= now ? "expired" : isoDate($0.expiresAt), $0.createdBy,
                    ]
                })
    }
}

// MARK: - tunnel user

public struct UserCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Operators: add (issues a bundle for `tunnel login`), list, revoke.",
        subcommands: [UserAddCommand.self, UserListCommand.self, UserRevokeCommand.self])
    public init() {}
}

public struct UserAddCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Add an operator (or re-issue their certificate) and write their bundle.",
        discussion:
            "The key is made here and written only into the bundle (mode 0600); hand it over safely, then `tunnel login BUNDLE`."
    )

    @Argument(help: "User name (letters, digits, '.', '_', '-', '@')") var name: String
    @Option(help: "Role from the policy; repeatable") var role: [String] = []
    @Option(help: "Certificate lifetime; renew with `tunnel renew`") var ttl = "12h"
    @Option(help: "Bundle file to write (default NAME.tunnel-operator.yaml)") var out: String?
    @OptionGroup var admin: AdminOptions

    public init() {}

    public func run() throws {
        // The bundle names the gateway as --gateway (and --server-name) give it, else as your own login does.
        let login = try? admin.operatorOptions.settings()
        guard let gatewayText = admin.operatorOptions.gateway ?? login?.gateway.description else {
            throw CommandFailure.usage(
                "--gateway: give the address operators dial, HOST:PORT (it goes into the bundle)", .usage)
        }
        let address: HostPort
        do { address = try HostPort.parse(gatewayText) } catch {
            throw CommandFailure.usage("--gateway: \(error.text)", .usage)
        }
        let serverName =
            admin.operatorOptions.serverName ?? (admin.operatorOptions.gateway == nil ? login?.serverName : nil)
        let key = try PrivateKey.generateP256()
        let csr = String(decoding: try CertificateSigningRequest(key: key, commonName: name).pem(), as: UTF8.self)
        let reply = try admin.send(
            .addUser(name: name, roles: role, lifetimeSeconds: try durationSeconds(ttl, flag: "--ttl"), csr: csr))
        guard case .operatorCertificate(let certificatePEM, let gatewayCA, let message) = reply,
            let certificate = try? Certificate.chainFromPEM(Array(certificatePEM.utf8)).first,
            let identity = try? certificate.tunnelIdentity()
        else { throw CommandFailure.failed("the gateway sent no usable certificate", .gatewayRequestFailed) }
        let bundle = OperatorBundle(
            gateway: address, serverName: serverName, certificatePEM: certificatePEM,
            keyPEM: String(decoding: try key.pem(), as: UTF8.self), gatewayCAPEM: gatewayCA)
        let path = out ?? "\(name).tunnel-operator.yaml"
        let file = try writeFile(
            path, Array(bundle.render(identity: identity, notAfter: certificate.notAfter).utf8), 0o600,
            "operator bundle for \(identity) (contains a private key)")
        printReply(message)
        printFiles([file])
        print("Hand it over safely; the operator runs `tunnel login \(path)`.")
    }
}

public struct UserListCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "ls", abstract: "List operators.")
    @OptionGroup var admin: AdminOptions
    @OptionGroup var output: OutputOptions
    public init() {}

    public func run() throws {
        guard case .users(let users) = try admin.send(.listUsers) else { throw unexpectedReply }
        if output.isJSON { return printJSON(users) }
        printTable(
            [["NAME", "ROLES", "CERTIFICATE UNTIL", "STATUS", "CREATED BY"]]
                + users.map {
                    [
                        $0.name, $0.roles.joined(separator: ","), $0.certificateNotAfter.map(isoDate) ?? "-",
                        $0.revokedAt.map { "revoked \(isoDate($0))" } ?? "active", $0.createdBy,
                    ]
                })
    }
}

public struct UserRevokeCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "revoke", abstract: "Revoke an operator: sessions close now, new ones are refused.")
    @Argument(help: "User name") var name: String
    @OptionGroup var admin: AdminOptions
    public init() {}

    public func run() throws {
        printReply(try admin.done(.revokeUser(name: name)))
    }
}

// MARK: - tunnel node

public struct NodeCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "node", abstract: "Enrolled nodes: list every one, label, revoke, remove.",
        subcommands: [NodeListCommand.self, NodeLabelCommand.self, NodeRevokeCommand.self, NodeRemoveCommand.self])
    public init() {}
}

public struct NodeListCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ls", abstract: "List every known node, online or not.")
    @OptionGroup var admin: AdminOptions
    @OptionGroup var output: OutputOptions
    public init() {}

    public func run() throws {
        // The table is printed a page at a time as the pages arrive; JSON is one array.
        var all: [NodeStatus] = []
        var after: String?
        repeat {
            guard case .nodes(let nodes, let next) = try admin.send(.listNodes(after: after, limit: nil)) else {
                throw unexpectedReply
            }
            if output.isJSON { all += nodes } else { Self.printPage(nodes, header: after == nil) }
            // A cursor that does not move on would ask for the same page forever.
            guard let next, next > (after ?? "") else { break }
            after = next
        } while true
        if output.isJSON { print(String(decoding: try TunnelProtocol.encode(all), as: UTF8.self)) }
    }

    /// One page of the table, the header on the first (printed even when it is empty); each page
    /// is aligned on its own.
    static func printPage(_ nodes: [NodeStatus], header: Bool) {
        let rows = nodes.map {
            [
                $0.name, $0.revokedAt != nil ? "revoked" : $0.online ? "online" : "offline", labelText($0.labels),
                $0.certificateNotAfter.map(isoDate) ?? "-", $0.lastSeen.map(isoDate) ?? "-",
                $0.previousSessionEnded ?? "-",
            ]
        }
        let heading = ["NAME", "STATUS", "LABELS", "CERTIFICATE UNTIL", "LAST SEEN", "LAST DISCONNECT"]
        guard header || !rows.isEmpty else { return }
        printTable(header ? [heading] + rows : rows)
    }
}

public struct NodeLabelCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "label",
        abstract: "Set (key=value) or remove (key-) labels the policy matches on a node; audited.",
        discussion: "Labels come from the join token and from this command only, never from the node itself.")
    @Argument(help: "Node name") var name: String
    @Argument(help: "key=value to set, key- to remove") var changes: [String]
    @OptionGroup var admin: AdminOptions
    public init() {}

    public func run() throws {
        let (set, remove) = try Self.parse(changes)
        printReply(try admin.done(.labelNode(name: name, set: set, remove: remove)))
    }

    /// `key=value` sets, `key-` removes (as `kubectl label` does); each key and value follows its rule.
    static func parse(_ changes: [String]) throws(CommandFailure) -> (set: [String: String], remove: [String]) {
        guard !changes.isEmpty else {
            throw .usage("give at least one key=value or key- (e.g. tunnel node label node-17 tier=gold)", .usage)
        }
        var set: [String: String] = [:], remove: [String] = []
        for change in changes {
            guard change.contains("=") || change.hasSuffix("-") else {
                throw .usage("\"\(InertText.escape(change))\" is neither key=value (set) nor key- (remove)", .usage)
            }
            do throws(NameProblem) {
                if let equals = change.firstIndex(of: "=") {
                    set[try Names.check(String(change[..<equals]), as: .labelKey)] = try Names.check(
                        String(change[change.index(after: equals)...]), as: .labelValue)
                } else {
                    remove.append(try Names.check(String(change.dropLast()), as: .labelKey))
                }
            } catch {
                throw .usage(error.message, .usage)
            }
        }
        return (set, remove)
    }
}

public struct NodeRevokeCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "revoke", abstract: "Revoke a node: its session closes now; it cannot connect, renew or re-enroll."
    )
    @Argument(help: "Node name") var name: String
    @OptionGroup var admin: AdminOptions
    public init() {}

    public func run() throws {
        printReply(try admin.done(.revokeNode(name: name)))
    }
}

public struct NodeRemoveCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Forget a node: its certificate stops working; it must enroll again with a token.")
    @Argument(help: "Node name") var name: String
    @OptionGroup var admin: AdminOptions
    public init() {}

    public func run() throws {
        printReply(try admin.done(.removeNode(name: name)))
    }
}

// MARK: - tunnel policy

public struct PolicyCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "policy", abstract: "The access policy in force.",
        discussion:
            "Edit the gateway's policy file; the gateway reloads it on change and on SIGHUP, and keeps the old one if the new one is invalid.",
        subcommands: [PolicyShowCommand.self])
    public init() {}
}

public struct PolicyShowCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Show which policy version the gateway uses.")
    @OptionGroup var admin: AdminOptions
    @OptionGroup var output: OutputOptions
    public init() {}

    public func run() throws {
        guard case .policy(let policy) = try admin.send(.showPolicy) else { throw unexpectedReply }
        if output.isJSON { return printJSON(["policy": policy]) }
        printReply(policy)
    }
}

// MARK: - tunnel renew

public struct RenewCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "renew", abstract: "Renew your operator certificate (same key, same lifetime) before it expires.")
    @OptionGroup var options: OperatorOptions
    public init() {}

    public func run() throws {
        let (settings, logger) = try options.settingsAndLogger()
        let key: PrivateKey
        let name: String
        do {
            key = try PrivateKey(pem: DurableFile.read(path: settings.key), source: settings.key)
            name = try Certificate.fromPEM(DurableFile.read(path: settings.cert), source: settings.cert)
                .tunnelIdentity().name
        } catch {
            throw CommandFailure.failed("\(oneLine(error)); run `tunnel login BUNDLE` first", .certificateMissing)
        }
        let csr = String(decoding: try CertificateSigningRequest(key: key, commonName: name).pem(), as: UTF8.self)
        var outcome: Result<CertificateReply, FleetFailure>?
        _ = try withOperatorSession(settings, logger: logger) { session in
            session.ask(.renew(csr: csr), reply: CertificateReply.self) { result in
                outcome = result.mapError { FleetFailure($0.message) }
                session.finish(0)
            }
        }
        switch outcome {
        case .success(let reply):
            guard let pem = reply.certificate, let certificate = try? Certificate.chainFromPEM(Array(pem.utf8)).first
            else {
                throw CommandFailure.failed(reply.error ?? "the gateway sent no certificate", .gatewayRequestFailed)
            }
            guard (try? certificate.publicKey().der()) == (try? key.publicKey().der()) else {
                throw CommandFailure.failed("the gateway issued a certificate for another key", .gatewayRequestFailed)
            }
            _ = try writeFile(settings.cert, Array(pem.utf8), 0o644, "operator certificate")
            print("renewed \(name): valid until \(isoDate(certificate.notAfter))")
        case .failure(let failure):
            throw CommandFailure.failed(failure.message, .gatewayRequestFailed)
        case nil:
            throw CommandFailure.failed("no reply from the gateway", .gatewayRequestFailed)
        }
    }
}
