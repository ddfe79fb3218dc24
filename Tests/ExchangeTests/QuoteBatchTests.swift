import Exchange
import Foundation
import Hummingbird
import HummingbirdTesting
import MMCore
import MMServiceKit
import PropertyBased
import Testing

/// `PUT /v1/quotes`: each item by the single route's rules against the state the earlier items
/// left, every accepted item in one journal record, a refused item changing nothing of its own.
@Suite("Exchange quote batches")
struct QuoteBatchTests {
    // MARK: State machine

    @Test("a batch leaves the same books, quotes and fills as the same items sent one by one")
    func batchEqualsSingles() async throws {
        let config = try await Fixture.config()
        var singles = StateDriver(config: config)
        var batched = StateDriver(config: config)
        // n2's plain order on BOLT, which a higher token inside the batch retires.
        let order = Fixture.order("c1", symbol: "BOLT", node: "n2", token: 1, side: .buy, price: 2_502, qty: 2)
        guard case .accept(let entries) = try singles.state.decideSubmitOrder(order, signer: Fixture.signer, nowMs: Fixture.startMs) else {
            Issue.record("order not accepted")
            return
        }
        singles.commit(entries)
        batched.commit(entries)
        let items = [
            Fixture.batchItem("ACME", node: "n1", token: 4, bid: 9_990, ask: 10_010),
            // A stale token is refused in both (BOLT's highest is 1 after the order).
            Fixture.batchItem("BOLT", node: "n1", token: 0, bid: 2_490, ask: 2_510),
        ]
        let more = [Fixture.batchItem("BOLT", node: "n1", token: 2, bid: 2_495, ask: 2_500, qty: 3)]
        for item in items + more {
            if let entries = try? singles.state.decideReplaceQuote(symbol: item.symbol, item.request(node: "n1"), signer: Fixture.signer, nowMs: Fixture.startMs) {
                singles.commit(entries)
            }
        }
        let seqBefore = batched.state.journalSeq
        let recordsBefore = batched.journal.count
        let refusals = batched.batch(node: "n1", items + more)
        #expect(refusals.map { $0?.code } == [nil, ExchangeErrorCode.staleFencingToken, nil])
        #expect(batched.state.journalSeq == seqBefore + 1, "a batch is one journal record")
        #expect(batched.journal.count == recordsBefore + 1)
        #expect(batched.journal.last?.1.kind == .batch)
        #expect(batched.state.allQuotes == singles.state.allQuotes)
        // (A quote never trades with a market maker's own order: the self-trade and supersede
        // rules see to it, so the fills here are none, in both.)
        #expect(batched.fills == singles.fills)
        for symbol in ["ACME", "BOLT"] {
            #expect(batched.state.depth(symbol, levels: 100) == singles.state.depth(symbol, levels: 100))
        }
        // Replay of the journal rebuilds the batch exactly (one seq, same effect).
        var replay = ExchangeState(config: config)
        var replayedFills: [Fill] = []
        var audit = FencingAudit()
        for (ts, entry) in batched.journal {
            replay.apply(entry, tsMs: ts)
            replayedFills += replay.takeNewFills()
            audit.observe(entry)
        }
        #expect(replay.journalSeq == batched.state.journalSeq)
        #expect(replay.allQuotes == batched.state.allQuotes)
        #expect(replayedFills == batched.fills)
        #expect(audit.staleAccepted == 0)
        #expect(audit.highest["BOLT"] == 2 && audit.highest["ACME"] == 4)
    }

    @Test("a batch with every item refused changes nothing and journals nothing")
    func allRefused() async throws {
        var driver = StateDriver(config: try await Fixture.config())
        let refusals = driver.batch(node: "n1", [Fixture.batchItem("NOPE"), Fixture.batchItem("ACME", bid: 10_020)])
        #expect(refusals.map { $0?.code } == ["unknown_symbol", ExchangeErrorCode.crossedQuote])
        #expect(driver.journal.isEmpty && driver.state.journalSeq == 0 && driver.state.allQuotes.isEmpty)
    }

