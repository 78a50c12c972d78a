/// A first-in first-out queue over an array with a moving head, so popping is O(1) and storage
/// is reused instead of shifting elements.
package struct FIFO<Element> {
    private var storage: [Element] = []
    private var head = 0

    package init() {}

    package var isEmpty: Bool { head == storage.count }
    package var count: Int { storage.count - head }
    package var first: Element? { isEmpty ? nil : storage[head] }

    package mutating func append(_ element: Element) {
        storage.append(element)
    }

    package mutating func popFirst() -> Element? {
        guard !isEmpty else { return nil }
        let element = storage[head]
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64 && head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
        return element
    }

    /// Replaces the element at the head, e.g. with what is left of it after a partial use.
    package mutating func replaceFirst(_ element: Element) {
        precondition(!isEmpty)
        storage[head] = element
    }

    package mutating func removeAll() {
        storage.removeAll()
        head = 0
    }
}

/// Bytes the application wrote to a stream and the session has not framed yet. Chunks are kept
/// as the application handed them (no copy) until they are copied once into the output.
struct ChunkQueue {
    private var chunks = FIFO<ArraySlice<UInt8>>()
    private(set) var byteCount = 0

    package mutating func append(_ bytes: ArraySlice<UInt8>) {
        guard !bytes.isEmpty else { return }
        chunks.append(bytes)
        byteCount += bytes.count
    }

    /// Moves the first `count` bytes to the end of `output`.
    package mutating func move(_ count: Int, to output: inout [UInt8]) {
        precondition(count <= byteCount)
        var remaining = count
        while remaining > 0, let chunk = chunks.first {
            if chunk.count <= remaining {
                output.append(contentsOf: chunk)
                remaining -= chunk.count
                _ = chunks.popFirst()
            } else {
                output.append(contentsOf: chunk.prefix(remaining))
                chunks.replaceFirst(chunk.dropFirst(remaining))
                remaining = 0
            }
        }
        byteCount -= count
    }
}
