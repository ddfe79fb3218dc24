import AsyncPrimitives
import Foundation
import Logging
import MMCore

/// The running exchange: owns the state machine, the price paths, the dead-man timers and
/// the fill-log cursor, and is the one place commands are serialized. Every accepted
/// command is applied and handed to the group committer in the same actor turn, so the
/// journal order is the apply order; the caller then waits for durability outside the
/// actor before answering.
///
/// Fills become visible (`/v1/fills`, `/v1/stats`) only once the journal entry that made
/// them is durable: a consumer can never see a fill that a crash could take back.
public actor ExchangeCore {
    public let config: ClusterConfig
    let signer: GrantSigner
    let clock: any EpochClock
    public let committer: GroupCommitter
    let logger: Logger

    private(set) var state: ExchangeState
    private var audit: FencingAudit
    public let firstStartMs: EpochMs
    private var paths: [ReferencePricePath]
    private let flow: ExternalFlowGenerator
    private var lastFlowIndex: Int64
    private var deadmen: [String: EpochMs] = [:]
    private var rejections: [String: Int64] = [:]
    private var publishedFillCount = 0
    private var digest = FillLogDigest()
    private var fillMarks: [(journalSeq: Int64, fillCount: Int)] = []
    private var markedFillCount = 0
    /// Signalled whenever fills are published; `/v1/fills` long-polls wait on it.
    private let fillsPublished = ChangeSignal()
    let metrics: ExchangeMetrics
    /// When unquoted time was last added up (nil before the first round).
    private var quotingAccountedAtMs: EpochMs?

    /// Longest accepted dead-man timeout: anything longer is a caller bug, not a setting.
    public static let maxDeadmanTimeoutMs: Int64 = 60_000

    /// Replays `journal` and returns a core whose books and fill log are exactly those the
    /// journal describes, with every fill published.
    public init(config: ClusterConfig, signer: GrantSigner, clock: any EpochClock, journal: any ExchangeJournal, logger: Logger = Logger(label: "mm.exchange")) throws {
        self.config = config
        self.signer = signer
        self.clock = clock
        self.logger = logger
        let recovered = try ExchangeRecovery.replay(config: config, journal: journal)
        state = recovered.state
        audit = recovered.audit
        firstStartMs = try journal.firstStartMs(recordingIfAbsent: clock.nowMs())
        metrics = ExchangeMetrics(symbols: config.symbolNames)
        let commitLatency = metrics.journalCommit
        committer = GroupCommitter(journal: journal, durableSeq: recovered.state.journalSeq) { commitLatency.record($0) }
        paths = config.symbols.map { ReferencePricePath(seed: config.seed, spec: $0, settings: config.exchange) }
        flow = ExternalFlowGenerator(config: config)
        lastFlowIndex = recovered.state.lastFlowIndex
        for fill in recovered.state.fills { digest.append(fill) }
        publishedFillCount = recovered.state.fills.count
        markedFillCount = publishedFillCount
        // Dead-man timers live in memory. So that no quote outlives its owner across an
        // exchange restart, every node with resting orders gets a fresh timer: it re-arms
        // within one renewal round if it is alive.
        let now = clock.nowMs()
        for node in recovered.state.nodesWithRestingOrders { deadmen[node] = now + config.node.deadmanTimeoutMs }
    }

    // MARK: - Commands

    private func rejected<T>(_ body: () throws(APIError) -> T) throws(APIError) -> T {
        do { return try body() } catch {
            rejections[error.code, default: 0] += 1
            metrics.fencingRejections[error.code]?.increment()
            throw error
        }
    }

    /// Counts a rejection made before the core saw the request (bad JSON, off-grid price).
    public func countRejection(_ code: String) { rejections[code, default: 0] += 1 }

    /// Applies and enqueues; returns the journal seq to wait for.
    private func commit(_ entries: [JournalEntry]) -> Int64 {
        let now = clock.nowMs()
        for entry in entries {
            state.apply(entry, tsMs: now)
            audit.observe(entry)
            committer.enqueue(JournalRecord(seq: state.journalSeq, tsMs: now, entry: entry))
        }
        if state.fills.count > markedFillCount {
            markedFillCount = state.fills.count
            fillMarks.append((state.journalSeq, markedFillCount))
        }
        return state.journalSeq
    }

    public func replaceQuote(symbol: String, _ request: QuoteRequest) throws(APIError) -> (Quote, journalSeq: Int64) {
        let now = clock.nowMs()
        let entries = try rejected { () throws(APIError) in try state.decideReplaceQuote(symbol: symbol, request, signer: signer, nowMs: now) }
        let seq = commit(entries)
        metrics.quotesReplaced.increment()
        let quote = state.quote(symbol) ?? Quote(symbol: symbol, node: request.node, fencingToken: request.grant.fencingToken,
                                                  bidPrice: nil, bidQty: 0, askPrice: nil, askQty: 0, updatedAtMs: now)
        return (quote, seq)
    }

    public func cancelQuote(symbol: String, _ request: FencedRequest) throws(APIError) -> (QuoteCancelResult, journalSeq: Int64) {
        let now = clock.nowMs()
        let decision = try rejected { () throws(APIError) in try state.decideCancelQuote(symbol: symbol, request, signer: signer, nowMs: now) }
        let seq = commit(decision.entries)
        if decision.cancelled { metrics.quotesCancelled.increment() }
        return (QuoteCancelResult(symbol: symbol, cancelled: decision.cancelled), seq)
    }

    public func submitOrder(_ request: OrderRequest) throws(APIError) -> (OrderAck, journalSeq: Int64) {
        let now = clock.nowMs()
        let decision = try rejected { () throws(APIError) in try state.decideSubmitOrder(request, signer: signer, nowMs: now) }
        switch decision {
        case .duplicate(let ack):
            // The original may not be durable yet if the first attempt is still in flight.
            return (ack, state.journalSeq)
        case .accept(let entries):
            let seq = commit(entries)
            guard let ack = state.originalAck(node: request.node, clientOrderId: request.clientOrderId) else {
                return (fallbackAck(request, now: now), seq)
            }
            return (ack, seq)
        }
    }

    private func fallbackAck(_ request: OrderRequest, now: EpochMs) -> OrderAck {
        // Unreachable: apply always records the order. Answer honestly rather than trap.
        OrderAck(orderId: "unknown", clientOrderId: request.clientOrderId, symbol: request.symbol, side: request.side, price: request.price,
                 qty: request.qty, filledQty: 0, status: .resting, fillIds: [], acceptedAtMs: now)
    }

    public func cancelOrder(orderId: String, _ request: FencedRequest) throws(APIError) -> (OrderAck, journalSeq: Int64) {
        let now = clock.nowMs()
        let entries = try rejected { () throws(APIError) in try state.decideCancelOrder(orderId: orderId, request, signer: signer, nowMs: now) }
        let seq = commit(entries)
        guard let ack = state.orderAck(orderId) else {
            throw APIError(status: 404, code: ExchangeErrorCode.unknownOrder, message: "no order '\(orderId)'")
        }
        return (ack, seq)
    }

    public func armDeadman(_ request: DeadmanRequest) throws(APIError) -> DeadmanStatus {
        try rejected { () throws(APIError) in
            guard !request.node.isEmpty, request.node.count <= 64 else {
                throw APIError.invalidField("node", "must be the node id (1–64 characters)")
            }
            guard request.timeoutMs > 0, request.timeoutMs <= Self.maxDeadmanTimeoutMs else {
                throw APIError.invalidField("timeout_ms", "must be in 1...\(Self.maxDeadmanTimeoutMs) ms (got \(request.timeoutMs))")
            }
            let until = clock.nowMs() + request.timeoutMs
            deadmen[request.node] = until
            return DeadmanStatus(node: request.node, armedUntilMs: until)
        }
    }

    /// Cancels (journaled) everything of each node whose dead-man timer ran out. Returns
    /// the nodes whose orders were pulled.
    @discardableResult
    public func sweepDeadmen() -> [String] {
        let now = clock.nowMs()
        var pulled: [String] = []
        for (node, until) in deadmen.sorted(by: { $0.key < $1.key }) where until <= now {
            deadmen[node] = nil
            let entries = state.decideDeadmanExpiry(node: node)
            guard !entries.isEmpty else { continue }
            _ = commit(entries)
            pulled.append(node)
            metrics.deadmanFirings.increment()
            logger.warning("dead-man's switch fired for \(node): its quotes and orders were cancelled")
        }
        return pulled
    }

    public func deadmanDeadline(_ node: String) -> EpochMs? { deadmen[node] }

    /// Adds the time since the last call to `mm_exchange_unquoted_seconds_total` of every
    /// symbol without a two-sided quote now (so the figure is exact to one call's interval).
    public func accountUnquotedTime() {
        let now = clock.nowMs()
        defer { quotingAccountedAtMs = now }
        guard let last = quotingAccountedAtMs, now > last else { return }
        let seconds = Double(now - last) / 1_000
        for spec in config.symbols {
            let quote = state.quote(spec.symbol)
            if quote?.bidPrice == nil || quote?.askPrice == nil { metrics.unquoted[spec.symbol]?.increment(by: seconds) }
        }
    }

    /// One round of external flow: at most one order per symbol for the current flow index
    /// (a stalled loop skips indices rather than bursting). Returns the orders that traded.
    @discardableResult
    public func generateFlow() -> [ExternalOrderIntent] {
        let now = clock.nowMs()
        let index = (now - firstStartMs) / max(config.flow.intervalMs, 1)
        guard index > lastFlowIndex else { return [] }
        lastFlowIndex = index
        var traded: [ExternalOrderIntent] = []
        for (symbolIndex, spec) in config.symbols.enumerated() {
            let book = state.engine.books[symbolIndex]
            let reference = referencePrice(symbolIndex: symbolIndex, now: now).price
            let intent = flow.order(symbol: spec.symbol, flowIndex: index, referencePrice: reference, bestBid: book.bestBid, bestAsk: book.bestAsk)
            if submitExternal(intent) { traded.append(intent) }
        }
        return traded
    }

    /// Journals and applies one external order if it can trade; false when it could not
    /// (then nothing changes and nothing is journaled).
    public func submitExternal(_ intent: ExternalOrderIntent) -> Bool {
        let entries = state.decideExternal(intent)
        guard !entries.isEmpty else { return false }
        _ = commit(entries)
        return true
    }

    // MARK: - Durability and fills

    /// Called by the flush loop once every record up to `journalSeq` is durable.
    public func markDurable(_ journalSeq: Int64) {
        var newCount = publishedFillCount
        while let first = fillMarks.first, first.journalSeq <= journalSeq {
            newCount = first.fillCount
            fillMarks.removeFirst()
        }
        guard newCount > publishedFillCount else { return }
        for index in publishedFillCount..<newCount {
            digest.append(state.fills[index])
            metrics.fills[state.fills[index].symbol]?.increment()
        }
        publishedFillCount = newCount
        metrics.publishedFillSeq.set(Int64(newCount))
        metrics.staleAccepted.set(audit.staleAccepted)
        fillsPublished.signal()
    }

    public func fillPage(after: Int64, limit: Int) -> FillPage {
        let start = Int(min(max(after, 0), Int64(publishedFillCount)))
        let end = min(start + limit, publishedFillCount)
        return FillPage(fills: Array(state.fills[start..<end]), headSeq: Int64(publishedFillCount))
    }

    /// Suspends until a fill with seq > after is published, `timeoutMs` passes, the task is
    /// cancelled or `endLongPolls()` was called.
    public func waitForFills(after: Int64, timeoutMs: Int64) async {
        guard Int64(publishedFillCount) <= after, timeoutMs > 0 else { return }
        // The ticket is read in the same actor turn as the check, so a publish in between is seen.
        await fillsPublished.wait(after: fillsPublished.version, timeoutMs: timeoutMs)
    }

    /// Graceful shutdown: answers every fill long-poll now and every later one at once, so the
    /// state's keep-alive ingest cannot hold the HTTP server's drain open for its wait.
    public nonisolated func endLongPolls() {
        fillsPublished.close()
    }

    // MARK: - Inspection

    private func referencePrice(symbolIndex: Int, now: EpochMs) -> ReferencePrice {
        let interval = max(config.exchange.priceIntervalMs, 1)
        let tick = max(0, (now - firstStartMs) / interval)
        let price = paths[symbolIndex].price(at: tick)
        return ReferencePrice(symbol: config.symbols[symbolIndex].symbol, price: price, tickIndex: tick, tsMs: firstStartMs + tick * interval)
    }

    public func prices() -> [ReferencePrice] {
        let now = clock.nowMs()
        return config.symbols.indices.map { referencePrice(symbolIndex: $0, now: now) }
    }

    public func price(symbol: String) throws(APIError) -> ReferencePrice {
        guard let index = state.index(of: symbol) else { throw APIError.unknownSymbol(symbol) }
        return referencePrice(symbolIndex: index, now: clock.nowMs())
    }

    /// Advances every price path to now (keeps the live cursor warm, O(1) per tick).
    public func advancePrices() { _ = prices() }

    public func quotes() -> [Quote] { state.allQuotes }

    public func book(symbol: String, levels: Int) throws(APIError) -> BookDepth {
        guard let depth = state.depth(symbol, levels: levels) else { throw APIError.unknownSymbol(symbol) }
        return depth
    }

    public func stats() -> ExchangeStats {
        var tokens: [String: Int64] = [:]
        for (index, spec) in config.symbols.enumerated() where state.highestTokens[index] > 0 { tokens[spec.symbol] = state.highestTokens[index] }
        return ExchangeStats(
            fillCount: Int64(publishedFillCount), fillLogSha256: digest.hexDigest(), orderCount: state.orderCount,
            journalSeq: committer.durableSeq, rejections: rejections, highestTokens: tokens, staleAccepted: audit.staleAccepted)
    }

    /// The whole state, for tests.
    public var snapshot: ExchangeState { state }
}

