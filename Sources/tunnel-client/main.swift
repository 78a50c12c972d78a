import TunnelAgent

// `tunnel-client`: the edge agent alone, `tunnel client` without the gateway, operator and auditor
// commands, and so without Foundation, ICU, SQLite, libpq or swift-argument-parser
// (docs/BENCHMARKS.md, "Edge agent footprint"). Same flags, settings and behaviour as `tunnel client`.
CommandMain.runAgent()
