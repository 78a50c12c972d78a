/// An error from a lower layer (TunnelTLS, Yams, Foundation, libuv) as one line, for a
/// sentence of our own: its description with every line break folded into a space.
public func oneLine(_ error: any Error) -> String {
    String(describing: error).split(whereSeparator: \.isNewline).joined(separator: " ")
}
