import Foundation
import Logging
import MMCore
import ServiceLifecycle

/// A loop that runs `action` every `intervalMs` until graceful shutdown. Pacing uses real
/// sleeps; every decision the action takes reads the injected clock, so tests drive the
/// action directly with a ManualClock instead of waiting.
///
/// Graceful shutdown cancels the loop, which ends a sleep at once (a sleep is not otherwise
/// interrupted by shutdown, so the exit used to wait up to one interval, 250 ms for the price
/// ticks). An action already running completes: they are actor calls with no cancellation point.
public struct PeriodicService: Service {
    public let name: String
    public let intervalMs: Int64
    let action: @Sendable () async throws -> Void

    public init(name: String, intervalMs: Int64, action: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.intervalMs = max(intervalMs, 1)
        self.action = action
    }

    public func run() async throws {
        let intervalMs = self.intervalMs
        let action = self.action
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: .milliseconds(intervalMs))
                } catch {
                    return
                }
                try await action()
            }
        }
    }
}

/// The journal's flush loop as a service; when it fails the service group stops and the
/// process exits, so the supervisor restarts it and it replays to a consistent state.
public struct JournalFlushService: Service {
    let core: ExchangeCore

    public init(core: ExchangeCore) { self.core = core }

    public func run() async throws {
        let core = self.core
        try await core.committer.run { seq in await core.markDurable(seq) }
    }
}

/// Writes each snapshot the core asks for once the journal holds everything it covers (a
/// snapshot must never contain an effect a crash could take back). Only the newest request
/// is kept while one is being written.
public struct SnapshotWriterService: Service {
    let core: ExchangeCore

    public init(core: ExchangeCore) { self.core = core }

    public func run() async throws {
        let core = self.core
        guard core.snapshots != nil else { return }
        try await cancelWhenGracefulShutdown {
            for await snapshot in core.pendingSnapshots {
                do { try await core.committer.waitDurable(snapshot.journalSeq) } catch { return }
                core.writeSnapshot(snapshot)
            }
        }
    }
}

extension ExchangeCore {
    /// Every long-running loop of the exchange: group commit, external flow, dead-man
    /// sweeps and price ticks.
    public nonisolated func services() -> [any Service] {
        let core = self
        return [
            JournalFlushService(core: core),
            SnapshotWriterService(core: core),
            PeriodicService(name: "external-flow", intervalMs: max(1, config.flow.intervalMs / 2)) { await core.generateFlow() },
            PeriodicService(name: "deadman-sweep", intervalMs: 20) { await core.sweepDeadmen() },
            PeriodicService(name: "price-ticks", intervalMs: config.exchange.priceIntervalMs) { await core.advancePrices() },
            PeriodicService(name: "unquoted-time", intervalMs: 250) { await core.accountUnquotedTime() },
        ]
    }
}
