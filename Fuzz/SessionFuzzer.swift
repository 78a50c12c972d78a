/// libFuzzer entry point for whole sessions fed hostile bytes; built by `scripts/fuzz.sh`.
@_cdecl("LLVMFuzzerTestOneInput")
public func sessionFuzzTarget(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    if let violation = FuzzHarness.driveSession(Array(UnsafeBufferPointer(start: data, count: size))) {
        fatalError(violation)
    }
    return 0
}
