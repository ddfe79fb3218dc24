import Foundation
import Hummingbird
import HummingbirdTesting
import MMCore
import PropertyBased
import Testing
@testable import TradingState

/// The wake-up rule of positions long-polls filtered to a node's symbols (`?symbols=`), pure.
@Suite("Positions filter: wake-up rule")
struct PositionsWakeRuleTests {
    /// The view after applying `fills` (seq = ledger version = position of the fill), every
    /// symbol listed as the ledger lists them.
    static func view(_ fills: [Fill], symbols: [String]) -> PositionsView {
        let folded = PositionFold.fold(fills)
        return PositionsView(version: Int64(fills.count), positions: symbols.map { folded[$0] ?? .flat($0) })
    }

    @Test("a commit reports exactly the symbols it changed, with their new versions")
    func changesOfACommit() {
        let symbols = ["ACME", "BOLT", "CRUX"]
        var index = PositionIndex(Self.view([], symbols: symbols))
        let fills = [makeFill(1, "ACME"), makeFill(2, "BOLT"), makeFill(3, "ACME")]
        let first = index.apply(Self.view(Array(fills.prefix(1)), symbols: symbols))
        #expect(first == PositionChanges(version: 1, changed: ["ACME": 1]))
        let next = index.apply(Self.view(fills, symbols: symbols))
        #expect(next == PositionChanges(version: 3, changed: ["BOLT": 2, "ACME": 3]))
        // Not newer: nothing changes, the index does not move back.
        #expect(index.apply(Self.view(Array(fills.prefix(2)), symbols: symbols)).changed.isEmpty)
        #expect(index.version == 3)
        #expect(index.view(of: ["CRUX", "ACME"]).positions.map(\.symbol) == ["CRUX", "ACME"])
        #expect(index.view(of: ["CRUX"]).positions == [.flat("CRUX")])
    }

    @Test("a fill on ACME wakes ACME's reader and unfiltered readers, not BOLT's")
    func onlyTheHolderWakes() {
        let changes = PositionChanges(version: 8, changed: ["ACME": 8])
        #expect(PositionsInterest.symbols(["ACME", "CRUX"], afterVersion: 7).isWoken(by: changes))
        #expect(!PositionsInterest.symbols(["BOLT", "CRUX"], afterVersion: 7).isWoken(by: changes))
        #expect(!PositionsInterest.symbols([], afterVersion: 7).isWoken(by: changes))
        #expect(PositionsInterest.all(afterVersion: 7).isWoken(by: changes))
        // A reader that claims to have seen more than the change (a stale or bogus version) waits on.
        #expect(!PositionsInterest.symbols(["ACME"], afterVersion: 9).isWoken(by: changes))
        #expect(!PositionsInterest.all(afterVersion: 9).isWoken(by: changes))
    }

    @Test("repeated names are answered once, in first-seen order")
    func duplicates() {
        #expect(PositionsInterest.symbols(["BOLT", "ACME", "BOLT"], afterVersion: 0).symbols == ["BOLT", "ACME"])
    }

    /// Random fill streams and random reader sets: after each commit, a parked reader is woken
    /// exactly when the commit changed one of its symbols; and that agrees with asking the new
    /// index directly (so waking by changes never misses or invents a change).
    @Test("property: a change on X wakes exactly the parked readers whose set contains X")
    func wakeRuleProperty() async {
        let symbols = ["ACME", "BOLT", "CRUX", "DYNA", "EVOK", "FLUX"]
        let pick = Gen.int(in: 0...5)
        await propertyCheck(count: 300, input: pick.array(of: 1...40), Gen.int(in: 1...6), pick.array(of: 0...6).array(of: 1...8)) { fillSymbols, batch, readerPicks in
            let fills = fillSymbols.enumerated().map { makeFill(Int64($0.offset + 1), symbols[$0.element]) }
            var index = PositionIndex(Self.view([], symbols: symbols))
            var readers = readerPicks.map { PositionsInterest.symbols($0.map { symbols[$0] }, afterVersion: 0) }
            var applied = 0
            while applied < fills.count {
                let before = index
                let upTo = min(applied + batch, fills.count)
                let committed = Set(fills[applied..<upTo].map(\.symbol))
                let changes = index.apply(Self.view(Array(fills[..<upTo]), symbols: symbols))
                #expect(Set(changes.changed.keys) == committed)
                for (i, reader) in readers.enumerated() where !reader.isSatisfied(by: before) {
                    let woken = reader.isWoken(by: changes)
                    #expect(woken == !committed.isDisjoint(with: reader.symbols ?? []))
                    #expect(woken == reader.isSatisfied(by: index))
                    if woken {
                        // What a node does next: ask again after the version it was answered.
                        readers[i] = .symbols(reader.symbols ?? [], afterVersion: index.version)
                        #expect(!readers[i].isSatisfied(by: index))
                    }
                }
                applied = upTo
            }
        }
    }

