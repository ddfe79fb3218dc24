import Foundation
import MMCore

/// A fixed-capacity ring: appending beyond `capacity` overwrites the oldest element, so the
/// memory a series holds is bounded however long the GUI runs.
public struct RingBuffer<Element: Sendable & Hashable>: Sendable, Hashable {
    public let capacity: Int
    private var storage: [Element] = []
    /// Index of the oldest element once the ring is full.
    private var head = 0

    public init(capacity: Int) {
        precondition(capacity > 0, "a ring needs room for at least one element")
        self.capacity = capacity
        storage.reserveCapacity(min(capacity, 4_096))
    }

    public var count: Int { storage.count }
    public var isEmpty: Bool { storage.isEmpty }

    public mutating func append(_ element: Element) {
        if storage.count < capacity {
            storage.append(element)
        } else {
            storage[head] = element
            head = (head + 1) % capacity
        }
    }

    /// Oldest first.
    public var elements: [Element] { Array(storage[head...] + storage[..<head]) }

    public var last: Element? {
        guard !storage.isEmpty else { return nil }
        return storage[(head + storage.count - 1) % storage.count]
    }

    /// The elements after the first one (oldest first) for which `isOld` is false: `isOld`
    /// must be true of a prefix of the ring (e.g. "sampled at or before t").
    public func suffix(after isOld: (Element) -> Bool) -> [Element] {
        let ordered = elements
        var low = 0, high = ordered.count
        while low < high {
            let middle = (low + high) / 2
            if isOld(ordered[middle]) { low = middle + 1 } else { high = middle }
        }
        return Array(ordered[low...])
    }
}

/// One sample of the whole book: total PnL (realized + unrealized) across symbols, exactly,
/// in units of 10^-`pnl_scale` (the finest tick size among the symbols).
public struct TotalSample: Codable, Sendable, Hashable {
    public var tMs: EpochMs
    /// Realized + unrealized; nil when the sum does not fit in 64 bits or positions could
    /// not be read.
    public var pnl: Int64?
    public var realizedPnl: Int64?
    /// False when some symbol with a position has no reference price (its unrealized PnL
    /// is unknown and counted as 0).
    public var complete: Bool
}

/// One sample of one symbol. Prices in ticks, quantities in lots, PnL in ticks × lots.
public struct SymbolSample: Codable, Sendable, Hashable {
    public var tMs: EpochMs
    public var reference: Ticks?
    /// The resting quote's sides (nil: no quote, side withdrawn, or exchange unreadable).
    public var bid: Ticks?
    public var ask: Ticks?
    /// Nil while the trading-state service cannot be read.
    public var netQty: Lots?
    public var realizedPnl: Int64?
    public var unrealizedPnl: Int64?
}

/// A stretch of time during which a symbol's authority was held by one grant (`node` and
/// `fencing_token`), or by no one (`node` nil), as the GUI observed it on every refresh.
public struct AuthoritySpan: Codable, Sendable, Hashable {
    public var fromMs: EpochMs
    /// Nil while the span is still open.
    public var toMs: EpochMs?
    public var node: String?
    public var fencingToken: Int64?
}

/// A stretch of time with no quote resting on the book for a symbol.
public struct UnquotedSpan: Codable, Sendable, Hashable {
    public var fromMs: EpochMs
    public var toMs: EpochMs?
}

/// A grant to another node after the previous holder's grant expired or was revoked (from
/// the coordinator's event log): what a `kill-node` drill looks like.
public struct FailoverMarker: Codable, Sendable, Hashable {
    public var tsMs: EpochMs
    public var fromNode: String
    public var toNode: String
    public var fencingToken: Int64?
    /// `grant_expired` or `revoke`: how the previous grant ended.
    public var cause: String
    /// When the previous grant ended.
    public var endedAtMs: EpochMs
}

/// `GET /api/history` (see docs/API.md).
public struct HistoryPage: Codable, Sendable, Hashable {
    public struct SymbolHistory: Codable, Sendable, Hashable {
        public var symbol: String
        public var tickSize: String
        /// Samples taken after `since_ms`, oldest first.
        public var samples: [SymbolSample]
        /// Always complete (bounded), oldest first.
        public var authority: [AuthoritySpan]
        public var unquoted: [UnquotedSpan]
        public var failovers: [FailoverMarker]
    }

