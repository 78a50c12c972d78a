import TunnelIO

// Memory the relays freed goes back to the system once the gateway is idle again.
extension Gateway {
    /// Called every housekeeping tick: when the last relayed stream has ended, the heap's free
    /// pages go back to the system (`Heap.returnFreePages`). Bulk streams leave freed blocks all
    /// over the heap; without this a gateway that once carried 200 bulk streams would keep their
    /// peak size. Once per busy spell, so an idle or steadily busy gateway pays nothing.
    func returnFreedMemoryWhenIdle() {
        let relaying = !relays.isEmpty
        defer { wasRelaying = relaying }
        guard wasRelaying, !relaying else { return }
        Heap.returnFreePages()
    }
}
