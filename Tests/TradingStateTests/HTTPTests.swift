import Foundation
import Hummingbird
import HummingbirdTesting
import MMCore
import MMServiceKit
import NIOCore
import Testing
@testable import TradingState

/// Every route, role and bad input, in-process against a temporary ledger on each backend
/// (a SQLite file, or a schema of its own on the suite's PostgreSQL server).
@Suite("Trading-state HTTP API", .postgresServer)
struct HTTPTests {
    /// An in-process service (ingest loop not running: its source is an empty scripted log).
    static func withService(
        _ label: String, _ backend: LedgerBackend, _ body: @Sendable (any TestClientProtocol, ServiceEnvironment, Handles) async throws -> Void
    ) async throws {
        let environment = try makeEnvironment(label)
        defer { try? FileManager.default.removeItem(atPath: environment.dataDirectory.path) }
        try await withLedgerStore(backend, label: label) { store in
            let parts = try await TradingStateService.build(environment, repository: try await store.repository(), source: ScriptedFillLog())
            let app = Application(router: parts.router.router)
            let handles = Handles(ledger: parts.ledger, monitor: parts.monitor)
            try await app.test(.router) { client in try await body(client, environment, handles) }
        }
    }

    struct Handles: Sendable {
        let ledger: TradingLedger
        let monitor: IngestMonitor
    }

    static func headers(_ environment: ServiceEnvironment, _ role: Role?) -> HTTPFields {
        var fields = HTTPFields()
        if let role { fields[.authorization] = "Bearer \(environment.tokens.token(for: role, node: "n1")!)" }
        fields[.contentType] = "application/json"
        return fields
    }

    static func body(_ fills: [Fill]) -> ByteBuffer {
        ByteBuffer(bytes: try! MMJSON.encode(RecordFillsRequest(fills: fills)))
    }

    static func decode<T: Decodable>(_ type: T.Type, _ response: TestResponse) throws -> T {
        try MMJSON.decode(T.self, from: Data(response.body.readableBytesView))
    }

    static func errorCode(_ response: TestResponse) -> String? {
        (try? decode(ErrorEnvelope.self, response))?.error.code
    }

    /// The ledger must be exactly as it was: no version change, no fill.
    static func expectUnchanged(_ client: any TestClientProtocol, _ environment: ServiceEnvironment, version: Int64) async throws {
        let view = try await client.execute(uri: "/v1/positions", method: .get, headers: headers(environment, .observer)) { try decode(PositionsView.self, $0) }
        #expect(view.version == version)
        let page = try await client.execute(uri: "/v1/fills?limit=100", method: .get, headers: headers(environment, .observer)) { try decode(LedgerPage.self, $0) }
        #expect(page.fills.count == Int(version))
    }

    @Test("POST /v1/fills records, then reports duplicates, for the exchange role", arguments: LedgerBackend.allCases)
    func recordAndDuplicate(backend: LedgerBackend) async throws {
        try await Self.withService("record", backend) { client, environment, _ in
            let fills = [makeFill(1, price: 100, qty: 2), makeFill(2, "BOLT", .sell, price: 40, qty: 1)]
            let first = try await client.execute(uri: "/v1/fills", method: .post, headers: Self.headers(environment, .exchange), body: Self.body(fills)) { response in
                #expect(response.status == .ok)
                return try Self.decode(RecordFillsResult.self, response)
            }
            #expect(first == RecordFillsResult(recorded: ["F1", "F2"], duplicates: [], version: 2))
            let again = try await client.execute(uri: "/v1/fills", method: .post, headers: Self.headers(environment, .exchange), body: Self.body(fills)) { try Self.decode(RecordFillsResult.self, $0) }
            #expect(again == RecordFillsResult(recorded: [], duplicates: ["F1", "F2"], version: 2))
            let acme = try await client.execute(uri: "/v1/positions/ACME", method: .get, headers: Self.headers(environment, .node)) { try Self.decode(Position.self, $0) }
            #expect(acme.netQty == 2)
            #expect(acme.openCost == 200)
            #expect(acme.fillCount == 1)
            #expect(acme.lastFillSeq == 1)
            #expect(acme.version == 1)
        }
    }

    @Test("only the exchange may post fills; a missing or unknown token is 401", arguments: [
        (Role.node, 403, "forbidden_role"), (.observer, 403, "forbidden_role"), (.state, 403, "forbidden_role"),
        (.coordinator, 403, "forbidden_role"), (.supervisor, 403, "forbidden_role"),
    ] as [(Role, Int, String)])
    func roles(_ role: Role, _ status: Int, _ code: String) async throws {
        for backend in LedgerBackend.allCases { try await roles(role, status, code, backend: backend) }
    }

