import Foundation
import MMCore
import Testing

/// Every model's JSON is a contract between processes: these golden files pin the exact
/// bytes (snake_case keys, integers for money), and decoding them must give the value back.
@Suite struct ModelGoldenTests {
    static let grant = AuthorityGrant(symbol: "ACME", node: "n1", fencingToken: 7, grantedAtMs: 1_700_000_000_000, expiresAtMs: 1_700_000_002_000, signature: "ab12")

    static let samples: [(String, Sample)] = [
        ("symbol_spec", Sample(SymbolSpec(symbol: "ACME", tickSize: "0.01", basePrice: 10_000, lotSize: 100))),
        ("quote", Sample(Quote(symbol: "ACME", node: "n1", fencingToken: 7, bidPrice: 9_998, bidQty: 5, askPrice: nil, askQty: 0, updatedAtMs: 1_700_000_000_500))),
        ("quote_request", Sample(QuoteRequest(node: "n1", grant: grant, bidPrice: 9_998, bidQty: 5, askPrice: 10_002, askQty: 5))),
        ("order_request", Sample(OrderRequest(clientOrderId: "c-1", symbol: "ACME", side: .buy, price: 9_990, qty: 3, timeInForce: .ioc, node: "n1", grant: grant))),
        ("order_ack", Sample(OrderAck(orderId: "O12", clientOrderId: "c-1", symbol: "ACME", side: .buy, price: 9_990, qty: 3, filledQty: 1, status: .partiallyFilledCancelled, fillIds: ["F4"], acceptedAtMs: 1_700_000_000_100))),
        ("fill", Sample(Fill(fillId: "F4", seq: 4, symbol: "ACME", side: .sell, price: 10_002, qty: 2, makerOrderId: "O9", takerOrderId: "X31", node: "n1", fencingToken: 7, tsMs: 1_700_000_000_200))),
        ("position", Sample(Position(symbol: "ACME", netQty: -3, avgPrice: 10_001, openCost: -30_004, realizedPnl: 12, fillCount: 5, lastFillSeq: 9, version: 9))),
        ("authority_grant", Sample(grant)),
        ("node_presence", Sample(NodePresence(node: "n2", address: "http://127.0.0.1:7412", joinedAtMs: 1_700_000_000_000, lastHeartbeatMs: 1_700_000_001_000, expiresAtMs: 1_700_000_003_000, expiresInMs: 1_500, status: .alive))),
        ("assignment_table", Sample(AssignmentTable(version: 3, symbols: ["ACME": "n1", "BOLT": "n2"]))),
        ("cluster_event", Sample(ClusterEvent(seq: 11, tsMs: 1_700_000_000_900, kind: "grant", symbol: "ACME", node: "n1", fencingToken: 7, expiresAtMs: 1_700_000_002_900, detail: "granted"))),
        ("reference_price", Sample(ReferencePrice(symbol: "ACME", price: 10_003, tickIndex: 120, tsMs: 1_700_000_030_000))),
        ("error_envelope", Sample(ErrorEnvelope(code: "stale_fencing_token", message: "token 6 < 7", details: ["symbol": "ACME"]))),
    ]

    static var goldenDirectory: URL {
        Bundle.module.resourceURL!.appendingPathComponent("Golden")
    }

    @Test(arguments: samples.map(\.0))
    func encodesToGoldenBytes(name: String) throws {
        let sample = Self.samples.first { $0.0 == name }!.1
        let encoded = try sample.encodePretty()
        if ProcessInfo.processInfo.environment["MMTEST_RECORD_GOLDEN"] == "1" {
            // Recording is a deliberate act (review the diff); a normal run only compares.
            let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/\(name).json")
            try (encoded + Data("\n".utf8)).write(to: source)
        }
        let golden = try Data(contentsOf: Self.goldenDirectory.appendingPathComponent("\(name).json"))
        #expect(String(decoding: encoded, as: UTF8.self) == String(decoding: golden, as: UTF8.self).trimmingCharacters(in: .newlines))
    }

    @Test(arguments: samples.map(\.0))
    func goldenDecodesToTheSameValue(name: String) throws {
        let sample = Self.samples.first { $0.0 == name }!.1
        let golden = try Data(contentsOf: Self.goldenDirectory.appendingPathComponent("\(name).json"))
        let decodedThenEncoded = try sample.decodeAndEncode(golden)
        #expect(decodedThenEncoded == (try sample.encodeCompact()))
    }

    @Test func moneyIsNeverFloatingPoint() throws {
        let text = String(decoding: try Self.samples.first { $0.0 == "position" }!.1.encodeCompact(), as: UTF8.self)
        #expect(!text.contains("."), "positions must encode integers only: \(text)")
    }

    @Test func fractionalPriceIsRejected() {
        let json = #"{"symbol":"ACME","node":"n1","fencing_token":1,"bid_price":99.5,"bid_qty":1,"ask_qty":0,"updated_at_ms":1}"#
        #expect(throws: DecodingError.self) { try MMJSON.decode(Quote.self, from: Data(json.utf8)) }
    }

    @Test func decodingErrorsNameTheField() {
        do {
            _ = try MMJSON.decode(Fill.self, from: Data(#"{"fill_id":"F1"}"#.utf8))
            Issue.record("decoding an incomplete fill must fail")
        } catch {
            #expect(MMJSON.describe(error).contains("missing field"))
        }
        do {
            _ = try MMJSON.decode(Position.self, from: Data(#"{"symbol":"ACME","net_qty":"lots"}"#.utf8))
            Issue.record("a string quantity must fail")
        } catch {
            #expect(MMJSON.describe(error).contains("net_qty"))
        }
    }
}

/// A model value with its type captured, so one table can hold every model.
struct Sample: Sendable {
    let encodePretty: @Sendable () throws -> Data
    let encodeCompact: @Sendable () throws -> Data
    let decodeAndEncode: @Sendable (Data) throws -> Data

    init<T: Codable & Sendable>(_ value: T) {
        encodePretty = { try MMJSON.encode(value, pretty: true) }
        encodeCompact = { try MMJSON.encode(value) }
        decodeAndEncode = { try MMJSON.encode(MMJSON.decode(T.self, from: $0)) }
    }
}
