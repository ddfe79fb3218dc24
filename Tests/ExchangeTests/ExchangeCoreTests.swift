import Exchange
import Foundation
import MMCore
import PropertyBased
import Testing

@Suite("Exchange core: fencing, dead-man, replay")
struct ExchangeCoreTests {
    func makeCore(_ clock: ManualClock, journal: InMemoryExchangeJournal = InMemoryExchangeJournal()) async throws -> ExchangeCore {
        try ExchangeCore(config: try await Fixture.config(), signer: Fixture.signer, clock: clock, journal: journal)
    }

    func expectCode(_ code: String, status: Int, _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("expected \(status) \(code), got success")
        } catch let error as APIError {
            #expect(error.code == code && error.status == status, "got \(error)")
        } catch {
            Issue.record("expected APIError \(code), got \(error)")
        }
    }

    @Test("stale token rejected and changes nothing; higher token supersedes and cancels the old quote")
    func fencing() async throws {
        let clock = ManualClock(startMs: Fixture.startMs)
        let core = try await makeCore(clock)
        _ = try await core.replaceQuote(symbol: "ACME", Fixture.quote(node: "n1", token: 5))
        let order = try await core.submitOrder(Fixture.order("c1", node: "n1", token: 5, side: .buy, price: 9_000, qty: 1)).0
        #expect(order.status == .resting)
        let before = await core.snapshot

        await expectCode(ExchangeErrorCode.staleFencingToken, status: 409) {
            _ = try await core.replaceQuote(symbol: "ACME", Fixture.quote(node: "n2", token: 4, bid: 9_000, ask: 11_000))
        }
        await expectCode(ExchangeErrorCode.staleFencingToken, status: 409) {
            _ = try await core.cancelQuote(symbol: "ACME", Fixture.fenced(node: "n2", token: 4))
        }
        let afterStale = await core.snapshot
        #expect(afterStale.allQuotes == before.allQuotes)
        #expect(afterStale.journalSeq == before.journalSeq)

        // n2 gets a fresh grant (token 6): n1's quote and order go first, then n2's quote rests.
        let (quote, _) = try await core.replaceQuote(symbol: "ACME", Fixture.quote(node: "n2", token: 6, bid: 9_980, ask: 10_020))
        #expect(quote.node == "n2" && quote.fencingToken == 6 && quote.bidPrice == 9_980)
        let state = await core.snapshot
        #expect(state.orderAck(order.orderId)?.status == .cancelled)
        #expect(state.depth("ACME", levels: 10)?.bids == [BookLevel(price: 9_980, qty: 5, orders: 1)])
        #expect(state.highestToken("ACME") == 6)
        // n1, still holding token 5, can no longer act.
        await expectCode(ExchangeErrorCode.staleFencingToken, status: 409) {
            _ = try await core.submitOrder(Fixture.order("c2", node: "n1", token: 5, side: .buy, price: 9_000, qty: 1))
        }
        let stats = await core.stats()
        #expect(stats.rejections[ExchangeErrorCode.staleFencingToken] == 3)
        #expect(stats.staleAccepted == 0)
        #expect(stats.highestTokens == ["ACME": 6])
    }

    @Test("forged, foreign and expired grants")
    func grants() async throws {
        let clock = ManualClock(startMs: Fixture.startMs)
        let core = try await makeCore(clock)
        let forged = Fixture.grant(token: 1, signer: Fixture.foreignSigner)
        await expectCode(ExchangeErrorCode.invalidGrant, status: 403) {
            _ = try await core.replaceQuote(symbol: "ACME", Fixture.quote(grant: forged))
        }
        var stretched = Fixture.grant(token: 1)
        stretched.expiresAtMs += 1_000_000
        await expectCode(ExchangeErrorCode.invalidGrant, status: 403) {
            _ = try await core.replaceQuote(symbol: "ACME", Fixture.quote(grant: stretched))
        }
        // n2 presenting n1's grant, and a BOLT grant used on ACME.
        await expectCode(ExchangeErrorCode.invalidGrant, status: 403) {
            _ = try await core.replaceQuote(symbol: "ACME", Fixture.quote(node: "n2", grant: Fixture.grant(node: "n1")))
        }
        await expectCode(ExchangeErrorCode.invalidGrant, status: 403) {
            _ = try await core.replaceQuote(symbol: "ACME", Fixture.quote(grant: Fixture.grant("BOLT")))
        }
        clock.set(Fixture.startMs + 60_000)
        await expectCode(ExchangeErrorCode.grantExpired, status: 409) {
            _ = try await core.replaceQuote(symbol: "ACME", Fixture.quote(token: 1))
        }
        let state = await core.snapshot
        #expect(state.journalSeq == 0 && state.allQuotes.isEmpty && state.highestToken("ACME") == 0)
        #expect(await core.stats().rejections == [ExchangeErrorCode.invalidGrant: 4, ExchangeErrorCode.grantExpired: 1])
    }

    @Test("dead-man expiry on the injected clock pulls the node's quotes and orders, and only once armed time passes")
    func deadman() async throws {
        let clock = ManualClock(startMs: Fixture.startMs)
        let journal = InMemoryExchangeJournal()
        let core = try await makeCore(clock, journal: journal)
        _ = try await core.replaceQuote(symbol: "ACME", Fixture.quote(node: "n1", token: 1))
        _ = try await core.replaceQuote(symbol: "BOLT", Fixture.quote("BOLT", node: "n2", token: 1, bid: 2_400, ask: 2_600))
        let status = try await core.armDeadman(DeadmanRequest(node: "n1", timeoutMs: 1_000))
        #expect(status.armedUntilMs == Fixture.startMs + 1_000)
        _ = try await core.armDeadman(DeadmanRequest(node: "n2", timeoutMs: 5_000))

        clock.advance(byMs: 999)
        #expect(await core.sweepDeadmen().isEmpty)
        #expect(await core.quotes().count == 2)
        // Re-arming pushes the deadline out.
        _ = try await core.armDeadman(DeadmanRequest(node: "n1", timeoutMs: 1_000))
        clock.advance(byMs: 999)
        #expect(await core.sweepDeadmen().isEmpty)
        clock.advance(byMs: 1)
        #expect(await core.sweepDeadmen() == ["n1"])
        let quotes = await core.quotes()
        #expect(quotes.map(\.node) == ["n2"])
        #expect(await core.snapshot.depth("ACME", levels: 5) == BookDepth(symbol: "ACME", bids: [], asks: []))
        #expect(await core.sweepDeadmen().isEmpty, "a fired switch is disarmed")

        for bad: Int64 in [0, -5, 60_001] {
            await expectCode("invalid_field", status: 400) { _ = try await core.armDeadman(DeadmanRequest(node: "n1", timeoutMs: bad)) }
        }
        // The expiry is journaled, so a replay agrees.
        try await withFlushing(core) {
            try await core.committer.flush { seq in await core.markDurable(seq) }
        }
        #expect(journal.records.last?.entry == .deadmanExpired(node: "n1"))
        let replayed = try ExchangeCore(config: try await Fixture.config(), signer: Fixture.signer, clock: clock, journal: journal)
        #expect(await replayed.quotes() == quotes)
        // After a restart every owner of resting orders is armed with the configured timeout.
        #expect(await replayed.deadmanDeadline("n2") == clock.nowMs() + (try await Fixture.config()).node.deadmanTimeoutMs)
    }

    @Test("validation codes and would_self_trade; nothing changes on rejection")
    func validation() async throws {
        let clock = ManualClock(startMs: Fixture.startMs)
        let core = try await makeCore(clock)
        let cases: [(QuoteRequest, String, String, Int)] = [
            (Fixture.quote(bid: 0), "ACME", "invalid_field", 400),
            (Fixture.quote(bid: -3), "ACME", "invalid_field", 400),
            (Fixture.quote(qty: 0), "ACME", "invalid_field", 400),
            (Fixture.quote(qty: 100_001), "ACME", ExchangeErrorCode.absurdSize, 400),
            (Fixture.quote(ask: 1_000_000_001), "ACME", ExchangeErrorCode.absurdSize, 400),
            (Fixture.quote(bid: 10_010, ask: 10_010), "ACME", ExchangeErrorCode.crossedQuote, 400),
            (Fixture.quote(bid: 10_020, ask: 10_010), "ACME", ExchangeErrorCode.crossedQuote, 400),
            (Fixture.quote("NOPE"), "NOPE", "unknown_symbol", 404),
        ]
        for (request, symbol, code, status) in cases {
            await expectCode(code, status: status) { _ = try await core.replaceQuote(symbol: symbol, request) }
        }
        _ = try await core.submitOrder(Fixture.order("c1", side: .sell, price: 10_005, qty: 1))
        await expectCode(ExchangeErrorCode.wouldSelfTrade, status: 409) {
            _ = try await core.replaceQuote(symbol: "ACME", Fixture.quote(bid: 10_005, ask: 10_010))
        }
        await expectCode(ExchangeErrorCode.wouldSelfTrade, status: 409) {
            _ = try await core.submitOrder(Fixture.order("c2", side: .buy, price: 10_006, qty: 1))
        }
        #expect(await core.snapshot.journalSeq == 2, "supersede (token 1 is new) + the one order")
    }

    @Test("orders: idempotent by client_order_id, cancel of a filled order is order_not_open")
    func orders() async throws {
        let clock = ManualClock(startMs: Fixture.startMs)
        let core = try await makeCore(clock)
        let request = Fixture.order("c1", side: .sell, price: 10_005, qty: 2)
        let (ack, _) = try await core.submitOrder(request)
        #expect(ack.orderId.hasPrefix("O") && ack.status == .resting)
        let (again, _) = try await core.submitOrder(request)
        #expect(again == ack)
        #expect(await core.snapshot.orderCount == 1, "a resubmission must never make a second order")
        var changed = request
        changed.price = 10_006
        await expectCode(ExchangeErrorCode.clientOrderIdReused, status: 409) { _ = try await core.submitOrder(changed) }

        // An external buy takes it entirely: the order is filled and can no longer be cancelled.
        _ = await core.snapshot
        let cancelRequest = Fixture.fenced()
        clock.advance(byMs: 10)
        await core.testExternal(Fixture.intent(side: .buy, price: 10_005, qty: 2))
        let filled = await core.snapshot.orderAck(ack.orderId)
        #expect(filled?.status == .filled && filled?.filledQty == 2 && filled?.fillIds == ["F1"])
        await expectCode(ExchangeErrorCode.orderNotOpen, status: 409) { _ = try await core.cancelOrder(orderId: ack.orderId, cancelRequest) }
        await expectCode(ExchangeErrorCode.unknownOrder, status: 404) { _ = try await core.cancelOrder(orderId: "O999", cancelRequest) }

        let (second, _) = try await core.submitOrder(Fixture.order("c3", side: .sell, price: 10_005, qty: 3))
        let (cancelled, _) = try await core.cancelOrder(orderId: second.orderId, cancelRequest)
        #expect(cancelled.status == .cancelled)
        let fill = try await withFlushing(core) {
            try await core.committer.flush { seq in await core.markDurable(seq) }
            return try await core.fillPage(after: 0, limit: 1).fills.first
        }
        #expect(fill?.side == .sell && fill?.node == "n1" && fill?.fencingToken == 1 && fill?.makerOrderId == ack.orderId && fill?.takerOrderId.hasPrefix("X") == true)
    }

    @Test("fills are published only once durable; long-poll wakes on publication")
    func publication() async throws {
        let clock = ManualClock(startMs: Fixture.startMs)
        let core = try await makeCore(clock)
        _ = try await core.replaceQuote(symbol: "ACME", Fixture.quote())
        await core.testExternal(Fixture.intent(side: .sell, price: 9_990, qty: 2))
        #expect(await core.snapshot.fillCount == 1)
        let invisible = try await core.fillPage(after: 0, limit: 10)
        #expect(invisible.fills.isEmpty, "not durable yet: not visible")
        #expect(await core.stats().fillCount == 0)
        let waiter = Task { await core.waitForFills(after: 0, timeoutMs: 20_000) }
        try await withFlushing(core) {
            try await core.committer.flush { seq in await core.markDurable(seq) }
            await waiter.value
        }
        let page = try await core.fillPage(after: 0, limit: 10)
        #expect(page.headSeq == 1 && page.fills.map(\.fillId) == ["F1"])
        #expect(page.fills.first?.side == .buy, "the market maker's bid was hit: its side is buy")
        var digest = FillLogDigest()
        page.fills.forEach { digest.append($0) }
        #expect(await core.stats().fillLogSha256 == digest.hexDigest())
    }

    /// Random command sequences (quotes from changing nodes and tokens, orders, cancels,
    /// external flow, dead-man expiries) run twice, and once more by replaying the journal:
    /// identical fill logs and books; no crossed book after any command.
    @Test("random command sequences are deterministic and replay to the same state")
    func determinism() async throws {
        let config = try await Fixture.config()
        await propertyCheck(count: 40, input: Gen.int(in: 0...Int.max)) { seed in
            let first = runRandom(seed: UInt64(seed), config: config)
            let second = runRandom(seed: UInt64(seed), config: config)
            #expect(first.fills == second.fills)
            #expect(first.state.allQuotes == second.state.allQuotes)
            var replay = ExchangeState(config: config)
            var audit = FencingAudit()
            var replayedFills: [Fill] = []
            for (ts, entry) in first.journal {
                replay.apply(entry, tsMs: ts)
                replayedFills += replay.takeNewFills()
                audit.observe(entry)
            }
            #expect(replayedFills == first.fills)
            #expect(replay.allQuotes == first.state.allQuotes)
            #expect(replay.depth("ACME", levels: 100) == first.state.depth("ACME", levels: 100))
            #expect(audit.staleAccepted == 0, "an accepted command carried a stale token (seed \(seed))")
            #expect(first.fills.enumerated().allSatisfy { $0.element.seq == Int64($0.offset + 1) && $0.element.fillId == "F\($0.offset + 1)" })
        }
    }

    func runRandom(seed: UInt64, config: ClusterConfig) -> StateDriver {
        var random = SplitMix64(seed: seed)
        var driver = StateDriver(config: config)
        var tokens = ["ACME": Int64(1), "BOLT": Int64(1)]
        var holder = ["ACME": "n1", "BOLT": "n2"]
        var ts = Fixture.startMs
        var clientId = 0
        for _ in 0..<150 {
            ts += 1 + Int64(random.below(20))
            let symbol = random.below(2) == 0 ? "ACME" : "BOLT"
            let mid: Ticks = symbol == "ACME" ? 10_000 : 2_500
            let node = holder[symbol]!
            let token = tokens[symbol]!
            let now = Fixture.startMs
            var entries: [JournalEntry] = []
            switch random.below(12) {
            case 0:
                tokens[symbol]! += 1
                holder[symbol] = random.below(2) == 0 ? "n1" : "n3"
            case 1, 2, 3:
                let bid = mid - 1 - Ticks(random.below(5))
                let ask = mid + 1 + Ticks(random.below(5))
                let request = Fixture.quote(symbol, node: node, token: token, bid: bid, ask: ask, qty: 1 + Lots(random.below(5)))
                entries = (try? driver.state.decideReplaceQuote(symbol: symbol, request, signer: Fixture.signer, nowMs: now)) ?? []
            case 4:
                clientId += 1
                let side: Side = random.below(2) == 0 ? .buy : .sell
                let price = mid + Ticks(random.below(21)) - 10
                let request = Fixture.order("c\(clientId)", symbol: symbol, node: node, token: token, side: side, price: price, qty: 1 + Lots(random.below(3)))
                if case .accept(let accepted)? = try? driver.state.decideSubmitOrder(request, signer: Fixture.signer, nowMs: now) { entries = accepted }
            case 5:
                let orderId = "O\(1 + random.below(UInt64(max(driver.state.orderCount, 1))))"
                entries = (try? driver.state.decideCancelOrder(orderId: orderId, Fixture.fenced(symbol, node: node, token: token), signer: Fixture.signer, nowMs: now)) ?? []
            case 6:
                entries = driver.state.decideDeadmanExpiry(node: random.below(2) == 0 ? "n1" : "n2")
            case 7:
                // A stale actor tries to quote: must be rejected.
                let highest = driver.state.highestToken(symbol) ?? 0
                let stale = Fixture.quote(symbol, node: "n9", token: highest - 1)
                if highest > 1 { #expect((try? driver.state.decideReplaceQuote(symbol: symbol, stale, signer: Fixture.signer, nowMs: now)) == nil) }
            case 10, 11:
                // A quote batch over both symbols in random order, sometimes with a stale item
                // (refused alone) or a newer token (its supersede journaled inside the batch).
                var items: [QuoteBatchRequest.Item] = []
                for name in (random.below(2) == 0 ? ["ACME", "BOLT"] : ["BOLT", "ACME"]) where random.below(4) != 0 {
                    let itemMid: Ticks = name == "ACME" ? 10_000 : 2_500
                    var itemToken = tokens[name]!
                    switch random.below(6) {
                    case 0: itemToken -= 1
                    case 1: tokens[name]! += 1; itemToken += 1
                    default: break
                    }
                    items.append(Fixture.batchItem(name, node: node, token: itemToken, bid: itemMid - 1 - Ticks(random.below(5)),
                                                   ask: itemMid + 1 + Ticks(random.below(5)), qty: 1 + Lots(random.below(5))))
                }
                let highestBefore = ["ACME", "BOLT"].map { driver.state.highestToken($0) ?? 0 }
                let refusals = driver.batch(node: node, items, at: ts)
                for (item, refusal) in zip(items, refusals) {
                    let highest = item.symbol == "ACME" ? highestBefore[0] : highestBefore[1]
                    #expect((refusal?.code == ExchangeErrorCode.staleFencingToken) == (item.grant.fencingToken < highest), "seed \(seed)")
                }
            default:
                let generator = ExternalFlowGenerator(seed: Int64(bitPattern: seed), crossPct: 60, maxQty: 4, maxPriceTicks: 1_000_000)
                let book = driver.state.engine.book(driver.state.index(of: symbol)!)
                let intent = generator.order(symbol: symbol, flowIndex: Int64(ts), referencePrice: mid, bestBid: book.bestBid, bestAsk: book.bestAsk)
                entries = driver.state.decideExternal(intent)
            }
            driver.commit(entries, at: ts)
            for name in ["ACME", "BOLT"] {
                let book = driver.state.engine.book(driver.state.index(of: name)!)
                if let bid = book.bestBid, let ask = book.bestAsk { #expect(bid < ask, "crossed \(name) book (seed \(seed))") }
            }
        }
        return driver
    }
}

extension ExchangeCore {
    /// Sends one external order now (the flow service does this on its schedule).
    func testExternal(_ intent: ExternalOrderIntent) {
        _ = submitExternal(intent)
    }
}
