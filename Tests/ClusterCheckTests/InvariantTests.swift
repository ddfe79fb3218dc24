import MMCore
import PropertyBased
import Testing
@testable import ClusterCheck

/// Trades and grant steps are decoded from plain integers so the generator shrinks well.
let tradeCodes = Gen.int64(in: 0...1_000_000).array(of: 1...60)
let grantCodes = Gen.int64(in: 0...1_000_000_000).array(of: 2...40)

func decodeTrades(_ codes: [Int64]) -> [Fixtures.Trade] {
    codes.map { code in (symbol: Int(code % 3), buy: (code / 3) % 2 == 0, price: 90 + (code / 6) % 21, qty: 1 + (code / 126) % 20) }
}

func grantSteps(_ codes: [Int64]) -> [Fixtures.GrantStep] {
    codes.map { code in (symbol: Int(code % 3), gapMs: (code / 3) % 501, lifetimeMs: 1 + (code / 1_503) % 6_000, ending: Int((code / 9_018_000) % 3)) }
}

@Suite("fills exactly once")
struct FillsExactlyOnceTests {
    let trades: [Fixtures.Trade] = [(0, true, 100, 5), (1, false, 50, 2), (0, false, 101, 3), (2, true, 200, 1), (0, true, 99, 4)]

    @Test("table: a clean ledger holds; each kind of damage is caught and counted")
    func table() {
        let exchange = Fixtures.fills(trades)
        var duplicated = exchange
        duplicated.append(exchange[2])
        var seqReused = exchange
        seqReused.append(Fill(fillId: "F-evil", seq: 3, symbol: "ACME", side: .buy, price: 1, qty: 1, makerOrderId: "m", takerOrderId: "t", node: "n1", fencingToken: 1, tsMs: 1))
        var altered = exchange
        altered[1].qty += 1
        var unknown = exchange
        unknown.append(Fill(fillId: "F-ghost", seq: 6, symbol: "BOLT", side: .sell, price: 50, qty: 1, makerOrderId: "m", takerOrderId: "t", node: "n1", fencingToken: 1, tsMs: 1))
        var gappedExchange = exchange
        gappedExchange.remove(at: 1)

        let cases: [(String, [Fill], [Fill], Int64, String?)] = [
            ("clean", exchange, exchange, 5, nil),
            ("fill lost", exchange, Array(exchange.dropLast()), 5, "lost"),
            ("fill duplicated", exchange, duplicated, 5, "double_counted"),
            ("seq recorded twice under two ids", exchange, seqReused, 5, "double_counted"),
            ("ledger fill differs", exchange, altered, 5, "differing"),
            ("ledger fill unknown to the exchange", exchange, unknown, 5, "unknown"),
            ("exchange log has a gap", gappedExchange, gappedExchange, 5, "exchange_log_defects"),
            // Fills past the drained seq may legitimately not be in the ledger yet.
            ("not yet ingested past the drained seq", exchange, Array(exchange.prefix(3)), 3, nil),
        ]
        for (label, exchangeFills, ledgerFills, drained, brokenCount) in cases {
            let result = Invariants.fillsExactlyOnce(exchangeFills: exchangeFills, ledgerFills: ledgerFills, drainedThroughSeq: drained)
            if let brokenCount {
                #expect(!result.held, "\(label) must break the invariant")
                #expect((result.counts[brokenCount] ?? 0) >= 1, "\(label) must count as \(brokenCount): \(result.counts)")
                #expect(!result.offending.isEmpty, "\(label) must name an offender")
            } else {
                #expect(result.held, "\(label) must hold: \(result.offending)")
            }
        }
    }

