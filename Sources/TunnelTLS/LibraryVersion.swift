internal import COpenSSL

/// The OpenSSL this process runs with.
public enum OpenSSLLibrary {
    /// `OpenSSL 3.0.15 3 Sep 2024`, as the library reports itself at run time (which can differ
    /// from the headers it was built against), for `tunnel version` and bug reports.
    public static var version: String { String(cString: OpenSSL_version(OPENSSL_VERSION)) }
}
