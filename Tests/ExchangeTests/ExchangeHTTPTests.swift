import Exchange
import Foundation
import Hummingbird
import HummingbirdTesting
import MMCore
import MMServiceKit
import MMTestSupport
import Testing

/// Every bad input over HTTP, in process: each gets its status and stable code in the
/// error envelope, and the exchange's state is unchanged afterwards.
@Suite("Exchange HTTP")
struct ExchangeHTTPTests {
    static let tokens = RoleTokens(
        tokens: Dictionary(uniqueKeysWithValues: Role.sharedTokenRoles.map { ($0, "token-\($0.rawValue)") }), nodeIdentity: NodeIdentity(keyHex: "node-identity-test-key"))

    func withApp(_ test: @escaping @Sendable (any TestClientProtocol, ExchangeCore, ManualClock) async throws -> Void) async throws {
        let config = try await Fixture.config()
        let clock = ManualClock(startMs: Fixture.startMs)
        let directory = TestPaths.temporaryDataDirectory("exchange-http")
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let journal = try GRDBExchangeJournal(path: directory.databasePath("exchange"))
        let core = try ExchangeCore(config: config, signer: Fixture.signer, clock: clock, journal: journal)
        let environment = ServiceEnvironment(process: .exchange, role: .exchange, config: config, dataDirectory: directory, tokens: Self.tokens, clock: clock)
        let app = buildApplication(environment, router: ExchangeService.buildExchangeRouter(environment, core: core))
        try await withFlushing(core) {
            try await app.test(.router) { client in try await test(client, core, clock) }
        }
    }

    static func headers(_ role: Role?) -> HTTPFields {
        var fields = HTTPFields()
        if let role { fields[.authorization] = "Bearer \(tokens.token(for: role, node: "n1")!)" }
        fields[.contentType] = "application/json"
        return fields
    }

    static func json(_ value: some Encodable) -> ByteBuffer { ByteBuffer(bytes: try! MMJSON.encode(value)) }

    static func code(_ response: TestResponse) -> String? {
        (try? MMJSON.decode(ErrorEnvelope.self, from: Data(response.body.readableBytesView)))?.error.code
    }

    struct Bad: Sendable {
        var name: String
        var method: HTTPRequest.Method
        var uri: String
        var role: Role?
        var body: String?
        var status: Int
        var code: String
    }

    static func quoteBody(bid: String = "9990", ask: String = "10010", bidQty: String = "5", grant: AuthorityGrant = Fixture.grant(), node: String = "n1") -> String {
        let grantJSON = String(decoding: try! MMJSON.encode(grant), as: UTF8.self)
        return #"{"node":"\#(node)","grant":\#(grantJSON),"bid_price":\#(bid),"bid_qty":\#(bidQty),"ask_price":\#(ask),"ask_qty":5}"#
    }

