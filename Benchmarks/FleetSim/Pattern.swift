/// The bytes an operator sends on a stream, computable at any offset, so an echo is checked
/// byte by byte against what was sent without keeping a copy. Byte `i` of stream `seed` is a
/// 64 KiB random table at a per-stream rotation, plus a term that changes every 64 KiB: a lost,
/// repeated or reordered chunk, or bytes from another stream, all read back wrong.
struct Pattern {
    static let tableSize = 1 << 16
    /// Made once from a fixed seed: every process and every run sees the same table.
    static let table: [UInt8] = {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        return (0..<tableSize).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }()

    let seed: UInt64
    private let rotation: Int
    private let salt: UInt8

    init(seed: UInt64) {
        self.seed = seed
        rotation = Int(truncatingIfNeeded: (seed &* 0x9E37_79B9) & UInt64(Self.tableSize - 1))
        salt = UInt8(truncatingIfNeeded: seed &* 31)
    }

    @inline(__always)
    func byte(at offset: Int) -> UInt8 {
        Self.table[(offset &+ rotation) & (Self.tableSize - 1)] &+ UInt8(truncatingIfNeeded: offset >> 16) &+ salt
    }

    /// Writes the stream's bytes `offset ..< offset + buffer.count` into `buffer`.
    func fill(_ buffer: inout [UInt8], count: Int, from offset: Int) {
        buffer.removeAll(keepingCapacity: true)
        Self.table.withUnsafeBufferPointer { table in
            for index in 0..<count {
                let position = offset &+ index
                buffer.append(
                    table[(position &+ rotation) & (Self.tableSize - 1)] &+ UInt8(truncatingIfNeeded: position >> 16)
                        &+ salt)
            }
        }
    }

    /// The index within `bytes` of the first byte that differs from the stream's bytes at
    /// `offset`, or nil when all match.
    func firstMismatch(_ bytes: ArraySlice<UInt8>, at offset: Int) -> Int? {
        Self.table.withUnsafeBufferPointer { table in
            var position = offset
            for (index, byte) in zip(0..., bytes) {
                if byte != table[(position &+ rotation) & (Self.tableSize - 1)]
                    &+ UInt8(truncatingIfNeeded: position >> 16) &+ salt
                {
                    return index
                }
                position &+= 1
            }
            return nil
        }
    }
}

/// What the sink service answers after the operator's FIN: how many bytes arrived and their
/// FNV-1a hash, 16 bytes big-endian. The operator hashes what it sent and compares.
struct SinkDigest: Equatable {
    static let size = 16
    private(set) var count: UInt64 = 0
    private(set) var hash: UInt64 = 0xCBF2_9CE4_8422_2325

    mutating func add(_ bytes: ArraySlice<UInt8>) {
        var hash = self.hash
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3
        }
        self.hash = hash
        count &+= UInt64(bytes.count)
    }

    var encoded: [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: count >> (56 - 8 * $0)) }
            + (0..<8).map { UInt8(truncatingIfNeeded: hash >> (56 - 8 * $0)) }
    }

    static func decode(_ bytes: [UInt8]) -> (count: UInt64, hash: UInt64)? {
        guard bytes.count == size else { return nil }
        let count = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let hash = bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return (count, hash)
    }
}
