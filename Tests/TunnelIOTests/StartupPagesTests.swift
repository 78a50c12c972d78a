import Testing

@testable import TunnelIO

/// Which mappings the edge agent may drop from its resident set once its session is up.
@Suite struct StartupPagesTests {
    private func mapping(_ header: String, anonymous: Int) -> String {
        "\(header)\nSize:                 64 kB\nRss:                  64 kB\nAnonymous:          \(anonymous) kB\nLocked:                0 kB\n"
    }

    @Test func onlyCleanReadOnlyPrivateFileMappings() {
        let smaps = [
            mapping(
                "7f0000000000-7f0000010000 r-xp 00000000 fe:00 12                   /usr/lib/libcrypto.so.3",
                anonymous: 0),
            mapping("7f0000010000-7f0000020000 r--p 00010000 fe:00 12 /usr/lib/libcrypto.so.3", anonymous: 8),
            mapping("7f0000020000-7f0000030000 rw-p 00020000 fe:00 12 /usr/lib/libcrypto.so.3", anonymous: 0),
            mapping("7f0000030000-7f0000040000 r--s 00000000 fe:00 13 /dev/shm/x", anonymous: 0),
            mapping("7f0000040000-7f0000050000 rw-p 00000000 00:00 0 ", anonymous: 64),
            mapping("7f0000050000-7f0000060000 r--p 00000000 00:00 0 [vvar]", anonymous: 0),
            mapping("7f0000060000-7f0000062000 r--p 00000000 fe:00 14 /opt/lib with space.so (deleted)", anonymous: 0),
        ].joined()
        #expect(
            StartupPages.releasable(smaps: smaps) == [
                .init(start: 0x7f00_0000_0000, length: 0x10000), .init(start: 0x7f00_0006_0000, length: 0x2000),
            ])
        #expect(StartupPages.releasable(smaps: "7f0000000000-7f0000010000 r-xp 00000000 fe:00 12 /x\n").isEmpty)
    }

    /// In this very process: releasing keeps every page's contents (the test goes on running).
    @Test func releasingKeepsTheProcessWorking() {
        let table = (0..<1000).map { $0 * 3 }
        #expect(StartupPages.release() > 0)
        #expect(table.reduce(0, +) == 1_498_500)
    }
}