/// Rebuilding state from a journal: the live startup and `mmd exchange replay` share it.
public enum ExchangeRecovery {
    public struct Result: Sendable {
        public var state: ExchangeState
        public var audit: FencingAudit
    }

    /// Applies every record (or, with `throughFill`, only until that many fills exist).
    public static func replay(config: ClusterConfig, journal: any ExchangeJournal, throughFill: Int64? = nil) throws -> Result {
        var state = ExchangeState(config: config)
        var audit = FencingAudit()
        try journal.forEachRecord { record in
            if let throughFill, Int64(state.fills.count) >= throughFill { return false }
            state.apply(record.entry, tsMs: record.tsMs)
            audit.observe(record.entry)
            return true
        }
        return Result(state: state, audit: audit)
    }

    /// `<sha256 hex> <fill count>` of fills 1…N (N = every fill, or `throughSeq`).
    public static func digestLine(config: ClusterConfig, journal: any ExchangeJournal, throughSeq: Int64?) throws -> String {
        if let throughSeq, throughSeq < 0 { throw ReplayError("--through-seq must be ≥ 0 (got \(throughSeq))") }
        let result = try replay(config: config, journal: journal, throughFill: throughSeq)
        let available = Int64(result.state.fills.count)
        let count = throughSeq ?? available
        guard count <= available else {
            throw ReplayError("the journal holds only \(available) fills; --through-seq \(count) is beyond its end")
        }
        var digest = FillLogDigest()
        for fill in result.state.fills.prefix(Int(count)) { digest.append(fill) }
        return "\(digest.hexDigest()) \(count)"
    }
}

public struct ReplayError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
