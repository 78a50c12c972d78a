/// The settings, failures, log format and client command every other command builds on live in
/// `TunnelAgent`, so the slim edge agent (`tunnel-client`) can link them without Foundation.
/// Re-exported so each command file, and whoever imports `TunnelCommands`, sees them as before.
@_exported import TunnelAgent
