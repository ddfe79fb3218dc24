import AsyncPrimitives
import Foundation
import MMCore

/// What the page polls: the latest cluster view plus what only the GUI knows (how fresh the
/// view is, the quote changes it saw, the TTLs that give countdowns their scale).
public struct DashboardFrame: Codable, Sendable, Hashable {
    /// Bumped on every successful refresh; the page skips re-rendering an unchanged frame.
    public var version: Int64
    public var serverNowMs: EpochMs
    public var refresh: RefreshStatus
    public var cluster: ClusterFacts
    /// The same document as `GET /api/view` and `mmctl status --json`; nil before the first
    /// successful refresh.
    public var view: ClusterSnapshot?
    /// Newest first.
    public var quoteUpdates: [QuoteUpdate]
    /// Coordinator and supervisor events, newest first, kept across snapshots.
    public var timeline: [ClusterEvent]
}

public struct RefreshStatus: Codable, Sendable, Hashable {
    public var intervalMs: Int64
    public var lastAttemptMs: EpochMs?
    public var lastSuccessMs: EpochMs?
    public var consecutiveFailures: Int64
    /// Why the last attempt failed (nil once one succeeds again).
    public var lastError: String?
    /// True when the view shown is older than `staleAfterMs`: the page must say so loudly,
    /// since an operator would otherwise trust numbers that stopped moving.
    public var stale: Bool
    public var staleAfterMs: Int64
}

/// Cluster settings the page needs to put numbers in context.
public struct ClusterFacts: Codable, Sendable, Hashable {
    public var grantTtlMs: Int64
    public var presenceTtlMs: Int64
    public var symbols: [SymbolSpec]

    public init(grantTtlMs: Int64, presenceTtlMs: Int64, symbols: [SymbolSpec]) {
        self.grantTtlMs = grantTtlMs
        self.presenceTtlMs = presenceTtlMs
        self.symbols = symbols
    }

    public init(_ config: ClusterConfig) {
        self.init(grantTtlMs: config.coordinator.grantTtlMs, presenceTtlMs: config.coordinator.presenceTtlMs, symbols: config.symbols)
    }
}

/// The latest view and the quote history, shared by the refresher (writer) and the HTTP
/// handlers (readers).
public final class DashboardStore: Sendable {
    struct State: Sendable {
        var view: ClusterSnapshot?
        var version: Int64 = 0
        var quoteLog: QuoteUpdateLog
        var timeline: EventTimeline
        var history: SessionHistory
        var lastAttemptMs: EpochMs?
        var lastSuccessMs: EpochMs?
        var consecutiveFailures: Int64 = 0
        var lastError: String?
        var framesServed: Int64 = 0
    }

    public let facts: ClusterFacts
    public let refreshIntervalMs: Int64
    public let staleAfterMs: Int64
    private let state: LockedBox<State>

    /// `historyResolutionMs` × `historyCapacity` is the charts' window (30 minutes at 1 s by
    /// default): every series is a ring of `historyCapacity` samples.
    public init(
        facts: ClusterFacts, refreshIntervalMs: Int64, quoteHistory: Int = 200, timelineHistory: Int = 300,
        historyResolutionMs: Int64 = SessionHistory.defaultResolutionMs, historyCapacity: Int = SessionHistory.defaultCapacity
    ) {
        self.facts = facts
        self.refreshIntervalMs = refreshIntervalMs
        // Three missed refreshes, but never less than 1.5 s, so one slow call is not an alarm.
        self.staleAfterMs = max(3 * refreshIntervalMs, 1_500)
        self.state = LockedBox(State(
            quoteLog: QuoteUpdateLog(capacity: quoteHistory), timeline: EventTimeline(capacity: timelineHistory),
            history: SessionHistory(symbols: facts.symbols, resolutionMs: historyResolutionMs, capacity: historyCapacity)))
    }

    /// True once one refresh has been attempted, successful or not: from then on the page
    /// has something true to say (the view, or why there is none).
    public var hasAttempted: Bool { state.value.lastAttemptMs != nil }

    public func record(_ snapshot: ClusterSnapshot, atMs now: EpochMs) {
        let exchangeReadable = !snapshot.errors.contains { SnapshotServiceNames.isExchange($0.service) }
        state.update { state in
            state.view = snapshot
            state.version += 1
            state.quoteLog.observe(snapshot, exchangeReadable: exchangeReadable)
            state.timeline.observe(snapshot)
            state.history.observe(snapshot, readable: SessionHistory.Readable(snapshot))
            state.lastAttemptMs = now
            state.lastSuccessMs = now
            state.consecutiveFailures = 0
            state.lastError = nil
        }
    }

    public func recordFailure(_ reason: String, atMs now: EpochMs) {
        state.update { state in
            state.lastAttemptMs = now
            state.consecutiveFailures += 1
            state.lastError = reason
        }
    }

    public var view: ClusterSnapshot? { state.value.view }

    public func quoteUpdates(limit: Int, symbol: String? = nil) -> [QuoteUpdate] {
        state.value.quoteLog.recent(limit: limit, symbol: symbol)
    }

    /// The charts' history: samples taken after `sinceMs`, spans and markers in full.
    public func history(sinceMs: EpochMs, nowMs: EpochMs, samplesOf: Set<String>? = nil) -> HistoryPage {
        state.value.history.page(sinceMs: sinceMs, nowMs: nowMs, samplesOf: samplesOf)
    }

    /// How many frames pages have fetched: whether anyone is watching (and, in tests, when a
    /// page has rendered).
    public var framesServed: Int64 { state.value.framesServed }

    /// The frame for one page poll (counted in `framesServed`).
    public func serveFrame(nowMs now: EpochMs, quoteLimit: Int) -> DashboardFrame {
        state.update { $0.framesServed += 1 }
        return frame(nowMs: now, quoteLimit: quoteLimit)
    }

    public func frame(nowMs now: EpochMs, quoteLimit: Int, eventLimit: Int = 100) -> DashboardFrame {
        let current = state.value
        let stale = current.lastSuccessMs.map { now - $0 > staleAfterMs } ?? true
        return DashboardFrame(
            version: current.version,
            serverNowMs: now,
            refresh: RefreshStatus(
                intervalMs: refreshIntervalMs, lastAttemptMs: current.lastAttemptMs, lastSuccessMs: current.lastSuccessMs,
                consecutiveFailures: current.consecutiveFailures, lastError: current.lastError, stale: stale,
                staleAfterMs: staleAfterMs),
            cluster: facts,
            view: current.view,
            quoteUpdates: current.quoteLog.recent(limit: quoteLimit),
            timeline: current.timeline.recent(limit: eventLimit))
    }
}

/// How snapshot `errors[].service` names the exchange (the builder names services by
/// their process names).
enum SnapshotServiceNames {
    static func isExchange(_ service: String) -> Bool {
        service == ClusterProcess.exchange.name
    }
}
