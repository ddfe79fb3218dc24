import Foundation
import MMCore

/// How `mmctl check` judges fills and positions.
public enum CheckMode: String, Codable, Sendable, Hashable, CaseIterable {
    /// Compares running digests and folds the services keep (O(symbols), whatever the history).
    case incremental
    /// Reads every fill from both sides and folds the whole ledger (finds which fill is wrong).
    case full
}

extension Invariants {
    /// Fills exactly once, from running digests: after the ingest drained to the exchange's
    /// published head H, the ledger's gap-free prefix must reach H, hold no fill beyond it,
    /// and its chain head at its end C must equal the exchange's head at C. Because each head
    /// hashes every fill before it in order, equal heads mean the ledger holds exactly the
    /// exchange's fills 1…C, each once and unaltered; a lost fill shortens the prefix, a
    /// duplicated or altered one changes the head.
    ///
    /// `exchangeHeadAtLedgerEnd` is the exchange's head through seq C, nil when the exchange
    /// has not published C (the ledger holds fills the exchange never made public).
    public static func fillChainsAgree(exchangeHeadSeq: Int64, ledger: LedgerDigest, exchangeHeadAtLedgerEnd: String?) -> InvariantResult {
        var problems: [String] = []
        let chained = ledger.chainedThroughSeq
        if chained < exchangeHeadSeq {
            problems.append(
                "the ledger's gap-free prefix ends at seq \(chained) but the exchange has published through \(exchangeHeadSeq): fill F\(chained + 1) is missing from the ledger (mmctl check --full lists every one)")
        }
        if ledger.fillCount != chained {
            problems.append(
                "the ledger holds \(ledger.fillCount) fills but only \(chained) form its gap-free prefix 1…\(chained): \(ledger.fillCount > chained ? "fills beyond a gap or recorded twice" : "its counter disagrees with its rows")")
        }
        if let exchangeHead = exchangeHeadAtLedgerEnd {
            if exchangeHead != ledger.fillLogSha256 {
                problems.append(
                    "the ledger's fill-log head through seq \(chained) is \(ledger.fillLogSha256.prefix(16))…, the exchange's is \(exchangeHead.prefix(16))…: a fill in 1…\(chained) was lost, double-counted or altered (mmctl check --full names it)")
            }
        } else {
            problems.append("the ledger's prefix reaches seq \(chained), beyond what the exchange has published: the ledger holds fills the exchange never made")
        }
        let held = problems.isEmpty
        let counts: [String: Int64] = [
            "checked_through_seq": chained, "exchange_published_seq": exchangeHeadSeq, "ledger_fills": ledger.fillCount,
            "lost": chained < exchangeHeadSeq ? exchangeHeadSeq - chained : 0,
            "digest_mismatch": exchangeHeadAtLedgerEnd.map { $0 == ledger.fillLogSha256 ? 0 : 1 } ?? 1,
        ]
        let summary = held
            ? "fills 1…\(chained) in the ledger once each: its fill-log head equals the exchange's (incremental; --full walks every fill)"
            : "\(problems.count) disagreement(s) between the ledger's and the exchange's fill-log digests"
        return InvariantResult(name: .fillsExactlyOnce, held: held, summary: summary, counts: counts, offending: problems)
    }

    /// Positions equal the fold of the ledger, without reading the ledger: each position names
    /// its last fill seq, and the exchange's own fold of the same log (`FillFold`) at that seq
    /// is what it must equal (the fill chains, checked apart, prove the two logs are the same).
    /// Symbols whose state the exchange's short history no longer holds (the ledger lagging
    /// by more than `FoldHistory.depth` fills of the symbol) are returned in `uncomparable`
    /// for the caller to fold from the ledger's own fills of that symbol.
    public static func positionsMatchExchangeFold(positions: [Position], fold: FillFold) -> (result: InvariantResult, uncomparable: [String]) {
        var drift = Evidence()
        var uncomparable: [String] = []
        for position in positions.sorted(by: { $0.symbol < $1.symbol }) {
            guard let folded = fold.position(position.symbol, lastFillSeq: position.lastFillSeq) else {
                uncomparable.append(position.symbol)
                continue
            }
            if !PositionFold.economicallyEqual(folded, position) {
                drift.add(
                    "\(position.symbol): service says net \(position.netQty), open_cost \(position.openCost), realized \(position.realizedPnl), fills \(position.fillCount) through seq \(position.lastFillSeq); the fold of the fill log through that seq gives net \(folded.netQty), open_cost \(folded.openCost), realized \(folded.realizedPnl), fills \(folded.fillCount)")
            }
        }
        var missing = Evidence()
        let positioned = Set(positions.map(\.symbol))
        for symbol in fold.positions.keys.sorted() where !positioned.contains(symbol) && !(fold.positions[symbol] ?? []).isEmpty {
            missing.add("\(symbol): the exchange made fills of it but the service has no position")
        }
        let held = drift.total == 0 && missing.total == 0
        let summary = held
            ? "\(positions.count - uncomparable.count) positions equal the fold of the fill log at their last fill (incremental)"
            : "\(drift.total) positions drift from the fold, \(missing.total) symbols with fills but no position"
        let result = InvariantResult(
            name: .positionsMatchFold, held: held, summary: summary,
            counts: ["positions": Int64(positions.count), "compared": Int64(positions.count - uncomparable.count), "drifted": drift.total, "missing_positions": missing.total],
            offending: Array((drift.lines + missing.lines).prefix(InvariantResult.evidenceLimit)))
        return (result, uncomparable)
    }
}
