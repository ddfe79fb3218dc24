import Foundation
import MMCore

/// One change of a symbol's active quote, as the GUI saw it between two snapshots.
public struct QuoteUpdate: Codable, Sendable, Hashable {
    public enum Change: String, Codable, Sendable, CaseIterable {
        /// The quote that was already resting when the GUI first looked (not a change it saw happen).
        case current
        /// A symbol that had no quote now has one.
        case placed
        /// Prices, sizes, owner or fencing token changed.
        case replaced
        /// The same prices and sizes re-sent (the node's periodic refresh).
        case refreshed
        /// The symbol's quote is gone (cancelled, pulled by the dead-man's switch, superseded).
        case withdrawn
    }

    /// GUI-local, strictly increasing: the order the GUI saw the changes in.
    public var seq: Int64
    public var observedAtMs: EpochMs
    public var symbol: String
    public var change: Change
    /// For `withdrawn`: the owner of the quote that disappeared.
    public var node: String
    public var fencingToken: Int64
    public var bid: Ticks?
    public var bidQty: Lots
    public var ask: Ticks?
    public var askQty: Lots
    /// The exchange's timestamp of the quote (for `withdrawn`, of the last one seen).
    public var updatedAtMs: EpochMs

    public init(seq: Int64, observedAtMs: EpochMs, symbol: String, change: Change, quote: ClusterSnapshot.QuoteView) {
        self.seq = seq
        self.observedAtMs = observedAtMs
        self.symbol = symbol
        self.change = change
        self.node = quote.node
        self.fencingToken = quote.fencingToken
        self.bid = quote.bid
        self.bidQty = quote.bidQty
        self.ask = quote.ask
        self.askQty = quote.askQty
        self.updatedAtMs = quote.updatedAtMs
    }
}

/// The bounded, newest-first history of quote changes: a pure fold of successive snapshots.
///
/// The exchange only exposes each symbol's *current* quote, so the history is what the GUI
/// observed by comparing one snapshot with the next. Replacements that happen and are undone
/// between two snapshots are invisible; the refresh interval (a few hundred ms) bounds that.
public struct QuoteUpdateLog: Sendable, Hashable {
    public let capacity: Int
    /// Newest first, at most `capacity`.
    public private(set) var updates: [QuoteUpdate] = []
    /// Each symbol's quote as last seen; nil means "seen, no quote"; absent means "never seen".
    private var baseline: [String: ClusterSnapshot.QuoteView?] = [:]
    private var nextSeq: Int64 = 1

    public init(capacity: Int = 200) {
        precondition(capacity > 0, "a quote log needs room for at least one update")
        self.capacity = capacity
    }

    /// Folds one snapshot in. When the snapshot says the exchange could not be read, its
    /// (missing) quotes say nothing about the market, so the baseline is kept: otherwise an
    /// exchange blip would show every quote as withdrawn and then placed again.
    public mutating func observe(_ snapshot: ClusterSnapshot, exchangeReadable: Bool) {
        guard exchangeReadable else { return }
        var fresh: [QuoteUpdate] = []
        for symbol in snapshot.symbols {
            let now = symbol.quote
            let known = baseline[symbol.symbol]
            baseline[symbol.symbol] = .some(now)
            let change: QuoteUpdate.Change?
            let shown: ClusterSnapshot.QuoteView?
            switch (known, now) {
            case (.none, let quote?):
                (change, shown) = (.current, quote)
            case (.none, nil):
                (change, shown) = (nil, nil)
            case (.some(nil), let quote?):
                (change, shown) = (.placed, quote)
            case (.some(let before?), nil):
                (change, shown) = (.withdrawn, before)
            case (.some(nil), nil):
                (change, shown) = (nil, nil)
            case (.some(let before?), let quote?):
                if before == quote {
                    (change, shown) = (nil, nil)
                } else if before.node == quote.node, before.fencingToken == quote.fencingToken,
                          before.bid == quote.bid, before.bidQty == quote.bidQty,
                          before.ask == quote.ask, before.askQty == quote.askQty {
                    (change, shown) = (.refreshed, quote)
                } else {
                    (change, shown) = (.replaced, quote)
                }
            }
            if let change, let shown {
                fresh.append(QuoteUpdate(seq: nextSeq, observedAtMs: snapshot.takenAtMs, symbol: symbol.symbol, change: change, quote: shown))
                nextSeq += 1
            }
        }
        guard !fresh.isEmpty else { return }
        updates = Array((fresh.reversed() + updates).prefix(capacity))
    }

    /// The newest `limit` updates, optionally of one symbol only.
    public func recent(limit: Int, symbol: String? = nil) -> [QuoteUpdate] {
        let matching = symbol.map { wanted in updates.filter { $0.symbol == wanted } } ?? updates
        return Array(matching.prefix(max(0, limit)))
    }
}
