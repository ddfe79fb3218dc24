import Logging
import MMCore
import Testing

@testable import MarketMaker

/// The engine and the node state over fake authorities and a hand-moved monotonic clock:
/// every rule about when to quote and when to stop is checked without sleeping.
@Suite struct QuotingEngineTests {
    let fake = FakeAuthorities(grantTtlMs: 1_000)
    let time = ManualMonotonicTime()
    let state: NodeState
    let engine: QuotingEngine

    static let settings = NodeSettings(
        nodeId: "n1", address: "http://127.0.0.1:1", quoting: .init(spreadTicks: 4, skewTicksAtLimit: 4, sizeLots: 5, positionLimitLots: 50),
        maxPriceTicks: 1_000_000_000, heartbeatIntervalMs: 250, renewIntervalMs: 300, safetyMarginMs: 100, deadmanTimeoutMs: 1_000,
        refreshIntervalMs: 1_000, priceIntervalMs: 50, grantTtlMs: 1_000, acquireRetryMs: 20, transientRetryMs: 20, longPollWaitMs: 50)

    init() {
        let logger = Logger(label: "test.engine")
        state = NodeState(settings: Self.settings, time: time, clock: ManualClock(), logger: logger)
        engine = QuotingEngine(state: state, orders: fake, authority: fake, time: time, logger: logger)
    }

    /// Assigns and grants `symbols` to n1 and feeds prices and flat positions.
    func holding(_ symbols: [String]) async throws {
        fake.assign(Dictionary(uniqueKeysWithValues: symbols.map { ($0, "n1") }))
        await state.applyAssignments(try await fake.assignments(afterVersion: nil, waitMs: 0))
        for (index, symbol) in symbols.enumerated() {
            fake.setPrice(symbol, 10_000 + Int64(index) * 1_000, tick: 1)
            let sentAt = time.now()
            #expect(await state.installGrant(try await fake.acquire(symbol: symbol, node: "n1"), requestSentAt: sentAt))
        }
        await state.applyPrices(try await fake.prices())
        await state.applyPositions(PositionsView(version: 0, positions: symbols.map { Position.flat($0) }))
    }

    func entries(_ prefix: String) -> [String] { fake.log.filter { $0.hasPrefix(prefix) } }

    @Test func quotesOnceOnAcquireThenOnlyWhenSomethingMoves() async throws {
        try await holding(["ACME"])
        await engine.runRound()
        #expect(entries("replace") == ["replace ACME#1 9998/10002"])
        #expect(await state.status().quotes.first?.reason == .acquired)

        // Nothing moved: nothing is re-sent.
        #expect(await engine.runRound().worked == false)
        #expect(entries("replace").count == 1)

        // A fill: replaced at once, skewed by the new position, labelled fill.
        fake.fill("ACME", netDelta: 25)
        await state.applyPositions(try await fake.positions(afterVersion: nil, waitMs: 0))
        await engine.runRound()
        #expect(entries("replace").last == "replace ACME#1 9996/10000")
        let status = await state.status()
        #expect(status.quotes.first?.reason == .fill)
        #expect(status.quotes.first?.netQty == 25)
        #expect(status.counters.quotesByReason == ["acquired": 1, "fill": 1])
    }

    @Test func refreshedByTheTimerWhenNothingChanges() async throws {
        try await holding(["ACME"])
        await engine.runRound()
        time.advance(milliseconds: 500)
        #expect(await engine.runRound().worked == false)
        time.advance(milliseconds: 500)
        // The lease (900 ms) has run out by now unless renewed: renew as the renewer would.
        let renewal = try await fake.renew(BatchRenewRequest(node: "n1", grants: [.init(symbol: "ACME", fencingToken: 1)]))
        await state.applyRenewal(renewal, requestSentAt: time.now())
        await engine.runRound()
        #expect(entries("replace").count == 2)
        #expect(await state.status().quotes.first?.reason == .timer)
    }

    @Test func theNextDeadlineIsTheEarlierOfRefreshAndLeaseEnd() async throws {
        try await holding(["ACME"])
        let start = time.now()
        await engine.runRound()
        let (_, deadline) = await engine.runRound()
        // Lease: 1000 ms TTL − 100 ms margin; refresh: 1000 ms.
        #expect(deadline == start.adding(milliseconds: 900))
    }

