import MMCore
import MMServiceKit
import Synchronization

/// The coordinator's domain metrics (names and meaning in docs/API.md, "Metrics"). Counted by
/// the replica whose committed decision produced them, so a cluster total is the sum over
/// replicas.
final class CoordinatorMetrics: Sendable {
    private let events: [String: MetricCounter]
    private let renewals: MetricCounter
    private let failovers: MetricCounter
    private let handovers: MetricCounter
    private let storeFailures: MetricCounter
    /// Per symbol: the last node granted it, and whether its last grant ended by a release.
    private let history = Mutex<[String: (holder: String, releasedGracefully: Bool)]>([:])

    init() {
        events = Dictionary(uniqueKeysWithValues: CoordinatorEventKind.allCases.map { kind in
            (kind.rawValue, ServiceMetrics.counter(
                "mm_coordinator_events_total",
                "Durable coordinator events by kind: grant (issued), adopt, release, revoke, grant_expired, renew_refused, join, leave, expire, death, rebalance, coordinator_started, tokens_raised.",
                labels: [("kind", kind.rawValue)]))
        })
        renewals = ServiceMetrics.counter("mm_coordinator_grant_renewals_total", "Grant renewals granted (single and batch).")
        failovers = ServiceMetrics.counter(
            "mm_coordinator_failovers_total",
            "Grants issued for a symbol to a node other than its previous holder after that holder's grant expired or was revoked.")
        handovers = ServiceMetrics.counter(
            "mm_coordinator_handovers_total", "Grants issued for a symbol to another node after its previous holder released it (rebalancing).")
        storeFailures = ServiceMetrics.counter(
            "mm_coordinator_store_failures_total", "Decisions refused because the coordinator's store (SQLite or etcd) could not be written.")
    }

    /// Counts the events of one committed mutation.
    func committed(_ committedEvents: [ClusterEvent]) {
        for event in committedEvents {
            events[event.kind]?.increment()
            guard let symbol = event.symbol, let node = event.node else { continue }
            switch CoordinatorEventKind(rawValue: event.kind) {
            case .release:
                history.withLock { $0[symbol]?.releasedGracefully = true }
            case .grantExpired, .revoke:
                history.withLock { $0[symbol]?.releasedGracefully = false }
            case .grant:
                let previous = history.withLock { history in
                    defer { history[symbol] = (node, false) }
                    return history[symbol]
                }
                guard let previous, previous.holder != node else { continue }
                (previous.releasedGracefully ? handovers : failovers).increment()
            default:
                continue
            }
        }
    }

    func renewed(_ count: Int) { if count > 0 { renewals.increment(by: Int64(count)) } }

    func storeFailed() { storeFailures.increment() }
}
