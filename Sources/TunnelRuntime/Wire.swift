// The application protocol lives in `TunnelWire` (sans IO). The runtime re-exports it so that
// the role modules, which reach the wire types through `TunnelRuntime` today, keep compiling
// while they move to importing `TunnelWire` themselves.
@_exported import TunnelWire
