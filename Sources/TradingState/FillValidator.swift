import MMCore

/// The checks a fill must pass before it may touch the ledger, whoever sends it. Pure.
///
/// Bounds come from the exchange's own limits (`exchange.max_price_ticks`,
/// `exchange.max_order_qty`), so every fill the exchange can legally make passes and
/// `price × qty` can never overflow Int64 in the position fold.
public struct FillValidator: Sendable {
    public var symbols: Set<String>
    public var maxPriceTicks: Int64
    public var maxQty: Int64
    /// Longest fill_id, node id or order id accepted (bytes of UTF-8).
    public var maxIdentifierBytes: Int

    public init(symbols: Set<String>, maxPriceTicks: Int64, maxQty: Int64, maxIdentifierBytes: Int = 128) {
        self.symbols = symbols
        self.maxPriceTicks = maxPriceTicks
        self.maxQty = maxQty
        self.maxIdentifierBytes = maxIdentifierBytes
    }

    public init(config: ClusterConfig) {
        self.init(symbols: Set(config.symbolNames), maxPriceTicks: config.exchange.maxPriceTicks, maxQty: config.exchange.maxOrderQty)
    }

    /// The first problem with `fill` (at position `index` of its batch), or nil when it is valid.
    public func problem(with fill: Fill, at index: Int) -> LedgerRejection? {
        func invalid(_ field: String, _ reason: String) -> LedgerRejection {
            .invalidFill(index: index, fillId: fill.fillId, field: field, reason: reason)
        }
        if let reason = identifierProblem(fill.fillId) { return invalid("fill_id", reason) }
        if fill.seq < 1 { return invalid("seq", "must be ≥ 1 (exchange seqs start at 1), got \(fill.seq)") }
        if !symbols.contains(fill.symbol) {
            return invalid("symbol", "names '\(fill.symbol)', which is not a symbol of this cluster (\(symbols.sorted().joined(separator: ", ")))")
        }
        if fill.price < 1 || fill.price > maxPriceTicks {
            return invalid("price", "must be in 1...\(maxPriceTicks) ticks, got \(fill.price)")
        }
        if fill.qty < 1 || fill.qty > maxQty { return invalid("qty", "must be in 1...\(maxQty) lots, got \(fill.qty)") }
        if let reason = identifierProblem(fill.node) { return invalid("node", reason) }
        if fill.makerOrderId.utf8.count > maxIdentifierBytes { return invalid("maker_order_id", "is longer than \(maxIdentifierBytes) bytes") }
        if fill.takerOrderId.utf8.count > maxIdentifierBytes { return invalid("taker_order_id", "is longer than \(maxIdentifierBytes) bytes") }
        if fill.fencingToken < 0 { return invalid("fencing_token", "must be ≥ 0, got \(fill.fencingToken)") }
        if fill.tsMs < 0 { return invalid("ts_ms", "must be a Unix epoch time in ms (≥ 0), got \(fill.tsMs)") }
        return nil
    }

    /// The first invalid fill of a batch, or nil when every one is valid.
    public func firstProblem(in fills: [Fill]) -> LedgerRejection? {
        for (index, fill) in fills.enumerated() {
            if let problem = problem(with: fill, at: index) { return problem }
        }
        return nil
    }

    private func identifierProblem(_ value: String) -> String? {
        if value.isEmpty { return "must not be empty" }
        if value.utf8.count > maxIdentifierBytes { return "is longer than \(maxIdentifierBytes) bytes" }
        return nil
    }
}

/// Which part of a page from the exchange's fill log may be applied now. Pure.
public struct IngestPlan: Sendable, Hashable {
    /// Fills cursor+1, cursor+2, … without a hole, in seq order.
    public var batch: [Fill]
    /// When the page skipped a seq: the first missing one (re-fetched, never skipped).
    public var missingSeq: Int64?

    /// Orders the page by seq, drops what the cursor already covers, and keeps the run that
    /// continues the cursor without a hole.
    public static func plan(page fills: [Fill], after cursor: Int64) -> IngestPlan {
        var expected = cursor + 1
        var batch: [Fill] = []
        for fill in fills.sorted(by: { $0.seq < $1.seq }) {
            if fill.seq < expected { continue }
            if fill.seq > expected { return IngestPlan(batch: batch, missingSeq: expected) }
            batch.append(fill)
            expected += 1
        }
        return IngestPlan(batch: batch, missingSeq: nil)
    }
}