    func roles(_ role: Role, _ status: Int, _ code: String, backend: LedgerBackend) async throws {
        try await Self.withService("roles", backend) { client, environment, _ in
            try await client.execute(uri: "/v1/fills", method: .post, headers: Self.headers(environment, role), body: Self.body([makeFill(1)])) { response in
                #expect(Int(response.status.code) == status)
                #expect(Self.errorCode(response) == code)
            }
            try await Self.expectUnchanged(client, environment, version: 0)
        }
    }

    @Test("missing and wrong tokens are 401 on every route", arguments: LedgerBackend.allCases)
    func unauthenticated(backend: LedgerBackend) async throws {
        try await Self.withService("tokens", backend) { client, environment, _ in
            for (uri, method) in [("/v1/fills", HTTPRequest.Method.post), ("/v1/positions", .get), ("/v1/positions/ACME", .get), ("/v1/fills", .get), ("/v1/ingest", .get), ("/v1/fills/digest", .get)] {
                try await client.execute(uri: uri, method: method, headers: Self.headers(environment, nil), body: Self.body([makeFill(1)])) { response in
                    #expect(response.status == .unauthorized)
                    #expect(Self.errorCode(response) == "missing_token")
                }
                var wrong = Self.headers(environment, nil)
                wrong[.authorization] = "Bearer 0123456789abcdef"
                try await client.execute(uri: uri, method: method, headers: wrong, body: Self.body([makeFill(1)])) { response in
                    #expect(response.status == .unauthorized)
                    #expect(Self.errorCode(response) == "invalid_token")
                }
            }
            try await Self.expectUnchanged(client, environment, version: 0)
        }
    }

