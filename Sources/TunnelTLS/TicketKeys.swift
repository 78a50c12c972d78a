internal import COpenSSL
internal import Glibc

/// The keys a server seals its TLS 1.3 session tickets with, kept in one file (mode 0600) so
/// that tickets outlive the process: after a crash or a restart, nodes resume instead of making
/// a full handshake each. A new key is made every `rotationSeconds`; tickets are sealed with the
/// newest, and a key opens tickets until `rotationSeconds + ticketLifetime` after it was made,
/// then it is deleted. The keys are never logged; the file is the only place they exist.
///
/// `@unchecked Sendable`: the keys are read by OpenSSL callbacks on whichever thread runs a
/// handshake and replaced by `rotateIfDue`; every access holds `lock`.
public final class TicketKeyRing: @unchecked Sendable {
    struct Key: Equatable {
        /// Sent in clear in the ticket, to find the key that opens it.
        var name: [UInt8]
        var cipherKey: [UInt8]
        var macKey: [UInt8]
        /// Unix time the key was made.
        var created: Int64
    }

    /// How long the newest key seals tickets before the next is made.
    public static let rotationSeconds: Int64 = 12 * 3600
    /// The longest a ticket is good for; a node certificate that expires sooner bounds it more.
    public static let ticketLifetime: Int64 = 12 * 3600
    static let nameLength = 16
    static let cipherKeyLength = 32
    static let macKeyLength = 32
    private static let header = "tunnel session-ticket keys v1"

    public let path: String
    private var keys: [Key]
    private var lock = pthread_mutex_t()

    /// Reads the ring at `path`, or makes one; rotates it if due and saves it.
    public init(path: String, now: Int64) throws(TLSError) {
        self.path = path
        keys = access(path, F_OK) == 0 ? try Self.parse(DurableFile.read(path: path, limit: 4096), path: path) : []
        pthread_mutex_init(&lock, nil)
        try rotateIfDue(now: now)
    }

    deinit {
        pthread_mutex_destroy(&lock)
    }

    /// Makes a new sealing key once the newest is `rotationSeconds` old, drops keys no ticket
    /// can still need, and saves the ring when it changed. Cheap when nothing is due.
    @discardableResult
    public func rotateIfDue(now: Int64) throws(TLSError) -> Bool {
        var ring = withLock { keys }
        let kept = ring.filter { now - $0.created < Self.rotationSeconds + Self.ticketLifetime && $0.created <= now }
        var changed = kept != ring
        ring = kept
        if ring.last.map({ now - $0.created >= Self.rotationSeconds }) ?? true {
            ring.append(try Self.makeKey(now: now))
            changed = true
        }
        guard changed else { return false }
        try DurableFile.write(path: path, bytes: Array(Self.format(ring).utf8), mode: 0o600)
        withLock { keys = ring }
        return true
    }

    /// The key new tickets are sealed with.
    var sealingKey: Key? { withLock { keys.last } }

    /// The key named in a ticket, and whether it is still the sealing key (if not, the client
    /// gets a ticket sealed with the newest).
    func openingKey(named name: UnsafePointer<UInt8>) -> (key: Key, isNewest: Bool)? {
        withLock {
            guard
                let index = keys.firstIndex(where: {
                    $0.name.elementsEqual(UnsafeBufferPointer(start: name, count: Self.nameLength))
                })
            else { return nil }
            return (keys[index], index == keys.count - 1)
        }
    }

    private func withLock<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return body()
    }

    private static func makeKey(now: Int64) throws(TLSError) -> Key {
        var bytes = [UInt8](repeating: 0, count: nameLength + cipherKeyLength + macKeyLength)
        guard RAND_bytes(&bytes, Int32(bytes.count)) == 1 else {
            throw TLSError.openSSL(.openSSL, "could not draw a session-ticket key")
        }
        return Key(
            name: Array(bytes[..<nameLength]), cipherKey: Array(bytes[nameLength..<(nameLength + cipherKeyLength)]),
            macKey: Array(bytes[(nameLength + cipherKeyLength)...]), created: now)
    }

    private static func format(_ ring: [Key]) -> String {
        ring.reduce(header + "\n") { text, key in
            text + "\(key.created) \(Hex.encode(key.name)) \(Hex.encode(key.cipherKey)) \(Hex.encode(key.macKey))\n"
        }
    }

    /// The file's lines: the header, then `created name cipher-key mac-key` per key, oldest first.
    static func parse(_ bytes: [UInt8], path: String) throws(TLSError) -> [Key] {
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        let damaged = TLSError(
            .file,
            "\(path) is not a session-ticket key file; delete it and restart the gateway (nodes then make one full handshake each)"
        )
        guard lines.first == Substring(header), lines.count <= 16 else { throw damaged }
        var ring: [Key] = []
        for line in lines.dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count == 4, let created = Int64(fields[0]),
                let name = Hex.decode(String(fields[1])), name.count == nameLength,
                let cipherKey = Hex.decode(String(fields[2])), cipherKey.count == cipherKeyLength,
                let macKey = Hex.decode(String(fields[3])), macKey.count == macKeyLength
            else { throw damaged }
            ring.append(Key(name: name, cipherKey: cipherKey, macKey: macKey, created: created))
        }
        return ring
    }
}
