import Metrics
import Prometheus
import Synchronization

/// The server's Prometheus registry, bootstrapped once per process as swift-metrics'
/// backend: Hummingbird's MetricsMiddleware records requests by route and status and
/// their latency (a histogram per route), and the server counts what it did.
final class ServerMetrics: Sendable {
    static let shared = ServerMetrics()

    let registry: PrometheusCollectorRegistry
    let eventsAppended: Metrics.Counter
    let bundlesStored: Metrics.Counter
    let bytesServed: Metrics.Counter

    private init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [.milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                                                   .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                                                   .seconds(1), .seconds(2), .seconds(5), .seconds(10)]
        MetricsSystem.bootstrap(factory)
        self.registry = registry
        eventsAppended = Metrics.Counter(label: "tessera_events_appended_total")
        bundlesStored = Metrics.Counter(label: "tessera_bundles_stored_total")
        bytesServed = Metrics.Counter(label: "tessera_bytes_served_total")
    }

    func text() -> [UInt8] {
        var out: [UInt8] = []
        registry.emit(into: &out)
        return out
    }
}