    @Test("property: any clean log holds, any dropped or duplicated fill is caught")
    func property() async {
        await propertyCheck(count: 200, input: tradeCodes, Gen.int(in: 0...10_000), Gen.bool) { codes, pick, duplicate in
            let exchange = Fixtures.fills(decodeTrades(codes))
            let head = Int64(exchange.count)
            #expect(Invariants.fillsExactlyOnce(exchangeFills: exchange, ledgerFills: exchange.shuffled(), drainedThroughSeq: head).held)
            var ledger = exchange
            let victim = pick % exchange.count
            if duplicate {
                ledger.append(exchange[victim])
            } else {
                ledger.remove(at: victim)
            }
            let result = Invariants.fillsExactlyOnce(exchangeFills: exchange, ledgerFills: ledger, drainedThroughSeq: head)
            #expect(!result.held)
            #expect(result.counts[duplicate ? "double_counted" : "lost"] == 1)
            #expect(result.offending.first?.contains(exchange[victim].fillId) == true)
        }
    }

    @Test("evidence is capped but every offender is counted")
    func evidenceCap() {
        let exchange = Fixtures.fills(Array(repeating: (0, true, 100, 1), count: 50))
        let result = Invariants.fillsExactlyOnce(exchangeFills: exchange, ledgerFills: [], drainedThroughSeq: 50)
        #expect(result.counts["lost"] == 50)
        #expect(result.offending.count == InvariantResult.evidenceLimit)
    }
}

@Suite("positions match the fold")
struct PositionsMatchFoldTests {
    @Test("table: matching positions hold; drift, missing positions are caught; later fills are ignored")
    func table() {
        let fills = Fixtures.fills([(0, true, 100, 5), (0, false, 104, 2), (1, false, 50, 3)])
        let positions = Fixtures.positions(fills)
        var drifted = positions
        drifted[0].realizedPnl += 1
        let withoutBolt = positions.filter { $0.symbol != "BOLT" }
        // A fill that arrived after the position snapshot (seq beyond last_fill_seq) is not drift.
        let later = fills + Fixtures.fills([(0, true, 100, 5), (0, false, 104, 2), (1, false, 50, 3), (0, true, 90, 9)]).suffix(1)
        let cases: [(String, [Position], [Fill], Bool)] = [
            ("clean", positions, fills, true),
            ("realized PnL drift", drifted, fills, false),
            ("fills without a position", withoutBolt, fills, false),
            ("ledger grew after the snapshot", positions, later, true),
            ("ledger lost a fill the position counted", positions, Array(fills.dropFirst()), false),
        ]
        for (label, positions, ledger, holds) in cases {
            let result = Invariants.positionsMatchFold(positions: positions, ledgerFills: ledger)
            #expect(result.held == holds, "\(label): \(result.offending)")
        }
    }

    @Test("property: the service's fold holds; any change to an economic field is drift")
    func property() async {
        await propertyCheck(count: 200, input: tradeCodes, Gen.int(in: 0...2), Gen.int(in: 0...3), Gen.int64(in: 1...50)) { codes, which, field, delta in
            let fills = Fixtures.fills(decodeTrades(codes))
            var positions = Fixtures.positions(fills)
            #expect(Invariants.positionsMatchFold(positions: positions, ledgerFills: fills).held)
            switch field {
            case 0: positions[which].netQty += delta
            case 1: positions[which].openCost -= delta
            case 2: positions[which].realizedPnl += delta
            default: positions[which].fillCount += delta
            }
            let result = Invariants.positionsMatchFold(positions: positions, ledgerFills: fills)
            #expect(!result.held)
            #expect(result.counts["drifted"] == 1)
            #expect(result.offending.first?.hasPrefix(positions[which].symbol) == true)
        }
    }
}

@Suite("grants never overlap")
struct GrantsNeverOverlapTests {
    func grant(_ seq: Int64, _ symbol: String, _ node: String, token: Int64, at: Int64) -> ClusterEvent {
        ClusterEvent(seq: seq, tsMs: at, kind: "grant", symbol: symbol, node: node, fencingToken: token, expiresAtMs: at + 2_000, detail: "")
    }