    @Test("symbols= parsing: empty is empty; empty names, too many names and unknown names are refused", arguments: [
        ("", nil, [String]()),
        ("ACME", nil, ["ACME"]),
        ("BOLT,ACME,BOLT", nil, ["BOLT", "ACME", "BOLT"]),
        ("ACME,,BOLT", PositionsFilterError.emptyName(position: 1), []),
        (",", PositionsFilterError.emptyName(position: 0), []),
        ("ACME,", PositionsFilterError.emptyName(position: 1), []),
        ("ACME,NOPE,ZZZ,NOPE", PositionsFilterError.unknown(["NOPE", "ZZZ"]), []),
        ("acme", PositionsFilterError.unknown(["acme"]), []),
        ("A,B,C,D,E,F,G", PositionsFilterError.tooMany(count: 7, limit: 6), []),
    ] as [(String, PositionsFilterError?, [String])])
    func parsing(_ list: String, _ expectedError: PositionsFilterError?, _ expected: [String]) {
        let known = Set(["ACME", "BOLT", "CRUX", "DYNA", "EVOK", "FLUX"])
        do throws(PositionsFilterError) {
            let names = try PositionsFilterError.parse(list, known: known)
            #expect(expectedError == nil, "\(list) parsed to \(names)")
            #expect(names == expected)
        } catch {
            #expect(error == expectedError, "\(list)")
            #expect(error.apiError.status == 400)
        }
    }

    @Test("the broadcaster wakes a filtered waiter only for its symbols, and answers only those")
    func broadcasterFilters() async {
        let symbols = ["ACME", "BOLT", "CRUX"]
        let broadcaster = PositionsBroadcaster(initial: Self.view([], symbols: symbols))
        let acme = Task { await broadcaster.wait(timeoutMs: 120_000, for: .symbols(["ACME"], afterVersion: 0)) }
        let boltCrux = Task { await broadcaster.wait(timeoutMs: 120_000, for: .symbols(["CRUX", "BOLT"], afterVersion: 0)) }
        #expect(await eventuallyTrue { await broadcaster.waiterCount == 2 })
        let fills = [makeFill(1, "ACME", qty: 2)]
        await broadcaster.publish(Self.view(fills, symbols: symbols))
        let answer = await BroadcasterTests.finishes(within: 10) { await acme.value }
        #expect(answer?.version == 1)
        #expect(answer?.positions.map(\.symbol) == ["ACME"])
        #expect(answer?.positions.first?.netQty == 2)
        #expect(await broadcaster.waiterCount == 1)
        await broadcaster.publish(Self.view(fills + [makeFill(2, "CRUX", .sell, qty: 3)], symbols: symbols))
        let other = await BroadcasterTests.finishes(within: 10) { await boltCrux.value }
        #expect(other?.positions.map(\.symbol) == ["CRUX", "BOLT"])
        #expect(other?.positions.map(\.netQty) == [-3, 0])
        #expect(other?.version == 2)
        // Timeout and shutdown answer a filtered waiter with its symbols too.
        #expect(await broadcaster.wait(timeoutMs: 20, for: .symbols(["BOLT"], afterVersion: 2)).positions == [.flat("BOLT")])
    }
}

