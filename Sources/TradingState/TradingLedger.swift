import Logging
import MMCore

/// The trading-state service's core: validates fills, commits them through the repository
/// and publishes the resulting positions to long-polling readers.
public final class TradingLedger: Sendable {
    public let repository: any LedgerRepository
    public let validator: FillValidator
    public let broadcaster: PositionsBroadcaster
    private let clock: any EpochClock
    private let logger: Logger

    private init(repository: any LedgerRepository, validator: FillValidator, broadcaster: PositionsBroadcaster, clock: any EpochClock, logger: Logger) {
        self.repository = repository
        self.validator = validator
        self.broadcaster = broadcaster
        self.clock = clock
        self.logger = logger
    }

    /// Loads the persisted positions, so readers see them before the first new fill.
    public static func open(
        repository: any LedgerRepository, validator: FillValidator, clock: any EpochClock, logger: Logger = Logger(label: "mm.state.ledger")
    ) async throws -> TradingLedger {
        let broadcaster = PositionsBroadcaster(initial: try await repository.positions())
        return TradingLedger(repository: repository, validator: validator, broadcaster: broadcaster, clock: clock, logger: logger)
    }

    /// `POST /v1/fills`: all or nothing. Throws `LedgerRejection` for the first bad fill.
    public func record(_ fills: [Fill]) async throws -> RecordFillsResult {
        if let problem = validator.firstProblem(in: fills) { throw problem }
        if let clash = Self.conflictWithinBatch(fills) { throw clash }
        let commit: LedgerCommit
        do {
            let started = ContinuousClock.now
            commit = try await repository.record(fills, atMs: clock.nowMs())
            Self.count(commit.recorded.count, duplicates: commit.duplicates.count, since: started)
        } catch let rejection as LedgerRejection {
            logger.error("refused pushed batch of \(fills.count) fills, nothing recorded: \(rejection)")
            throw rejection
        }
        await broadcaster.publish(commit.view)
        return RecordFillsResult(recorded: commit.recorded, duplicates: commit.duplicates, version: commit.view.version)
    }

    /// Applies a contiguous run from the exchange's log, stopping at the first fill that is
    /// invalid or conflicts (reported in `stoppedAt`, never skipped).
    public func ingest(_ fills: [Fill]) async throws -> IngestCommit {
        var applicable = fills
        var invalid: LedgerRejection?
        for (index, fill) in fills.enumerated() {
            if let problem = validator.problem(with: fill, at: index) {
                applicable = Array(fills[..<index])
                invalid = problem
                break
            }
        }
        var commit: IngestCommit
        if applicable.isEmpty {
            let state = try await repository.cursorState()
            commit = IngestCommit(recorded: [], duplicates: [], cursor: state.cursor, view: await broadcaster.current, stoppedAt: nil)
        } else {
            let started = ContinuousClock.now
            commit = try await repository.ingest(applicable, atMs: clock.nowMs())
            Self.count(commit.recorded.count, duplicates: commit.duplicates.count, since: started)
            await broadcaster.publish(commit.view)
        }
        if commit.stoppedAt == nil, let invalid { commit.stoppedAt = invalid }
        return commit
    }

    public func positions() async -> PositionsView { await broadcaster.current }

    private static func count(_ recorded: Int, duplicates: Int, since started: ContinuousClock.Instant) {
        let metrics = TradingStateMetrics.shared
        metrics.commit.record(ContinuousClock.now - started)
        if recorded > 0 { metrics.fillsRecorded.increment(by: Int64(recorded)) }
        if duplicates > 0 { metrics.duplicates.increment(by: Int64(duplicates)) }
    }

    /// Reads the positions again from the store and publishes them if they are newer: how a
    /// replica that does not ingest sees what the ingesting one wrote (its readers and
    /// long-polls wake as if it had written them).
    public func refresh() async {
        if let view = try? await repository.positions() { await broadcaster.publish(view) }
    }

    /// Two entries of one batch that contradict each other (same id, other contents; same
    /// seq, other id) would otherwise be resolved by arrival order: refuse the batch.
    static func conflictWithinBatch(_ fills: [Fill]) -> LedgerRejection? {
        var byId: [String: Fill] = [:]
        var bySeq: [Int64: String] = [:]
        for fill in fills {
            if let earlier = byId[fill.fillId] {
                if earlier != fill {
                    return .conflictingDuplicate(fillId: fill.fillId, differingFields: earlier.differingFields(from: fill), stored: earlier, presented: fill)
                }
                continue
            }
            if let owner = bySeq[fill.seq] { return .seqConflict(seq: fill.seq, storedFillId: owner, presentedFillId: fill.fillId) }
            byId[fill.fillId] = fill
            bySeq[fill.seq] = fill.fillId
        }
        return nil
    }
}
