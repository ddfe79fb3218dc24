import MMCore

/// The coordinator's event history as the grant check needs it: the compaction base (what the
/// events pruned by retention established) and every retained event after it. Folding
/// `events` onto `base.grants` gives the same verdict as folding the whole history would.
public struct CoordinatorEventHistory: Sendable, Hashable {
    /// nil when nothing was pruned (or the coordinator predates retention): `events` is then
    /// the whole log.
    public var base: EventLogBase?
    /// Every event with seq > `base.compactedThroughSeq`, oldest first.
    public var events: [ClusterEvent]

    public init(base: EventLogBase?, events: [ClusterEvent]) {
        self.base = base
        self.events = events
    }
}

/// Why the history could not be read consistently: retention kept pruning past the reader.
public struct EventLogOutran: Error, Sendable, CustomStringConvertible {
    public var attempts: Int
    public var description: String {
        "the coordinator pruned its event log past the checker \(attempts) times while it was being read; raise coordinator.events.retain"
    }
}
