internal import CLibUV

/// The one error type of TunnelIO: a libuv status code plus what was being
/// done and to which address, so a log line alone explains the failure.
public struct IOError: Error, Sendable, CustomStringConvertible {
    /// The negative libuv status code (for example `UV_ECONNREFUSED`).
    public let code: Int32
    /// The libuv error name, for example `"ECONNREFUSED"`.
    public let name: String
    /// The libuv error message, for example `"connection refused"`.
    public let message: String
    /// The operation that failed, for example `"connect"` or `"resolve"`.
    public let operation: String
    /// The address or input involved, for example `"127.0.0.1:7443"`.
    public let address: String?
    /// An explanation in our words when libuv's message alone would mislead
    /// (for example why an input could not be parsed).
    public let detail: String?

    init(code: Int32, operation: String, address: String? = nil, detail: String? = nil) {
        self.code = code
        self.name = Self.text(code, uv_err_name_r)
        self.message = Self.text(code, uv_strerror_r)
        self.operation = operation
        self.address = address
        self.detail = detail
    }

    init(_ code: uv_errno_t, operation: String, address: String? = nil, detail: String? = nil) {
        self.init(code: code.rawValue, operation: operation, address: address, detail: detail)
    }

    /// Whether the error is the given libuv code.
    func isCode(_ expected: uv_errno_t) -> Bool { code == expected.rawValue }

    /// True for `ETIMEDOUT`, including connect timeouts raised by `StreamConnection`.
    public var isTimeout: Bool { isCode(UV_ETIMEDOUT) }

    /// True for `ECANCELED`: the operation was abandoned because its handle closed.
    public var isCancelled: Bool { isCode(UV_ECANCELED) }

    public var description: String {
        var text = operation
        if let address { text += " \(address)" }
        return text + ": \(detail ?? message) (\(name))"
    }

    /// Uses the `_r` variants: the plain ones leak a fresh allocation for unknown codes.
    private static func text(
        _ code: Int32,
        _ render: (Int32, UnsafeMutablePointer<CChar>?, Int) -> UnsafeMutablePointer<CChar>?
    ) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 128) { buffer in
            buffer.initialize(repeating: 0)
            _ = render(code, buffer.baseAddress, buffer.count)
            return String(cString: buffer.baseAddress!)
        }
    }
}

/// Throws an `IOError` for a negative libuv status, or returns the status.
@discardableResult
func check(_ status: Int32, _ operation: String, address: String? = nil) throws(IOError) -> Int32 {
    if status < 0 { throw IOError(code: status, operation: operation, address: address) }
    return status
}
