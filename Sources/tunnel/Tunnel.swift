import TunnelCommands

/// Only the entry point lives here; everything else is in `TunnelCommands`.
@main
enum TunnelEntry {
    static func main() {
        TunnelMain.run()
    }
}
