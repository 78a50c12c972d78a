import Foundation
import PackagePlugin

/// Bakes the source commit into the target it is applied to, as `sourceCommit`: before every
/// build, `git rev-parse` in the package directory, or "unknown" where there is no git or no
/// repository (a tarball build still builds). The file is rewritten only when the text changes,
/// so an unchanged commit recompiles nothing.
@main
struct SourceCommit: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let generated = context.pluginWorkDirectoryURL.appending(path: "generated")
        let script = """
            commit=$(git -C "$1" rev-parse --short=12 HEAD 2>/dev/null) || commit=unknown
            text="/// Written by the SourceCommit build plugin.
            package let sourceCommit = \\"$commit\\""
            mkdir -p "$2"
            [ "$(cat "$2/SourceCommit.swift" 2>/dev/null)" = "$text" ] || printf '%s\\n' "$text" >"$2/SourceCommit.swift"
            """
        return [
            .prebuildCommand(
                displayName: "Source commit of \(target.name)",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: ["-c", script, "source-commit", context.package.directoryURL.path, generated.path],
                outputFilesDirectory: generated),
        ]
    }
}
