import MMCore

/// The five promises `mmctl check` verifies, by stable name (the `name` field of `--json`).
public enum InvariantName: String, Codable, Sendable, CaseIterable {
    case fillsExactlyOnce = "fills_exactly_once"
    case positionsMatchFold = "positions_match_fold"
    case grantsNeverOverlap = "grants_never_overlap"
    case noStaleTokenAccepted = "no_stale_token_accepted"
    case assignedSymbolsQuoted = "assigned_symbols_quoted"

    public var title: String {
        switch self {
        case .fillsExactlyOnce: "every exchange fill is in the ledger exactly once"
        case .positionsMatchFold: "every position equals the fold of its ledger fills"
        case .grantsNeverOverlap: "grants never overlap; fencing tokens strictly increase"
        case .noStaleTokenAccepted: "the exchange never accepted a stale fencing token"
        case .assignedSymbolsQuoted: "every assigned symbol is quoted by its holder, fresh"
        }
    }
}

/// One invariant's verdict with the evidence an operator needs to start digging: counts, and
/// the first offending items (capped, so a broken ledger does not print a million lines).
public struct InvariantResult: Codable, Sendable, Hashable {
    public var name: InvariantName
    public var held: Bool
    public var summary: String
    /// Named counts (`lost`, `double_counted`, …); stable keys, documented in docs/API.md.
    public var counts: [String: Int64]
    /// The first offending items, each one human-readable line.
    public var offending: [String]

    public init(name: InvariantName, held: Bool, summary: String, counts: [String: Int64], offending: [String]) {
        self.name = name
        self.held = held
        self.summary = summary
        self.counts = counts
        self.offending = offending
    }

    public static let evidenceLimit = 10
}

/// Collects offending lines up to `InvariantResult.evidenceLimit` while counting them all.
struct Evidence {
    private(set) var lines: [String] = []
    private(set) var total: Int64 = 0

    mutating func add(_ line: @autoclosure () -> String) {
        total += 1
        if lines.count < InvariantResult.evidenceLimit { lines.append(line()) }
    }
}

/// The invariants as pure functions over data fetched from the services' inspection endpoints:
/// no I/O, no clock (callers pass `nowMs`), so each one can be shown both holding and catching a
/// violation with synthetic data.
public enum Invariants {
    // MARK: 1. Fills exactly once

    /// `exchangeFills`: the exchange's log, read AFTER the ledger so it covers every fill the
    /// ledger could know. `ledgerFills`: the trading-state ledger, read after its ingest cursor
    /// reached `drainedThroughSeq`. Every exchange fill with seq ≤ `drainedThroughSeq` must be in
    /// the ledger exactly once and identical; no ledger fill may be unknown to the exchange.
    public static func fillsExactlyOnce(exchangeFills: [Fill], ledgerFills: [Fill], drainedThroughSeq: Int64) -> InvariantResult {
        var exchangeById: [String: Fill] = [:]
        var exchangeProblems = Evidence()
        var expectedSeq: Int64 = 1
        for fill in exchangeFills.sorted(by: { $0.seq < $1.seq }) {
            if fill.seq != expectedSeq {
                exchangeProblems.add("exchange log gap or repeat: expected seq \(expectedSeq), found \(fill.seq) (\(fill.fillId))")
            }
            expectedSeq = fill.seq + 1
            if exchangeById[fill.fillId] != nil {
                exchangeProblems.add("exchange reused fill id \(fill.fillId) at seq \(fill.seq)")
            }
            exchangeById[fill.fillId] = fill
        }

        var ledgerCountById: [String: Int64] = [:]
        var ledgerIdBySeq: [Int64: String] = [:]
        var doubleCounted = Evidence()
        var unknown = Evidence()
        var differing = Evidence()
        for fill in ledgerFills {
            ledgerCountById[fill.fillId, default: 0] += 1
            if ledgerCountById[fill.fillId] == 2 {
                doubleCounted.add("fill \(fill.fillId) (seq \(fill.seq)) is in the ledger more than once")
            }
            if let other = ledgerIdBySeq[fill.seq], other != fill.fillId {
                doubleCounted.add("ledger holds seq \(fill.seq) twice: \(other) and \(fill.fillId)")
            }
            ledgerIdBySeq[fill.seq] = fill.fillId
            guard let original = exchangeById[fill.fillId] else {
                unknown.add("ledger fill \(fill.fillId) (seq \(fill.seq), \(fill.symbol)) is not in the exchange's log")
                continue
            }
            if original != fill {
                differing.add("ledger fill \(fill.fillId) differs from the exchange's: \(describeDifference(original, fill))")
            }
        }

        var lost = Evidence()
        var expected: Int64 = 0
        for fill in exchangeFills.sorted(by: { $0.seq < $1.seq }) where fill.seq <= drainedThroughSeq {
            expected += 1
            if ledgerCountById[fill.fillId] == nil {
                lost.add("exchange fill \(fill.fillId) (seq \(fill.seq), \(fill.symbol)) is missing from the ledger")
            }
        }

        let held = lost.total == 0 && doubleCounted.total == 0 && unknown.total == 0 && differing.total == 0 && exchangeProblems.total == 0
        let counts: [String: Int64] = [
            "exchange_fills": Int64(exchangeFills.count), "ledger_fills": Int64(ledgerFills.count),
            "checked_through_seq": drainedThroughSeq, "expected_in_ledger": expected,
            "lost": lost.total, "double_counted": doubleCounted.total, "unknown": unknown.total,
            "differing": differing.total, "exchange_log_defects": exchangeProblems.total,
        ]
        let summary = held
            ? "\(expected) exchange fills through seq \(drainedThroughSeq) each in the ledger once; \(ledgerFills.count) ledger fills all known"
            : "lost \(lost.total), double-counted \(doubleCounted.total), unknown \(unknown.total), differing \(differing.total), exchange log defects \(exchangeProblems.total)"
        let offending = Array((lost.lines + doubleCounted.lines + unknown.lines + differing.lines + exchangeProblems.lines).prefix(InvariantResult.evidenceLimit))
        return InvariantResult(name: .fillsExactlyOnce, held: held, summary: summary, counts: counts, offending: offending)
    }