    @Test func nothingIsSentOnceTheLeaseRanOutLocally() async throws {
        try await holding(["ACME"])
        time.advance(milliseconds: 900)
        await engine.runRound()
        #expect(entries("replace").isEmpty)
        // Past its own reckoning the node does not cancel either; it only releases.
        #expect(entries("cancel").isEmpty)
        #expect(entries("release") == ["release ACME#1"])
        let status = await state.status()
        #expect(status.grants.isEmpty)
        #expect(status.counters.lossesByReason == [LossReason.localExpiry: 1])
    }

    @Test func theLeaseIsCheckedImmediatelyBeforeSending() async throws {
        try await holding(["ACME"])
        let (work, _) = await state.planRound()
        #expect(work.count == 1)
        // Time passes between planning and sending (a slow round, a GC pause, SIGSTOP…).
        time.advance(milliseconds: 900)
        await engine.perform(work)
        #expect(entries("replace").isEmpty)
        #expect(await state.status().grants.isEmpty)
    }

    @Test func unassignedSymbolIsCancelledThenReleasedAndNotReacquired() async throws {
        try await holding(["ACME"])
        await engine.runRound()
        fake.assign(["ACME": "n2"])
        await state.applyAssignments(try await fake.assignments(afterVersion: nil, waitMs: 0))
        // Stopped at once: no more quoting, even before the cleanup ran.
        #expect(await state.validLease(for: "ACME", token: 1) == nil)
        await engine.runRound()
        #expect(Array(fake.log.suffix(2)) == ["cancel ACME#1", "release ACME#1"])
        #expect(fake.book["ACME"] == nil)
        #expect(await state.symbolsToAcquire().isEmpty)
    }

    @Test func aStaleTokenAnswerStopsAllActionAtOnce() async throws {
        try await holding(["ACME"])
        fake.update { $0.replaceError["ACME"] = FakeAuthorities.apiError(409, "stale_fencing_token") }
        await engine.runRound()
        await engine.runRound()
        #expect(entries("replace").count == 1)
        // The exchange already said the grant is superseded: no cancel, just the release.
        #expect(entries("cancel").isEmpty)
        #expect(entries("release") == ["release ACME#1"])
        let counters = await state.status().counters
        #expect(counters.rejections == ["stale_fencing_token": 1])
        #expect(counters.lossesByReason == ["stale_fencing_token": 1])
        // Still assigned: the acquirer may try again (the coordinator decides).
        #expect(await state.symbolsToAcquire() == ["ACME"])
    }

    @Test func aRoundWithSeveralChangedSymbolsIsOneBatchRequest() async throws {
        try await holding(["ACME", "BOLT", "CORE"])
        await engine.runRound()
        #expect(fake.state.withLock { $0.quoteBatches }.map { Set($0) } == [["ACME", "BOLT", "CORE"]])
        #expect(entries("replace").count == 3)
        // Two prices move: one more request, holding exactly those two.
        fake.setPrice("ACME", 10_100, tick: 2)
        fake.setPrice("CORE", 12_100, tick: 2)
        await state.applyPrices(try await fake.prices())
        await engine.runRound()
        let batches = fake.state.withLock { $0.quoteBatches }
        #expect(batches.count == 2)
        #expect(Set(batches.last ?? []) == ["ACME", "CORE"])
        #expect(fake.book["ACME"]?.bidPrice == 10_098 && fake.book["CORE"]?.bidPrice == 12_098)
    }

    @Test func oneStaleItemInABatchLosesOnlyItsSymbol() async throws {
        try await holding(["ACME", "BOLT"])
        fake.update { $0.replaceError["ACME"] = FakeAuthorities.apiError(409, "stale_fencing_token") }
        await engine.runRound()
        await engine.runRound()
        #expect(fake.state.withLock { $0.quoteBatches }.count == 1)
        #expect(fake.book["BOLT"] != nil && fake.book["ACME"] == nil)
        #expect(entries("release") == ["release ACME#1"])
        let status = await state.status()
        #expect(status.counters.lossesByReason == ["stale_fencing_token": 1])
        #expect(status.quotes.map(\.symbol) == ["BOLT"])
    }

    @Test func aFailedBatchCountsForEveryItem() async throws {
        try await holding(["ACME", "BOLT"])
        fake.update { $0.batchError = .unreachable(TransportError(url: "x", reason: "refused")) }
        await engine.runRound()
        #expect(fake.book.isEmpty)
        #expect(await state.status().counters.rejections == ["unreachable": 2])
        // Retried after the retry delay, again as one request.
        fake.update { $0.batchError = nil }
        time.advance(milliseconds: 25)
        await engine.runRound()
        #expect(Set(fake.book.keys) == ["ACME", "BOLT"])
        #expect(fake.state.withLock { $0.quoteBatches }.count == 2)
    }

