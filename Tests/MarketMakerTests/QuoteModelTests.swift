import MMCore
import PropertyBased
import Testing

@testable import MarketMaker

@Suite struct QuoteModelTests {
    /// The embedded defaults: spread 4, skew 4 ticks at the limit, 5 lots, limit 50.
    static let defaults = ClusterConfig.QuotingParameters(spreadTicks: 4, skewTicksAtLimit: 4, sizeLots: 5, positionLimitLots: 50)

    struct Row: Sendable, CustomTestStringConvertible {
        var name: String
        var reference: Ticks
        var net: Lots
        var parameters = QuoteModelTests.defaults
        var maxPrice: Ticks = .max
        var expected: QuoteTarget
        var testDescription: String { name }
    }

    static func q(_ bid: Ticks?, _ bidQty: Lots, _ ask: Ticks?, _ askQty: Lots) -> QuoteTarget {
        QuoteTarget(bidPrice: bid, bidQty: bidQty, askPrice: ask, askQty: askQty)
    }

    static let rows: [Row] = [
        Row(name: "flat: symmetric around the reference", reference: 10_000, net: 0, expected: q(9_998, 5, 10_002, 5)),
        Row(name: "long half the limit: skew 2 down", reference: 10_000, net: 25, expected: q(9_996, 5, 10_000, 5)),
        Row(name: "short half the limit: skew 2 up", reference: 10_000, net: -25, expected: q(10_000, 5, 10_004, 5)),
        Row(name: "long 12: 48/50 truncates to 0", reference: 10_000, net: 12, expected: q(9_998, 5, 10_002, 5)),
        Row(name: "short 12: -48/50 truncates toward zero, to 0 not -1", reference: 10_000, net: -12, expected: q(9_998, 5, 10_002, 5)),
        Row(name: "long 13: skew 1", reference: 10_000, net: 13, expected: q(9_997, 5, 10_001, 5)),
        Row(name: "short 13: skew -1", reference: 10_000, net: -13, expected: q(9_999, 5, 10_003, 5)),
        Row(name: "long 48: bid size capped at the 2 lots left", reference: 10_000, net: 48, expected: q(9_995, 2, 9_999, 5)),
        Row(name: "short 47: ask size capped at 3", reference: 10_000, net: -47, expected: q(10_001, 5, 10_005, 3)),
        Row(name: "long at the limit: bid withdrawn", reference: 10_000, net: 50, expected: q(nil, 0, 9_998, 5)),
        Row(name: "short at the limit: ask withdrawn", reference: 10_000, net: -50, expected: q(10_002, 5, nil, 0)),
        Row(name: "beyond the limit: skew clamped at 4", reference: 10_000, net: 70, expected: q(nil, 0, 9_998, 5)),
        Row(name: "far beyond the short limit", reference: 10_000, net: -1_000_000, expected: q(10_002, 5, nil, 0)),
        Row(
            name: "odd spread: bid takes the floor of spread/2", reference: 100, net: 0,
            parameters: .init(spreadTicks: 3, skewTicksAtLimit: 0, sizeLots: 1, positionLimitLots: 10), expected: q(99, 1, 102, 1)),
        Row(
            name: "spread 1: adjacent ticks, never locked", reference: 100, net: 0,
            parameters: .init(spreadTicks: 1, skewTicksAtLimit: 0, sizeLots: 1, positionLimitLots: 10), expected: q(100, 1, 101, 1)),
        Row(
            name: "no skew configured", reference: 500, net: 40,
            parameters: .init(spreadTicks: 2, skewTicksAtLimit: 0, sizeLots: 5, positionLimitLots: 50), expected: q(499, 5, 501, 5)),
        Row(
            name: "bid would be ≤ 0: withdrawn, ask stays", reference: 2, net: 0,
            parameters: .init(spreadTicks: 6, skewTicksAtLimit: 0, sizeLots: 1, positionLimitLots: 10), expected: q(nil, 0, 5, 1)),
        Row(name: "ask above the exchange's price ceiling: withdrawn", reference: 1_000, net: 0, maxPrice: 1_001, expected: q(998, 5, nil, 0)),
        Row(name: "no reference price (0): nothing quoted", reference: 0, net: 0, expected: .withdrawn),
        Row(name: "negative reference: nothing quoted", reference: -5, net: 0, expected: .withdrawn),
        Row(name: "Int64.min position never traps", reference: 10_000, net: .min, expected: q(10_002, 5, nil, 0)),
        Row(name: "Int64.max position never traps", reference: 10_000, net: .max, expected: q(nil, 0, 9_998, 5)),
        Row(
            name: "huge skew pushes the centre below zero: nothing quoted", reference: 10, net: 50,
            parameters: .init(spreadTicks: 2, skewTicksAtLimit: .max, sizeLots: 5, positionLimitLots: 50), expected: .withdrawn),
    ]

    @Test(arguments: rows)
    func table(row: Row) {
        let quote = QuoteModel.quote(referencePrice: row.reference, netQty: row.net, parameters: row.parameters, maxPriceTicks: row.maxPrice)
        #expect(quote == row.expected)
    }