    func end(_ seq: Int64, _ kind: String, _ symbol: String, _ node: String, token: Int64, at: Int64, expires: Int64) -> ClusterEvent {
        ClusterEvent(seq: seq, tsMs: at, kind: kind, symbol: symbol, node: node, fencingToken: token, expiresAtMs: expires, detail: "")
    }

    func started(_ seq: Int64, at: Int64, quietUntil: Int64) -> ClusterEvent {
        ClusterEvent(seq: seq, tsMs: at, kind: "coordinator_started", expiresAtMs: quietUntil, detail: "")
    }

    @Test("table: release, revoke, expiry and restart boundaries; overlaps and token regressions caught")
    func table() {
        let cases: [(String, [ClusterEvent], String?)] = [
            ("release then grant at the same ms", [grant(1, "ACME", "n1", token: 1, at: 0), end(2, "release", "ACME", "n1", token: 1, at: 500, expires: 500), grant(3, "ACME", "n2", token: 2, at: 500)], nil),
            ("renewed grant expires late; next starts after", [grant(1, "ACME", "n1", token: 1, at: 0), end(2, "grant_expired", "ACME", "n1", token: 1, at: 5_100, expires: 5_000), grant(3, "ACME", "n2", token: 2, at: 5_100)], nil),
            ("next grant before the renewed expiry", [grant(1, "ACME", "n1", token: 1, at: 0), end(2, "grant_expired", "ACME", "n1", token: 1, at: 5_100, expires: 5_000), grant(3, "ACME", "n2", token: 2, at: 4_999)], "overlapping"),
            ("second grant while the first was never ended", [grant(1, "ACME", "n1", token: 1, at: 0), grant(2, "ACME", "n2", token: 2, at: 10_000)], "overlapping"),
            ("other symbols may overlap freely", [grant(1, "ACME", "n1", token: 1, at: 0), grant(2, "BOLT", "n2", token: 1, at: 10)], nil),
            ("restart closes open grants at the quiet end", [grant(1, "ACME", "n1", token: 1, at: 0), started(2, at: 1_000, quietUntil: 3_000), grant(3, "ACME", "n2", token: 2, at: 3_000)], nil),
            ("grant inside the restart quiet period", [grant(1, "ACME", "n1", token: 1, at: 0), started(2, at: 1_000, quietUntil: 3_000), grant(3, "ACME", "n2", token: 2, at: 2_500)], "overlapping"),
            ("token repeated", [grant(1, "ACME", "n1", token: 4, at: 0), end(2, "release", "ACME", "n1", token: 4, at: 10, expires: 10), grant(3, "ACME", "n2", token: 4, at: 20)], "tokens_not_increasing"),
            ("token going backwards after a restart", [grant(1, "ACME", "n1", token: 7, at: 0), started(2, at: 100, quietUntil: 2_100), grant(3, "ACME", "n1", token: 3, at: 2_200)], "tokens_not_increasing"),
            ("release of a grant never issued", [end(1, "release", "ACME", "n1", token: 9, at: 10, expires: 10)], "unmatched_ends"),
            // A death notice ends the dead holder's grant at the revoke, long before its expiry.
            ("revoke then grant at the same ms", [grant(1, "ACME", "n1", token: 1, at: 0), end(2, "revoke", "ACME", "n1", token: 1, at: 300, expires: 300), grant(3, "ACME", "n2", token: 2, at: 300)], nil),
            ("grant before the revoke", [grant(1, "ACME", "n1", token: 1, at: 0), end(2, "revoke", "ACME", "n1", token: 1, at: 300, expires: 300), grant(3, "ACME", "n2", token: 2, at: 299)], "overlapping"),
            // Re-adoption after a restart reopens the very grant the restart closed tentatively.
            ("adopted grant runs on; next grant after its expiry", [grant(1, "ACME", "n1", token: 1, at: 0), started(2, at: 1_000, quietUntil: 3_000), end(3, "adopt", "ACME", "n1", token: 1, at: 1_100, expires: 3_100), end(4, "grant_expired", "ACME", "n1", token: 1, at: 9_100, expires: 9_000), grant(5, "ACME", "n2", token: 2, at: 9_100)], nil),
            ("grant after the quiet end but before the adopted grant ended", [grant(1, "ACME", "n1", token: 1, at: 0), started(2, at: 1_000, quietUntil: 3_000), end(3, "adopt", "ACME", "n1", token: 1, at: 1_100, expires: 3_100), grant(4, "ACME", "n2", token: 2, at: 3_000)], "overlapping"),
            ("adopting an older token", [grant(1, "ACME", "n1", token: 1, at: 0), end(2, "release", "ACME", "n1", token: 1, at: 10, expires: 10), grant(3, "ACME", "n2", token: 2, at: 20), started(4, at: 1_000, quietUntil: 3_000), end(5, "adopt", "ACME", "n1", token: 1, at: 1_100, expires: 3_100)], "tokens_not_increasing"),
            ("adopting while a grant is open", [grant(1, "ACME", "n1", token: 1, at: 0), end(2, "adopt", "ACME", "n1", token: 1, at: 100, expires: 2_100)], "overlapping"),
            ("another node adopting the grant", [grant(1, "ACME", "n1", token: 1, at: 0), started(2, at: 1_000, quietUntil: 3_000), end(3, "adopt", "ACME", "n2", token: 1, at: 1_100, expires: 3_100)], "overlapping"),
        ]
        for (label, events, brokenCount) in cases {
            let result = Invariants.grantsNeverOverlap(events: events)
            if let brokenCount {
                #expect(!result.held, "\(label) must break")
                #expect((result.counts[brokenCount] ?? 0) >= 1, "\(label): \(result.counts)")
            } else {
                #expect(result.held, "\(label) must hold: \(result.offending)")
            }
        }
    }

