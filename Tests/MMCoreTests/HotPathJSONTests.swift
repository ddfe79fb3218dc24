import Foundation
import MMCore
import PropertyBased
import Testing

/// The hand-written encoder of the coordinator's hot responses must give exactly the bytes of
/// `MMJSON.encode`, or decline (nil) so the caller uses `JSONEncoder`.
@Suite struct HotPathJSONTests {
    /// Plain characters, the ones JSON escapes, and non-ASCII ones (emitted raw by both).
    static let alphabet: [String] = ["A", "z", "0", "-", "'", " ", "/", "é", "…", "😀", "\u{2028}", "\"", "\\", "\n", "\t", "\u{01}"]
    static let text = Gen.int(in: 0...(alphabet.count - 1)).array(of: 0...10).map { $0.map { alphabet[$0] }.joined() }
    static let number = Gen.int64(in: -5...Int64.max)

    static func check(_ value: some HotPathJSONEncodable) throws {
        let general = [UInt8](try MMJSON.encode(value))
        guard let hot = value.hotPathJSON() else {
            // Declining is only allowed for strings JSON escapes.
            let json = String(decoding: general, as: UTF8.self)
            #expect(json.contains("\\"), "declined a value that needs no escaping: \(json)")
            return
        }
        #expect(hot == general, "\(String(decoding: hot, as: UTF8.self)) != \(String(decoding: general, as: UTF8.self))")
    }

    @Test func grantsAndHeartbeatsMatchJSONEncoderByteForByte() async {
        await propertyCheck(count: 300, input: Self.text, Self.text, Self.number, Self.number, Self.number) { symbol, node, token, granted, expires in
            let grant = AuthorityGrant(symbol: symbol, node: node, fencingToken: token, grantedAtMs: granted, expiresAtMs: expires, signature: "00ff" + symbol)
            try? Self.check(grant)
            try? Self.check(HeartbeatResponse(node: node, expiresAtMs: expires, assignmentsVersion: token))
        }
    }

    @Test func batchRenewResultsMatchJSONEncoderByteForByte() async {
        await propertyCheck(count: 200, input: Self.text.array(of: 0...4), Self.text.array(of: 0...3), Self.number) { symbols, messages, token in
            let renewed = symbols.map { AuthorityGrant(symbol: $0, node: "n1", fencingToken: token, grantedAtMs: 1, expiresAtMs: 2, signature: "ab") }
            let refused = messages.map { BatchRenewResult.Refusal(symbol: "ACME", code: "grant_lapsed", message: $0) }
            try? Self.check(BatchRenewResult(renewed: renewed, refused: refused))
        }
    }

    @Test func typicalValuesTakeTheFastPath() throws {
        let grant = AuthorityGrant(symbol: "ACME", node: "n1", fencingToken: 7, grantedAtMs: 1_764_382_000_000, expiresAtMs: 1_764_382_002_000, signature: "5f0c")
        let bytes = try #require(grant.hotPathJSON())
        #expect(String(decoding: bytes, as: UTF8.self)
            == #"{"expires_at_ms":1764382002000,"fencing_token":7,"granted_at_ms":1764382000000,"node":"n1","signature":"5f0c","symbol":"ACME"}"#)
        let result = BatchRenewResult(renewed: [grant], refused: [.init(symbol: "BOLT", code: "grant_lapsed", message: "'n1' holds no unexpired grant for 'BOLT' …")])
        #expect(result.hotPathJSON() != nil)
        #expect(BatchRenewResult(renewed: [], refused: []).hotPathJSON().map { String(decoding: $0, as: UTF8.self) } == #"{"refused":[],"renewed":[]}"#)
    }

    // MARK: Reading

    static let asciiText = Gen.int(in: 0...5).array(of: 1...8).map { $0.map { ["A", "z", "0", "-", "'", " "][$0] }.joined() }
    static let optionalPrice = Gen.int64(in: -3...1_000_000_000).array(of: 0...1).map(\.first)

    static func quoteRequest(_ symbol: String, _ node: String, _ numbers: [Int64], _ bid: Int64?, _ ask: Int64?) -> QuoteRequest {
        let grant = AuthorityGrant(symbol: symbol, node: node, fencingToken: numbers[0], grantedAtMs: numbers[1], expiresAtMs: numbers[2], signature: "ab12")
        return QuoteRequest(node: node, grant: grant, bidPrice: bid, bidQty: numbers[3], askPrice: ask, askQty: numbers[4])
    }

