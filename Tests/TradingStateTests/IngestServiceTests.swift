import Logging
import MMCore
import Testing
@testable import TradingState

/// The pull loop against a scripted exchange log, one round at a time (no sleeping), on each
/// ledger backend.
@Suite("Fill ingest loop", .postgresServer)
struct IngestServiceTests {
    struct Rig {
        let ledger: TradingLedger
        let monitor: IngestMonitor
        let log: ScriptedFillLog
        let service: FillIngestService

        init(store: LedgerStore, log fills: [Fill], pageLimit: Int = 10, clock: ManualClock = ManualClock()) async throws {
            ledger = try await store.open(clock: clock)
            let state = try await ledger.repository.cursorState()
            monitor = IngestMonitor(cursor: state.cursor, lastBatchAtMs: state.lastBatchAtMs)
            log = ScriptedFillLog(fills)
            service = FillIngestService(
                source: log, ledger: ledger, monitor: monitor, settings: IngestSettings(pageLimit: pageLimit, waitMs: 0), clock: clock,
                logger: Logger(label: "test.ingest"))
        }

        /// Runs rounds until one backs off or nothing more arrives; returns the outcomes.
        @discardableResult
        func rounds(_ count: Int, check: inout Bool) async -> [FillIngestService.RoundOutcome] {
            var outcomes: [FillIngestService.RoundOutcome] = []
            for _ in 0..<count { outcomes.append(await service.round(needsContinuityCheck: &check)) }
            return outcomes
        }
    }

    /// A rig on a fresh ledger of `backend`, closed however `body` ends.
    static func withRig(_ backend: LedgerBackend, _ label: String, log fills: [Fill], _ body: (Rig) async throws -> Void) async throws {
        try await withLedgerStore(backend, label: label) { store in try await body(try await Rig(store: store, log: fills)) }
    }

    static func stream(_ count: Int) -> [Fill] {
        (1...count).map { (index: Int) -> Fill in
            let side: Side = index % 3 == 0 ? .sell : .buy
            let price = Int64(100 + index % 5)
            let qty = Int64(index % 3 + 1)
            return makeFill(Int64(index), testSymbols[index % 4], side, price: price, qty: qty)
        }
    }

    @Test("catches up page by page and the positions equal the fold", arguments: LedgerBackend.allCases)
    func catchUp(backend: LedgerBackend) async throws {
        let fills = Self.stream(25)
        try await Self.withRig(backend, "catchup", log: fills) { rig in
            var check = true
            let outcomes = await rig.rounds(4, check: &check)
            #expect(outcomes == [.continueNow, .continueNow, .continueNow, .continueNow])
            #expect(await rig.monitor.cursor == 25)
            let stored = try await rig.ledger.repository.cursorState()
            #expect(stored.cursor == 25)
            #expect(economicMismatches(await rig.ledger.positions(), distinct: fills).isEmpty)
            let status = await rig.monitor.status(version: 25)
            #expect(status.lag == 0)
            #expect(status.lastError == nil)
        }
    }

    @Test("a hole in a page is re-fetched, never skipped", arguments: LedgerBackend.allCases)
    func gapIsRefetched(backend: LedgerBackend) async throws {
        let fills = Self.stream(8)
        try await Self.withRig(backend, "gap", log: fills) { rig in
            await rig.log.drop(4)
            var check = true
            await rig.rounds(1, check: &check)
            #expect(await rig.monitor.cursor == 3)
            #expect(await rig.monitor.lastError?.contains("skipped seq 4") == true)
            await rig.rounds(1, check: &check)
            #expect(await rig.monitor.cursor == 8)
            #expect(await rig.monitor.lastError == nil)
            let stored = try await rig.ledger.repository.ledger(symbol: nil, after: 0, limit: 100)
            #expect(stored.fills == fills)
        }
    }

    @Test("a page that starts past the cursor applies nothing and backs off", arguments: LedgerBackend.allCases)
    func gapAtStart(backend: LedgerBackend) async throws {
        let fills = Self.stream(5)
        try await Self.withRig(backend, "gapstart", log: fills) { rig in
            await rig.log.drop(1)
            var check = true
            #expect(await rig.rounds(1, check: &check) == [.backOff])
            #expect(await rig.monitor.cursor == 0)
            #expect(await rig.monitor.lastError?.contains("skipped seq 1") == true)
            await rig.rounds(1, check: &check)
            #expect(await rig.monitor.cursor == 5)
        }
    }

