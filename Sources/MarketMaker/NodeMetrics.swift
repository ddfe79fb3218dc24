import MMCore
import MMServiceKit

/// A node's domain metrics (names and meaning in docs/API.md, "Metrics"). They mirror the
/// node's own `NodeCounters` (what `GET /v1/status` shows): every change of those counters is
/// added here, so the two can never disagree and no call site counts twice.
final class NodeMetrics: Sendable {
    static let shared = NodeMetrics()

    private let quotesSent: MetricCounter
    private let quotesCancelled: MetricCounter
    private let grantsAcquired: MetricCounter
    private let grantsHeld: MetricGauge
    private let renewFailures: MetricCounter
    private let heartbeatFailures: MetricCounter
    private let deadmanFailures: MetricCounter

    private init() {
        quotesSent = ServiceMetrics.counter("mm_node_quotes_sent_total", "Quote replacements the exchange accepted from this node.")
        quotesCancelled = ServiceMetrics.counter("mm_node_quotes_cancelled_total", "Quote withdrawals the exchange accepted from this node.")
        grantsAcquired = ServiceMetrics.counter("mm_node_grants_acquired_total", "Grants this node acquired from the coordinator.")
        grantsHeld = ServiceMetrics.gauge("mm_node_grants_held", "Symbols this node holds a valid grant for now.")
        renewFailures = ServiceMetrics.counter("mm_node_renew_failures_total", "Renewal rounds that failed plus grants refused renewal.")
        heartbeatFailures = ServiceMetrics.counter("mm_node_heartbeat_failures_total", "Heartbeats the coordinator did not answer with success.")
        deadmanFailures = ServiceMetrics.counter("mm_node_deadman_failures_total", "Dead-man's switch re-arms the exchange did not confirm.")
    }

    func mirror(from old: NodeCounters, to new: NodeCounters) {
        add(quotesSent, new.quotesSent - old.quotesSent)
        add(quotesCancelled, new.cancelsSent - old.cancelsSent)
        add(grantsAcquired, new.grantsAcquired - old.grantsAcquired)
        add(renewFailures, new.renewFailures - old.renewFailures)
        add(heartbeatFailures, new.heartbeatFailures - old.heartbeatFailures)
        add(deadmanFailures, new.deadmanFailures - old.deadmanFailures)
        addLabelled("mm_node_grants_lost_total", "Grants this node gave up, by reason.", label: "reason", old.lossesByReason, new.lossesByReason)
        addLabelled("mm_node_quote_refusals_total", "Quote replaces and cancels the exchange refused, by error code.", label: "code", old.rejections, new.rejections)
        addLabelled("mm_node_acquire_refusals_total", "Acquires the coordinator refused, by error code.", label: "code", old.acquireRefusals, new.acquireRefusals)
    }

    func held(_ count: Int) { grantsHeld.set(Int64(count)) }

    private func add(_ counter: MetricCounter, _ delta: Int64) {
        if delta > 0 { counter.increment(by: delta) }
    }

    private func addLabelled(_ name: String, _ help: String, label: String, _ old: [String: Int64], _ new: [String: Int64]) {
        for (value, count) in new {
            let delta = count - (old[value] ?? 0)
            guard delta > 0 else { continue }
            // The registry returns the existing child for a label value it has seen (codes and
            // reasons are bounded sets), and this runs only when a counter changed.
            ServiceMetrics.counter(name, help, labels: [(label, value)]).increment(by: delta)
        }
    }
}
