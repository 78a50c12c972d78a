import Glibc

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// mkdir -p; new directories are 0700 because they hold keys.
package func makePrivateDirectory(_ path: String) throws(CommandFailure) {
    var info = stat()
    if stat(path, &info) == 0 {
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw .failed("\(path) exists and is not a directory", .localFile)
        }
        return
    }
    let parent = directoryPart(of: path)
    if !parent.isEmpty, parent != path { try makePrivateDirectory(parent) }
    guard mkdir(path, 0o700) == 0 || errno == EEXIST else {
        throw .failed("could not create directory \(path): \(String(cString: strerror(errno)))", .localFile)
    }
}

/// `2026-11-28T06:00:00Z`
package func isoDate(_ seconds: Int64) -> String {
    Date(timeIntervalSince1970: Double(seconds)).formatted(Date.ISO8601FormatStyle())
}