    @Test("the batch answer's hand-written JSON is byte for byte JSONEncoder's, or declines")
    func resultEncodingMatchesJSONEncoder() async {
        let text = Gen.int(in: 0...5).array(of: 0...5).map { $0.map { ["A", "z", "0", "é", "\"", "\n"][$0] }.joined() }
        await propertyCheck(count: 300, input: Gen.int(in: 0...3).array(of: 0...4), text, Gen.int64(in: -5...Int64.max)) { shapes, word, number in
            let results = shapes.map { shape -> QuoteBatchResult.Item in
                switch shape {
                case 0:
                    return QuoteBatchResult.Item(symbol: word, quote: Quote(symbol: word, node: "n1", fencingToken: number, bidPrice: number, bidQty: 5,
                                                                            askPrice: nil, askQty: 0, updatedAtMs: number))
                case 1: return QuoteBatchResult.Item(symbol: "ACME", refusal: APIError(status: 409, code: word, message: "m \(word)"))
                case 2: return QuoteBatchResult.Item(symbol: "ACME", refusal: APIError(status: 404, code: "c", message: "m", details: ["symbol": word]))
                default: return QuoteBatchResult.Item(symbol: word, refusal: APIError(status: 400, code: "c", message: word))
                }
            }
            let value = QuoteBatchResult(results: results)
            let general = [UInt8]((try? MMJSON.encode(value)) ?? Data())
            if let hot = value.hotPathJSON() {
                #expect(hot == general, "\(String(decoding: hot, as: UTF8.self)) != \(String(decoding: general, as: UTF8.self))")
            } else {
                #expect(general.contains(UInt8(ascii: "\\")) || shapes.contains(2), "declined a result that needs no escaping")
            }
        }
    }

    // MARK: HTTP

    static var http: ExchangeHTTPTests { ExchangeHTTPTests() }

    static func batchBody(_ items: [QuoteBatchRequest.Item], node: String = "n1") -> ByteBuffer {
        ExchangeHTTPTests.json(QuoteBatchRequest(node: node, quotes: items))
    }

    static func result(_ response: TestResponse) throws -> QuoteBatchResult {
        try MMJSON.decode(QuoteBatchResult.self, from: Data(response.body.readableBytesView))
    }

    /// The journal's records after `seq`.
    static func records(_ core: ExchangeCore, after seq: Int64) async throws -> [JournalRecord] {
        let journal = await core.committer.journal
        var records: [JournalRecord] = []
        try journal.forEachRecord(after: seq) { records.append($0); return true }
        return records
    }

    @Test("happy path: every item quoted, in order, as one durable journal record")
    func happyPath() async throws {
        try await Self.http.withApp { client, core, _ in
            let before = await core.snapshot.journalSeq
            let items = [Fixture.batchItem("BOLT", bid: 2_490, ask: 2_510, qty: 3), Fixture.batchItem("ACME", token: 2)]
            let result = try await client.execute(uri: "/v1/quotes", method: .put, headers: ExchangeHTTPTests.headers(.node), body: Self.batchBody(items)) {
                #expect($0.status == .ok, "\(String(buffer: $0.body))")
                return try Self.result($0)
            }
            #expect(result.results.map(\.symbol) == ["BOLT", "ACME"])
            #expect(result.results.allSatisfy { $0.status == 200 && $0.error == nil })
            #expect(result.results[0].quote?.bidPrice == 2_490 && result.results[0].quote?.bidQty == 3)
            #expect(result.results[1].quote?.fencingToken == 2 && result.results[1].quote?.askPrice == 10_010)
            let quotes = await core.quotes()
            #expect(Set(quotes.map(\.symbol)) == ["ACME", "BOLT"])
            // Exactly one record, already durable when the answer came.
            #expect(await core.snapshot.journalSeq == before + 1)
            let committer = await core.committer
            #expect(committer.durableSeq == before + 1)
            let records = try await Self.records(core, after: before)
            #expect(records.count == 1)
            #expect(records.first?.entry.kind == .batch)
            #expect(records.first?.entry.entries?.map(\.kind) == [.supersede, .replaceQuote, .supersede, .replaceQuote])
            #expect(records.first?.entry.entries?.compactMap(\.symbol) == ["BOLT", "BOLT", "ACME", "ACME"])
        }
    }