    public var serverNowMs: EpochMs
    public var resolutionMs: Int64
    /// How many samples each series keeps: `resolution_ms × capacity` is the window.
    public var capacity: Int64
    public var windowMs: Int64
    public var sinceMs: EpochMs
    /// The decimal scale of `total[].pnl` / `realized_pnl`: the finest tick size's.
    public var pnlScale: Int64
    public var total: [TotalSample]
    public var symbols: [SymbolHistory]
}

/// The session's history for the charts: a pure fold of successive snapshots (no I/O, no
/// clock), every series bounded.
///
/// - Samples (prices, quote band, positions, PnL) are kept one per `resolutionMs` bucket,
///   in a `RingBuffer` of `capacity` per symbol plus one for the totals: with the defaults
///   (1 s, 1800) the last 30 minutes.
/// - Authority spans and unquoted gaps are updated on every snapshot (≈ 300 ms precision)
///   and dropped once they ended before the window; failover markers come from the
///   coordinator's authority events as they appear in successive snapshots. Each list is
///   also capped at `maxSpans`.
public struct SessionHistory: Sendable, Hashable {
    public static let defaultResolutionMs: Int64 = 1_000
    public static let defaultCapacity = 1_800
    public static let maxSpans = 500

    struct Series: Sendable, Hashable {
        var tickSize: String
        var samples: RingBuffer<SymbolSample>
        var authority: [AuthoritySpan] = []
        var unquoted: [UnquotedSpan] = []
        var failovers: [FailoverMarker] = []
        /// The last grant that ended by expiry or revocation, until the next grant.
        var lastLapse: Lapse?
    }

    struct Lapse: Sendable, Hashable {
        var node: String
        var kind: String
        var atMs: EpochMs
    }

    public let resolutionMs: Int64
    public let capacity: Int
    public var windowMs: Int64 { resolutionMs * Int64(capacity) }
    private var symbolOrder: [String]
    private var series: [String: Series]
    private var total: RingBuffer<TotalSample>
    /// The highest coordinator event seq already folded in.
    private var lastEventSeq: Int64 = 0

    /// The decimal scale of the total PnL: the finest tick size's.
    public let pnlScale: Int

    static let authorityKinds: Set<String> = ["grant", "adopt", "release", "revoke", "grant_expired"]

    public init(symbols: [SymbolSpec], resolutionMs: Int64 = defaultResolutionMs, capacity: Int = defaultCapacity) {
        precondition(resolutionMs > 0 && capacity > 0, "a history needs a positive resolution and capacity")
        self.resolutionMs = resolutionMs
        self.capacity = capacity
        symbolOrder = symbols.map(\.symbol)
        series = Dictionary(symbols.map { ($0.symbol, Series(tickSize: $0.tickSize, samples: RingBuffer(capacity: capacity))) }, uniquingKeysWith: { first, _ in first })
        total = RingBuffer(capacity: capacity)
        pnlScale = symbols.compactMap { DecimalTick($0.tickSize)?.scale }.max() ?? 0
    }

    /// Which services the snapshot could read: what a service could not tell is not recorded
    /// as a change (an exchange blip is not an unquoted gap).
    public struct Readable: Sendable {
        public var exchange: Bool
        public var state: Bool
        public var coordinator: Bool
        public init(exchange: Bool = true, state: Bool = true, coordinator: Bool = true) {
            self.exchange = exchange
            self.state = state
            self.coordinator = coordinator
        }

        public init(_ snapshot: ClusterSnapshot) {
            let failed = Set(snapshot.errors.map(\.service))
            self.init(
                exchange: !failed.contains(ClusterProcess.exchange.name),
                state: !failed.contains { $0.hasPrefix(ClusterProcess.state.name) },
                coordinator: !failed.contains { $0.hasPrefix(ClusterProcess.coordinator.name) })
        }
    }

