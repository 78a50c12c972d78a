import Foundation
import TunnelAudit
import TunnelTLS

/// A shell recording and what its close record says it should be.
struct RecordingCheck {
    let path: String
    let expectedSHA256: String?
    let actualSHA256: String?

    var matches: Bool { expectedSHA256 != nil && expectedSHA256 == actualSHA256 }

    /// Every stream whose close record names a recording, checked now: recordings are bounded
    /// by the gateway's own cap, and the console reads them again only to serve them.
    static func all(in index: AuditIndex) -> [String: RecordingCheck] {
        var checks: [String: RecordingCheck] = [:]
        for row in index.streams {
            guard let (name, expected) = row.recording, !name.contains("/"), !name.hasPrefix(".") else { continue }
            let path = "\(index.directory)/recordings/\(name)"
            let actual = (try? DurableFile.read(path: path, limit: ConsoleRoutes.maxRecordingBytes)).map {
                Hex.encode(SHA256.hash($0))
            }
            checks[row.stream] = RecordingCheck(path: path, expectedSHA256: expected, actualSHA256: actual)
        }
        return checks
    }
}

/// The player's place in a stream page. The page says whether the file matches before any
/// script runs; the script checks the bytes it plays once more, in the browser.
enum PlayerSection {
    static func html(stream: String, check: RecordingCheck) -> String {
        let mark: String
        switch (check.actualSHA256, check.matches) {
        case (nil, _):
            mark =
                "<p class=\"sha bad\" id=\"sha-mark\" role=\"alert\">The recording file is missing or unreadable.</p>"
        case (_, true):
            mark =
                "<p class=\"sha good\" id=\"sha-mark\">Recording SHA-256 matches its close record: <code>\(HTML.escape(check.actualSHA256 ?? ""))</code></p>"
        case (_, false):
            mark = """
                <p class="sha bad" id="sha-mark" role="alert"><strong>The recording was changed:</strong> its SHA-256 is \
                <code>\(HTML.escape(check.actualSHA256 ?? ""))</code>, the close record says <code>\(HTML.escape(check.expectedSHA256 ?? "nothing"))</code>.</p>
                """
        }
        return """
            <h2>Shell recording</h2>
            \(mark)
            <section id="player" data-cast="/recording?id=\(HTML.escape(RequestTarget.encode(stream)))" data-sha256="\(HTML.escape(check.expectedSHA256 ?? ""))">
            <noscript><p>The player needs JavaScript; everything else in the console works without it. \
            <code>tunnel audit replay \(HTML.escape(stream))</code> plays it in a terminal.</p></noscript>
            <div class="controls" hidden>
            <button type="button" id="play">Play</button>
            <input type="range" id="seek" min="0" max="1000" value="0" aria-label="Position">
            <span id="clock">0.0 s</span>
            <label>Speed <select id="speed"><option>0.5</option><option selected>1</option><option>2</option><option>4</option><option>16</option></select></label>
            <label>Idle limit (s) <input id="idle" type="number" min="0.1" step="0.1" value="2" size="4"></label>
            <span id="player-status" role="status"></span>
            </div>
            <div id="terminal"></div>
            <h3>Keystrokes</h3>
            <ol id="keystrokes"></ol>
            </section>
            """
    }
}
