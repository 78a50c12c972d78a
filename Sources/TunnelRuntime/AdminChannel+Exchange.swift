import TunnelIO

extension AdminChannel {
    /// Sends `request` to the admin socket at `path` on a loop of its own and waits for the
    /// reply: what a command on the gateway host runs. Nil when no answer came; throws only
    /// when no loop could be made.
    public static func exchange(_ request: AdminRequest, with path: String) throws -> Result<AdminReply, FleetFailure>?
    {
        let loop = try EventLoop()
        var outcome: Result<AdminReply, FleetFailure>?
        send(request, to: path, loop: loop) { outcome = $0 }
        loop.run()
        return outcome
    }
}
