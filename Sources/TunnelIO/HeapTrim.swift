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
}
