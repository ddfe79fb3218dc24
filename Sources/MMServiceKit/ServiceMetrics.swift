import Hummingbird
import MMCore
import Prometheus

/// Where every process declares its metrics: on the process-wide Prometheus registry, each
/// with its HELP text. Domain metrics go to the registry directly rather than through
/// swift-metrics' `Counter(label:)`, whose API carries no help text, and a family without
/// HELP fails `promtool check metrics`. Names follow Prometheus conventions: `mm_` prefix,
/// base units (`_seconds`), `_total` on counters, and label sets bounded by the config
/// (symbols, processes, error codes), never by traffic (no ids, no paths with parameters).
/// Every family is listed in docs/API.md ("Metrics").
public enum ServiceMetrics {
    public static var registry: PrometheusCollectorRegistry { MetricsBootstrap.registry }

    public static func counter(_ name: String, _ help: String, labels: [(String, String)] = []) -> Prometheus.Counter {
        registry.makeCounter(name: name, labels: labels, help: help)
    }

    public static func gauge(_ name: String, _ help: String, labels: [(String, String)] = []) -> Prometheus.Gauge {
        registry.makeGauge(name: name, labels: labels, help: help)
    }

    /// Latency buckets from 100 µs to 10 s: fsyncs and commits sit at the low end, stalls at the top.
    public static let latencyBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2.5), .seconds(10),
    ]

    public static func histogram(_ name: String, _ help: String, labels: [(String, String)] = [], buckets: [Duration] = latencyBuckets) -> DurationHistogram {
        registry.makeDurationHistogram(name: name, labels: labels, buckets: buckets, help: help)
    }

    /// One counter per configured symbol, made once (a dictionary lookup per use, no registry lock).
    public static func perSymbolCounters(_ name: String, _ help: String, symbols: [String]) -> [String: Prometheus.Counter] {
        Dictionary(uniqueKeysWithValues: symbols.map { ($0, counter(name, help, labels: [("symbol", $0)])) })
    }
}

/// Per-request HTTP metrics under names promtool accepts: `mm_http_requests_total` and
/// `mm_http_request_duration_seconds`, labelled by the route *pattern* (`/v1/quotes/{symbol}`,
/// so the label set stays bounded whatever paths clients send), method and status.
public struct RequestMetricsMiddleware: RouterMiddleware {
    public typealias Context = MMRequestContext

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let status: Int
        do {
            let response = try await next(request, context)
            status = Int(response.status.code)
            record(request, context, status: status, since: start)
            return response
        } catch let error as APIError {
            record(request, context, status: error.status, since: start)
            throw error
        } catch let error as any HTTPResponseError {
            record(request, context, status: Int(error.status.code), since: start)
            throw error
        } catch {
            record(request, context, status: 500, since: start)
            throw error
        }
    }

    private func record(_ request: Request, _ context: Context, status: Int, since start: ContinuousClock.Instant) {
        // Unmatched paths share one label value: a scanner must not mint a series per path.
        let route = context.endpointPath ?? "unmatched"
        let method = request.method.rawValue
        ServiceMetrics.counter(
            "mm_http_requests_total", "HTTP requests answered, by route pattern, method and status code.",
            labels: [("route", route), ("method", method), ("status", "\(status)")]
        ).increment()
        ServiceMetrics.histogram(
            "mm_http_request_duration_seconds", "Time to answer an HTTP request (long-polls included), by route pattern and method.",
            labels: [("route", route), ("method", method)]
        ).record(ContinuousClock.now - start)
    }
}

/// The metric types, so service modules need not import Prometheus themselves.
public typealias MetricCounter = Prometheus.Counter
public typealias MetricGauge = Prometheus.Gauge
public typealias MetricHistogram = DurationHistogram