    public mutating func observe(_ snapshot: ClusterSnapshot, readable: Readable) {
        let now = snapshot.takenAtMs
        if readable.coordinator { foldEvents(snapshot.recentEvents) }
        // The first view of each resolution bucket: one sample per second on average whatever
        // the refresh interval (a minimum gap would drift to 1.2 s with 300 ms refreshes).
        let takeSample = total.last.map { now.floorDiv(resolutionMs) > $0.tMs.floorDiv(resolutionMs) } ?? true
        var realizedSum: Int64? = 0, pnlSum: Int64? = 0
        var complete = true
        for view in snapshot.symbols {
            // A symbol the configuration did not list (it cannot happen with the shared
            // builder, but a view is data) gets a series of its own, still bounded.
            if series[view.symbol] == nil {
                series[view.symbol] = Series(tickSize: view.tickSize, samples: RingBuffer(capacity: capacity))
                symbolOrder.append(view.symbol)
            }
            guard var entry = series[view.symbol] else { continue }
            if readable.coordinator {
                let holder = view.authority.map { ($0.node, $0.fencingToken) }
                if let open = entry.authority.last, open.toMs == nil, open.node == holder?.0, open.fencingToken == holder?.1 {
                    // unchanged
                } else {
                    if let index = entry.authority.indices.last, entry.authority[index].toMs == nil { entry.authority[index].toMs = now }
                    entry.authority.append(AuthoritySpan(fromMs: now, toMs: nil, node: holder?.0, fencingToken: holder?.1))
                }
            }
            if readable.exchange {
                let openGap = entry.unquoted.last.map { $0.toMs == nil } ?? false
                if view.quote == nil, !openGap {
                    entry.unquoted.append(UnquotedSpan(fromMs: now, toMs: nil))
                } else if view.quote != nil, openGap {
                    entry.unquoted[entry.unquoted.count - 1].toMs = now
                }
            }
            prune(&entry, nowMs: now)
            if takeSample {
                let position = readable.state ? (view.position ?? .init(netQty: 0, avgPrice: 0, realizedPnl: 0, unrealizedPnl: view.referencePrice == nil ? nil : 0, fillCount: 0)) : nil
                let quote = readable.exchange ? view.quote : nil
                entry.samples.append(SymbolSample(
                    tMs: now, reference: view.referencePrice, bid: quote?.bid, ask: quote?.ask,
                    netQty: position?.netQty, realizedPnl: position?.realizedPnl, unrealizedPnl: position?.unrealizedPnl))
                if let position {
                    if position.unrealizedPnl == nil && position.netQty != 0 { complete = false }
                    let factor = DecimalTick(entry.tickSize).flatMap { $0.factor(toScale: pnlScale) }
                    realizedSum = Self.addScaled(realizedSum, position.realizedPnl, factor)
                    let (pnl, overflow) = position.realizedPnl.addingReportingOverflow(position.unrealizedPnl ?? 0)
                    pnlSum = overflow ? nil : Self.addScaled(pnlSum, pnl, factor)
                } else {
                    realizedSum = nil
                    pnlSum = nil
                }
            }
            series[view.symbol] = entry
        }
        if takeSample {
            total.append(TotalSample(tMs: now, pnl: pnlSum, realizedPnl: realizedSum, complete: complete))
        }
    }

    /// `sum + amount × factor`, nil on overflow or an unparseable tick size.
    static func addScaled(_ sum: Int64?, _ amount: Int64, _ factor: Int64?) -> Int64? {
        guard let sum, let factor else { return nil }
        let (scaled, overflow) = amount.multipliedReportingOverflow(by: factor)
        guard !overflow else { return nil }
        let (result, overflowSum) = sum.addingReportingOverflow(scaled)
        return overflowSum ? nil : result
    }

