import MMCore
import Testing

@testable import MarketMaker

@Suite struct QuoteDecisionTests {
    let parameters = ClusterConfig.QuotingParameters(spreadTicks: 4, skewTicksAtLimit: 4, sizeLots: 5, positionLimitLots: 50)
    let time = ManualMonotonicTime()

    func price(_ value: Ticks, tick: Int64 = 1) -> ReferencePrice { ReferencePrice(symbol: "ACME", price: value, tickIndex: tick, tsMs: 0) }
    func position(net: Lots = 0, version: Int64 = 1, lastFillSeq: Int64 = 0, fillCount: Int64 = 0) -> Position {
        Position(symbol: "ACME", netQty: net, fillCount: fillCount, lastFillSeq: lastFillSeq, version: version)
    }

    func decide(token: Int64 = 3, price: ReferencePrice?, position: Position?, last: SentQuote?) -> QuoteDecision? {
        QuoteDecision.decide(
            fencingToken: token, price: price, position: position, last: last, parameters: parameters, maxPriceTicks: .max,
            refreshIntervalMs: 1_000, now: time.now())
    }

    /// What the node would have recorded after sending `decision` now.
    func sent(_ decision: QuoteDecision, token: Int64 = 3) -> SentQuote {
        SentQuote(target: decision.target, fencingToken: token, reason: decision.reason, inputs: decision.inputs, sentAt: time.now(), sentAtMs: 0)
    }

    @Test func nothingWithoutBothInputs() {
        #expect(decide(price: nil, position: position(), last: nil) == nil)
        #expect(decide(price: price(10_000), position: nil, last: nil) == nil)
    }

    @Test func aNewGrantQuotesAtOnce() throws {
        let decision = try #require(decide(price: price(10_000), position: position(), last: nil))
        #expect(decision.reason == .acquired)
        #expect(decision.action == .replace)
        #expect(decision.target == QuoteTarget(bidPrice: 9_998, bidQty: 5, askPrice: 10_002, askQty: 5))
    }

    @Test func aHigherTokenCountsAsANewGrant() throws {
        let first = try #require(decide(price: price(10_000), position: position(), last: nil))
        let decision = try #require(decide(token: 4, price: price(10_000), position: position(), last: sent(first)))
        #expect(decision.reason == .acquired)
    }

    @Test func unchangedInputsSendNothingUntilTheRefreshTimer() throws {
        let first = try #require(decide(price: price(10_000), position: position(), last: nil))
        let last = sent(first)
        #expect(decide(price: price(10_000), position: position(), last: last) == nil)
        time.advance(milliseconds: 999)
        #expect(decide(price: price(10_000), position: position(), last: last) == nil)
        time.advance(milliseconds: 1)
        #expect(decide(price: price(10_000), position: position(), last: last)?.reason == .timer)
    }

    @Test func aFillAlwaysReplacesEvenWithAnUnchangedTarget() throws {
        let first = try #require(decide(price: price(10_000), position: position(), last: nil))
        // A fill that left net at 0 (e.g. a buy then a sell): same target, but size was consumed.
        let decision = try #require(decide(price: price(10_000), position: position(net: 0, version: 3, lastFillSeq: 9, fillCount: 2), last: sent(first)))
        #expect(decision.reason == .fill)
        #expect(decision.target == first.target)
    }

    @Test func aPriceTickThatMovesTheQuoteIsSentOneThatDoesNotIsNot() throws {
        let first = try #require(decide(price: price(10_000), position: position(), last: nil))
        let last = sent(first)
        let moved = try #require(decide(price: price(10_001, tick: 2), position: position(), last: last))
        #expect(moved.reason == .price)
        #expect(moved.target.bidPrice == 9_999)
        // A new tick index at the same price changes nothing on the book.
        #expect(decide(price: price(10_000, tick: 3), position: position(), last: last) == nil)
    }

    @Test func aPositionChangeWithoutAFillIsLabelledPosition() throws {
        let first = try #require(decide(price: price(10_000), position: position(), last: nil))
        // Same fill seq but a different net (e.g. trading state re-folded): reason position.
        let decision = try #require(decide(price: price(10_000), position: position(net: 25, version: 2), last: sent(first)))
        #expect(decision.reason == .position)
    }

    @Test func bothSidesWithdrawnCancelsAndIsNotRepeatedByTheTimer() throws {
        let first = try #require(decide(price: price(0), position: position(), last: nil))
        #expect(first.action == .cancel)
        let last = sent(first)
        time.advance(milliseconds: 5_000)
        #expect(decide(price: price(0), position: position(), last: last) == nil)
    }

    @Test(arguments: [
        (ClientError.api(status: 409, ErrorEnvelope(code: "stale_fencing_token", message: "")), ExchangeRefusal.lostAuthority(code: "stale_fencing_token")),
        (.api(status: 409, ErrorEnvelope(code: "grant_expired", message: "")), .lostAuthority(code: "grant_expired")),
        (.api(status: 403, ErrorEnvelope(code: "invalid_grant", message: "")), .lostAuthority(code: "invalid_grant")),
        (.api(status: 400, ErrorEnvelope(code: "crossed_quote", message: "")), .refused(code: "crossed_quote")),
        (.api(status: 403, ErrorEnvelope(code: "forbidden_role", message: "")), .refused(code: "forbidden_role")),
        (.api(status: 503, ErrorEnvelope(code: "unavailable", message: "")), .transient(code: "unavailable")),
        (.unreachable(TransportError(url: "x", reason: "refused")), .transient(code: "unreachable")),
    ])
    func refusalsAreClassified(error: ClientError, expected: ExchangeRefusal) {
        #expect(ExchangeRefusal.classify(error) == expected)
    }
}