    static let badInputs: [Bad] = [
        Bad(name: "malformed JSON", method: .put, uri: "/v1/quotes/ACME", role: .node, body: #"{"node": "n1", "#, status: 400, code: "malformed_body"),
        Bad(name: "missing grant", method: .put, uri: "/v1/quotes/ACME", role: .node, body: #"{"node":"n1","bid_qty":1,"ask_qty":1}"#, status: 400, code: "malformed_body"),
        Bad(name: "empty body", method: .put, uri: "/v1/quotes/ACME", role: .node, body: nil, status: 400, code: "malformed_body"),
        Bad(name: "fractional price", method: .put, uri: "/v1/quotes/ACME", role: .node, body: quoteBody(bid: "100.5"), status: 400, code: ExchangeErrorCode.offTickGrid),
        Bad(name: "fractional qty", method: .put, uri: "/v1/quotes/ACME", role: .node, body: quoteBody(bidQty: "1.5"), status: 400, code: "invalid_field"),
        Bad(name: "price beyond Int64", method: .put, uri: "/v1/quotes/ACME", role: .node, body: quoteBody(ask: "1e30"), status: 400, code: ExchangeErrorCode.absurdSize),
        Bad(name: "zero price", method: .put, uri: "/v1/quotes/ACME", role: .node, body: quoteBody(bid: "0"), status: 400, code: "invalid_field"),
        Bad(name: "negative qty", method: .put, uri: "/v1/quotes/ACME", role: .node, body: quoteBody(bidQty: "-1"), status: 400, code: "invalid_field"),
        Bad(name: "absurd qty", method: .put, uri: "/v1/quotes/ACME", role: .node, body: quoteBody(bidQty: "100000001"), status: 400, code: ExchangeErrorCode.absurdSize),
        Bad(name: "absurd price", method: .put, uri: "/v1/quotes/ACME", role: .node, body: quoteBody(ask: "5000000000"), status: 400, code: ExchangeErrorCode.absurdSize),
        Bad(name: "crossed quote", method: .put, uri: "/v1/quotes/ACME", role: .node, body: quoteBody(bid: "10020"), status: 400, code: ExchangeErrorCode.crossedQuote),
        Bad(name: "unknown symbol", method: .put, uri: "/v1/quotes/NOPE", role: .node, body: quoteBody(grant: Fixture.grant("NOPE")), status: 404, code: "unknown_symbol"),
        Bad(name: "oversized body", method: .put, uri: "/v1/quotes/ACME", role: .node, body: String(repeating: " ", count: 1_100_000) + quoteBody(), status: 413, code: "body_too_large"),
        Bad(name: "missing token", method: .put, uri: "/v1/quotes/ACME", role: nil, body: quoteBody(), status: 401, code: "missing_token"),
        Bad(name: "observer may not quote", method: .put, uri: "/v1/quotes/ACME", role: .observer, body: quoteBody(), status: 403, code: "forbidden_role"),
        Bad(name: "exchange role may not quote", method: .put, uri: "/v1/quotes/ACME", role: .exchange, body: quoteBody(), status: 403, code: "forbidden_role"),
        Bad(name: "forged grant", method: .put, uri: "/v1/quotes/ACME", role: .node, body: quoteBody(grant: Fixture.grant(signer: Fixture.foreignSigner)), status: 403, code: ExchangeErrorCode.invalidGrant),
        Bad(name: "someone else's grant", method: .put, uri: "/v1/quotes/ACME", role: .node, body: quoteBody(grant: Fixture.grant(node: "n2")), status: 403, code: ExchangeErrorCode.invalidGrant),
        Bad(name: "expired grant", method: .put, uri: "/v1/quotes/ACME", role: .node, body: quoteBody(grant: Fixture.grant(expiresAtMs: Fixture.startMs)), status: 409, code: ExchangeErrorCode.grantExpired),
        Bad(name: "stale token", method: .put, uri: "/v1/quotes/ACME", role: .node, body: quoteBody(grant: Fixture.grant(token: 2)), status: 409, code: ExchangeErrorCode.staleFencingToken),
        Bad(name: "deadman timeout 0", method: .post, uri: "/v1/deadman", role: .node, body: #"{"node":"n1","timeout_ms":0}"#, status: 400, code: "invalid_field"),
        Bad(name: "deadman timeout absurd", method: .post, uri: "/v1/deadman", role: .node, body: #"{"node":"n1","timeout_ms":3600000}"#, status: 400, code: "invalid_field"),
        Bad(name: "fills limit 0", method: .get, uri: "/v1/fills?limit=0", role: .state, body: nil, status: 400, code: "invalid_field"),
        Bad(name: "fills wait absurd", method: .get, uri: "/v1/fills?wait_ms=999999", role: .state, body: nil, status: 400, code: "invalid_field"),
        Bad(name: "fills after nonsense", method: .get, uri: "/v1/fills?after=abc", role: .state, body: nil, status: 400, code: "invalid_field"),
        Bad(name: "fills after negative", method: .get, uri: "/v1/fills?after=-1", role: .state, body: nil, status: 400, code: "invalid_field"),
        Bad(name: "fills tail 0", method: .get, uri: "/v1/fills?tail=0", role: .observer, body: nil, status: 400, code: "invalid_field"),
        Bad(name: "fills tail beyond a page", method: .get, uri: "/v1/fills?tail=1001", role: .observer, body: nil, status: 400, code: "invalid_field"),
        Bad(name: "fills tail with after", method: .get, uri: "/v1/fills?tail=5&after=0", role: .observer, body: nil, status: 400, code: "invalid_field"),
        Bad(name: "fills tail with limit", method: .get, uri: "/v1/fills?limit=5&tail=5", role: .observer, body: nil, status: 400, code: "invalid_field"),
        Bad(name: "fills tail with a wait", method: .get, uri: "/v1/fills?tail=5&wait_ms=0", role: .observer, body: nil, status: 400, code: "invalid_field"),
        Bad(name: "unknown order", method: .delete, uri: "/v1/orders/O999", role: .node, body: String(decoding: try! MMJSON.encode(Fixture.fenced(token: 3)), as: UTF8.self), status: 404, code: ExchangeErrorCode.unknownOrder),
        Bad(name: "book of unknown symbol", method: .get, uri: "/v1/book/NOPE", role: .observer, body: nil, status: 404, code: "unknown_symbol"),
        Bad(name: "price of unknown symbol", method: .get, uri: "/v1/prices/NOPE", role: .observer, body: nil, status: 404, code: "unknown_symbol"),
        Bad(name: "prices of an unknown symbol", method: .get, uri: "/v1/prices?symbols=ACME,NOPE", role: .observer, body: nil, status: 404, code: "unknown_symbol"),
        Bad(name: "prices with an empty name", method: .get, uri: "/v1/prices?symbols=ACME,", role: .observer, body: nil, status: 400, code: "invalid_field"),
    ]

    @Test("every bad input is a 4xx with a stable code and changes nothing")
    func badInputs() async throws {
        try await withApp { client, core, _ in
            // A resting quote with token 3, so "stale" and "unchanged" mean something.
            try await client.execute(uri: "/v1/quotes/ACME", method: .put, headers: Self.headers(.node),
                                     body: Self.json(Fixture.quote(token: 3))) { response in
                #expect(response.status == .ok)
            }
            let quotesBefore = await core.quotes()
            let journalBefore = await core.snapshot.journalSeq
            for bad in Self.badInputs {
                let body = bad.body.map { ByteBuffer(string: $0) }
                try await client.execute(uri: bad.uri, method: bad.method, headers: Self.headers(bad.role), body: body) { response in
                    #expect(Int(response.status.code) == bad.status, "\(bad.name): \(String(buffer: response.body))")
                    #expect(Self.code(response) == bad.code, "\(bad.name): \(String(buffer: response.body))")
                }
            }
            #expect(await core.quotes() == quotesBefore)
            #expect(await core.snapshot.journalSeq == journalBefore)
            let stats = await core.stats()
            #expect(stats.rejections[ExchangeErrorCode.offTickGrid] == 1)
            #expect(stats.rejections[ExchangeErrorCode.staleFencingToken] == 1)
            #expect(stats.staleAccepted == 0)
        }
    }

    /// Node n1's token acting as n2 with n2's own, valid grant, on every node-scoped route:
    /// 403 `node_mismatch` and nothing changes. The same requests with n2's token succeed,
    /// so it is the identity that refuses them, not some other rule.
    @Test("a node's token acting as another node is refused on every node route and changes nothing")
    func oneNodeActingAsAnother() async throws {
        try await withApp { client, core, _ in
            let n1 = Self.tokens.token(for: .node, node: "n1")!
            let n2 = Self.tokens.token(for: .node, node: "n2")!
            func headers(_ token: String) -> HTTPFields { [.authorization: "Bearer \(token)", .contentType: "application/json"] }
            // n2 quotes BOLT and rests an order on it, so cancels have something to act on.
            try await client.execute(uri: "/v1/quotes/BOLT", method: .put, headers: headers(n2), body: Self.json(Fixture.quote("BOLT", node: "n2", bid: 4_990, ask: 5_010))) {
                #expect($0.status == .ok, "\(String(buffer: $0.body))")
            }
            let order = try await client.execute(uri: "/v1/orders", method: .post, headers: headers(n2),
                                                 body: Self.json(Fixture.order("c1", symbol: "BOLT", node: "n2", side: .buy, price: 4_980, qty: 1))) {
                try MMJSON.decode(OrderAck.self, from: Data($0.body.readableBytesView))
            }
            let quotesBefore = await core.quotes()
            let journalBefore = await core.snapshot.journalSeq
            #expect(await core.deadmanDeadline("n2") == nil)
            let attempts: [(String, HTTPRequest.Method, String, ByteBuffer)] = [
                ("replace quote", .put, "/v1/quotes/BOLT", Self.json(Fixture.quote("BOLT", node: "n2", bid: 4_980, ask: 5_020))),
                ("replace quotes (batch)", .put, "/v1/quotes",
                 Self.json(QuoteBatchRequest(node: "n2", quotes: [Fixture.batchItem("BOLT", node: "n2", bid: 4_980, ask: 5_020)]))),
                ("cancel quote", .delete, "/v1/quotes/BOLT", Self.json(Fixture.fenced("BOLT", node: "n2"))),
                ("submit order", .post, "/v1/orders", Self.json(Fixture.order("c2", symbol: "BOLT", node: "n2", side: .buy, price: 4_970, qty: 1))),
                ("cancel order", .delete, "/v1/orders/\(order.orderId)", Self.json(Fixture.fenced("BOLT", node: "n2"))),
                ("arm dead-man's switch", .post, "/v1/deadman", Self.json(DeadmanRequest(node: "n2", timeoutMs: 1_000))),
            ]
            for (name, method, uri, body) in attempts {
                try await client.execute(uri: uri, method: method, headers: headers(n1), body: body) { response in
                    #expect(response.status == .forbidden, "\(name): \(String(buffer: response.body))")
                    #expect(Self.code(response) == "node_mismatch", "\(name)")
                }
            }
            #expect(await core.quotes() == quotesBefore)
            #expect(await core.snapshot.journalSeq == journalBefore)
            #expect(await core.deadmanDeadline("n2") == nil)
            // n2's own token does each of them.
            for (name, method, uri, body) in attempts {
                try await client.execute(uri: uri, method: method, headers: headers(n2), body: body) { response in
                    #expect(response.status == .ok, "\(name) as n2: \(String(buffer: response.body))")
                }
            }
            #expect(await core.deadmanDeadline("n2") != nil)
        }
    }

    @Test("tail=N is the newest N fills in one request, the same fills a forward page gives")
    func fillTail() async throws {
        try await withApp { client, core, clock in
            func page(_ query: String) async throws -> FillPage {
                try await client.execute(uri: "/v1/fills?\(query)", method: .get, headers: Self.headers(.observer)) { response in
                    #expect(response.status == .ok, "\(query): \(String(buffer: response.body))")
                    return try MMJSON.decode(FillPage.self, from: Data(response.body.readableBytesView))
                }
            }
            let empty = try await page("tail=3")
            #expect(empty.fills.isEmpty && empty.headSeq == 0)
            try await client.execute(uri: "/v1/quotes/ACME", method: .put, headers: Self.headers(.node), body: Self.json(Fixture.quote(qty: 50))) { response in
                #expect(response.status == .ok)
            }
            for index in 1...7 {
                clock.advance(byMs: 1)
                #expect(await core.submitExternal(Fixture.intent(side: .buy, price: 10_010, qty: Lots(index), flowIndex: Int64(index))))
            }
            // Fills are published once durable, in seq order: wait until the seventh is.
            #expect(try await eventually { try await page("after=0&limit=100").headSeq == 7 }, "all seven fills published")
            let all = try await page("after=0&limit=100")
            #expect(all.fills.count == 7 && all.headSeq == 7)
            let tail = try await page("tail=3")
            #expect(tail.headSeq == 7)
            #expect(tail.fills == Array(all.fills.suffix(3)))
            #expect(tail.fills.map(\.qty) == [5, 6, 7])
            #expect(try await page("tail=1000").fills == all.fills)
            #expect(try await page("tail=7").fills == all.fills)
        }
    }

    @Test("quote, fill, long-poll and inspection round trip")
    func roundTrip() async throws {
        try await withApp { client, core, clock in
            let quote = try await client.execute(uri: "/v1/quotes/ACME", method: .put, headers: Self.headers(.node), body: Self.json(Fixture.quote())) {
                try MMJSON.decode(Quote.self, from: Data($0.body.readableBytesView))
            }
            #expect(quote.bidPrice == 9_990 && quote.askPrice == 10_010 && quote.node == "n1")
            // Nothing yet: a long-poll with a short wait returns an empty page.
            try await client.execute(uri: "/v1/fills?after=0&wait_ms=50", method: .get, headers: Self.headers(.state)) { response in
                let page = try MMJSON.decode(FillPage.self, from: Data(response.body.readableBytesView))
                #expect(page.fills.isEmpty && page.headSeq == 0)
            }
            // A long-poll parked before the fill returns it.
            let poll = Task {
                try await client.execute(uri: "/v1/fills?after=0&wait_ms=10000", method: .get, headers: Self.headers(.state)) { response in
                    try MMJSON.decode(FillPage.self, from: Data(response.body.readableBytesView))
                }
            }
            try await Task.sleep(for: .milliseconds(50))
            clock.advance(byMs: 5)
            #expect(await core.submitExternal(Fixture.intent(side: .buy, price: 10_010, qty: 2)))
            let page = try await poll.value
            #expect(page.fills.map(\.fillId) == ["F1"] && page.fills.first?.side == .sell && page.fills.first?.qty == 2)
            try await client.execute(uri: "/v1/book/ACME?depth=5", method: .get, headers: Self.headers(.observer)) { response in
                let book = try MMJSON.decode(BookDepth.self, from: Data(response.body.readableBytesView))
                #expect(book.asks == [BookLevel(price: 10_010, qty: 3, orders: 1)])
            }
            try await client.execute(uri: "/v1/quotes", method: .get, headers: Self.headers(.observer)) { response in
                let list = try MMJSON.decode(QuoteList.self, from: Data(response.body.readableBytesView))
                #expect(list.quotes.first?.askQty == 3)
            }
            try await client.execute(uri: "/v1/stats", method: .get, headers: Self.headers(.observer)) { response in
                let stats = try MMJSON.decode(ExchangeStats.self, from: Data(response.body.readableBytesView))
                var digest = FillLogDigest()
                page.fills.forEach { digest.append($0) }
                #expect(stats.fillCount == 1 && stats.fillLogSha256 == digest.hexDigest())
            }
            try await client.execute(uri: "/v1/prices/ACME", method: .get, headers: Self.headers(.observer)) { response in
                let price = try MMJSON.decode(ReferencePrice.self, from: Data(response.body.readableBytesView))
                #expect(price.symbol == "ACME" && price.tickIndex == 0 && price.price == 10_000)
            }
            try await client.execute(uri: "/v1/prices?symbols=BOLT", method: .get, headers: Self.headers(.observer)) { response in
                let list = try MMJSON.decode(PriceList.self, from: Data(response.body.readableBytesView))
                #expect(list.prices.map(\.symbol) == ["BOLT"], "only the symbols asked for")
            }
            try await client.execute(uri: "/v1/quotes/ACME", method: .delete, headers: Self.headers(.node), body: Self.json(Fixture.fenced())) { response in
                let result = try MMJSON.decode(QuoteCancelResult.self, from: Data(response.body.readableBytesView))
                #expect(result.cancelled)
            }
            #expect(await core.quotes().isEmpty)
        }
    }
}