    @Test("property: clean histories hold; pulling any grant's start before the previous end is caught")
    func property() async {
        await propertyCheck(count: 200, input: grantCodes, Gen.int(in: 0...10_000), Gen.int64(in: 1...1_000)) { codes, pick, earlier in
            let events = Fixtures.events(grantSteps(codes))
            let clean = Invariants.grantsNeverOverlap(events: events)
            #expect(clean.held, "\(clean.offending)")
            // Pick a grant that has a predecessor for the same symbol, and start it too early.
            let grantIndexes = events.indices.filter { events[$0].kind == "grant" && (events[$0].fencingToken ?? 0) > 1 }
            guard !grantIndexes.isEmpty else { return }
            let index = grantIndexes[pick % grantIndexes.count]
            let symbol = events[index].symbol!
            // The previous grant of this symbol ended at its release, its expiry, or (open across
            // a coordinator restart) at the restart's quiet end.
            var previousEnd = Int64.min
            var open = false
            for event in events[..<index] {
                if event.kind == "coordinator_started", open { previousEnd = event.expiresAtMs ?? event.tsMs; open = false }
                guard event.symbol == symbol else { continue }
                if event.kind == "grant" { open = true }
                if event.kind == "release" { previousEnd = event.tsMs; open = false }
                if event.kind == "grant_expired", let expiry = event.expiresAtMs { previousEnd = expiry; open = false }
            }
            var broken = events
            broken[index].tsMs = previousEnd - earlier
            let result = Invariants.grantsNeverOverlap(events: broken)
            #expect(!result.held)
            #expect((result.counts["overlapping"] ?? 0) >= 1)
        }
    }

