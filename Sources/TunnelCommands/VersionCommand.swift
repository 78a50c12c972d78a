import ArgumentParser

public struct VersionCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "version", abstract: "Print the version, source commit, and the Swift, OpenSSL and libuv versions."
    )
    @OptionGroup package var output: OutputOptions
    public init() {}

    public func run() throws {
        print(output.isJSON ? VersionInfo.current.json : VersionInfo.current.line)
    }
}
