import MMCore
import PropertyBased
import Testing
@testable import ClusterCheck

/// The incremental check (digests and the exchange's fold) must reach the same verdict as the
/// full walk: a lost, a duplicated and an altered fill each break both.
@Suite("Incremental check")
struct IncrementalCheckTests {
    /// What a ledger holding `fills` reports: the chain over its gap-free prefix by seq, as
    /// the trading-state service keeps it (a duplicate of a seq ends the prefix like a gap).
    static func ledgerDigest(_ fills: [Fill], cursor: Int64) -> LedgerDigest {
        var digest = FillLogDigest()
        for fill in fills.sorted(by: { $0.seq < $1.seq }) {
            guard fill.seq == digest.count + 1 else { break }
            digest.append(fill)
        }
        return LedgerDigest(cursor: cursor, chainedThroughSeq: digest.count, fillLogSha256: digest.hexDigest(), fillCount: Int64(fills.count))
    }

    /// The exchange's head through `seq`, nil beyond its log.
    static func exchangeHead(_ fills: [Fill], through seq: Int64) -> String? {
        guard seq <= Int64(fills.count) else { return nil }
        var digest = FillLogDigest()
        fills.prefix(Int(seq)).forEach { digest.append($0) }
        return digest.hexDigest()
    }

    static func fold(_ fills: [Fill]) -> FillFold {
        var history = FoldHistory()
        fills.forEach { history.apply($0) }
        return FillFold(publishedSeq: Int64(fills.count), positions: history.recent)
    }

    static func incremental(exchange: [Fill], ledger: [Fill]) -> InvariantResult {
        let digest = ledgerDigest(ledger, cursor: Int64(exchange.count))
        return Invariants.fillChainsAgree(
            exchangeHeadSeq: Int64(exchange.count), ledger: digest, exchangeHeadAtLedgerEnd: exchangeHead(exchange, through: digest.chainedThroughSeq))
    }

    static let trades = Gen.int64(in: 0...1_000_000).array(of: 3...60)

    @Test("an identical ledger holds in both modes")
    func identicalLedgerHolds() async {
        await propertyCheck(count: 100, input: Self.trades) { codes in
            let fills = Fixtures.fills(decodeTrades(codes))
            #expect(Self.incremental(exchange: fills, ledger: fills).held)
            #expect(Invariants.fillsExactlyOnce(exchangeFills: fills, ledgerFills: fills, drainedThroughSeq: Int64(fills.count)).held)
            let positions = Invariants.positionsMatchExchangeFold(positions: Fixtures.positions(fills), fold: Self.fold(fills))
            #expect(positions.result.held && positions.uncomparable.isEmpty, "\(positions.result.offending)")
        }
    }

    /// Each fault, applied at a random fill, must break the fills invariant in both modes.
    @Test("a lost, a duplicated and an altered fill break both modes", arguments: ["lost", "duplicated", "altered", "reordered"])
    func faultsBreakBothModes(fault: String) async {
        await propertyCheck(count: 60, input: Self.trades, Gen.int(in: 0...10_000)) { codes, pick in
            let exchange = Fixtures.fills(decodeTrades(codes))
            let index = pick % exchange.count
            var ledger = exchange
            switch fault {
            case "lost": ledger.remove(at: index)
            case "duplicated":
                // Recorded twice: under its own seq and again as if it were the next fill.
                var copy = ledger[index]
                copy.seq = Int64(ledger.count + 1)
                ledger.append(copy)
            case "altered": ledger[index].qty += 1
            default:
                guard index + 1 < ledger.count else { ledger[index].price += 1; break }
                let (first, second) = (ledger[index], ledger[index + 1])
                ledger[index] = Fill(fillId: second.fillId, seq: first.seq, symbol: second.symbol, side: second.side, price: second.price, qty: second.qty,
                                     makerOrderId: second.makerOrderId, takerOrderId: second.takerOrderId, node: second.node,
                                     fencingToken: second.fencingToken, tsMs: second.tsMs)
                ledger[index + 1] = Fill(fillId: first.fillId, seq: second.seq, symbol: first.symbol, side: first.side, price: first.price, qty: first.qty,
                                         makerOrderId: first.makerOrderId, takerOrderId: first.takerOrderId, node: first.node,
                                         fencingToken: first.fencingToken, tsMs: first.tsMs)
                if ledger[index] == exchange[index] { ledger[index].price += 1 }
            }
            let incremental = Self.incremental(exchange: exchange, ledger: ledger)
            let full = Invariants.fillsExactlyOnce(exchangeFills: exchange, ledgerFills: ledger, drainedThroughSeq: Int64(exchange.count))
            #expect(!incremental.held, "incremental mode missed a \(fault) fill at \(index)")
            #expect(!full.held, "full mode missed a \(fault) fill at \(index)")
        }
    }

    @Test("a ledger ahead of the exchange's published log, or still ingesting, is reported")
    func aheadAndBehind() {
        let fills = Fixtures.fills([(0, true, 100, 1), (1, false, 101, 2), (2, true, 99, 3)])
        let ahead = Invariants.fillChainsAgree(exchangeHeadSeq: 2, ledger: Self.ledgerDigest(fills, cursor: 3), exchangeHeadAtLedgerEnd: nil)
        #expect(!ahead.held && ahead.offending.contains { $0.contains("beyond what the exchange has published") })
        let behind = Invariants.fillChainsAgree(
            exchangeHeadSeq: 3, ledger: Self.ledgerDigest(Array(fills.prefix(2)), cursor: 2), exchangeHeadAtLedgerEnd: Self.exchangeHead(fills, through: 2))
        #expect(!behind.held && behind.counts["lost"] == 1 && behind.offending.contains { $0.contains("F3 is missing") })
    }

    @Test("a position that drifts from the fold is caught; one older than the fold's history is handed back to fold from the ledger")
    func positionsAgainstTheFold() {
        var trades: [Fixtures.Trade] = []
        for index in 0..<(FoldHistory.depth + 10) { trades.append((0, index % 3 != 0, 100 + Int64(index % 4), 1 + Int64(index % 2))) }
        trades.append((1, true, 50, 2))
        let fills = Fixtures.fills(trades)
        let fold = Self.fold(fills)
        var positions = Fixtures.positions(fills)
        #expect(Invariants.positionsMatchExchangeFold(positions: positions, fold: fold).result.held)

        var drifted = positions
        drifted[1].netQty += 1
        let caught = Invariants.positionsMatchExchangeFold(positions: drifted, fold: fold)
        #expect(!caught.result.held && caught.result.offending.first?.hasPrefix("BOLT") == true)

        // ACME as the ledger saw it many fills ago: beyond the fold's history, not a drift.
        let acmeFills = fills.filter { $0.symbol == "ACME" }
        positions[0] = PositionFold.fold(Array(acmeFills.prefix(3)))["ACME"]!
        let old = Invariants.positionsMatchExchangeFold(positions: positions, fold: fold)
        #expect(old.result.held && old.uncomparable == ["ACME"])

        // A service with fills but no position for a symbol.
        let missing = Invariants.positionsMatchExchangeFold(positions: positions.filter { $0.symbol != "BOLT" }, fold: fold)
        #expect(!missing.result.held && missing.result.counts["missing_positions"] == 1)
    }
}