    @Test("an unreachable exchange is reported, backed off from, and recovered from", arguments: LedgerBackend.allCases)
    func exchangeDown(backend: LedgerBackend) async throws {
        let fills = Self.stream(5)
        try await Self.withRig(backend, "down", log: fills) { rig in
            await rig.log.setReachable(false)
            var check = true
            #expect(await rig.rounds(2, check: &check) == [.backOff, .backOff])
            #expect(await rig.monitor.lastError?.contains("unavailable") == true)
            #expect(await rig.monitor.consecutiveFailures == 2)
            #expect(await rig.monitor.cursor == 0)
            await rig.log.setReachable(true)
            #expect(await rig.rounds(1, check: &check) == [.continueNow])
            #expect(await rig.monitor.cursor == 5)
            #expect(await rig.monitor.lastError == nil)
        }
    }

    @Test("an exchange whose head falls below the cursor is reported; the ledger never goes backwards", arguments: LedgerBackend.allCases)
    func exchangeReset(backend: LedgerBackend) async throws {
        let fills = Self.stream(6)
        try await Self.withRig(backend, "reset", log: fills) { rig in
            var check = true
            await rig.rounds(1, check: &check)
            #expect(await rig.monitor.cursor == 6)
            // The exchange's data directory was wiped: a new log with other fills.
            await rig.log.setLog((1...3).map { makeFill(Int64($0), id: "NEW\($0)") })
            #expect(await rig.rounds(2, check: &check) == [.backOff, .backOff])
            #expect(await rig.monitor.lastError?.contains("reset") == true)
            #expect(await rig.monitor.cursor == 6)
            // Even once the new log grows past the cursor, it does not match the ledger.
            await rig.log.setLog((1...9).map { makeFill(Int64($0), id: "NEW\($0)") })
            #expect(await rig.rounds(1, check: &check) == [.backOff])
            #expect(await rig.monitor.lastError?.contains("diverged") == true)
            #expect(await rig.monitor.cursor == 6)
            #expect(await rig.ledger.positions().version == 6)
            let beyond = try await rig.ledger.repository.fill(seq: 7)
            #expect(beyond == nil)
        }
    }

    @Test("a conflicting fill in the log stops ingestion at that seq, loudly", arguments: LedgerBackend.allCases)
    func conflictStops(backend: LedgerBackend) async throws {
        let fills = Self.stream(6)
        try await Self.withRig(backend, "conflict", log: fills) { rig in
            var pushed = fills[3]
            pushed.qty += 10
            _ = try await rig.ledger.record([pushed])
            var check = true
            #expect(await rig.rounds(2, check: &check) == [.backOff, .backOff])
            #expect(await rig.monitor.cursor == 3)
            let lastError = await rig.monitor.lastError ?? ""
            #expect(lastError.contains("'F4'"))
            #expect(lastError.contains("already recorded with different qty"))
            #expect(try await rig.ledger.repository.fill(seq: 5) == nil)
        }
    }

    @Test("pushed fills come back from the log as duplicates, counted once", arguments: LedgerBackend.allCases)
    func pushedThenPulled(backend: LedgerBackend) async throws {
        let fills = Self.stream(12)
        try await Self.withRig(backend, "pushpull", log: fills) { rig in
            _ = try await rig.ledger.record(Array(fills[4..<9]))
            var check = true
            await rig.rounds(2, check: &check)
            #expect(await rig.monitor.cursor == 12)
            let view = await rig.ledger.positions()
            #expect(view.version == 12)
            #expect(economicMismatches(view, distinct: fills).isEmpty)
        }
    }

    @Test("the service runs until graceful shutdown and leaves no waiter behind", arguments: LedgerBackend.allCases)
    func runsAsService(backend: LedgerBackend) async throws {
        let fills = Self.stream(30)
        try await Self.withRig(backend, "service", log: fills) { rig in
            let task = Task { try await rig.service.run() }
            #expect(await eventuallyTrue { await rig.monitor.cursor == 30 })
            task.cancel()
            _ = try? await task.value
            #expect(economicMismatches(await rig.ledger.positions(), distinct: fills).isEmpty)
        }
    }
}