    @Test("property: any token not above the previous one is caught")
    func tokensProperty() async {
        await propertyCheck(count: 200, input: grantCodes, Gen.int(in: 0...10_000), Gen.int64(in: 0...3)) { codes, pick, back in
            var events = Fixtures.events(grantSteps(codes))
            let grantIndexes = events.indices.filter { events[$0].kind == "grant" && (events[$0].fencingToken ?? 0) > 1 }
            guard !grantIndexes.isEmpty else { return }
            let index = grantIndexes[pick % grantIndexes.count]
            let token = events[index].fencingToken! - 1 - back
            events[index].fencingToken = token
            // Keep the matching end consistent so only the token is wrong.
            for later in events.indices where later > index && events[later].symbol == events[index].symbol && events[later].kind != "grant" {
                events[later].fencingToken = token
                break
            }
            let result = Invariants.grantsNeverOverlap(events: events)
            #expect(!result.held)
            #expect((result.counts["tokens_not_increasing"] ?? 0) >= 1)
        }
    }
}

@Suite("no stale token accepted")
struct NoStaleTokenTests {
    func stats(stale: Int64, highest: [String: Int64]) -> ExchangeStats {
        ExchangeStats(fillCount: 0, fillLogSha256: "", orderCount: 0, journalSeq: 0, rejections: ["stale_fencing_token": 3], highestTokens: highest, staleAccepted: stale)
    }

    @Test("table")
    func table() {
        let cases: [(String, ExchangeStats, [String: Int64], Bool)] = [
            ("clean", stats(stale: 0, highest: ["ACME": 3, "BOLT": 1]), ["ACME": 3, "BOLT": 2], true),
            ("stale accepted", stats(stale: 1, highest: ["ACME": 3]), ["ACME": 3], false),
            ("exchange saw a token never minted", stats(stale: 0, highest: ["ACME": 4]), ["ACME": 3], false),
            ("exchange saw a symbol the coordinator never granted", stats(stale: 0, highest: ["ACME": 1]), [:], false),
        ]
        for (label, stats, tokens, holds) in cases {
            let result = Invariants.noStaleTokenAccepted(stats: stats, coordinatorTokens: tokens)
            #expect(result.held == holds, "\(label): \(result.offending)")
        }
    }

    @Test("property: any positive stale_accepted or token ahead is caught")
    func property() async {
        await propertyCheck(count: 200, input: Gen.int64(in: 0...1_000).array(of: 3), Gen.int64(in: 0...5), Gen.int64(in: 0...5)) { tokens, stale, ahead in
            let minted = Dictionary(uniqueKeysWithValues: zip(Fixtures.symbols, tokens))
            var seen = minted
            seen["ACME"]! += ahead
            let result = Invariants.noStaleTokenAccepted(stats: stats(stale: stale, highest: seen), coordinatorTokens: minted)
            #expect(result.held == (stale == 0 && ahead == 0))
            #expect(result.counts["stale_accepted"] == stale)
        }
    }
}

@Suite("assigned symbols quoted")
struct AssignedSymbolsQuotedTests {
    let now: Int64 = 1_700_000_010_000
    let holders = ["ACME": "n1", "BOLT": "n2", "CRUX": "n1"]
    let tokens: [String: Int64] = ["ACME": 4, "BOLT": 2, "CRUX": 9]

    var quotes: [Quote] {
        Fixtures.symbols.map { Fixtures.quote($0, node: holders[$0]!, token: tokens[$0]!, updatedAtMs: now - 1_000) }
    }

    func check(_ authority: AuthorityList, _ members: [String], _ quotes: [Quote]) -> InvariantResult {
        Invariants.assignedSymbolsQuoted(authority: authority, members: Fixtures.members(members), quotes: quotes, nowMs: now, maxQuoteAgeMs: 5_000)
    }

