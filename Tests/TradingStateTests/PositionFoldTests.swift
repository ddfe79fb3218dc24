import MMCore
import Testing

/// The one fold rule (MMCore's `PositionFold`), checked case by case with hand-computed values.
@Suite("Position fold rules")
struct PositionFoldTests {
    struct Step: CustomTestStringConvertible, Sendable {
        let name: String
        let start: Position
        let fill: Fill
        let netQty: Int64
        let openCost: Int64
        let avgPrice: Int64
        let realizedPnl: Int64
        var testDescription: String { name }
    }

    static let steps: [Step] = [
        Step(name: "flat → long", start: .flat("ACME"), fill: fill(1, .buy, 100, 10),
             netQty: 10, openCost: 1_000, avgPrice: 100, realizedPnl: 0),
        Step(name: "add to long", start: Position(symbol: "ACME", netQty: 10, avgPrice: 100, openCost: 1_000, fillCount: 1, lastFillSeq: 1),
             fill: fill(2, .buy, 110, 10), netQty: 20, openCost: 2_100, avgPrice: 105, realizedPnl: 0),
        // closes 5 of 20: removes 2100·5/20 = 525 of cost, realizes 5·120 − 525 = 75
        Step(name: "reduce long", start: Position(symbol: "ACME", netQty: 20, avgPrice: 105, openCost: 2_100, fillCount: 2, lastFillSeq: 2),
             fill: fill(3, .sell, 120, 5), netQty: 15, openCost: 1_575, avgPrice: 105, realizedPnl: 75),
        // closes 15 (realizes 1500 − 1575 = −75), the other 5 open a short at 100
        Step(name: "flip long → short through zero", start: Position(symbol: "ACME", netQty: 15, avgPrice: 105, openCost: 1_575, realizedPnl: 75, fillCount: 3, lastFillSeq: 3),
             fill: fill(4, .sell, 100, 20), netQty: -5, openCost: -500, avgPrice: 100, realizedPnl: 0),
        Step(name: "flat → short", start: .flat("ACME"), fill: fill(1, .sell, 100, 10),
             netQty: -10, openCost: -1_000, avgPrice: 100, realizedPnl: 0),
        // buying back 4 of 10 short at 90: removes −1000·4/10 = −400, realizes −(90·4) + 400 = 40
        Step(name: "reduce short", start: Position(symbol: "ACME", netQty: -10, avgPrice: 100, openCost: -1_000, fillCount: 1, lastFillSeq: 1),
             fill: fill(2, .buy, 90, 4), netQty: -6, openCost: -600, avgPrice: 100, realizedPnl: 40),
        Step(name: "flip short → long", start: Position(symbol: "ACME", netQty: -6, avgPrice: 100, openCost: -600, realizedPnl: 40, fillCount: 2, lastFillSeq: 2),
             fill: fill(3, .buy, 95, 10), netQty: 4, openCost: 380, avgPrice: 95, realizedPnl: 70),
        Step(name: "close exactly to flat", start: Position(symbol: "ACME", netQty: 4, avgPrice: 95, openCost: 380, fillCount: 1, lastFillSeq: 1),
             fill: fill(2, .sell, 97, 4), netQty: 0, openCost: 0, avgPrice: 0, realizedPnl: 8),
    ]

    @Test("one fill from a given position", arguments: steps)
    func singleStep(_ step: Step) {
        let next = PositionFold.apply(step.fill, to: step.start, version: 42)
        #expect(next.netQty == step.netQty)
        #expect(next.openCost == step.openCost)
        #expect(next.avgPrice == step.avgPrice)
        #expect(next.realizedPnl == step.realizedPnl)
        #expect(next.fillCount == step.start.fillCount + 1)
        #expect(next.lastFillSeq == max(step.start.lastFillSeq, step.fill.seq))
        #expect(next.version == 42)
    }

    @Test("a round trip to flat realizes exactly proceeds minus cost, however the cost truncates")
    func roundTripIsExact() {
        // 603 of cost over 6 lots: closing 1 lot removes 100 (100.5 truncated); the half tick
        // stays in the open cost and is realized by the last close.
        let fills = [
            Self.fill(1, .buy, 101, 3), Self.fill(2, .buy, 100, 3),
            Self.fill(3, .sell, 102, 1), Self.fill(4, .sell, 102, 5),
        ]
        let position = PositionFold.fold(fills)["ACME"]!
        #expect(position.netQty == 0)
        #expect(position.openCost == 0)
        #expect(position.realizedPnl == (102 * 6) - (101 * 3 + 100 * 3))
        #expect(position.realizedPnl == 9)
        #expect(position.fillCount == 4)
        #expect(position.lastFillSeq == 4)
    }

    @Test("fold keeps symbols apart and applies in seq order whatever the input order")
    func foldOrdersBySeq() {
        let fills = [Self.fill(3, .sell, 110, 5, symbol: "BOLT"), Self.fill(1, .buy, 100, 10), Self.fill(2, .sell, 120, 10), Self.fill(4, .buy, 90, 5, symbol: "BOLT")]
        let positions = PositionFold.fold(fills)
        #expect(positions["ACME"]?.realizedPnl == 200)
        #expect(positions["ACME"]?.netQty == 0)
        #expect(positions["BOLT"]?.realizedPnl == 100)
        #expect(positions["BOLT"]?.version == 4)
        #expect(positions["ACME"]?.version == 2)
    }

    private static func fill(_ seq: Int64, _ side: Side, _ price: Int64, _ qty: Int64, symbol: String = "ACME") -> Fill {
        makeFill(seq, symbol, side, price: price, qty: qty)
    }
}