    /// Foundation's decoder alone (`MMJSON.decode` now tries the fast reader first).
    static func generalDecode(_ bytes: [UInt8]) -> QuoteRequest? { try? MMJSON.makeDecoder().decode(QuoteRequest.self, from: Data(bytes)) }

    /// What MMJSON writes, the fast reader reads back to the same value.
    @Test func readsWhatTheEncoderWrites() async {
        await propertyCheck(count: 300, input: Self.asciiText, Self.asciiText, Self.number.array(of: 5...5), Self.optionalPrice, Self.optionalPrice) { symbol, node, numbers, bid, ask in
            let request = Self.quoteRequest(symbol, node, numbers, bid, ask)
            let bytes = [UInt8]((try? MMJSON.encode(request)) ?? Data())
            #expect(QuoteRequest.decodeHotPath(bytes) == request)
        }
    }

    /// Any byte damage to a valid body: the fast reader either declines or reads exactly what
    /// JSONDecoder reads; it never accepts a body JSONDecoder rejects.
    @Test func neverAcceptsWhatJSONDecoderRejectsNorReadsItDifferently() async {
        let damage: [UInt8] = Array(#"{}[]":,0-9.e \"nulltrue"#.utf8) + [0x00, 0x0a, 0x7f, 0xc3, 0xa9]
        await propertyCheck(
            count: 1_000, input: Self.asciiText, Self.number.array(of: 5...5), Self.optionalPrice,
            Gen.int(in: 0...2).array(of: 1...3), Gen.int(in: 0...10_000).array(of: 3...3), Gen.int(in: 0...(damage.count - 1)).array(of: 3...3)
        ) { node, numbers, bid, kinds, positions, replacements in
            var bytes = [UInt8]((try? MMJSON.encode(Self.quoteRequest("ACME", node, numbers, bid, nil))) ?? Data())
            Self.damage(&bytes, kinds: kinds, positions: positions, with: replacements.map { damage[$0] })
            if let fast = QuoteRequest.decodeHotPath(bytes) {
                #expect(Self.generalDecode(bytes) == fast, "fast read \(String(decoding: bytes, as: UTF8.self)) differently")
            }
        }
    }

    /// Step by step: kind 0 overwrites a byte, 1 removes one, 2 inserts one (at `positions`,
    /// modulo the length; the byte from `replacements`).
    static func damage(_ bytes: inout [UInt8], kinds: [Int], positions: [Int], with replacements: [UInt8]) {
        for (step, kind) in kinds.enumerated() where !bytes.isEmpty {
            let at = positions[step] % bytes.count
            switch kind {
            case 0: bytes[at] = replacements[step]
            case 1: bytes.remove(at: at)
            default: bytes.insert(replacements[step], at: at)
            }
        }
    }

    @Test(arguments: [
        #"{"node":"n1","grant":{"symbol":"ACME","node":"n1","fencing_token":3,"granted_at_ms":1,"expires_at_ms":2,"signature":"ab"},"bid_qty":5,"ask_qty":5}"#,
        #" { "ask_qty" : 5 , "bid_qty":5,"bid_price":-1, "grant":{"expires_at_ms":2,"granted_at_ms":1,"fencing_token":3,"node":"n1","signature":"ab","symbol":"ACME"},"node":"n1" }  "#,
    ])
    func acceptsAnyKeyOrderAndWhitespace(json: String) throws {
        let fast = try #require(QuoteRequest.decodeHotPath(Array(json.utf8)))
        #expect(fast == Self.generalDecode(Array(json.utf8)))
    }

    @Test(arguments: [
        #"{"node":"n1","grant":{"symbol":"ACME","node":"n1","fencing_token":3,"granted_at_ms":1,"expires_at_ms":2,"signature":"ab"},"bid_qty":5.5,"ask_qty":5}"#,
        #"{"node":"n1","grant":{"symbol":"ACME","node":"n1","fencing_token":3,"granted_at_ms":1,"expires_at_ms":2,"signature":"ab"},"bid_qty":5,"ask_qty":5,"extra":1}"#,
        #"{"node":"n1","grant":{"symbol":"ACME","node":"n1","fencing_token":3,"granted_at_ms":1,"expires_at_ms":2,"signature":"ab"},"bid_qty":5,"ask_qty":5,"ask_qty":6}"#,
        #"{"node":"n\u0031","grant":{"symbol":"ACME","node":"n1","fencing_token":3,"granted_at_ms":1,"expires_at_ms":2,"signature":"ab"},"bid_qty":5,"ask_qty":5}"#,
        #"{"node":"n1","grant":{"symbol":"ACME","node":"n1","fencing_token":3,"granted_at_ms":1,"expires_at_ms":2,"signature":"ab"},"bid_price":null,"bid_qty":5,"ask_qty":5}"#,
        #"{"node":"n1","bid_qty":5,"ask_qty":5}"#,
        #"{"node":"n1","grant":{"symbol":"ACME","node":"n1","fencing_token":99999999999999999999,"granted_at_ms":1,"expires_at_ms":2,"signature":"ab"},"bid_qty":5,"ask_qty":5}"#,
    ])
    func declinesWhatItDoesNotFullyUnderstand(json: String) {
        #expect(QuoteRequest.decodeHotPath(Array(json.utf8)) == nil)
    }

    // MARK: Reading quote batches

    static func quoteBatch(_ node: String, _ symbols: [String], _ numbers: [Int64], _ bid: Int64?, _ ask: Int64?) -> QuoteBatchRequest {
        QuoteBatchRequest(node: node, quotes: symbols.enumerated().map { index, symbol in
            let grant = AuthorityGrant(symbol: symbol, node: node, fencingToken: numbers[0] &+ Int64(index), grantedAtMs: numbers[1], expiresAtMs: numbers[2], signature: "ab12")
            return QuoteBatchRequest.Item(symbol: symbol, grant: grant, bidPrice: index % 2 == 0 ? bid : ask, bidQty: numbers[3], askPrice: ask, askQty: numbers[4])
        })
    }

    static func generalBatchDecode(_ bytes: [UInt8]) -> QuoteBatchRequest? { try? MMJSON.makeDecoder().decode(QuoteBatchRequest.self, from: Data(bytes)) }

    @Test func readsTheBatchesTheEncoderWrites() async {
        await propertyCheck(count: 300, input: Self.asciiText, Self.asciiText.array(of: 0...4), Self.number.array(of: 5...5), Self.optionalPrice, Self.optionalPrice) { node, symbols, numbers, bid, ask in
            let batch = Self.quoteBatch(node, symbols, numbers, bid, ask)
            let bytes = [UInt8]((try? MMJSON.encode(batch)) ?? Data())
            #expect(QuoteBatchRequest.decodeHotPath(bytes) == batch)
            // The node writes it by hand: exactly these bytes.
            #expect(batch.hotPathJSON() == bytes)
        }
    }

    /// Byte damage to a real batch: the fast reader declines or reads exactly what
    /// JSONDecoder reads, never accepts what it rejects.
    @Test func neverReadsADamagedBatchOtherwiseThanJSONDecoder() async {
        let damage: [UInt8] = Array(#"{}[]":,0-9.e \"nulltrue"#.utf8) + [0x00, 0x0a, 0x7f, 0xc3, 0xa9]
        await propertyCheck(
            count: 1_000, input: Self.asciiText, Self.number.array(of: 5...5), Self.optionalPrice,
            Gen.int(in: 0...2).array(of: 1...3), Gen.int(in: 0...10_000).array(of: 3...3), Gen.int(in: 0...(damage.count - 1)).array(of: 3...3)
        ) { node, numbers, bid, kinds, positions, replacements in
            var bytes = [UInt8]((try? MMJSON.encode(Self.quoteBatch(node, ["ACME", "BOLT"], numbers, bid, nil))) ?? Data())
            Self.damage(&bytes, kinds: kinds, positions: positions, with: replacements.map { damage[$0] })
            if let fast = QuoteBatchRequest.decodeHotPath(bytes) {
                #expect(Self.generalBatchDecode(bytes) == fast, "fast read \(String(decoding: bytes, as: UTF8.self)) differently")
            }
        }
    }

    static let batchGrant = #"{"symbol":"ACME","node":"n1","fencing_token":3,"granted_at_ms":1,"expires_at_ms":2,"signature":"ab"}"#

    @Test(arguments: [
        #"{"node":"n1","quotes":[]}"#,
        #"{"quotes":[{"symbol":"ACME","grant":GRANT,"bid_price":null,"bid_qty":5,"ask_price":10010,"ask_qty":5}],"node":"n1"}"#,
        #" {"node" : "n1", "quotes" : [ {"ask_qty":5,"bid_qty":5,"grant":GRANT,"symbol":"ACME"} , {"symbol":"BOLT","grant":GRANT,"bid_price":-1,"bid_qty":0,"ask_qty":7} ] } "#,
    ])
    func readsBatchesInAnyShapeFoundationReads(json: String) throws {
        let bytes = Array(json.replacingOccurrences(of: "GRANT", with: Self.batchGrant).utf8)
        let fast = try #require(QuoteBatchRequest.decodeHotPath(bytes))
        #expect(fast == Self.generalBatchDecode(bytes))
    }

    @Test(arguments: [
        #"{"node":"n1","quotes":[{"symbol":"ACME","grant":GRANT,"bid_qty":5.5,"ask_qty":5}]}"#,
        #"{"node":"n1","quotes":[{"symbol":"ACME","grant":GRANT,"bid_qty":5,"ask_qty":5,"extra":1}]}"#,
        #"{"node":"n1","quotes":[{"symbol":"ACME","grant":GRANT,"bid_qty":5,"ask_qty":5,"ask_qty":6}]}"#,
        #"{"node":"n1","quotes":[{"symbol":"AC\u004dE","grant":GRANT,"bid_qty":5,"ask_qty":5}]}"#,
        #"{"node":"n1","quotes":[{"symbol":"ACME","bid_qty":5,"ask_qty":5}]}"#,
        #"{"node":"n1","quotes":[{"symbol":"ACME","grant":GRANT,"bid_qty":99999999999999999999,"ask_qty":5}]}"#,
        #"{"node":"n1","quotes":[{"symbol":"ACME","grant":GRANT,"bid_qty":5,"ask_qty":5}],"node":"n2"}"#,
        #"{"node":"n1","quotes":{}}"#,
        #"{"node":"n1","quotes":[{"symbol":"ACME","grant":GRANT,"bid_qty":5,"ask_qty":5}]} x"#,
    ])
    func declinesBatchesItDoesNotFullyUnderstand(json: String) {
        #expect(QuoteBatchRequest.decodeHotPath(Array(json.replacingOccurrences(of: "GRANT", with: Self.batchGrant).utf8)) == nil)
    }

    // MARK: Reading quote batch results (the node's side)

    static func batchResult(_ symbols: [String], _ numbers: [Int64], _ kinds: [Int], _ message: String) -> QuoteBatchResult {
        QuoteBatchResult(results: symbols.enumerated().map { index, symbol in
            switch kinds[index % kinds.count] {
            case 0:
                return .init(symbol: symbol, quote: Quote(symbol: symbol, node: "n1", fencingToken: numbers[0], bidPrice: index % 2 == 0 ? nil : numbers[1],
                                                          bidQty: numbers[2], askPrice: numbers[3], askQty: numbers[4], updatedAtMs: numbers[1]))
            case 1: return .init(symbol: symbol, refusal: APIError(status: 409, code: "stale_fencing_token", message: message))
            default: return .init(symbol: symbol, refusal: APIError(status: 403, code: "invalid_grant", message: message, details: ["symbol": symbol]))
            }
        })
    }

    @Test func readsTheBatchResultsTheExchangeWrites() async {
        await propertyCheck(count: 300, input: Self.asciiText.array(of: 0...4), Self.number.array(of: 5...5), Gen.int(in: 0...2).array(of: 1...3), Self.asciiText) { symbols, numbers, kinds, message in
            let result = Self.batchResult(symbols, numbers, kinds, message)
            let bytes = [UInt8]((try? MMJSON.encode(result)) ?? Data())
            let general = try? MMJSON.makeDecoder().decode(QuoteBatchResult.self, from: Data(bytes))
            #expect(general == result)
            if let fast = QuoteBatchResult.decodeHotPath(bytes) {
                #expect(fast == result)
            } else {
                // Only an error's `details` (left to Foundation) may make it decline.
                #expect(result.results.contains { $0.error?.details != nil }, "declined \(String(decoding: bytes, as: UTF8.self))")
            }
        }
    }

    @Test func neverReadsADamagedBatchResultOtherwiseThanJSONDecoder() async {
        let damage: [UInt8] = Array(#"{}[]":,0-9.e \"nulltrue"#.utf8) + [0x00, 0x0a, 0x7f, 0xc3, 0xa9]
        let sample = [UInt8]((try? MMJSON.encode(Self.batchResult(["ACME", "BOLT", "CRUX"], [3, 9_990, 5, 10_010, 5], [0, 1], "grant is stale"))) ?? Data())
        await propertyCheck(
            count: 1_500, input: Gen.int(in: 0...2).array(of: 1...3), Gen.int(in: 0...10_000).array(of: 3...3), Gen.int(in: 0...(damage.count - 1)).array(of: 3...3)
        ) { kinds, positions, replacements in
            var bytes = sample
            Self.damage(&bytes, kinds: kinds, positions: positions, with: replacements.map { damage[$0] })
            if let fast = QuoteBatchResult.decodeHotPath(bytes) {
                #expect((try? MMJSON.makeDecoder().decode(QuoteBatchResult.self, from: Data(bytes))) == fast, "\(String(decoding: bytes, as: UTF8.self))")
            }
        }
    }

    // MARK: The renew batch (node → coordinator → node)

    @Test func renewBatchesRoundTripExactlyAsFoundation() async {
        await propertyCheck(count: 300, input: Self.asciiText, Self.asciiText.array(of: 0...4), Self.number.array(of: 3...3), Gen.int(in: 0...1).array(of: 4...4), Self.asciiText.array(of: 0...2)) { node, symbols, numbers, withGrant, messages in
            let request = BatchRenewRequest(node: node, grants: symbols.enumerated().map { index, symbol in
                BatchRenewRequest.Item(symbol: symbol, fencingToken: numbers[0] &+ Int64(index),
                                       grant: withGrant[index % 4] == 0 ? nil : AuthorityGrant(symbol: symbol, node: node, fencingToken: numbers[0], grantedAtMs: numbers[1], expiresAtMs: numbers[2], signature: "ab"))
            })
            let requestBytes = [UInt8]((try? MMJSON.encode(request)) ?? Data())
            #expect(request.hotPathJSON() == requestBytes)
            #expect(BatchRenewRequest.decodeHotPath(requestBytes) == request)
            let result = BatchRenewResult(
                renewed: symbols.map { AuthorityGrant(symbol: $0, node: node, fencingToken: numbers[0], grantedAtMs: numbers[1], expiresAtMs: numbers[2], signature: "cd") },
                refused: messages.map { BatchRenewResult.Refusal(symbol: "ACME", code: "grant_lapsed", message: $0) })
            let resultBytes = [UInt8]((try? MMJSON.encode(result)) ?? Data())
            #expect(BatchRenewResult.decodeHotPath(resultBytes) == result)
        }
    }

    @Test func neverReadsADamagedRenewBatchOtherwiseThanJSONDecoder() async {
        let damage: [UInt8] = Array(#"{}[]":,0-9.e \"nulltrue"#.utf8) + [0x00, 0x0a, 0x7f, 0xc3, 0xa9]
        let grant = AuthorityGrant(symbol: "ACME", node: "n1", fencingToken: 3, grantedAtMs: 1, expiresAtMs: 2, signature: "ab")
        let request = [UInt8]((try? MMJSON.encode(BatchRenewRequest(node: "n1", grants: [.init(symbol: "ACME", fencingToken: 3, grant: grant), .init(symbol: "BOLT", fencingToken: 4)]))) ?? Data())
        let result = [UInt8]((try? MMJSON.encode(BatchRenewResult(renewed: [grant], refused: [.init(symbol: "BOLT", code: "grant_lapsed", message: "lapsed")]))) ?? Data())
        await propertyCheck(
            count: 1_500, input: Gen.int(in: 0...1), Gen.int(in: 0...2).array(of: 1...3), Gen.int(in: 0...10_000).array(of: 3...3), Gen.int(in: 0...(damage.count - 1)).array(of: 3...3)
        ) { which, kinds, positions, replacements in
            var bytes = which == 0 ? request : result
            Self.damage(&bytes, kinds: kinds, positions: positions, with: replacements.map { damage[$0] })
            let shown = String(decoding: bytes, as: UTF8.self)
            if which == 0, let fast = BatchRenewRequest.decodeHotPath(bytes) {
                #expect((try? MMJSON.makeDecoder().decode(BatchRenewRequest.self, from: Data(bytes))) == fast, "\(shown)")
            }
            if which == 1, let fast = BatchRenewResult.decodeHotPath(bytes) {
                #expect((try? MMJSON.makeDecoder().decode(BatchRenewResult.self, from: Data(bytes))) == fast, "\(shown)")
            }
        }
    }
}