    @Test(arguments: [
        (0 as Int64, 0 as Int64), (12, 0), (13, 1), (-13, -1), (25, 2), (37, 2), (38, 3), (50, 4), (51, 4), (-1_000, -4),
    ])
    func skewIsLinearTruncatedTowardZeroAndClamped(net: Lots, skew: Int64) {
        #expect(QuoteModel.inventorySkew(netQty: net, limit: 50, skewAtLimit: 4) == skew)
    }

    @Test func skewNeverOverflowsAtExtremeConfig() {
        #expect(QuoteModel.inventorySkew(netQty: .max, limit: .max, skewAtLimit: .max) == .max)
        #expect(QuoteModel.inventorySkew(netQty: .min, limit: .max, skewAtLimit: .max) == -.max)
        #expect(QuoteModel.inventorySkew(netQty: 5, limit: 0, skewAtLimit: 10) == 0)
    }

    // MARK: Properties

    static let references = Gen.int64(in: 1...1_000_000_000)
    static let nets = Gen.int64(in: -300...300)
    static let spreads = Gen.int64(in: 1...60)
    static let skews = Gen.int64(in: 0...200)
    static let limits = Gen.int64(in: 1...200)

    @Test func neverCrossedNeverLockedAlwaysPositive() async {
        await propertyCheck(count: 500, input: Self.references, Self.nets, Self.spreads, Self.skews, Self.limits) { reference, net, spread, skew, limit in
            let parameters = ClusterConfig.QuotingParameters(spreadTicks: spread, skewTicksAtLimit: skew, sizeLots: 1 + (reference % limit), positionLimitLots: limit)
            let quote = QuoteModel.quote(referencePrice: reference, netQty: net, parameters: parameters)
            if let bid = quote.bidPrice, let ask = quote.askPrice {
                #expect(ask - bid == spread)
                #expect(bid < ask)
            }
            if let bid = quote.bidPrice { #expect(bid > 0) }
            if let ask = quote.askPrice { #expect(ask > 0) }
            #expect((quote.bidPrice == nil) == (quote.bidQty == 0))
            #expect((quote.askPrice == nil) == (quote.askQty == 0))
        }
    }

    @Test func aFullFillOfEitherSideNeverCarriesThePositionPastTheLimit() async {
        await propertyCheck(count: 500, input: Self.references, Self.nets, Self.spreads, Self.skews, Self.limits) { reference, net, spread, skew, limit in
            let size = 1 + (reference % limit)
            let parameters = ClusterConfig.QuotingParameters(spreadTicks: spread, skewTicksAtLimit: skew, sizeLots: size, positionLimitLots: limit)
            let quote = QuoteModel.quote(referencePrice: reference, netQty: net, parameters: parameters)
            #expect(quote.bidQty <= size && quote.askQty <= size)
            if quote.bidPrice != nil { #expect(net + quote.bidQty <= limit) }
            if quote.askPrice != nil { #expect(net - quote.askQty >= -limit) }
            // The side that would grow the position is withdrawn at the limit.
            if net >= limit { #expect(quote.bidPrice == nil) }
            if net <= -limit { #expect(quote.askPrice == nil) }
            // …and the side that shrinks it stays.
            if net >= limit { #expect(quote.askPrice != nil) }
            if net <= -limit { #expect(quote.bidPrice != nil) }
        }
    }

    @Test func skewLeansAgainstInventory() async {
        await propertyCheck(count: 300, input: Self.references, Self.nets, Self.skews, Self.limits) { reference, net, skew, limit in
            let parameters = ClusterConfig.QuotingParameters(spreadTicks: 4, skewTicksAtLimit: skew, sizeLots: 1, positionLimitLots: limit)
            let reference = reference + 1_000
            let centre = { (net: Lots) -> Ticks? in
                let quote = QuoteModel.quote(referencePrice: reference, netQty: net, parameters: parameters)
                return quote.bidPrice.map { $0 + 2 } ?? quote.askPrice.map { $0 - 2 }
            }
            guard let here = centre(net), let longer = centre(net + 1), let mirrored = centre(-net) else {
                Issue.record("a one-lot quote with a positive price must always show at least one side")
                return
            }
            // More long never raises the centre; it stays within skew_ticks_at_limit of the reference.
            #expect(longer <= here)
            #expect(abs(here - reference) <= skew)
            // Equal and opposite positions skew equally and oppositely.
            #expect(here - reference == reference - mirrored)
        }
    }

    @Test func totalOverEveryInt64Input() async {
        await propertyCheck(count: 500, input: Gen.int64(), Gen.int64(), Gen.int64(), Gen.int64()) { reference, net, spread, skew in
            let parameters = ClusterConfig.QuotingParameters(spreadTicks: spread, skewTicksAtLimit: skew, sizeLots: 5, positionLimitLots: 50)
            let quote = QuoteModel.quote(referencePrice: reference, netQty: net, parameters: parameters)
            if let bid = quote.bidPrice, let ask = quote.askPrice { #expect(bid < ask) }
            if let bid = quote.bidPrice { #expect(bid > 0) }
        }
    }

    @Test func deterministic() async {
        await propertyCheck(count: 200, input: Self.references, Self.nets) { reference, net in
            let first = QuoteModel.quote(referencePrice: reference, netQty: net, parameters: Self.defaults)
            let second = QuoteModel.quote(referencePrice: reference, netQty: net, parameters: Self.defaults)
            #expect(first == second)
        }
    }
}
