import Testing

@testable import Multiplex

/// Every stream state × every event, against a table written out by hand from `docs/PROTOCOL.md` §5.
@Suite("Stream state machine")
struct StreamStateTests {
    enum Expected: Equatable {
        case to(StreamState)
        case reset(ErrorCode)
        case connectionError
        case refuse
    }

    static let states: [StreamState] = [
        .localOpening(sendFinished: false), .localOpening(sendFinished: true),
        .remoteOpening(receiveFinished: false), .remoteOpening(receiveFinished: true),
        .open, .localFinished, .remoteFinished, .closed,
    ]

    /// Columns in `StreamEvent.allCases` order: receiveAccept, receiveAcceptWithFin, receiveData,
    /// receiveDataWithFin, receiveReset, sendAccept, sendData, sendFin, sendReset.
    static let table: [StreamState: [Expected]] = [
        .localOpening(sendFinished: false): [
            .to(.open), .to(.remoteFinished), .connectionError, .connectionError, .to(.closed),
            .refuse, .to(.localOpening(sendFinished: false)), .to(.localOpening(sendFinished: true)), .to(.closed),
        ],
        .localOpening(sendFinished: true): [
            .to(.localFinished), .to(.closed), .connectionError, .connectionError, .to(.closed),
            .refuse, .refuse, .refuse, .to(.closed),
        ],
        .remoteOpening(receiveFinished: false): [
            .connectionError, .connectionError, .to(.remoteOpening(receiveFinished: false)),
            .to(.remoteOpening(receiveFinished: true)), .to(.closed),
            .to(.open), .refuse, .refuse, .to(.closed),
        ],
        .remoteOpening(receiveFinished: true): [
            .connectionError, .connectionError, .reset(.streamClosed), .reset(.streamClosed), .to(.closed),
            .to(.remoteFinished), .refuse, .refuse, .to(.closed),
        ],
        .open: [
            .connectionError, .connectionError, .to(.open), .to(.remoteFinished), .to(.closed),
            .refuse, .to(.open), .to(.localFinished), .to(.closed),
        ],
        .localFinished: [
            .connectionError, .connectionError, .to(.localFinished), .to(.closed), .to(.closed),
            .refuse, .refuse, .refuse, .to(.closed),
        ],
        .remoteFinished: [
            .connectionError, .connectionError, .reset(.streamClosed), .reset(.streamClosed), .to(.closed),
            .refuse, .to(.remoteFinished), .to(.closed), .to(.closed),
        ],
        .closed: Array(repeating: .refuse, count: StreamEvent.allCases.count),
    ]

    static var cells: [(StreamState, StreamEvent)] {
        states.flatMap { state in StreamEvent.allCases.map { (state, $0) } }
    }

    @Test("the decision for each state and event", arguments: cells)
    func decision(state: StreamState, event: StreamEvent) throws {
        let column = try #require(StreamEvent.allCases.firstIndex(of: event))
        let expected = try #require(Self.table[state])[column]
        let actual: Expected =
            switch state.on(event) {
            case .moveTo(let next): .to(next)
            case .resetStream(let code): .reset(code)
            case .closeConnection(let failure): failure.code == .protocolError ? .connectionError : .refuse
            case .refuse: .refuse
            }
        #expect(actual == expected, "\(state) on \(event)")
    }

    @Test("the table covers every state and every event")
    func tableIsComplete() {
        #expect(Self.table.count == Self.states.count)
        #expect(Self.table.values.allSatisfy { $0.count == StreamEvent.allCases.count })
    }

    @Test("send and receive permissions follow the state")
    func permissions() {
        #expect(StreamState.open.canSend && StreamState.open.canReceive)
        #expect(!StreamState.localFinished.canSend && StreamState.localFinished.canReceive)
        #expect(StreamState.remoteFinished.canSend && !StreamState.remoteFinished.canReceive)
        #expect(!StreamState.remoteOpening(receiveFinished: false).canSend)
        #expect(StreamState.localOpening(sendFinished: false).canSend)
        #expect(!StreamState.localOpening(sendFinished: false).canReceive)
        #expect(!StreamState.closed.canSend && !StreamState.closed.canReceive)
    }
}
