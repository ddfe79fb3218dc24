import Exchange
import MMCore
import PropertyBased
import Testing

@Suite("Matching engine")
struct MatchingEngineTests {
    struct Step: Sendable, CustomStringConvertible {
        var id: Int64
        var side: Side
        var price: Ticks
        var qty: Lots
        var tif: TimeInForce = .gtc
        var description: String { "#\(id) \(side) \(qty)@\(price) \(tif)" }
    }

    /// (resting orders, then one taker) → expected (maker id, price, qty) fills, taker outcome.
    static let table: [(name: String, resting: [Step], taker: Step, fills: [(Int64, Ticks, Lots)], outcome: SubmitOutcome)] = [
        ("best price first", [Step(id: 1, side: .sell, price: 102, qty: 5), Step(id: 2, side: .sell, price: 101, qty: 5)],
         Step(id: 9, side: .buy, price: 102, qty: 7), [(2, 101, 5), (1, 102, 2)], SubmitOutcome(filledQty: 7, restingQty: 0, cancelledQty: 0)),
        ("time priority within a level", [Step(id: 1, side: .buy, price: 100, qty: 3), Step(id: 2, side: .buy, price: 100, qty: 3)],
         Step(id: 9, side: .sell, price: 100, qty: 4), [(1, 100, 3), (2, 100, 1)], SubmitOutcome(filledQty: 4, restingQty: 0, cancelledQty: 0)),
        ("partial fill rests the GTC remainder", [Step(id: 1, side: .sell, price: 100, qty: 2)],
         Step(id: 9, side: .buy, price: 100, qty: 5), [(1, 100, 2)], SubmitOutcome(filledQty: 2, restingQty: 3, cancelledQty: 0)),
        ("IOC remainder is cancelled", [Step(id: 1, side: .sell, price: 100, qty: 2)],
         Step(id: 9, side: .buy, price: 101, qty: 5, tif: .ioc), [(1, 100, 2)], SubmitOutcome(filledQty: 2, restingQty: 0, cancelledQty: 3)),
        ("IOC that does not cross trades nothing", [Step(id: 1, side: .sell, price: 100, qty: 2)],
         Step(id: 9, side: .buy, price: 99, qty: 5, tif: .ioc), [], SubmitOutcome(filledQty: 0, restingQty: 0, cancelledQty: 5)),
        ("maker's price, not taker's", [Step(id: 1, side: .buy, price: 105, qty: 1)],
         Step(id: 9, side: .sell, price: 90, qty: 1), [(1, 105, 1)], SubmitOutcome(filledQty: 1, restingQty: 0, cancelledQty: 0)),
        ("limit stops the sweep", [Step(id: 1, side: .sell, price: 100, qty: 1), Step(id: 2, side: .sell, price: 103, qty: 1)],
         Step(id: 9, side: .buy, price: 101, qty: 3), [(1, 100, 1)], SubmitOutcome(filledQty: 1, restingQty: 2, cancelledQty: 0)),
    ]

    @Test("price-time priority, partials, IOC", arguments: table.indices)
    func matchingTable(_ index: Int) {
        let row = Self.table[index]
        var book = OrderBook()
        var fills: [EngineFill] = []
        for step in row.resting {
            _ = book.submit(id: step.id, side: step.side, price: step.price, qty: step.qty, timeInForce: step.tif, owner: 0, token: 1, symbol: 0, fills: &fills)
        }
        #expect(fills.isEmpty, "\(row.name): resting orders must not trade with each other")
        let taker = row.taker
        let outcome = book.submit(id: taker.id, side: taker.side, price: taker.price, qty: taker.qty, timeInForce: taker.tif, owner: -1, token: 0, symbol: 0, fills: &fills)
        #expect(fills.map { [$0.makerId, $0.price, $0.qty] } == row.fills.map { [$0.0, $0.1, $0.2] }, "\(row.name)")
        #expect(outcome == row.outcome, "\(row.name)")
        #expect(fills.allSatisfy { $0.takerId == taker.id && $0.makerSide == taker.side.opposite }, "\(row.name)")
        let restingTaker = book.orders[taker.id]
        #expect(restingTaker?.qty == (outcome.restingQty > 0 ? outcome.restingQty : nil), "\(row.name)")
    }