    /// Authority events in seq order: a grant or adoption by another node after the previous
    /// grant expired or was revoked is a failover. A release (a planned handover) is not.
    mutating func foldEvents(_ events: [ClusterEvent]) {
        let authority = events.filter { Self.authorityKinds.contains($0.kind) && $0.symbol != nil }
        guard let newest = authority.map(\.seq).max() else { return }
        // A coordinator with a fresh log numbers from 1 again: start over.
        if newest < lastEventSeq { lastEventSeq = 0 }
        for event in authority.filter({ $0.seq > lastEventSeq }).sorted(by: { $0.seq < $1.seq }) {
            guard let symbol = event.symbol, var entry = series[symbol] else { continue }
            switch event.kind {
            case "grant", "adopt":
                if let lapse = entry.lastLapse, let node = event.node, lapse.node != node {
                    entry.failovers.append(FailoverMarker(
                        tsMs: event.tsMs, fromNode: lapse.node, toNode: node, fencingToken: event.fencingToken, cause: lapse.kind, endedAtMs: lapse.atMs))
                    if entry.failovers.count > Self.maxSpans { entry.failovers.removeFirst(entry.failovers.count - Self.maxSpans) }
                }
                entry.lastLapse = nil
            case "revoke", "grant_expired":
                if let node = event.node { entry.lastLapse = Lapse(node: node, kind: event.kind, atMs: event.expiresAtMs ?? event.tsMs) }
            default: // release: a planned handover
                entry.lastLapse = nil
            }
            series[symbol] = entry
        }
        lastEventSeq = newest
    }

    /// Drops what ended before the window, and caps every list.
    func prune(_ entry: inout Series, nowMs: EpochMs) {
        let horizon = nowMs - windowMs
        entry.authority.removeAll { ($0.toMs ?? .max) < horizon }
        entry.unquoted.removeAll { ($0.toMs ?? .max) < horizon }
        entry.failovers.removeAll { $0.tsMs < horizon }
        if entry.authority.count > Self.maxSpans { entry.authority.removeFirst(entry.authority.count - Self.maxSpans) }
        if entry.unquoted.count > Self.maxSpans { entry.unquoted.removeFirst(entry.unquoted.count - Self.maxSpans) }
    }

    /// Samples taken after `sinceMs`; spans and markers in full. With `samplesOf`, samples only
    /// of those symbols (the rest listed with none): a page showing 50 of 1,000 symbols loads
    /// 50 symbols' window, not 1,000 (`?symbols=`).
    public func page(sinceMs: EpochMs, nowMs: EpochMs, samplesOf: Set<String>? = nil) -> HistoryPage {
        HistoryPage(
            serverNowMs: nowMs, resolutionMs: resolutionMs, capacity: Int64(capacity), windowMs: windowMs, sinceMs: sinceMs,
            pnlScale: Int64(pnlScale),
            total: total.suffix { $0.tMs <= sinceMs },
            symbols: symbolOrder.compactMap { symbol in
                series[symbol].map { entry in
                    HistoryPage.SymbolHistory(
                        symbol: symbol, tickSize: entry.tickSize,
                        samples: (samplesOf?.contains(symbol) ?? true) ? entry.samples.suffix { $0.tMs <= sinceMs } : [],
                        authority: entry.authority, unquoted: entry.unquoted, failovers: entry.failovers)
                }
            })
    }

    /// How many samples are held in all (for tests and the bound's documentation).
    public var sampleCount: Int { total.count + series.values.reduce(0) { $0 + $1.samples.count } }
}

extension Int64 {
    /// Division rounding towards minus infinity (bucket numbers of times before 1970 too).
    func floorDiv(_ divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}

/// A decimal tick size as an integer at a scale: "0.05" → 5 at scale 2.
struct DecimalTick: Hashable {
    var mantissa: Int64
    var scale: Int

    init?(_ text: String) {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), !parts[0].isEmpty, parts.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }) else { return nil }
        let fraction = parts.count == 2 ? String(parts[1]) : ""
        guard parts.count == 1 || !fraction.isEmpty, fraction.count <= 18, let mantissa = Int64(String(parts[0]) + fraction) else { return nil }
        self.mantissa = mantissa
        self.scale = fraction.count
    }

    /// The factor that takes an amount in ticks to units of 10^-scale.
    func factor(toScale target: Int) -> Int64? {
        guard target >= scale else { return nil }
        var factor = mantissa
        for _ in 0..<(target - scale) {
            let (next, overflow) = factor.multipliedReportingOverflow(by: 10)
            if overflow { return nil }
            factor = next
        }
        return factor
    }
}