    static let badBodies: [(String, String, Int, String)] = [
        ("not JSON", "{fills: [", 400, "malformed_body"),
        ("empty body", "", 400, "malformed_body"),
        ("fills not an array", #"{"fills": 3}"#, 400, "malformed_body"),
        ("partial fill (no qty)", #"{"fills":[{"fill_id":"F1","seq":1,"symbol":"ACME","side":"buy","price":100,"maker_order_id":"m","taker_order_id":"t","node":"n1","fencing_token":1,"ts_ms":1}]}"#, 400, "malformed_body"),
        ("unknown side", #"{"fills":[{"fill_id":"F1","seq":1,"symbol":"ACME","side":"hold","price":100,"qty":1,"maker_order_id":"m","taker_order_id":"t","node":"n1","fencing_token":1,"ts_ms":1}]}"#, 400, "malformed_body"),
        ("fractional price", #"{"fills":[{"fill_id":"F1","seq":1,"symbol":"ACME","side":"buy","price":100.5,"qty":1,"maker_order_id":"m","taker_order_id":"t","node":"n1","fencing_token":1,"ts_ms":1}]}"#, 400, "malformed_body"),
    ]

    @Test("malformed and partial bodies are 400 and change nothing", arguments: badBodies)
    func malformed(_ name: String, _ raw: String, _ status: Int, _ code: String) async throws {
        for backend in LedgerBackend.allCases { try await malformed(name, raw, status, code, backend: backend) }
    }

    func malformed(_ name: String, _ raw: String, _ status: Int, _ code: String, backend: LedgerBackend) async throws {
        try await Self.withService("malformed", backend) { client, environment, _ in
            try await client.execute(uri: "/v1/fills", method: .post, headers: Self.headers(environment, .exchange), body: ByteBuffer(string: raw)) { response in
                #expect(Int(response.status.code) == status, "\(name)")
                #expect(Self.errorCode(response) == code, "\(name)")
            }
            try await Self.expectUnchanged(client, environment, version: 0)
        }
    }

    static let badFills: [(String, Fill, String)] = [
        ("unknown symbol", makeFill(2, "NOPE"), "unknown_symbol"),
        ("qty 0", makeFill(2, qty: 0), "invalid_field"),
        ("negative qty", makeFill(2, qty: -4), "invalid_field"),
        ("price 0", makeFill(2, price: 0), "invalid_field"),
        ("seq 0", makeFill(0, id: "F2"), "invalid_field"),
        ("empty fill_id", makeFill(2, id: ""), "invalid_field"),
    ]

    @Test("a batch with one bad fill is refused whole", arguments: badFills)
    func badFillRejectsBatch(_ name: String, _ bad: Fill, _ code: String) async throws {
        for backend in LedgerBackend.allCases { try await badFillRejectsBatch(name, bad, code, backend: backend) }
    }

    func badFillRejectsBatch(_ name: String, _ bad: Fill, _ code: String, backend: LedgerBackend) async throws {
        try await Self.withService("badfill", backend) { client, environment, _ in
            try await client.execute(uri: "/v1/fills", method: .post, headers: Self.headers(environment, .exchange), body: Self.body([makeFill(1), bad, makeFill(3)])) { response in
                #expect(response.status == .badRequest, "\(name)")
                #expect(Self.errorCode(response) == code, "\(name)")
                let envelope = try Self.decode(ErrorEnvelope.self, response)
                #expect(envelope.error.details?["field"]?.hasPrefix("fills[1].") == true, "\(name): \(envelope)")
            }
            try await Self.expectUnchanged(client, environment, version: 0)
            // The service keeps working afterwards.
            try await client.execute(uri: "/v1/fills", method: .post, headers: Self.headers(environment, .exchange), body: Self.body([makeFill(1)])) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test("conflicting duplicates are 409, keep the first recording and change nothing", arguments: LedgerBackend.allCases)
    func conflictingDuplicate(backend: LedgerBackend) async throws {
        try await Self.withService("conflict", backend) { client, environment, _ in
            try await client.execute(uri: "/v1/fills", method: .post, headers: Self.headers(environment, .exchange), body: Self.body([makeFill(1, qty: 2)])) { #expect($0.status == .ok) }
            // Against the ledger, with a new fill in the same batch that must not land either.
            try await client.execute(uri: "/v1/fills", method: .post, headers: Self.headers(environment, .exchange), body: Self.body([makeFill(2), makeFill(1, qty: 9)])) { response in
                #expect(response.status == .conflict)
                #expect(Self.errorCode(response) == "conflicting_duplicate")
                let envelope = try Self.decode(ErrorEnvelope.self, response)
                #expect(envelope.error.details?["fill_id"] == "F1")
                #expect(envelope.error.details?["fields"] == "qty")
            }
            // Within one batch.
            try await client.execute(uri: "/v1/fills", method: .post, headers: Self.headers(environment, .exchange), body: Self.body([makeFill(5), makeFill(5, price: 101)])) { response in
                #expect(response.status == .conflict)
                #expect(Self.errorCode(response) == "conflicting_duplicate")
            }
            // Same seq, other id.
            try await client.execute(uri: "/v1/fills", method: .post, headers: Self.headers(environment, .exchange), body: Self.body([makeFill(1, id: "OTHER")])) { response in
                #expect(response.status == .conflict)
                #expect(Self.errorCode(response) == "seq_conflict")
            }
            try await Self.expectUnchanged(client, environment, version: 1)
            let acme = try await client.execute(uri: "/v1/positions/ACME", method: .get, headers: Self.headers(environment, .observer)) { try Self.decode(Position.self, $0) }
            #expect(acme.netQty == 2)
        }
    }

    @Test("too many fills in one request is 400", arguments: LedgerBackend.allCases)
    func oversizedBatch(backend: LedgerBackend) async throws {
        try await Self.withService("oversize", backend) { client, environment, _ in
            // Short ids keep this under the body limit, so the count rule is what refuses it.
            let fills = (1...(maxRecordBatch + 1)).map { Fill(fillId: "\($0)", seq: Int64($0), symbol: "ACME", side: .buy, price: 1, qty: 1, makerOrderId: "", takerOrderId: "", node: "n", fencingToken: 0, tsMs: 0) }
            try await client.execute(uri: "/v1/fills", method: .post, headers: Self.headers(environment, .exchange), body: Self.body(fills)) { response in
                #expect(response.status == .badRequest || response.status == .contentTooLarge)
                #expect(["invalid_field", "body_too_large"].contains(Self.errorCode(response) ?? ""))
            }
            try await Self.expectUnchanged(client, environment, version: 0)
        }
    }

    @Test("GET /v1/positions lists every configured symbol, flat ones too, for every role", arguments: LedgerBackend.allCases)
    func positionsForAllRoles(backend: LedgerBackend) async throws {
        try await Self.withService("positions", backend) { client, environment, _ in
            for role in Role.allCases {
                let view = try await client.execute(uri: "/v1/positions", method: .get, headers: Self.headers(environment, role)) { try Self.decode(PositionsView.self, $0) }
                #expect(view.version == 0)
                #expect(view.positions == testSymbols.map { Position.flat($0) })
            }
            try await client.execute(uri: "/v1/positions/NOPE", method: .get, headers: Self.headers(environment, .node)) { response in
                #expect(response.status == .notFound)
                #expect(Self.errorCode(response) == "unknown_symbol")
            }
            for query in ["after_version=-1", "after_version=abc", "after_version=0&wait_ms=999999", "after_version=0&wait_ms=-5"] {
                try await client.execute(uri: "/v1/positions?\(query)", method: .get, headers: Self.headers(environment, .node)) { response in
                    #expect(response.status == .badRequest, "\(query)")
                    #expect(Self.errorCode(response) == "invalid_field", "\(query)")
                }
            }
            try await client.execute(uri: "/v1/positions", method: .delete, headers: Self.headers(environment, .exchange)) { response in
                #expect(response.status == .methodNotAllowed)
                #expect(response.headers[.allow] == "GET")
            }
        }
    }

    @Test("a long-poll with nothing new answers after wait_ms with the current view", arguments: LedgerBackend.allCases)
    func longPollTimesOut(backend: LedgerBackend) async throws {
        try await Self.withService("timeout", backend) { client, environment, _ in
            let view = try await client.execute(uri: "/v1/positions?after_version=0&wait_ms=50", method: .get, headers: Self.headers(environment, .node)) { try Self.decode(PositionsView.self, $0) }
            #expect(view.version == 0)
            let position = try await client.execute(uri: "/v1/positions/ACME?after_version=0&wait_ms=50", method: .get, headers: Self.headers(environment, .node)) { try Self.decode(Position.self, $0) }
            #expect(position == .flat("ACME"))
        }
    }

    @Test("a long-polling reader gets the position as soon as a fill lands", arguments: LedgerBackend.allCases)
    func longPollWakesOnFill(backend: LedgerBackend) async throws {
        try await Self.withService("wake", backend) { client, environment, parts in
            async let waited = client.execute(uri: "/v1/positions?after_version=0&wait_ms=25000", method: .get, headers: Self.headers(environment, .node)) { response in
                #expect(response.status == .ok, "\(String(buffer: response.body))")
                return try Self.decode(PositionsView.self, response)
            }
            async let waitedSymbol = client.execute(uri: "/v1/positions/BOLT?after_version=0&wait_ms=25000", method: .get, headers: Self.headers(environment, .node)) { response in
                #expect(response.status == .ok, "\(String(buffer: response.body))")
                return try Self.decode(Position.self, response)
            }
            #expect(await eventuallyTrue { await parts.ledger.broadcaster.waiterCount == 2 })
            // An ACME fill wakes the all-symbols reader but not the BOLT reader.
            try await client.execute(uri: "/v1/fills", method: .post, headers: Self.headers(environment, .exchange), body: Self.body([makeFill(1, qty: 3)])) { #expect($0.status == .ok) }
            let view = try await waited
            #expect(view.version == 1)
            #expect(view.positions.first { $0.symbol == "ACME" }?.netQty == 3)
            #expect(await parts.ledger.broadcaster.waiterCount == 1)
            try await client.execute(uri: "/v1/fills", method: .post, headers: Self.headers(environment, .exchange), body: Self.body([makeFill(2, "BOLT", .sell, qty: 4)])) { #expect($0.status == .ok) }
            let bolt = try await waitedSymbol
            #expect(bolt.netQty == -4)
            #expect(bolt.version == 2)
        }
    }

    @Test("GET /v1/fills pages the ledger; bad parameters are 400/404", arguments: LedgerBackend.allCases)
    func ledgerPaging(backend: LedgerBackend) async throws {
        try await Self.withService("ledger", backend) { client, environment, _ in
            let fills = (1...7).map { makeFill(Int64($0), $0 % 2 == 0 ? "BOLT" : "ACME") }
            try await client.execute(uri: "/v1/fills", method: .post, headers: Self.headers(environment, .exchange), body: Self.body(fills.reversed())) { #expect($0.status == .ok) }
            let page = try await client.execute(uri: "/v1/fills?after=2&limit=3", method: .get, headers: Self.headers(environment, .observer)) { try Self.decode(LedgerPage.self, $0) }
            #expect(page.fills == Array(fills[2..<5]))
            #expect(page.nextAfter == 5)
            let bolt = try await client.execute(uri: "/v1/fills?symbol=BOLT", method: .get, headers: Self.headers(environment, .coordinator)) { try Self.decode(LedgerPage.self, $0) }
            #expect(bolt.fills.map(\.seq) == [2, 4, 6])
            #expect(bolt.nextAfter == nil)
            try await client.execute(uri: "/v1/fills?symbol=NOPE", method: .get, headers: Self.headers(environment, .observer)) { response in
                #expect(response.status == .notFound)
                #expect(Self.errorCode(response) == "unknown_symbol")
            }
            for query in ["limit=0", "limit=100000", "after=-1", "after=x"] {
                try await client.execute(uri: "/v1/fills?\(query)", method: .get, headers: Self.headers(environment, .observer)) { response in
                    #expect(response.status == .badRequest, "\(query)")
                    #expect(Self.errorCode(response) == "invalid_field", "\(query)")
                }
            }
        }
    }

    @Test("GET /v1/ingest reports cursor, version and the last ingest error", arguments: LedgerBackend.allCases)
    func ingestStatus(backend: LedgerBackend) async throws {
        try await Self.withService("ingest", backend) { client, environment, parts in
            let initial = try await client.execute(uri: "/v1/ingest", method: .get, headers: Self.headers(environment, .observer)) { try Self.decode(IngestStatus.self, $0) }
            #expect(initial.cursor == 0)
            #expect(initial.exchangeHeadSeq == nil)
            #expect(initial.lastError == nil)
            await parts.monitor.observedHead(12)
            await parts.monitor.failed("exchange fill log unavailable: test", atMs: 5)
            try await client.execute(uri: "/v1/fills", method: .post, headers: Self.headers(environment, .exchange), body: Self.body([makeFill(1)])) { #expect($0.status == .ok) }
            let status = try await client.execute(uri: "/v1/ingest", method: .get, headers: Self.headers(environment, .observer)) { try Self.decode(IngestStatus.self, $0) }
            #expect(status.exchangeHeadSeq == 12)
            #expect(status.lag == 12)
            #expect(status.ledgerFillCount == 1)
            #expect(status.version == 1)
            #expect(status.lastError == "exchange fill log unavailable: test")
            #expect(status.lastErrorAtMs == 5)
        }
    }

    @Test("GET /v1/fills/digest answers the chain over the gap-free prefix, for every role", arguments: LedgerBackend.allCases)
    func ledgerDigest(backend: LedgerBackend) async throws {
        try await Self.withService("digest", backend) { client, environment, _ in
            let empty = try await client.execute(uri: "/v1/fills/digest", method: .get, headers: Self.headers(environment, .observer)) { response in
                #expect(response.status == .ok)
                return try Self.decode(LedgerDigest.self, response)
            }
            #expect(empty == LedgerDigest(cursor: 0, chainedThroughSeq: 0, fillLogSha256: String(repeating: "0", count: 64), fillCount: 0))
            // 3 is missing: the chain stops at 2 although 4 is in the ledger.
            let fills = [makeFill(1, price: 100, qty: 2), makeFill(2, "BOLT", .sell, price: 40, qty: 1), makeFill(4, "CRUX", .sell, price: 7, qty: 3)]
            try await client.execute(uri: "/v1/fills", method: .post, headers: Self.headers(environment, .exchange), body: Self.body(fills.reversed())) { #expect($0.status == .ok) }
            var expected = FillLogDigest()
            expected.append(fills[0])
            expected.append(fills[1])
            for role in Role.allCases {
                let digest = try await client.execute(uri: "/v1/fills/digest", method: .get, headers: Self.headers(environment, role)) { response in
                    #expect(response.status == .ok, "\(role)")
                    let keys = (try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]).map { Set($0.keys) }
                    #expect(keys == ["cursor", "chained_through_seq", "fill_log_sha256", "fill_count"])
                    return try Self.decode(LedgerDigest.self, response)
                }
                #expect(digest == LedgerDigest(cursor: 0, chainedThroughSeq: 2, fillLogSha256: expected.hexDigest(), fillCount: 3), "\(role)")
            }
            try await client.execute(uri: "/v1/fills", method: .post, headers: Self.headers(environment, .exchange), body: Self.body([makeFill(3)])) { #expect($0.status == .ok) }
            expected.append(makeFill(3))
            expected.append(fills[2])
            let joined = try await client.execute(uri: "/v1/fills/digest", method: .get, headers: Self.headers(environment, .node)) { try Self.decode(LedgerDigest.self, $0) }
            #expect(joined == LedgerDigest(cursor: 0, chainedThroughSeq: 4, fillLogSha256: expected.hexDigest(), fillCount: 4))
            try await client.execute(uri: "/v1/fills/digest", method: .post, headers: Self.headers(environment, .exchange)) { response in
                #expect(response.status == .methodNotAllowed)
                #expect(response.headers[.allow] == "GET")
            }
        }
    }

    @Test("/readyz is 200 once the ledger is open", arguments: LedgerBackend.allCases)
    func readiness(backend: LedgerBackend) async throws {
        try await Self.withService("ready", backend) { client, _, _ in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
    }
}
