import Logging
import MMCore
import ServiceLifecycle

public struct IngestSettings: Sendable {
    /// Fills asked for per request (one transaction per page).
    public var pageLimit: Int
    /// How long the exchange may hold a long-poll open when nothing is new.
    public var waitMs: Int64
    public var backoffInitialMs: Int64
    public var backoffMaxMs: Int64

    public init(pageLimit: Int = 1_000, waitMs: Int64 = 1_000, backoffInitialMs: Int64 = 50, backoffMaxMs: Int64 = 2_000) {
        self.pageLimit = pageLimit
        self.waitMs = waitMs
        self.backoffInitialMs = backoffInitialMs
        self.backoffMaxMs = backoffMaxMs
    }
}

/// Pulls the exchange's fill log from the persisted cursor and applies it, one transaction
/// per page. Never skips a seq: a hole is re-fetched, a conflicting fill stops ingestion at
/// that seq (loudly) until an operator resolves it, and a log that no longer matches the
/// ledger (the exchange's data was reset) is reported, never followed backwards.
public struct FillIngestService: Service {
    let source: any FillLogSource
    let ledger: TradingLedger
    let monitor: IngestMonitor
    let settings: IngestSettings
    let clock: any EpochClock
    let logger: Logger

    public init(source: any FillLogSource, ledger: TradingLedger, monitor: IngestMonitor, settings: IngestSettings = IngestSettings(), clock: any EpochClock, logger: Logger) {
        self.source = source
        self.ledger = ledger
        self.monitor = monitor
        self.settings = settings
        self.clock = clock
        self.logger = logger
    }

    /// Ingests until graceful shutdown, which cancels the round in flight (a long-poll to an
    /// exchange that is gone or stopped included). Positions long-polls are ended by the
    /// service's shutdown hook (`TradingStateService.run`), which runs before the HTTP server
    /// drains; this service is stopped only after that drain.
    public func run() async throws {
        await cancelWhenGracefulShutdown { await self.ingestUntilCancelled() }
    }

    /// What one round did, so the loop knows whether to wait before the next.
    enum RoundOutcome: Equatable {
        /// Progress or an empty long-poll: ask again at once.
        case continueNow
        /// A problem that will not fix itself within milliseconds: back off.
        case backOff
    }

    func ingestUntilCancelled() async {
        var backoffMs = settings.backoffInitialMs
        // The ledger's last fill must still be the exchange's fill at that seq before we
        // continue after it; checked at start and after every failure.
        var needsContinuityCheck = true
        var leading = false
        while !Task.isCancelled {
            // With replicas on one PostgreSQL, one pulls at a time; the others follow the
            // store (positions for their readers, the cursor for their status) and try to take
            // over every `followerPollMs`, so the next one ingests within that of a death.
            guard await ledger.repository.holdsIngestLeadership() else {
                leading = false
                await monitor.setIngesting(false)
                await followStore()
                try? await Task.sleep(for: .milliseconds(Self.followerPollMs))
                continue
            }
            if !leading {
                leading = true
                await monitor.setIngesting(true)
                // Another replica may have moved the cursor while this one followed.
                await followStore()
                needsContinuityCheck = true
            }
            let outcome = await round(needsContinuityCheck: &needsContinuityCheck)
            switch outcome {
            case .continueNow:
                backoffMs = settings.backoffInitialMs
            case .backOff:
                try? await Task.sleep(for: .milliseconds(backoffMs))
                backoffMs = min(backoffMs * 2, settings.backoffMaxMs)
            }
        }
    }

    /// How often a replica that does not ingest reads the store and tries to take over.
    static let followerPollMs: Int64 = 100

    private func followStore() async {
        await ledger.refresh()
        if let state = try? await ledger.repository.cursorState() { await monitor.adopt(cursor: state.cursor, lastBatchAtMs: state.lastBatchAtMs) }
    }

    func round(needsContinuityCheck: inout Bool) async -> RoundOutcome {
        let cursor = await monitor.cursor
        do {
            if needsContinuityCheck {
                guard try await continuityHolds(cursor: cursor) else { return .backOff }
                needsContinuityCheck = false
            }
            let page = try await source.fills(after: cursor, limit: settings.pageLimit, waitMs: settings.waitMs)
            await monitor.observedHead(page.headSeq)
            if page.headSeq < cursor {
                needsContinuityCheck = true
                await fail("exchange head_seq \(page.headSeq) is below the ledger's cursor \(cursor): the exchange's fill log was reset or lost fills; ingestion is paused rather than going backwards (restore the exchange's data directory, or start the cluster fresh with both data directories)")
                return .backOff
            }
            let plan = IngestPlan.plan(page: page.fills, after: cursor)
            if plan.batch.isEmpty {
                if let missing = plan.missingSeq {
                    await fail("exchange page after seq \(cursor) skipped seq \(missing) (head \(page.headSeq)); re-fetching")
                    return .backOff
                }
                await recovered()
                return .continueNow
            }
            let commit = try await ledger.ingest(plan.batch)
            if !commit.recorded.isEmpty || !commit.duplicates.isEmpty {
                await monitor.applied(cursor: commit.cursor, atMs: clock.nowMs())
            }
            if let stoppedAt = commit.stoppedAt {
                let message = "ingestion stopped at fill '\(stoppedAt.fillId ?? "?")' after cursor \(commit.cursor): \(stoppedAt)"
                if await monitor.failed(message, atMs: clock.nowMs()) { logger.critical("\(message)") }
                return .backOff
            }
            if let missing = plan.missingSeq {
                await fail("exchange page after seq \(cursor) skipped seq \(missing); applied up to \(commit.cursor), re-fetching the rest")
                return .continueNow
            }
            await recovered()
            return .continueNow
        } catch let error as ClientError {
            needsContinuityCheck = true
            await fail("exchange fill log unavailable: \(error)")
            return .backOff
        } catch is CancellationError {
            return .continueNow
        } catch {
            await fail("ledger write failed: \(error)")
            return .backOff
        }
    }

    /// True when the exchange still has, at the cursor's seq, the very fill the ledger holds
    /// there. False (reported) when the exchange's log was reset or rewritten.
    func continuityHolds(cursor: Int64) async throws -> Bool {
        guard cursor > 0 else { return true }
        let page = try await source.fills(after: cursor - 1, limit: 1, waitMs: 0)
        await monitor.observedHead(page.headSeq)
        guard let theirs = page.fills.first(where: { $0.seq == cursor }) else {
            await fail("exchange no longer has seq \(cursor) (head_seq \(page.headSeq)), which the ledger already applied: the exchange's fill log was reset; ingestion is paused rather than going backwards")
            return false
        }
        let ours = try await ledger.repository.fill(seq: cursor)
        guard let ours, ours == theirs else {
            let detail = ours.map { "ledger has '\($0.fillId)' (\($0.differingFields(from: theirs).joined(separator: ", ")) differ)" } ?? "ledger has nothing"
            await fail("exchange fill at seq \(cursor) is '\(theirs.fillId)' but \(detail): the exchange's fill log diverged from the ledger; ingestion is paused")
            return false
        }
        return true
    }

    private func recovered() async {
        if let cleared = await monitor.healthy() {
            let cursor = await monitor.cursor
            logger.notice("ingest healthy again at cursor \(cursor) (was: \(cleared))")
        }
    }

    private func fail(_ message: String) async {
        if await monitor.failed(message, atMs: clock.nowMs()) { logger.error("\(message)") }
    }
}