    @Test("cancel removes a resting order once; a filled order cannot be cancelled")
    func cancelSemantics() {
        var book = OrderBook()
        var fills: [EngineFill] = []
        _ = book.submit(id: 1, side: .sell, price: 100, qty: 2, timeInForce: .gtc, owner: 0, token: 1, symbol: 0, fills: &fills)
        _ = book.submit(id: 2, side: .sell, price: 100, qty: 2, timeInForce: .gtc, owner: 0, token: 1, symbol: 0, fills: &fills)
        _ = book.submit(id: 3, side: .buy, price: 100, qty: 2, timeInForce: .ioc, owner: -1, token: 0, symbol: 0, fills: &fills)
        #expect(fills.map(\.makerId) == [1])
        #expect(book.cancel(id: 1) == nil, "order 1 is filled: nothing to cancel")
        #expect(book.cancel(id: 2)?.qty == 2)
        #expect(book.cancel(id: 2) == nil, "a second cancel finds nothing")
        #expect(book.bestAsk == nil && book.orders.isEmpty)
        #expect(book.depth(levels: 10).asks.isEmpty)
    }

    @Test("depth aggregates levels best first")
    func depth() {
        var book = OrderBook()
        var fills: [EngineFill] = []
        for (id, price) in [(1, 99), (2, 98), (3, 99), (4, 97)] as [(Int64, Ticks)] {
            _ = book.submit(id: id, side: .buy, price: price, qty: 1, timeInForce: .gtc, owner: 0, token: 1, symbol: 0, fills: &fills)
        }
        let depth = book.depth(levels: 2)
        #expect(depth.bids == [BookLevel(price: 99, qty: 2, orders: 2), BookLevel(price: 98, qty: 1, orders: 1)])
        #expect(book.restingOrders(.buy).map(\.id) == [1, 3, 2, 4])
    }

    /// Random mixed submit/cancel sequences: the book is never crossed after matching, and
    /// every order's quantity is conserved (original = filled + resting + cancelled).
    @Test("book invariants hold for random sequences")
    func invariants() async {
        await propertyCheck(count: 200, input: Gen.int(in: 0...Int.max)) { seed in
            var random = SplitMix64(seed: UInt64(seed))
            var engine = MatchingEngine(symbolCount: 2)
            var original: [Int64: Lots] = [:]
            var filled: [Int64: Lots] = [:]
            var cancelled: [Int64: Lots] = [:]
            var symbolOf: [Int64: Int] = [:]
            var fills: [EngineFill] = []
            for id in Int64(1)...300 {
                let symbol = Int(random.below(2))
                if random.below(4) == 0, let target = symbolOf.keys.sorted().dropFirst(Int(random.below(UInt64(max(symbolOf.count, 1))))).first {
                    if let removed = engine.cancel(symbol: symbolOf[target]!, id: target) { cancelled[target, default: 0] += removed.qty }
                    continue
                }
                let side: Side = random.below(2) == 0 ? .buy : .sell
                let price = 95 + Ticks(random.below(11))
                let qty = 1 + Lots(random.below(9))
                let tif: TimeInForce = random.below(3) == 0 ? .ioc : .gtc
                fills.removeAll()
                let outcome = engine.submit(symbol: symbol, id: id, side: side, price: price, qty: qty, timeInForce: tif, owner: 0, token: 0, fills: &fills)
                original[id] = qty
                symbolOf[id] = symbol
                filled[id, default: 0] += outcome.filledQty
                cancelled[id, default: 0] += outcome.cancelledQty
                for fill in fills { filled[fill.makerId, default: 0] += fill.qty }
                #expect(fills.reduce(0) { $0 + $1.qty } == outcome.filledQty)
                #expect(outcome.filledQty + outcome.restingQty + outcome.cancelledQty == qty)
                let book = engine.book(symbol)
                if let bid = book.bestBid, let ask = book.bestAsk { #expect(bid < ask, "crossed book \(bid) ≥ \(ask) (seed \(seed))") }
            }
            for (id, qty) in original {
                let resting = engine.book(symbolOf[id]!).orders[id]?.qty ?? 0
                #expect(filled[id, default: 0] + resting + cancelled[id, default: 0] == qty, "order \(id) not conserved (seed \(seed))")
            }
            for symbol in 0..<2 {
                let book = engine.book(symbol)
                let depth = book.depth(levels: 1000)
                #expect(depth.bids.reduce(0) { $0 + $1.qty } == book.orders.values.filter { $0.side == .buy }.reduce(0) { $0 + $1.qty })
                #expect(depth.asks.reduce(0) { $0 + $1.qty } == book.orders.values.filter { $0.side == .sell }.reduce(0) { $0 + $1.qty })
            }
        }
    }
}

@Suite("Reference price path")
struct ReferencePricePathTests {
    @Test("bounded, positive, small steps; cached equals recomputed; resumable")
    func pathProperties() async {
        await propertyCheck(count: 20, input: Gen.int(in: Int.min...Int.max)) { seed in
            var path = ReferencePricePath(seed: Int64(seed), symbol: "ACME", basePrice: 120, bandTicks: 100, maxStepTicks: 7)
            var previous = path.price(at: 0)
            #expect(previous == 120)
            for index in Int64(1)...10_000 {
                let price = path.price(at: index)
                #expect(price >= 20 && price <= 220 && price > 0)
                #expect(abs(price - previous) <= 7)
                previous = price
            }
            let fresh = ReferencePricePath(seed: Int64(seed), symbol: "ACME", basePrice: 120, bandTicks: 100, maxStepTicks: 7)
            for index: Int64 in [0, 1, 4095, 4096, 4097, 9_999] {
                #expect(path.price(at: index) == fresh.recomputeFromScratch(at: index), "tick \(index) (seed \(seed))")
            }
        }
    }

