import Prometheus

extension MetricNameDescriptor {
    /// A metric named `tunnel_[SUBSYSTEM_]NAME[_UNIT]`: the project's prefix, then the base unit
    /// (`seconds`, `bytes`) or `total` for counters, as Prometheus' naming conventions ask.
    static func tunnel(subsystem: String? = nil, _ name: String, unit: String = "", _ help: String)
        -> MetricNameDescriptor
    {
        MetricNameDescriptor(
            namespace: "tunnel", subsystem: subsystem, metricName: name, unitName: unit, helpText: help)
    }
}
