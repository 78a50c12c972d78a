/// libFuzzer entry point for the frame decoder; built by `scripts/fuzz.sh`.
@_cdecl("LLVMFuzzerTestOneInput")
public func frameDecoderFuzzTarget(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    if let violation = FuzzHarness.decodeFrames(Array(UnsafeBufferPointer(start: data, count: size))) {
        fatalError(violation)
    }
    return 0
}