    @Test("same seed same path; different seeds or symbols differ")
    func seedsDiffer() {
        var a = ReferencePricePath(seed: 42, symbol: "ACME", basePrice: 10_000, bandTicks: 500, maxStepTicks: 3)
        var b = ReferencePricePath(seed: 42, symbol: "ACME", basePrice: 10_000, bandTicks: 500, maxStepTicks: 3)
        var c = ReferencePricePath(seed: 43, symbol: "ACME", basePrice: 10_000, bandTicks: 500, maxStepTicks: 3)
        var d = ReferencePricePath(seed: 42, symbol: "BOLT", basePrice: 10_000, bandTicks: 500, maxStepTicks: 3)
        let pa = (0..<500).map { a.price(at: Int64($0)) }
        #expect(pa == (0..<500).map { b.price(at: Int64($0)) })
        #expect(pa != (0..<500).map { c.price(at: Int64($0)) })
        #expect(pa != (0..<500).map { d.price(at: Int64($0)) })
        #expect(Set(pa).count > 5, "the path must actually move")
    }
}

@Suite("External flow generator")
struct ExternalFlowGeneratorTests {
    @Test("deterministic, cross_pct honoured, non-crossing orders stay behind the quote")
    func flow() {
        let generator = ExternalFlowGenerator(seed: 7, crossPct: 30, maxQty: 5, maxPriceTicks: 1_000_000)
        var aggressive = 0
        for index in Int64(0)..<2_000 {
            let order = generator.order(symbol: "ACME", flowIndex: index, referencePrice: 10_000, bestBid: 9_998, bestAsk: 10_002)
            #expect(order == generator.order(symbol: "ACME", flowIndex: index, referencePrice: 10_000, bestBid: 9_998, bestAsk: 10_002))
            #expect((1...5).contains(order.qty))
            let crosses = order.side == .buy ? order.price >= 10_002 : order.price <= 9_998
            #expect(crosses == order.aggressive, "\(order)")
            if order.aggressive { aggressive += 1 }
        }
        #expect((450...750).contains(aggressive), "about 30% of 2000 should cross, got \(aggressive)")
        let zero = ExternalFlowGenerator(seed: 7, crossPct: 0, maxQty: 5, maxPriceTicks: 1_000_000)
        #expect((0..<200).allSatisfy { !zero.order(symbol: "ACME", flowIndex: Int64($0), referencePrice: 100, bestBid: 99, bestAsk: 101).aggressive })
    }
}
