import Testing

@testable import Multiplex

/// Whose frames the flood guard charges (`docs/PROTOCOL.md` §9): only the peer's own resets of
/// streams it opened, and its idle frames. On the virtual clock, all within one 10 s window.
@Suite("Flood accounting charges only the peer")
struct FloodAccountingTests {
    @Test("resets we send never count against the peer, however many")
    func ownResetsAreFree() {
        let peer = RawPeer(role: .acceptor)
        var id: StreamID = 1
        for _ in 0..<1000 where peer.closure == nil {
            peer.send(.open(id, metadata: [], interactive: false, fin: false))
            peer.session.reset(id, code: ErrorCode(rawValue: 0x108))
            peer.readOutput()
            id += 2
        }
        #expect(peer.closure == nil)
        #expect(peer.sentResets.count == 1000)
    }

    @Test("the peer resetting streams we opened is its answer, not abuse")
    func peerResetsOfOurStreamsAreFree() throws {
        let peer = RawPeer(role: .acceptor)
        for _ in 0..<1000 where peer.closure == nil {
            let id = try peer.session.openStream(metadata: [])
            peer.readOutput()
            peer.send(.reset(id, ErrorCode(rawValue: 0x102)))
        }
        #expect(peer.closure == nil)
    }

    @Test("the peer's own open-and-reset still trips the guard at the allowance")
    func peerRapidResetTrips() {
        let peer = RawPeer(role: .acceptor)
        var id: StreamID = 1
        var cycles = 0
        while peer.closure == nil && cycles < 1000 {
            peer.send(.open(id, metadata: [], interactive: false, fin: false), .reset(id, .cancel))
            id += 2
            cycles += 1
        }
        #expect(cycles == 201, "the 201st reset within 10 s is one too many")
        #expect(peer.closure?.code == .enhanceYourCalm)
    }

    @Test("a refused OPEN costs an idle frame, not a reset")
    func refusedOpensAreIdleFrames() {
        var configuration = SessionConfiguration()
        configuration.maxConcurrentStreams = 1
        let peer = RawPeer(role: .acceptor, configuration: configuration)
        peer.send(.open(1, metadata: [], interactive: false, fin: false))
        var id: StreamID = 3
        // 500 refusals: far past the 200 resets, within the 1000 idle frames.
        for _ in 0..<500 where peer.closure == nil {
            peer.send(.open(id, metadata: [], interactive: false, fin: false))
            id += 2
        }
        #expect(peer.closure == nil)
        #expect(peer.sentResets.count == 500)
        // Past the idle allowance a peer that keeps ignoring the cap is closed.
        for _ in 0..<600 where peer.closure == nil {
            peer.send(.open(id, metadata: [], interactive: false, fin: false))
            id += 2
        }
        #expect(peer.closure?.code == .enhanceYourCalm)
    }

    @Test("DATA after FIN resets the stream and is charged as an idle frame")
    func protocolResetsAreIdleFrames() throws {
        let peer = RawPeer(role: .acceptor)
        var id: StreamID = 1
        for _ in 0..<300 where peer.closure == nil {
            peer.send(.open(id, metadata: [], interactive: false, fin: true), .data(id, [1][...], fin: false))
            id += 2
        }
        #expect(peer.closure == nil)
        #expect(peer.sentResets.values.allSatisfy { $0 == .streamClosed })
    }

    @Test("the window rolls over: the same peer may reset 200 again ten seconds later")
    func windowRolls() {
        let peer = RawPeer(role: .acceptor)
        var id: StreamID = 1
        for round in 0..<3 {
            for _ in 0..<200 {
                peer.send(.open(id, metadata: [], interactive: false, fin: false), .reset(id, .cancel))
                id += 2
            }
            #expect(peer.closure == nil, "round \(round)")
            peer.now = peer.now + .seconds(10)
        }
    }
}