    @Test func aRefusedRenewalGivesTheSymbolUp() async throws {
        try await holding(["ACME", "BOLT"])
        await engine.runRound()
        fake.update { $0.refuseRenewal = ["BOLT"] }
        let result = try await fake.renew(BatchRenewRequest(node: "n1", grants: [.init(symbol: "ACME", fencingToken: 1), .init(symbol: "BOLT", fencingToken: 1)]))
        await state.applyRenewal(result, requestSentAt: time.now())
        await engine.runRound()
        #expect(Array(fake.log.suffix(2)) == ["cancel BOLT#1", "release BOLT#1"])
        let status = await state.status()
        #expect(status.grants.map(\.symbol) == ["ACME"])
        #expect(status.counters.renewFailures == 1)
    }

    @Test func aRenewalExtendsTheLeaseFromItsSendInstant() async throws {
        try await holding(["ACME"])
        time.advance(milliseconds: 600)
        let sentAt = time.now()
        let result = try await fake.renew(BatchRenewRequest(node: "n1", grants: [.init(symbol: "ACME", fencingToken: 1)]))
        await state.applyRenewal(result, requestSentAt: sentAt)
        time.advance(milliseconds: 899)
        #expect(await state.validLease(for: "ACME", token: 1) != nil)
        #expect(await state.status().grants.first?.expiresInMs == 1)
        time.advance(milliseconds: 1)
        #expect(await state.validLease(for: "ACME", token: 1) == nil)
    }

    @Test func anUnreachableExchangeIsRetriedAfterTheRetryDelayNotHammered() async throws {
        try await holding(["ACME"])
        fake.update { $0.replaceError["ACME"] = .unreachable(TransportError(url: "x", reason: "refused")) }
        await engine.runRound()
        await engine.runRound()
        #expect(entries("replace").count == 1)
        fake.update { $0.replaceError = [:] }
        time.advance(milliseconds: 20)
        await engine.runRound()
        #expect(entries("replace").count == 2)
        #expect(fake.book["ACME"] != nil)
        #expect(await state.status().counters.rejections == ["unreachable": 1])
    }

    @Test func aGrantNoLongerWantedOnArrivalIsReleasedWithoutQuoting() async throws {
        fake.assign(["ACME": "n1"])
        await state.applyAssignments(try await fake.assignments(afterVersion: nil, waitMs: 0))
        let grant = try await fake.acquire(symbol: "ACME", node: "n1")
        // Reassigned while the acquire was in flight.
        fake.assign(["ACME": "n2"])
        await state.applyAssignments(try await fake.assignments(afterVersion: nil, waitMs: 0))
        #expect(await state.installGrant(grant, requestSentAt: time.now()) == false)
        await engine.runRound()
        #expect(fake.log.suffix(1) == ["release ACME#1"])
        #expect(entries("replace").isEmpty)
    }

    @Test func shutdownCancelsEveryQuoteBeforeReleasingAnyGrant() async throws {
        try await holding(["ACME", "BOLT", "CRUX"])
        await engine.runRound()
        await state.beginShutdown()
        await engine.runRound()
        let tail = Array(fake.log.suffix(6))
        #expect(tail.prefix(3).allSatisfy { $0.hasPrefix("cancel") })
        #expect(tail.suffix(3).allSatisfy { $0.hasPrefix("release") })
        #expect(fake.book.isEmpty)
        #expect(await state.isDrained)
        #expect(await state.symbolsToAcquire().isEmpty)
    }

    @Test func inputsForSymbolsNotHeldDoNotWakeTheEngine() async throws {
        try await holding(["ACME"])
        await engine.runRound()
        fake.setPrice("BOLT", 2_600, tick: 2)
        await state.applyPrices(try await fake.prices())
        #expect(await engine.runRound().worked == false)
    }

    @Test func olderPriceTicksAreIgnored() async throws {
        try await holding(["ACME"])
        await state.applyPrices([ReferencePrice(symbol: "ACME", price: 10_010, tickIndex: 5, tsMs: 0)])
        await state.applyPrices([ReferencePrice(symbol: "ACME", price: 9_000, tickIndex: 4, tsMs: 0)])
        #expect(await state.prices["ACME"]?.price == 10_010)
    }
}
