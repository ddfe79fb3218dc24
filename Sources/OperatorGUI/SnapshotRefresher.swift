import Foundation
import Logging
import MMCore
import ServiceLifecycle

/// Rebuilds the cluster view every `intervalMs` for as long as the process runs. A failed
/// refresh keeps the last good view (marked stale by the store once it ages) and is retried
/// on the next tick; nothing here can end the service.
public struct SnapshotRefresher: Service {
    let source: any SnapshotSource
    let store: DashboardStore
    let clock: any EpochClock
    let logger: Logger

    public init(source: any SnapshotSource, store: DashboardStore, clock: any EpochClock, logger: Logger) {
        self.source = source
        self.store = store
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let started = ContinuousClock.now
                await refreshOnce()
                // A fixed rate, not a fixed gap: a slow refresh is followed at once by the next.
                let next = started + .milliseconds(store.refreshIntervalMs)
                try await Task.sleep(until: max(next, ContinuousClock.now + .milliseconds(20)), clock: .continuous)
            }
        }
    }

    public func refreshOnce() async {
        do {
            let snapshot = try await source.snapshot()
            store.record(snapshot, atMs: clock.nowMs())
        } catch {
            let reason = "\(error)"
            if store.view == nil || store.frame(nowMs: clock.nowMs(), quoteLimit: 0).refresh.consecutiveFailures == 0 {
                logger.warning("cluster view refresh failed: \(reason)")
            }
            store.recordFailure(reason, atMs: clock.nowMs())
        }
    }
}