    static func describeDifference(_ expected: Fill, _ actual: Fill) -> String {
        var fields: [String] = []
        if expected.seq != actual.seq { fields.append("seq \(expected.seq)≠\(actual.seq)") }
        if expected.symbol != actual.symbol { fields.append("symbol \(expected.symbol)≠\(actual.symbol)") }
        if expected.side != actual.side { fields.append("side \(expected.side.rawValue)≠\(actual.side.rawValue)") }
        if expected.price != actual.price { fields.append("price \(expected.price)≠\(actual.price)") }
        if expected.qty != actual.qty { fields.append("qty \(expected.qty)≠\(actual.qty)") }
        if expected.node != actual.node { fields.append("node \(expected.node)≠\(actual.node)") }
        if expected.fencingToken != actual.fencingToken { fields.append("fencing_token \(expected.fencingToken)≠\(actual.fencingToken)") }
        if expected.tsMs != actual.tsMs { fields.append("ts_ms \(expected.tsMs)≠\(actual.tsMs)") }
        if expected.makerOrderId != actual.makerOrderId || expected.takerOrderId != actual.takerOrderId { fields.append("order ids") }
        return fields.isEmpty ? "unknown field" : fields.joined(separator: ", ")
    }

    // MARK: 2. Positions equal the fold

    /// `positions` must be read BEFORE `ledgerFills`: the ledger only grows, so it then holds
    /// every fill a position accounts for. Each position is compared with the fold of its
    /// symbol's ledger fills up to its `last_fill_seq` (fills after that arrived later), on the
    /// economic fields only (`PositionFold.economicallyEqual`).
    public static func positionsMatchFold(positions: [Position], ledgerFills: [Fill]) -> InvariantResult {
        var bySymbol: [String: [Fill]] = [:]
        for fill in ledgerFills { bySymbol[fill.symbol, default: []].append(fill) }
        var drift = Evidence()
        var missing = Evidence()
        let positioned = Set(positions.map(\.symbol))
        for position in positions.sorted(by: { $0.symbol < $1.symbol }) {
            let accounted = (bySymbol[position.symbol] ?? []).filter { $0.seq <= position.lastFillSeq }
            let folded = PositionFold.fold(accounted)[position.symbol] ?? .flat(position.symbol)
            if !PositionFold.economicallyEqual(folded, position) {
                drift.add(
                    "\(position.symbol): service says net \(position.netQty), open_cost \(position.openCost), realized \(position.realizedPnl), fills \(position.fillCount), last seq \(position.lastFillSeq); fold of \(accounted.count) ledger fills gives net \(folded.netQty), open_cost \(folded.openCost), realized \(folded.realizedPnl), fills \(folded.fillCount), last seq \(folded.lastFillSeq)")
            }
        }
        for symbol in bySymbol.keys.sorted() where !positioned.contains(symbol) {
            missing.add("\(symbol): \(bySymbol[symbol]?.count ?? 0) ledger fills but no position")
        }
        let held = drift.total == 0 && missing.total == 0
        let summary = held
            ? "\(positions.count) positions equal the fold of \(ledgerFills.count) ledger fills"
            : "\(drift.total) positions drift from the fold, \(missing.total) symbols with fills but no position"
        return InvariantResult(
            name: .positionsMatchFold, held: held, summary: summary,
            counts: ["positions": Int64(positions.count), "ledger_fills": Int64(ledgerFills.count), "drifted": drift.total, "missing_positions": missing.total],
            offending: Array((drift.lines + missing.lines).prefix(InvariantResult.evidenceLimit)))
    }

