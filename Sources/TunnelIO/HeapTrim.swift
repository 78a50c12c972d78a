internal import CLibUV

/// The C heap of this process, as glibc's malloc keeps it.
public enum Heap {
    /// Hands free pages in the middle of the heap back to the system (`malloc_trim`). malloc
    /// keeps freed blocks for reuse and returns only the top of the heap by itself, so after a
    /// burst of large buffers the process would stay at its peak size. Costs a walk over the
    /// free lists: for when a busy spell ends, not for every turn.
    public static func returnFreePages() {
        malloc_trim(0)
    }

    /// Keeps a relay's large buffers (socket writes of up to a few hundred KiB, 64 KiB reads) on
    /// the heap and its top in place between them. By default glibc serves blocks over 128 KiB
    /// with mmap, and hands the heap's top back as soon as 128 KiB of it is free, so a busy
    /// connection mapped, faulted in and unmapped its buffers on every write: a third of a bulk
    /// sender's CPU went to page faults and brk. At most 1 MiB stays free at the top now;
    /// `returnFreePages` still gives everything back when a busy spell ends. Process-wide, set
    /// once by the first event loop.
    static let configured: Void = {
        mallopt(M_MMAP_THRESHOLD, 1 << 20)
        mallopt(M_TRIM_THRESHOLD, 8 << 20)
        mallopt(M_TOP_PAD, 1 << 20)
    }()
}
