/// Caps how many distinct values one label may take, so a peer that names many services (each
/// refused) cannot grow the exposition without bound: values past the cap are reported as
/// `other`. Prometheus stores one series per label value, forever.
struct LabelBound {
    static let other = "other"
    let maximum: Int
    private var seen: Set<String> = []

    init(maximum: Int) {
        self.maximum = maximum
    }

    mutating func admit(_ value: String) -> String {
        if seen.contains(value) { return value }
        guard seen.count < maximum else { return Self.other }
        seen.insert(value)
        return value
    }
}