    // MARK: 3. Grants never overlap

    /// One grant's lifetime rebuilt from the coordinator's event log.
    public struct GrantLifetime: Codable, Sendable, Hashable {
        public var symbol: String
        public var node: String
        public var fencingToken: Int64
        public var grantedAtMs: EpochMs
        /// nil while the grant is still open at the end of the log.
        public var endMs: EpochMs?
        public var grantSeq: Int64
    }

    /// Rebuilds every grant's lifetime [grant.ts_ms, end) from the events and checks that, per
    /// symbol, each grant starts at or after the previous one's end and carries a higher token.
    /// A grant ends at its `release` or `revoke` (ts_ms: the holder released it, or its process
    /// was reported dead), at its `grant_expired` (expires_at_ms, which includes every silent
    /// renewal), or, if the coordinator restarted while it was open, at
    /// the restart's quiet-period end (`coordinator_started.expires_at_ms`): every renewal
    /// happened before the restart, so none reaches past restart + one grant TTL — unless its
    /// holder re-adopts it (`adopt`, same token), which reopens that very grant: it must be the
    /// last grant of the symbol, and no other grant may have started since.
    /// The rules are `GrantLogFold.apply`, the same fold the coordinator stores when it prunes.
    public static func grantsNeverOverlap(events: [ClusterEvent]) -> InvariantResult {
        grantsNeverOverlap(base: nil, events: events)
    }

    /// The check over a compacted log: the base the coordinator stored when it pruned, then
    /// the retained events.
    public static func grantsNeverOverlap(events history: CoordinatorEventHistory) -> InvariantResult {
        grantsNeverOverlap(base: history.base, events: history.events)
    }

    /// Continues the fold from `base` (nil: from the beginning) with every event after
    /// `base.compactedThroughSeq`. The verdict and counts equal those of the whole log, since
    /// the base is exactly the fold of the pruned events; only the evidence lines of
    /// violations among the pruned events are gone (they are counted, and said to be pruned).
    public static func grantsNeverOverlap(base: EventLogBase?, events: [ClusterEvent]) -> InvariantResult {
        var fold = base?.grants ?? GrantLogFold()
        let compactedThrough = base?.compactedThroughSeq ?? 0
        var overlaps = Evidence()
        var nonIncreasing = Evidence()
        var orphanEnds = Evidence()
        if let base, !base.grants.held {
            let pruned = base.grants
            overlaps.add(
                "\(pruned.overlapping) overlapping grants, \(pruned.tokensNotIncreasing) tokens not increasing, \(pruned.unmatchedEnds) ends of unknown grants among the \(pruned.events) events pruned through seq \(compactedThrough) (details pruned with them)")
        }
        for event in events.sorted(by: { $0.seq < $1.seq }) where event.seq > compactedThrough {
            for violation in fold.apply(event) {
                switch violation {
                case .overlap(let line): overlaps.add(line)
                case .tokenNotIncreasing(let line): nonIncreasing.add(line)
                case .unmatchedEnd(let line): orphanEnds.add(line)
                }
            }
        }
        let held = fold.held
        let starts = fold.coordinatorStarts
        let summary = held
            ? "\(fold.grants) grants over \(fold.symbolsWithTokens) symbols, none overlapping, tokens strictly increasing (\(starts) coordinator starts)"
                + (compactedThrough > 0 ? "; events through seq \(compactedThrough) from the coordinator's compaction base" : "")
            : "\(fold.overlapping) overlapping grants, \(fold.tokensNotIncreasing) tokens not increasing, \(fold.unmatchedEnds) ends of unknown grants"
        return InvariantResult(
            name: .grantsNeverOverlap, held: held, summary: summary,
            counts: [
                "events": fold.events, "grants": fold.grants, "overlapping": fold.overlapping, "tokens_not_increasing": fold.tokensNotIncreasing,
                "unmatched_ends": fold.unmatchedEnds, "coordinator_starts": starts, "open_grants": Int64(fold.openGrants),
                "compacted_through_seq": compactedThrough,
            ],
            offending: Array((overlaps.lines + nonIncreasing.lines + orphanEnds.lines).prefix(InvariantResult.evidenceLimit)))
    }

