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
}
