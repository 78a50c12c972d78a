internal import CLibUV

extension EventLoop {
    /// The libuv this process runs with (`1.44.2`), for `tunnel version` and bug reports.
    public static var libuvVersion: String { String(cString: uv_version_string()) }
}