    // MARK: 4. No stale token accepted

    /// `stats` must be read BEFORE `coordinatorTokens` (tokens only grow). The exchange's own
    /// recount of stale acceptances must be 0, and it can never have seen a token the
    /// coordinator has not minted.
    public static func noStaleTokenAccepted(stats: ExchangeStats, coordinatorTokens: [String: Int64]) -> InvariantResult {
        var problems = Evidence()
        if stats.staleAccepted != 0 {
            problems.add("exchange reports stale_accepted = \(stats.staleAccepted)")
        }
        var ahead: Int64 = 0
        for (symbol, token) in stats.highestTokens.sorted(by: { $0.key < $1.key }) {
            let minted = coordinatorTokens[symbol] ?? 0
            if token > minted {
                ahead += 1
                problems.add("\(symbol): exchange accepted token \(token) but the coordinator has minted only up to \(minted)")
            }
        }
        let held = problems.total == 0
        let staleRejections = stats.rejections[ExchangeErrorCode.staleFencingToken] ?? 0
        let summary = held
            ? "stale_accepted 0; \(stats.highestTokens.count) symbols' highest tokens within the coordinator's; \(staleRejections) stale requests rejected"
            : "stale_accepted \(stats.staleAccepted), \(ahead) symbols with tokens the coordinator never minted"
        return InvariantResult(
            name: .noStaleTokenAccepted, held: held, summary: summary,
            counts: ["stale_accepted": stats.staleAccepted, "tokens_ahead_of_coordinator": ahead, "stale_rejected": staleRejections],
            offending: problems.lines)
    }

    // MARK: 5. Assigned symbols quoted

    /// Every symbol assigned to a live member must have a live holder and a quote at the exchange
    /// from that holder, under its current token, with at least one side, updated within
    /// `maxQuoteAgeMs` of `nowMs`. The caller retries for a short settle period, because a
    /// failover in flight is not a violation.
    public static func assignedSymbolsQuoted(
        authority: AuthorityList, members: [NodePresence], quotes: [Quote], nowMs: EpochMs, maxQuoteAgeMs: Int64
    ) -> InvariantResult {
        let alive = Set(members.filter { $0.status == .alive }.map(\.node))
        let quoteBySymbol = Dictionary(quotes.map { ($0.symbol, $0) }, uniquingKeysWith: { first, _ in first })
        var problems = Evidence()
        var assigned: Int64 = 0
        var unquoted: Int64 = 0
        for status in authority.authority.sorted(by: { $0.symbol < $1.symbol }) {
            guard let assignee = status.assignedTo, alive.contains(assignee) else { continue }
            assigned += 1
            let problem = quoteProblem(status: status, quote: quoteBySymbol[status.symbol], nowMs: nowMs, maxQuoteAgeMs: maxQuoteAgeMs)
            if let problem {
                unquoted += 1
                problems.add("\(status.symbol) (assigned to \(assignee)): \(problem)")
            }
        }
        let held = problems.total == 0
        let summary = held
            ? "\(assigned) assigned symbols each quoted by their holder within \(maxQuoteAgeMs) ms"
            : "\(unquoted) of \(assigned) assigned symbols not quoted by their holder"
        return InvariantResult(
            name: .assignedSymbolsQuoted, held: held, summary: summary,
            counts: ["assigned": assigned, "unquoted": unquoted, "live_members": Int64(alive.count), "quotes": Int64(quotes.count)],
            offending: problems.lines)
    }

    /// Why `quote` is not a fresh quote from the symbol's current holder, or nil when it is.
    public static func quoteProblem(status: AuthorityStatus, quote: Quote?, nowMs: EpochMs, maxQuoteAgeMs: Int64) -> String? {
        guard let holder = status.node else { return "no node holds a live grant" }
        guard let quote else { return "no quote at the exchange (holder \(holder), token \(status.fencingToken))" }
        if quote.node != holder || quote.fencingToken != status.fencingToken {
            return "quote is from \(quote.node) token \(quote.fencingToken), but \(holder) holds token \(status.fencingToken)"
        }
        if quote.bidPrice == nil && quote.askPrice == nil { return "the holder's quote has both sides withdrawn" }
        let age = nowMs - quote.updatedAtMs
        if age > maxQuoteAgeMs { return "the holder's quote was last updated \(age) ms ago (limit \(maxQuoteAgeMs))" }
        return nil
    }
}