    @Test("one stale item among good ones: the others are accepted, the stale one refused and unchanged")
    func oneStaleItem() async throws {
        try await Self.http.withApp { client, core, _ in
            // ACME rests under token 3, so token 2 is stale.
            try await client.execute(uri: "/v1/quotes/ACME", method: .put, headers: ExchangeHTTPTests.headers(.node),
                                     body: ExchangeHTTPTests.json(Fixture.quote(token: 3))) { #expect($0.status == .ok) }
            let acmeBefore = await core.quotes().first { $0.symbol == "ACME" }
            let before = await core.snapshot.journalSeq
            let items = [
                Fixture.batchItem("BOLT", bid: 2_490, ask: 2_510),
                Fixture.batchItem("ACME", token: 2, bid: 9_980, ask: 10_020),
                // A bad item is refused alone too, with the single route's code.
                Fixture.batchItem("NOPE"),
            ]
            let result = try await client.execute(uri: "/v1/quotes", method: .put, headers: ExchangeHTTPTests.headers(.node), body: Self.batchBody(items)) {
                #expect($0.status == .ok, "\(String(buffer: $0.body))")
                return try Self.result($0)
            }
            #expect(result.results.map(\.status) == [200, 409, 404])
            #expect(result.results.map { $0.error?.code } == [nil, ExchangeErrorCode.staleFencingToken, "unknown_symbol"])
            #expect(result.results[1].quote == nil && result.results[0].quote?.bidPrice == 2_490)
            #expect(await core.quotes().first { $0.symbol == "ACME" } == acmeBefore)
            #expect(await core.quotes().first { $0.symbol == "BOLT" }?.askPrice == 2_510)
            let records = try await Self.records(core, after: before)
            #expect(records.count == 1)
            #expect(records.first?.entry.entries?.allSatisfy { $0.symbol == "BOLT" } == true)
            let stats = await core.stats()
            #expect(stats.rejections[ExchangeErrorCode.staleFencingToken] == 1)
            #expect(stats.staleAccepted == 0)
        }
    }

    @Test("a node's token naming another node is 403 node_mismatch and changes nothing")
    func nodeMismatch() async throws {
        try await Self.http.withApp { client, core, _ in
            let n1 = ExchangeHTTPTests.tokens.token(for: .node, node: "n1")!
            let n2 = ExchangeHTTPTests.tokens.token(for: .node, node: "n2")!
            let body = Self.batchBody([Fixture.batchItem("BOLT", node: "n2", bid: 2_490, ask: 2_510)], node: "n2")
            let before = await core.snapshot.journalSeq
            try await client.execute(uri: "/v1/quotes", method: .put, headers: [.authorization: "Bearer \(n1)", .contentType: "application/json"], body: body) {
                #expect($0.status == .forbidden)
                #expect(ExchangeHTTPTests.code($0) == "node_mismatch")
            }
            #expect(await core.quotes().isEmpty)
            #expect(await core.snapshot.journalSeq == before)
            try await client.execute(uri: "/v1/quotes", method: .put, headers: [.authorization: "Bearer \(n2)", .contentType: "application/json"], body: body) {
                #expect($0.status == .ok, "\(String(buffer: $0.body))")
            }
            #expect(await core.quotes().map(\.node) == ["n2"])
        }
    }

    static func itemJSON(_ symbol: String, bid: String = "9990", token: Int64 = 1) -> String {
        let grant = String(decoding: try! MMJSON.encode(Fixture.grant(symbol, token: token)), as: UTF8.self)
        return #"{"symbol":"\#(symbol)","grant":\#(grant),"bid_price":\#(bid),"bid_qty":5,"ask_price":10010,"ask_qty":5}"#
    }

    struct BadBatch: Sendable {
        var name: String
        var body: String?
        var code: String
        /// The field the error names, when it names one.
        var field: String?
    }

    static let badBatches: [BadBatch] = [
        BadBatch(name: "malformed JSON", body: #"{"node":"n1","quotes":["#, code: "malformed_body"),
        BadBatch(name: "empty body", body: nil, code: "malformed_body"),
        BadBatch(name: "no quotes", body: #"{"node":"n1","quotes":[]}"#, code: "invalid_field", field: "quotes"),
        BadBatch(name: "quotes missing", body: #"{"node":"n1"}"#, code: "malformed_body"),
        BadBatch(name: "duplicate symbol", body: #"{"node":"n1","quotes":[\#(itemJSON("ACME")),\#(itemJSON("BOLT")),\#(itemJSON("ACME"))]}"#,
                 code: "invalid_field", field: "quotes[2].symbol"),
        BadBatch(name: "too many items",
                 body: #"{"node":"n1","quotes":["# + (0...QuoteBatchRequest.maxItems).map { itemJSON("S\($0)") }.joined(separator: ",") + "]}",
                 code: "invalid_field", field: "quotes"),
        BadBatch(name: "fractional price in item 1", body: #"{"node":"n1","quotes":[\#(itemJSON("BOLT")),\#(itemJSON("ACME", bid: "99.5"))]}"#,
                 code: ExchangeErrorCode.offTickGrid, field: "quotes[1].bid_price"),
        BadBatch(name: "price beyond Int64 in item 0", body: #"{"node":"n1","quotes":[\#(itemJSON("BOLT", bid: "1e30"))]}"#,
                 code: ExchangeErrorCode.absurdSize, field: "quotes[0].bid_price"),
        BadBatch(name: "item without a grant", body: #"{"node":"n1","quotes":[\#(itemJSON("BOLT")),{"symbol":"ACME","bid_qty":1,"ask_qty":1}]}"#,
                 code: "malformed_body"),
    ]

    @Test("malformed, empty, duplicate-symbol and oversized batches are one 400 and change nothing")
    func badBatchesChangeNothing() async throws {
        try await Self.http.withApp { client, core, _ in
            try await client.execute(uri: "/v1/quotes/ACME", method: .put, headers: ExchangeHTTPTests.headers(.node),
                                     body: ExchangeHTTPTests.json(Fixture.quote(token: 3))) { #expect($0.status == .ok) }
            let quotesBefore = await core.quotes()
            let before = await core.snapshot.journalSeq
            for bad in Self.badBatches {
                try await client.execute(uri: "/v1/quotes", method: .put, headers: ExchangeHTTPTests.headers(.node),
                                         body: bad.body.map { ByteBuffer(string: $0) }) { response in
                    #expect(response.status == .badRequest, "\(bad.name): \(String(buffer: response.body))")
                    let envelope = try? MMJSON.decode(ErrorEnvelope.self, from: Data(response.body.readableBytesView))
                    #expect(envelope?.error.code == bad.code, "\(bad.name): \(String(buffer: response.body))")
                    if let field = bad.field { #expect(envelope?.error.details?["field"] == field, "\(bad.name)") }
                }
            }
            // The item-level decode error names the item's index.
            try await client.execute(uri: "/v1/quotes", method: .put, headers: ExchangeHTTPTests.headers(.node),
                                     body: ByteBuffer(string: Self.badBatches.last!.body!)) { response in
                let envelope = try MMJSON.decode(ErrorEnvelope.self, from: Data(response.body.readableBytesView))
                #expect(envelope.error.message.contains("[1]"), "\(envelope.error.message)")
            }
            #expect(await core.quotes() == quotesBefore)
            #expect(await core.snapshot.journalSeq == before)
        }
    }
}
