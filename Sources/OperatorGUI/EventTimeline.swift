import Foundation
import MMCore

/// The event timeline the page shows: every coordinator and supervisor event any snapshot
/// carried, kept beyond the snapshot's own short window so a failover stays readable after
/// the fact. A pure fold of successive snapshots.
public struct EventTimeline: Sendable, Hashable {
    public let capacity: Int
    /// Newest first (by time, then by arrival), at most `capacity`.
    public private(set) var events: [ClusterEvent] = []
    private var seen: Set<ClusterEvent> = []

    public init(capacity: Int = 300) {
        precondition(capacity > 0, "a timeline needs room for at least one event")
        self.capacity = capacity
    }

    /// The supervisor and the coordinator number their events independently, so an event is
    /// identified by its whole content, not by its seq alone.
    public mutating func observe(_ snapshot: ClusterSnapshot) {
        let fresh = snapshot.recentEvents.filter { !seen.contains($0) }
        guard !fresh.isEmpty else { return }
        // Stable sort: equal timestamps keep the snapshot's order (already newest first).
        let merged = (fresh + events).enumerated().sorted { lhs, rhs in
            lhs.element.tsMs != rhs.element.tsMs ? lhs.element.tsMs > rhs.element.tsMs : lhs.offset < rhs.offset
        }.map(\.element)
        events = Array(merged.prefix(capacity))
        seen = Set(events)
    }

    public func recent(limit: Int) -> [ClusterEvent] { Array(events.prefix(max(0, limit))) }
}