    @Test("table: each way a symbol can be unquoted is caught")
    func table() {
        let authority = Fixtures.authority(tokens: tokens, holders: holders)
        var unheld = authority
        unheld.authority[1].node = nil
        var oneSided = quotes
        oneSided[0].bidPrice = nil
        var bothWithdrawn = quotes
        bothWithdrawn[0].bidPrice = nil
        bothWithdrawn[0].askPrice = nil
        var oldToken = quotes
        oldToken[2].fencingToken = 8
        var otherNode = quotes
        otherNode[1].node = "n3"
        var stale = quotes
        stale[1].updatedAtMs = now - 5_001
        let cases: [(String, AuthorityList, [String], [Quote], Bool)] = [
            ("clean", authority, ["n1", "n2"], quotes, true),
            ("one side withdrawn is still a quote", authority, ["n1", "n2"], oneSided, true),
            ("no quote for a symbol", authority, ["n1", "n2"], Array(quotes.dropFirst()), false),
            ("both sides withdrawn", authority, ["n1", "n2"], bothWithdrawn, false),
            ("quote under an old token", authority, ["n1", "n2"], oldToken, false),
            ("quote from a node that does not hold the grant", authority, ["n1", "n2"], otherNode, false),
            ("quote older than 5 s", authority, ["n1", "n2"], stale, false),
            ("assigned but nobody holds the grant", unheld, ["n1", "n2"], quotes, false),
            // Assigned to a node that is not alive: a failover in flight, not judged here.
            ("assignee not a live member", unheld, ["n1"], quotes, true),
        ]
        for (label, authority, members, quotes, holds) in cases {
            let result = check(authority, members, quotes)
            #expect(result.held == holds, "\(label): \(result.offending)")
        }
    }

    @Test("property: removing any symbol's quote is caught and names the symbol")
    func property() async {
        await propertyCheck(count: 100, input: Gen.int(in: 0...2), Gen.int64(in: 0...4_999)) { which, age in
            var fresh = quotes
            for index in fresh.indices { fresh[index].updatedAtMs = now - age }
            let authority = Fixtures.authority(tokens: tokens, holders: holders)
            #expect(check(authority, ["n1", "n2"], fresh).held)
            fresh.remove(at: which)
            let result = check(authority, ["n1", "n2"], fresh)
            #expect(!result.held)
            #expect(result.offending.first?.hasPrefix(Fixtures.symbols[which]) == true)
        }
    }
}

@Suite("check report")
struct CheckReportTests {
    let held = InvariantResult(name: .fillsExactlyOnce, held: true, summary: "ok", counts: [:], offending: [])
    let broken = InvariantResult(name: .grantsNeverOverlap, held: false, summary: "1 overlapping", counts: ["overlapping": 1], offending: ["ACME: x"])

    @Test("exit codes: 0 held, 1 broken, 4 unreachable")
    func exitCodes() {
        #expect(CheckReport.exitCode(invariants: [held], unreachable: []) == 0)
        #expect(CheckReport.exitCode(invariants: [held, broken], unreachable: []) == 1)
        #expect(CheckReport.exitCode(invariants: [], unreachable: ["exchange: refused"]) == 4)
    }

    @Test("text: one line per invariant, BROKEN with its evidence")
    func text() {
        let report = CheckReport(ok: false, exitCode: 1, checkedAtMs: 0, elapsedMs: 3, invariants: [held, broken], unreachable: [])
        let lines = report.renderText().split(separator: "\n").map(String.init)
        #expect(lines[0].hasPrefix("held") && lines[0].contains("fills_exactly_once"))
        #expect(lines[1].hasPrefix("BROKEN") && lines[1].contains("grants_never_overlap"))
        #expect(lines[2].contains("ACME: x"))
    }

    @Test("json: snake_case keys documented in docs/API.md")
    func json() throws {
        let report = CheckReport(ok: true, exitCode: 0, checkedAtMs: 5, elapsedMs: 3, invariants: [held], unreachable: [])
        let text = String(decoding: try MMJSON.encode(report), as: UTF8.self)
        for key in ["\"ok\":true", "\"exit_code\":0", "\"checked_at_ms\":5", "\"elapsed_ms\":3", "\"invariants\":[", "\"name\":\"fills_exactly_once\"", "\"held\":true", "\"offending\":[]", "\"unreachable\":[]"] {
            #expect(text.contains(key), "missing \(key) in \(text)")
        }
    }
}
