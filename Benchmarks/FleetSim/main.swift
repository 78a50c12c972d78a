// The fleet simulator: N virtual nodes and M virtual operators in one process on a few libuv
// loops, speaking the real protocol through the project's own TLS, mux and runtime libraries.
//   swift build -c release --package-path Benchmarks --product fleet-sim
//   Benchmarks/.build/release/fleet-sim --nodes 1000 --identities DIR --token TOKEN \
//       --operator-bundle op.yaml --duration 120s --flap-fraction 0.1 --report report.json
// See `--help`, docs/BENCHMARKS.md ("Fleet scale") and scripts/fleet-*.sh.
import Foundation

let options: Options
do {
    options = try Options.parse(Array(CommandLine.arguments.dropFirst()))
} catch let error as UsageError {
    if let message = error.message { say("fleet-sim: \(message)") }
    say(Options.usage)
    exit(error.message == nil ? 0 : 2)
}
raiseOpenFileLimit(needed: options.nodes + options.operatorBundles.count + 256)

do {
    let run = try FleetRun(options: options)
    let identities = try run.identities()
    if options.enrollOnly { exit(run.finish(settled: true)) }
    let online = try run.bringOnline(identities)
    if !online { say("not every node came online within \(options.onlineTimeout) s") }
    if options.loadDelay > 0 {
        say("IDLE \(options.loadDelay) s before the load")
        run.pause(options.loadDelay)
    }
    try run.startOperators()
    run.runLoad()
    let settled = run.drain()
    exit(run.finish(settled: online && settled))
} catch let error as UsageError {
    say("fleet-sim: \(error.message ?? "")")
    exit(2)
} catch {
    say("fleet-sim: \(error)")
    exit(2)
}