extension HTTPTests {
    @Test("GET /v1/positions?symbols= answers just those, in order; empty is empty; the unfiltered form is unchanged", arguments: LedgerBackend.allCases)
    func positionsFiltered(backend: LedgerBackend) async throws {
        try await Self.withService("filter", backend) { client, environment, _ in
            try await client.execute(uri: "/v1/fills", method: .post, headers: Self.headers(environment, .exchange), body: Self.body([makeFill(1, "BOLT", qty: 2)])) { #expect($0.status == .ok) }
            let view = try await client.execute(uri: "/v1/positions?symbols=CRUX,BOLT", method: .get, headers: Self.headers(environment, .node)) { try Self.decode(PositionsView.self, $0) }
            #expect(view.version == 1)
            #expect(view.positions.map(\.symbol) == ["CRUX", "BOLT"])
            #expect(view.positions.last?.netQty == 2)
            let empty = try await client.execute(uri: "/v1/positions?symbols=", method: .get, headers: Self.headers(environment, .node)) { try Self.decode(PositionsView.self, $0) }
            #expect(empty == PositionsView(version: 1, positions: []))
            let all = try await client.execute(uri: "/v1/positions", method: .get, headers: Self.headers(environment, .observer)) { try Self.decode(PositionsView.self, $0) }
            #expect(all.positions.map(\.symbol) == testSymbols)
            // An empty set never wakes: it is answered at wait_ms.
            let idle = try await client.execute(uri: "/v1/positions?symbols=&after_version=0&wait_ms=30", method: .get, headers: Self.headers(environment, .node)) { try Self.decode(PositionsView.self, $0) }
            #expect(idle.positions.isEmpty)
        }
    }

    @Test("bad symbols= lists are 400 with a JSON error naming the problem", arguments: [
        ("NOPE", "unknown_symbol", "NOPE"),
        ("ACME,NOPE,ZZZ", "unknown_symbol", "NOPE,ZZZ"),
        ("ACME,,BOLT", "invalid_field", "empty name"),
        (",", "invalid_field", "empty name"),
        ("ACME,BOLT,CRUX,DYNA,EVOK,FLUX,ACME", "invalid_field", "at most 6"),
        ("ACME&after_version=-1", "invalid_field", "after_version"),
    ])
    func positionsFilterBadInput(_ list: String, _ code: String, _ mention: String) async throws {
        try await Self.withService("filterbad", .sqlite) { client, environment, _ in
            try await client.execute(uri: "/v1/positions?symbols=\(list)", method: .get, headers: Self.headers(environment, .node)) { response in
                #expect(response.status == .badRequest, "\(list)")
                let envelope = try? Self.decode(ErrorEnvelope.self, response)
                #expect(envelope?.error.code == code, "\(list)")
                #expect(envelope?.error.message.contains(mention) == true, "\(list): \(envelope?.error.message ?? "")")
            }
            try await Self.expectUnchanged(client, environment, version: 0)
        }
    }

    @Test("a filtered long-poll wakes on its own symbols' fills only", arguments: LedgerBackend.allCases)
    func filteredLongPoll(backend: LedgerBackend) async throws {
        try await Self.withService("filterwake", backend) { client, environment, parts in
            async let mine = client.execute(uri: "/v1/positions?symbols=BOLT,CRUX&after_version=0&wait_ms=25000", method: .get, headers: Self.headers(environment, .node)) { response in
                #expect(response.status == .ok, "\(String(buffer: response.body))")
                return try Self.decode(PositionsView.self, response)
            }
            #expect(await eventuallyTrue { await parts.ledger.broadcaster.waiterCount == 1 })
            // Another node's symbol: the ledger moves, this reader stays parked.
            try await client.execute(uri: "/v1/fills", method: .post, headers: Self.headers(environment, .exchange), body: Self.body([makeFill(1, "ACME", qty: 3)])) { #expect($0.status == .ok) }
            try await Task.sleep(for: .milliseconds(50))
            #expect(await parts.ledger.broadcaster.waiterCount == 1)
            try await client.execute(uri: "/v1/fills", method: .post, headers: Self.headers(environment, .exchange), body: Self.body([makeFill(2, "CRUX", .sell, qty: 4)])) { #expect($0.status == .ok) }
            let view = try await mine
            #expect(view.version == 2)
            #expect(view.positions.map(\.symbol) == ["BOLT", "CRUX"])
            #expect(view.positions.map(\.netQty) == [0, -4])
            // Asked again after what it saw: an ACME fill does not answer it, its own does.
            let stale = try await client.execute(uri: "/v1/positions?symbols=CRUX&after_version=1&wait_ms=25000", method: .get, headers: Self.headers(environment, .node)) { try Self.decode(PositionsView.self, $0) }
            #expect(stale.positions.first?.version == 2, "already newer than 1: answered at once")
        }
    }

    /// What a node holds equals the fold of the ledger restricted to its symbols.
    @Test("a node's filtered view equals the fold of the ledger for its symbols", arguments: LedgerBackend.allCases)
    func filteredViewEqualsFold(backend: LedgerBackend) async throws {
        try await Self.withService("filterfold", backend) { client, environment, _ in
            var random = SplitMix64(seed: 17)
            let fills: [Fill] = (1...60).map { seq in
                makeFill(
                    Int64(seq), testSymbols.randomElement(using: &random)!, Bool.random(using: &random) ? .buy : .sell,
                    price: Int64.random(in: 90...110, using: &random), qty: Int64.random(in: 1...7, using: &random))
            }
            for batch in stride(from: 0, to: fills.count, by: 7) {
                let part = Array(fills[batch..<min(batch + 7, fills.count)])
                try await client.execute(uri: "/v1/fills", method: .post, headers: Self.headers(environment, .exchange), body: Self.body(part)) { #expect($0.status == .ok) }
            }
            let folded = PositionFold.fold(fills)
            for mine in [["ACME", "DYNA"], ["FLUX"], ["EVOK", "BOLT", "CRUX"]] {
                let view = try await client.execute(uri: "/v1/positions?symbols=\(mine.joined(separator: ","))", method: .get, headers: Self.headers(environment, .node)) {
                    try Self.decode(PositionsView.self, $0)
                }
                #expect(view.version == Int64(fills.count))
                #expect(view.positions.map(\.symbol) == mine)
                for position in view.positions {
                    #expect(PositionFold.economicallyEqual(position, folded[position.symbol] ?? .flat(position.symbol)), "\(position.symbol)")
                }
            }
        }
    }
}
