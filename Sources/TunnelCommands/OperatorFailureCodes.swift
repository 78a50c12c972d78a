import TunnelOperator

// The operator role's failures as the CLI reports them: a stable code and fix per cause.

extension FailureCode {
    /// The code of an operator connection's or stream's failure.
    public init(_ cause: OperatorFailure.Cause) {
        switch cause {
        case .unreachable: self = .gatewayUnreachable
        case .handshake: self = .gatewayCAMismatch
        case .refused(let wire): self = FailureCode(wire: wire) ?? .streamEnded
        case .ended: self = .streamEnded
        case .local: self = .systemResource
        }
    }
}

extension CommandFailure {
    /// An operator connection's or stream's failure, coded by its cause.
    public init(_ failure: OperatorFailure, exitCode: Int32 = CommandFailure.failureExitCode) {
        self.init(failure.message, code: FailureCode(failure.cause), exitCode: exitCode)
    }
}
