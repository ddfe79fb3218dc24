import Foundation
import MMCore
import PropertyBased
import Testing

/// The hand-written JSON of the answers that grow with the symbols (InspectionJSON.swift): the
/// writers give exactly `MMJSON.encode`'s bytes or decline, the readers read back exactly what
/// Foundation's decoder reads or decline, and the snapshot spliced from both equals the
/// snapshot encoded whole, compact and pretty.
@Suite struct InspectionJSONTests {
    static let text = HotPathJSONTests.text
    static let name = HotPathJSONTests.asciiText
    static let number = Gen.int64(in: Int64.min...Int64.max)
    static let optionalNumber = number.array(of: 0...1).map(\.first)
    static let optionalName = name.array(of: 0...1).map(\.first)
    static let optionalText = text.array(of: 0...1).map(\.first)

    static func foundation<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) -> T? {
        try? MMJSON.makeDecoder().decode(type, from: Data(bytes))
    }

    /// Writes with both encoders; when the fast one does not decline, the bytes must be equal
    /// and the fast reader must read them back to `value`. Declining is only allowed for
    /// strings JSON escapes.
    static func roundTrip<T: HotPathJSONEncodable & HotPathJSONDecodable & Equatable>(_ value: T) {
        guard let general = try? [UInt8](MMJSON.encode(value)) else {
            Issue.record("MMJSON cannot encode \(value)")
            return
        }
        guard let fast = value.hotPathJSON() else {
            #expect(String(decoding: general, as: UTF8.self).contains("\\"), "declined a value that needs no escaping")
            return
        }
        #expect(String(decoding: fast, as: UTF8.self) == String(decoding: general, as: UTF8.self))
        if let read = T.decodeHotPath(general) {
            #expect(read == value)
        } else {
            // Only escapes (which the reader leaves to Foundation) may make it decline.
            #expect(String(decoding: general, as: UTF8.self).contains("\\") || general.contains { $0 >= 0x7f }, "declined its own writing")
        }
        #expect(Self.foundation(T.self, general) == value)
    }

    @Test func authorityRoundTrips() async {
        await propertyCheck(
            count: 300, input: Self.text.array(of: 0...6), Self.optionalText.array(of: 6...6), Self.optionalName.array(of: 6...6),
            Self.number.array(of: 18...18), Gen.int(in: 0...3).array(of: 6...6)
        ) { symbols, assigned, nodes, numbers, present in
            let list = symbols.indices.map { i in
                AuthorityStatus(
                    symbol: symbols[i], assignedTo: assigned[i], node: nodes[i], fencingToken: numbers[i],
                    expiresAtMs: present[i] & 1 == 0 ? nil : numbers[6 + i], expiresInMs: present[i] & 2 == 0 ? nil : numbers[12 + i])
            }
            Self.roundTrip(AuthorityList(authority: list, quietForMs: numbers[17]))
        }
    }

    @Test func quotesPricesAndPositionsRoundTrip() async {
        await propertyCheck(
            count: 300, input: Self.text.array(of: 0...5), Self.name.array(of: 5...5), Self.number.array(of: 40...40), Gen.int(in: 0...3).array(of: 5...5)
        ) { symbols, nodes, numbers, present in
            let quotes = symbols.indices.map { i in
                Quote(symbol: symbols[i], node: nodes[i], fencingToken: numbers[i], bidPrice: present[i] & 1 == 0 ? nil : numbers[5 + i],
                      bidQty: numbers[10 + i], askPrice: present[i] & 2 == 0 ? nil : numbers[15 + i], askQty: numbers[20 + i], updatedAtMs: numbers[25 + i])
            }
            let prices = symbols.indices.map { i in ReferencePrice(symbol: symbols[i], price: numbers[30 + i], tickIndex: numbers[i], tsMs: numbers[35 + i]) }
            let positions = symbols.indices.map { i in
                Position(symbol: symbols[i], netQty: numbers[i], avgPrice: numbers[5 + i], openCost: numbers[10 + i], realizedPnl: numbers[15 + i],
                         fillCount: numbers[20 + i], lastFillSeq: numbers[25 + i], version: numbers[30 + i])
            }
            Self.roundTrip(QuoteList(quotes: quotes))
            Self.roundTrip(PriceList(prices: prices))
            Self.roundTrip(PositionsView(version: numbers[39], positions: positions))
        }
    }

    @Test(arguments: [0, 1, -1, 9, 10, -10, 99, 100, 1_764_382_002_000, -1_000_000_007, Int64.max, Int64.min, Int64.min + 1])
    func integersAreWrittenAsJSONEncoderWritesThem(value: Int64) {
        var writer = HotPathJSONWriter()
        writer.int(value)
        #expect(String(decoding: writer.bytes, as: UTF8.self) == String(value))
        Self.roundTrip(PriceList(prices: [ReferencePrice(symbol: "ACME", price: value, tickIndex: value, tsMs: value)]))
    }

    @Test func assignmentMapsRoundTripInJSONEncodersKeyOrder() async {
        // Keys that sort differently by bytes, by number and by case: "S10" < "S9", "B" < "a".
        let key = Gen.int(in: 0...7).array(of: 1...4).map { $0.map { ["S", "9", "1", "0", "a", "B", "_", "n"][$0] }.joined() }
        await propertyCheck(count: 300, input: key.array(of: 0...12), Self.name, Self.number) { keys, node, version in
            let map = Dictionary(keys.map { ($0, node) }, uniquingKeysWith: { first, _ in first })
            Self.roundTrip(AssignmentTable(version: version, symbols: map))
        }
        Self.roundTrip(AssignmentTable(version: 1, symbols: ["S9": "n1", "S10": "n2", "B": "n3", "a": "n4", "_x": "n5"]))
    }

    /// Any byte damage to a valid answer: the fast reader declines or reads exactly what
    /// Foundation reads; it never accepts what Foundation rejects.
    @Test func damagedAnswersAreDeclinedOrReadAsFoundationReadsThem() async {
        let damage: [UInt8] = Array(#"{}[]":,0-9.e \"nulltrue"#.utf8) + [0x00, 0x0a, 0x7f, 0xc3, 0xa9]
        let authority = AuthorityList(authority: [
            AuthorityStatus(symbol: "ACME", assignedTo: "n1", node: "n1", fencingToken: 7, expiresAtMs: 1_764_382_002_000, expiresInMs: 1_500),
            AuthorityStatus(symbol: "BOLT", assignedTo: nil, node: nil, fencingToken: 0, expiresAtMs: nil, expiresInMs: nil),
        ], quietForMs: 0)
        let quotes = QuoteList(quotes: [Quote(symbol: "ACME", node: "n1", fencingToken: 7, bidPrice: 99, bidQty: 5, askPrice: nil, askQty: 0, updatedAtMs: 12)])
        let positions = PositionsView(version: 3, positions: [Position(symbol: "ACME", netQty: -5, avgPrice: 100, openCost: -500, realizedPnl: 12, fillCount: 3, lastFillSeq: 9, version: 3)])
        let assignments = AssignmentTable(version: 4, symbols: ["ACME": "n1", "BOLT": "n2"])
        let samples: [[UInt8]] = [authority, quotes, positions, assignments].map { value in
            switch value {
            case let value as AuthorityList: return [UInt8]((try? MMJSON.encode(value)) ?? Data())
            case let value as QuoteList: return [UInt8]((try? MMJSON.encode(value)) ?? Data())
            case let value as PositionsView: return [UInt8]((try? MMJSON.encode(value)) ?? Data())
            case let value as AssignmentTable: return [UInt8]((try? MMJSON.encode(value)) ?? Data())
            default: return []
            }
        }
        await propertyCheck(
            count: 2_000, input: Gen.int(in: 0...3), Gen.int(in: 0...2).array(of: 1...3), Gen.int(in: 0...10_000).array(of: 3...3),
            Gen.int(in: 0...(damage.count - 1)).array(of: 3...3)
        ) { which, kinds, positionsAt, replacements in
            var bytes = samples[which]
            HotPathJSONTests.damage(&bytes, kinds: kinds, positions: positionsAt, with: replacements.map { damage[$0] })
            let shown = String(decoding: bytes, as: UTF8.self)
            switch which {
            case 0: if let fast = AuthorityList.decodeHotPath(bytes) { #expect(Self.foundation(AuthorityList.self, bytes) == fast, "\(shown)") }
            case 1: if let fast = QuoteList.decodeHotPath(bytes) { #expect(Self.foundation(QuoteList.self, bytes) == fast, "\(shown)") }
            case 2: if let fast = PositionsView.decodeHotPath(bytes) { #expect(Self.foundation(PositionsView.self, bytes) == fast, "\(shown)") }
            default: if let fast = AssignmentTable.decodeHotPath(bytes) { #expect(Self.foundation(AssignmentTable.self, bytes) == fast, "\(shown)") }
            }
        }
    }

    static func fills(_ ids: [String], _ names: [String], _ numbers: [Int64], sides: [Int]) -> [Fill] {
        ids.indices.map { i in
            Fill(fillId: ids[i], seq: numbers[i], symbol: names[i], side: sides[i] == 0 ? .buy : .sell, price: numbers[6 + i], qty: numbers[12 + i],
                 makerOrderId: names[(i + 1) % names.count], takerOrderId: ids[(i + 2) % ids.count], node: names[(i + 3) % names.count],
                 fencingToken: numbers[18 + i], tsMs: numbers[24 + i])
        }
    }

    /// The fill-log digest hashes these bytes: the writer must be `MMJSON.encode` exactly.
    @Test func fillsAndFillPagesRoundTrip() async {
        await propertyCheck(
            count: 300, input: Self.text.array(of: 6...6), Self.name.array(of: 6...6), Self.number.array(of: 31...31), Gen.int(in: 0...1).array(of: 6...6), Gen.int(in: 0...6)
        ) { ids, names, numbers, sides, count in
            let fills = Self.fills(ids, names, numbers, sides: sides)
            for fill in fills {
                let general = [UInt8]((try? MMJSON.encode(fill)) ?? Data())
                #expect([UInt8](FillLogDigest.canonical(fill)) == general)
                if let fast = fill.hotPathJSON() { #expect(fast == general) }
            }
            Self.roundTrip(FillPage(fills: Array(fills.prefix(count)), headSeq: numbers[30]))
            Self.roundTrip(RecordFillsRequest(fills: Array(fills.prefix(count))))
        }
    }

    @Test func aFillsCanonicalBytesAndDigestAreUnchanged() {
        let fill = Fill(fillId: "F7", seq: 7, symbol: "ACME", side: .sell, price: 10_010, qty: 2, makerOrderId: "Q12", takerOrderId: "X15", node: "n1", fencingToken: 3, tsMs: 1_764_382_000_000)
        #expect(String(decoding: FillLogDigest.canonical(fill), as: UTF8.self)
            == #"{"fencing_token":3,"fill_id":"F7","maker_order_id":"Q12","node":"n1","price":10010,"qty":2,"seq":7,"side":"sell","symbol":"ACME","taker_order_id":"X15","ts_ms":1764382000000}"#)
    }

    @Test func damagedFillPagesAreDeclinedOrReadAsFoundationReadsThem() async {
        let damage: [UInt8] = Array(#"{}[]":,0-9.e \"nulltruesellbuy"#.utf8) + [0x00, 0x0a, 0x7f, 0xc3, 0xa9]
        let page = FillPage(fills: [
            Fill(fillId: "F7", seq: 7, symbol: "ACME", side: .sell, price: 10_010, qty: 2, makerOrderId: "Q12", takerOrderId: "X15", node: "n1", fencingToken: 3, tsMs: 1_764_382_000_000),
            Fill(fillId: "F8", seq: 8, symbol: "BOLT", side: .buy, price: 990, qty: 1, makerOrderId: "Q13", takerOrderId: "X16", node: "n2", fencingToken: 4, tsMs: 1_764_382_000_001),
        ], headSeq: 8)
        let sample = [UInt8]((try? MMJSON.encode(page)) ?? Data())
        await propertyCheck(
            count: 1_500, input: Gen.int(in: 0...2).array(of: 1...3), Gen.int(in: 0...10_000).array(of: 3...3), Gen.int(in: 0...(damage.count - 1)).array(of: 3...3)
        ) { kinds, positionsAt, replacements in
            var bytes = sample
            HotPathJSONTests.damage(&bytes, kinds: kinds, positions: positionsAt, with: replacements.map { damage[$0] })
            if let fast = FillPage.decodeHotPath(bytes) {
                #expect(Self.foundation(FillPage.self, bytes) == fast, "\(String(decoding: bytes, as: UTF8.self))")
            }
        }
        #expect(FillPage.decodeHotPath(Array(#"{"fills":[{"fencing_token":3,"fill_id":"F7","maker_order_id":"Q12","node":"n1","price":10010,"qty":2,"seq":7,"side":"short","symbol":"ACME","taker_order_id":"X15","ts_ms":1}],"head_seq":7}"#.utf8)) == nil, "an unknown side is Foundation's to refuse")
    }

    /// The effective config as the supervisor writes it (pretty) and compact: the same value
    /// as Foundation's, whatever the configuration holds.
    @Test func theEffectiveConfigReadsAsFoundationReadsIt() async throws {
        let names = (1...40).map { String(format: "S%04d", $0) }
        let configs = [
            try await ClusterConfig.load(path: nil, environment: [:]),
            try await ClusterConfig.load(path: nil, environment: [:], overrides: [
                "symbols.names": names.joined(separator: ","), "nodes.count": "7", "hosts.a": "10.0.0.1", "hosts.b": "10.0.0.2",
                "placement.nodes": "b", "tls.cert": "/etc/mm/{host}.crt", "tls.key": "/etc/mm/{host}.key", "tls.ca": "/etc/mm/ca.crt",
            ].merging(names.enumerated().map { ("symbols.\($1).base_price", "\(1_000 + $0 * 7)") }) { first, _ in first }),
        ]
        for config in configs {
            for pretty in [true, false] {
                let bytes = [UInt8](try MMJSON.encode(config, pretty: pretty))
                let fast = try #require(ClusterConfig.decodeHotPath(bytes), "declined its own config")
                #expect(fast == config)
                #expect(fast == Self.foundation(ClusterConfig.self, bytes))
            }
        }
        // A symbol the hand reader does not fully understand goes to Foundation whole.
        let odd = Array(#"{"symbols":[{"symbol":"A\u0043ME","tick_size":"0.01","base_price":1,"lot_size":1}]}"#.utf8)
        #expect(ClusterConfig.decodeHotPath(odd) == nil)
    }

    @Test func aDamagedEffectiveConfigIsDeclinedOrReadAsFoundationReadsIt() async throws {
        let config = try await ClusterConfig.load(path: nil, environment: [:], overrides: ["hosts.a": "10.0.0.1", "hosts.b": "10.0.0.2", "placement.nodes": "b"])
        let sample = [UInt8](try MMJSON.encode(config, pretty: true))
        let damage: [UInt8] = Array(#"{}[]":,0-9.e \"nulltrue"#.utf8) + [0x00, 0x0a, 0x7f, 0xc3, 0xa9]
        await propertyCheck(
            count: 1_000, input: Gen.int(in: 0...2).array(of: 1...3), Gen.int(in: 0...100_000).array(of: 3...3), Gen.int(in: 0...(damage.count - 1)).array(of: 3...3)
        ) { kinds, positionsAt, replacements in
            var bytes = sample
            HotPathJSONTests.damage(&bytes, kinds: kinds, positions: positionsAt, with: replacements.map { damage[$0] })
            if let fast = ClusterConfig.decodeHotPath(bytes) {
                #expect(Self.foundation(ClusterConfig.self, bytes) == fast, "\(String(decoding: bytes, as: UTF8.self))")
            }
        }
    }

    @Test(arguments: [
        #"{"authority":[{"symbol":"ACME","fencing_token":1,"extra":2}],"quiet_for_ms":0}"#,
        #"{"authority":[{"symbol":"ACME","fencing_token":1.5}],"quiet_for_ms":0}"#,
        #"{"authority":[{"symbol":"AC\u004dE","fencing_token":1}],"quiet_for_ms":0}"#,
        #"{"authority":[{"symbol":"ACME","fencing_token":1,"fencing_token":2}],"quiet_for_ms":0}"#,
        #"{"authority":[{"fencing_token":1}],"quiet_for_ms":0}"#,
        #"{"authority":[],"quiet_for_ms":0} x"#,
    ])
    func declinesWhatItDoesNotFullyUnderstand(json: String) {
        #expect(AuthorityList.decodeHotPath(Array(json.utf8)) == nil)
    }

    @Test func readsAnyKeyOrderWhitespaceAndNulls() throws {
        let json = #" { "quiet_for_ms" : 5 , "authority" : [ { "node" : null , "fencing_token" : 3 , "symbol" : "ACME" , "assigned_to" : "n2" } ] } "#
        let fast = try #require(AuthorityList.decodeHotPath(Array(json.utf8)))
        #expect(fast == Self.foundation(AuthorityList.self, Array(json.utf8)))
        #expect(fast.authority.first?.node == nil && fast.authority.first?.assignedTo == "n2")
        // The general entry point takes the fast path and gives the same value.
        #expect(try MMJSON.decode(AuthorityList.self, from: Data(json.utf8)) == fast)
    }

    // MARK: The snapshot

    static func snapshot(symbolCount: Int, eventDetail: String, node: String) -> ClusterSnapshot {
        let symbols = (0..<symbolCount).map { index -> ClusterSnapshot.SymbolView in
            let symbol = "S\(index)"
            return ClusterSnapshot.SymbolView(
                symbol: symbol, tickSize: index % 2 == 0 ? "0.01" : "1", referencePrice: index % 3 == 0 ? nil : Int64(index * 100 - 50),
                assignedTo: index % 4 == 0 ? nil : node,
                authority: index % 5 == 0 ? nil : .init(node: node, fencingToken: Int64(index), expiresInMs: 1_200),
                quote: index % 6 == 0 ? nil : .init(node: node, fencingToken: Int64(index), bid: index % 7 == 0 ? nil : 99, bidQty: 5, ask: 101, askQty: index % 7 == 0 ? 0 : 5, updatedAtMs: 1_700_000_000_000),
                position: index % 8 == 0 ? nil : .init(netQty: Int64(index) - 10, avgPrice: 100, realizedPnl: -Int64(index), unrealizedPnl: index % 9 == 0 ? nil : 42, fillCount: Int64(index)))
        }
        return ClusterSnapshot(
            takenAtMs: 1_700_000_000_000, supervisor: SupervisorInfo(pid: 10, uptimeMs: 60_000, startedAtMs: 1_699_999_940_000),
            processes: [ProcessStatus(name: "coordinator", role: "coordinator", pid: 11, state: .running, restarts: 0, uptimeMs: 5_000, port: 7401, lastExit: nil, host: "local")],
            members: [.init(node: node, status: .alive, expiresInMs: 900)],
            assignments: .init(version: 3, symbols: Dictionary(symbols.compactMap { view in view.assignedTo.map { (view.symbol, $0) } }, uniquingKeysWith: { a, _ in a })),
            symbols: symbols, totals: .init(realizedPnl: -3, unrealizedPnl: 4, fillCount: 5), recentFills: [],
            // Text that looks like the spliced members, inside strings and nested objects.
            recentEvents: [ClusterEvent(seq: 1, tsMs: 2, kind: "grant", symbol: "S1", node: node, detail: eventDetail)],
            errors: [.init(service: "state", error: #"{"symbols":[],"assignments":{"symbols":{}}}"#)],
            hosts: [.init(name: "local", address: "127.0.0.1", reachable: true)])
    }

    static func expectSame(_ snapshot: ClusterSnapshot) throws {
        for pretty in [false, true] {
            let whole = [UInt8](try MMJSON.encode(snapshot, pretty: pretty))
            let spliced = try SnapshotJSON.encode(snapshot, snapshot: snapshot, pretty: pretty) { $0 }
            // As text, so a failure shows JSON, not bytes.
            #expect(String(decoding: spliced, as: UTF8.self) == String(decoding: whole, as: UTF8.self), "pretty \(pretty)")
        }
        #expect(snapshot.hotPathJSON().map { String(decoding: $0, as: UTF8.self) } == String(decoding: try MMJSON.encode(snapshot), as: UTF8.self))
    }

    @Test func theSplicedSnapshotIsTheWholeSnapshotByteForByte() async throws {
        try Self.expectSame(Self.snapshot(symbolCount: 40, eventDetail: #"moved "symbols":[] \ and "assignments":{}"#, node: "n1"))
        try Self.expectSame(Self.snapshot(symbolCount: 0, eventDetail: "", node: "n1"))
        var noAssignments = Self.snapshot(symbolCount: 3, eventDetail: "x", node: "n2")
        noAssignments.assignments = nil
        try Self.expectSame(noAssignments)
        await propertyCheck(count: 100, input: Gen.int(in: 0...30), Self.text, Self.text) { count, detail, node in
            try? Self.expectSame(Self.snapshot(symbolCount: count, eventDetail: detail, node: node.isEmpty ? "n1" : node))
        }
    }

    @Test func splicingFindsOnlyTheMemberAtItsPath() {
        let json = Array(#"{"a":{"symbols":[]},"list":[{"symbols":[]}],"s":"\"symbols\":[]","symbols":[]}"#.utf8)
        let replaced = JSONSplice.replacing(["symbols"], in: json, with: Array("[1]".utf8))
        #expect(replaced.map { String(decoding: $0, as: UTF8.self) } == #"{"a":{"symbols":[]},"list":[{"symbols":[]}],"s":"\"symbols\":[]","symbols":[1]}"#)
        let nested = JSONSplice.replacing(["a", "symbols"], in: json, with: Array("[2]".utf8))
        #expect(nested.map { String(decoding: $0, as: UTF8.self) } == #"{"a":{"symbols":[2]},"list":[{"symbols":[]}],"s":"\"symbols\":[]","symbols":[]}"#)
        #expect(JSONSplice.replacing(["missing"], in: json, with: []) == nil)
        #expect(JSONSplice.replacing(["s"], in: json, with: []) == nil, "a value that is not empty is not replaced")
    }
}
