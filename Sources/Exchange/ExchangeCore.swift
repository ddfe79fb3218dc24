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
    /// Chain over every fill made so far, published or not (a fill is chained, and its head
    /// stored with it, when the command that made it is applied).
    private var digest: FillLogDigest
    /// The fold of every fill made, for checkers (`GET /v1/fills/fold`).
    private var fold: FoldHistory
    /// Fills made but not yet durable, oldest first, with the journal seq that made each and
    /// the chain head through it (what `/v1/stats` shows once it is published).
    private var unpublished: [(journalSeq: Int64, fill: Fill, head: [UInt8])] = []
    private var publishedFillCount: Int64
    private var publishedDigestHex: String
    /// The newest published fills, for consumers at the head (the state's ingest); older
    /// ones are read from the journal's fill table, so memory does not grow with history.
    private var recentFills: [Fill] = []
    public static let recentFillCapacity = 4_096
    /// Where snapshots go (nil: none are written) and the journal seq of the last one asked for.
    let snapshots: ExchangeSnapshotStore?
    private var lastSnapshotSeq: Int64
    private let snapshotRequests: AsyncStream<ExchangeSnapshot>.Continuation
    let pendingSnapshots: AsyncStream<ExchangeSnapshot>
    /// How the books were rebuilt at startup, for the log and `/v1/stats`.
    public nonisolated let recovery: ExchangeRecovery.Summary
    /// Signalled whenever fills are published; `/v1/fills` long-polls wait on it.
    private let fillsPublished = ChangeSignal()
    let metrics: ExchangeMetrics
    /// When unquoted time was last added up (nil before the first round).
    private var quotingAccountedAtMs: EpochMs?

    /// Longest accepted dead-man timeout: anything longer is a caller bug, not a setting.
    public static let maxDeadmanTimeoutMs: Int64 = 60_000

    /// Replays `journal` and returns a core whose books and fill log are exactly those the
    /// journal describes, with every fill published.
    public init(
        config: ClusterConfig, signer: GrantSigner, clock: any EpochClock, journal: any ExchangeJournal, snapshots: ExchangeSnapshotStore? = nil,
        logger: Logger = Logger(label: "mm.exchange")
    ) throws {
        self.config = config
        self.signer = signer
        self.clock = clock
        self.logger = logger
        let recovered = try ExchangeRecovery.recover(config: config, journal: journal, snapshots: snapshots, logger: logger)
        state = recovered.state
        audit = recovered.audit
        digest = recovered.digest
        fold = recovered.fold
        publishedFillCount = recovered.digest.count
        publishedDigestHex = recovered.digest.hexDigest()
        recovery = recovered.summary
        self.snapshots = config.exchange.snapshotEveryRecords > 0 ? snapshots : nil
        lastSnapshotSeq = recovered.summary.snapshotSeq ?? 0
        (pendingSnapshots, snapshotRequests) = AsyncStream.makeStream(of: ExchangeSnapshot.self, bufferingPolicy: .bufferingNewest(1))
        firstStartMs = try journal.firstStartMs(recordingIfAbsent: clock.nowMs())
        metrics = ExchangeMetrics(symbols: config.symbolNames)
        let commitLatency = metrics.journalCommit
        committer = GroupCommitter(journal: journal, durableSeq: recovered.state.journalSeq) { commitLatency.record($0) }
        paths = config.symbols.map { ReferencePricePath(seed: config.seed, spec: $0, settings: config.exchange) }
        flow = ExternalFlowGenerator(config: config)
        lastFlowIndex = recovered.state.lastFlowIndex
        recentFills = recovered.recentFills
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
            enqueueApplied(entry, tsMs: now)
        }
        requestSnapshotIfDue()
        return state.journalSeq
    }

    /// Audits, chains and enqueues an entry the state has just applied as its last record.
    private func enqueueApplied(_ entry: JournalEntry, tsMs now: EpochMs) {
        audit.observe(entry)
        let made = state.takeNewFills()
        var stored: [StoredFill] = []
        stored.reserveCapacity(made.count)
        for fill in made {
            let chained = StoredFill.chaining(fill, onto: &digest)
            stored.append(chained)
            fold.apply(fill)
            unpublished.append((state.journalSeq, fill, chained.chainHead))
        }
        committer.enqueue(JournalRecord(seq: state.journalSeq, tsMs: now, entry: entry), fills: stored)
    }

    private func requestSnapshotIfDue() {
        if snapshots != nil, state.journalSeq - lastSnapshotSeq >= config.exchange.snapshotEveryRecords {
            lastSnapshotSeq = state.journalSeq
            // A value copy (copy-on-write): the writer encodes it once it is durable, while
            // this actor goes on mutating its own.
            snapshotRequests.yield(currentSnapshot())
        }
    }

    /// The state as of the last applied record, for a snapshot.
    func currentSnapshot() -> ExchangeSnapshot {
        ExchangeSnapshot(journalSeq: state.journalSeq, state: state.persisted, audit: audit, digest: digest, fold: fold)
    }

    /// Writes `snapshot` (already durable in the journal) and applies journal retention.
    /// A failure is logged, not fatal: the journal is still the truth, and the next
    /// snapshot or a longer replay covers it.
    public nonisolated func writeSnapshot(_ snapshot: ExchangeSnapshot) {
        guard let snapshots else { return }
        let started = ContinuousClock.now
        do {
            let oldestKept = try snapshots.write(snapshot, config: config)
            if config.exchange.journalRetain == .snapshots { try committer.journal.pruneRecords(through: oldestKept) }
            let elapsed = ContinuousClock.now - started
            logger.info("exchange snapshot written at journal seq \(snapshot.journalSeq) (\(snapshot.digest.count) fills) in \(elapsed.formatted(.units(allowed: [.milliseconds])))")
        } catch {
            logger.error("exchange snapshot at journal seq \(snapshot.journalSeq) not written: \(error); restarts replay from the previous one")
        }
    }

    /// The state for a final snapshot at shutdown, or nil when not everything applied is
    /// durable (the journal failed): a snapshot must never hold what the journal does not.
    public func finalSnapshot() -> ExchangeSnapshot? {
        guard snapshots != nil, committer.durableSeq == state.journalSeq, state.journalSeq > lastSnapshotSeq else { return nil }
        lastSnapshotSeq = state.journalSeq
        return currentSnapshot()
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

    /// `PUT /v1/quotes`: every item decided in order against the evolving state, all accepted
    /// items journaled as one record. Returns the per-item results and the journal seq to wait
    /// for (once for the whole batch).
    public func replaceQuotes(_ request: QuoteBatchRequest) -> (QuoteBatchResult, journalSeq: Int64) {
        let now = clock.nowMs()
        let (entry, refusals) = state.acceptReplaceQuotes(node: request.node, request.quotes, signer: signer, nowMs: now)
        if let entry {
            enqueueApplied(entry, tsMs: now)
            requestSnapshotIfDue()
        }
        var results: [QuoteBatchResult.Item] = []
        results.reserveCapacity(request.quotes.count)
        for (item, refusal) in zip(request.quotes, refusals) {
            if let refusal {
                rejections[refusal.code, default: 0] += 1
                metrics.fencingRejections[refusal.code]?.increment()
                results.append(QuoteBatchResult.Item(symbol: item.symbol, refusal: refusal))
            } else {
                metrics.quotesReplaced.increment()
                let quote = state.quote(item.symbol) ?? Quote(symbol: item.symbol, node: request.node, fencingToken: item.grant.fencingToken,
                                                              bidPrice: nil, bidQty: 0, askPrice: nil, askQty: 0, updatedAtMs: now)
                results.append(QuoteBatchResult.Item(symbol: item.symbol, quote: quote))
            }
        }
        // With nothing accepted this is an earlier record's seq: waiting for it keeps the
        // answer from overtaking what the caller may have sent before.
        return (QuoteBatchResult(results: results), state.journalSeq)
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
    /// symbol without a two-sided quote now, and to `mm_exchange_no_quote_seconds_total` of
    /// every symbol with no quote side at all (so the figures are exact to one call's interval).
    public func accountUnquotedTime() {
        let now = clock.nowMs()
        defer { quotingAccountedAtMs = now }
        guard let last = quotingAccountedAtMs, now > last else { return }
        let seconds = Double(now - last) / 1_000
        for spec in config.symbols {
            let quote = state.quote(spec.symbol)
            if quote?.bidPrice == nil || quote?.askPrice == nil { metrics.unquoted[spec.symbol]?.increment(by: seconds) }
            if quote?.bidPrice == nil && quote?.askPrice == nil { metrics.withoutQuote[spec.symbol]?.increment(by: seconds) }
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
        var durable = 0
        while durable < unpublished.count, unpublished[durable].journalSeq <= journalSeq { durable += 1 }
        guard durable > 0 else { return }
        for (_, fill, _) in unpublished[..<durable] {
            metrics.fills[fill.symbol]?.increment()
            recentFills.append(fill)
        }
        publishedFillCount = unpublished[durable - 1].fill.seq
        publishedDigestHex = unpublished[durable - 1].head.lowercaseHex
        unpublished.removeFirst(durable)
        if recentFills.count > 2 * Self.recentFillCapacity { recentFills.removeFirst(recentFills.count - Self.recentFillCapacity) }
        metrics.publishedFillSeq.set(publishedFillCount)
        metrics.staleAccepted.set(audit.staleAccepted)
        fillsPublished.signal()
    }

    /// Where a page of fills after `after` comes from: memory when it is among the newest,
    /// otherwise the journal's fill table (read outside the actor by the caller).
    public enum FillSource: Sendable {
        case page(FillPage)
        case storage(after: Int64, limit: Int, headSeq: Int64)
    }

    public func fillSource(after: Int64, limit: Int) -> FillSource {
        let start = min(max(after, 0), publishedFillCount)
        let count = Int(min(Int64(max(limit, 0)), publishedFillCount - start))
        let oldestInMemory = publishedFillCount - Int64(recentFills.count)
        guard start >= oldestInMemory else { return .storage(after: start, limit: count, headSeq: publishedFillCount) }
        let first = recentFills.count - Int(publishedFillCount - start)
        return .page(FillPage(fills: Array(recentFills[first..<first + count]), headSeq: publishedFillCount))
    }

    /// The newest `count` published fills, the head read in the same turn as the page.
    public func fillSource(tail count: Int) -> FillSource {
        fillSource(after: LogCursor.tailStart(count: count, headSeq: publishedFillCount), limit: count)
    }

    /// A page of published fills, from memory or storage.
    public nonisolated func fillPage(after: Int64, limit: Int) async throws -> FillPage {
        try await fillPage(.after(after, limit: limit))
    }

    public nonisolated func fillPage(_ cursor: LogCursor) async throws -> FillPage {
        let source: FillSource
        switch cursor {
        case .after(let after, let limit): source = await fillSource(after: after, limit: limit)
        case .tail(let count): source = await fillSource(tail: count)
        }
        switch source {
        case .page(let page): return page
        case .storage(let after, let limit, let head):
            return FillPage(fills: try await committer.journal.fills(after: after, limit: limit), headSeq: head)
        }
    }

    /// The published fill count and the chain head through it, read together.
    public func publishedHead() -> (count: Int64, head: String) { (publishedFillCount, publishedDigestHex) }

    /// The fold per symbol through the published head (positions of unpublished fills left out).
    public func fillFold() -> FillFold {
        let published = publishedFillCount
        return FillFold(publishedSeq: published, positions: fold.recent.mapValues { $0.filter { $0.lastFillSeq <= published } })
    }

    /// The fill-log chain head through published fill `seq` (nil beyond the published head).
    public nonisolated func fillChainHead(through seq: Int64) async throws -> String? {
        let (published, head) = await publishedHead()
        guard seq >= 0, seq <= published else { return nil }
        if seq == published { return head }
        return try await committer.journal.fillChainHead(through: seq)
    }

    /// Suspends until a fill with seq > after is published, `timeoutMs` passes, the task is
    /// cancelled or `endLongPolls()` was called.
    public func waitForFills(after: Int64, timeoutMs: Int64) async {
        guard publishedFillCount <= after, timeoutMs > 0 else { return }
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

    /// The prices of `names`, in that order; an unknown symbol is a 404 naming it.
    public func prices(symbols names: [String]) throws(APIError) -> [ReferencePrice] {
        let now = clock.nowMs()
        var out: [ReferencePrice] = []
        out.reserveCapacity(names.count)
        for name in names {
            guard let index = state.index(of: name) else { throw APIError.unknownSymbol(name) }
            out.append(referencePrice(symbolIndex: index, now: now))
        }
        return out
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
            fillCount: publishedFillCount, fillLogSha256: publishedDigestHex, orderCount: state.orderCount,
            journalSeq: committer.durableSeq, rejections: rejections, highestTokens: tokens, staleAccepted: audit.staleAccepted)
    }

    /// The whole state, for tests.
    public var snapshot: ExchangeState { state }

    /// Startup check: the fill table's head at the recovered fill count must be the one the
    /// journal replayed to (`ExchangeRecovery.verifyStoredHead`).
    public nonisolated func verifyFillTable() async throws {
        try await ExchangeRecovery.verifyStoredHead(journal: committer.journal, digest: await digest)
    }
}

/// Rebuilding state from snapshots and the journal: the live startup and `mmd exchange replay`
/// share it.
public enum ExchangeRecovery {
    public struct Result: Sendable {
        public var state: ExchangeState
        public var audit: FencingAudit
        public var digest: FillLogDigest
        public var fold: FoldHistory
        /// The newest fills (at most `ExchangeCore.recentFillCapacity`), for the fill cache.
        public var recentFills: [Fill]
        public var summary: Summary
    }

    /// What recovery did, said once in the log.
    public struct Summary: Sendable, Hashable, CustomStringConvertible {
        /// The snapshot continued from (nil: a full replay from the journal's start).
        public var snapshotSeq: Int64?
        public var replayedRecords: Int64
        /// Snapshots skipped and why, newest first.
        public var rejectedSnapshots: [String]
        public var backfilledFills: Int64

        public var description: String {
            var text = snapshotSeq.map { "snapshot at journal seq \($0) + \(replayedRecords) journal records" } ?? "full replay of \(replayedRecords) journal records"
            if backfilledFills > 0 { text += ", \(backfilledFills) fills stored that the fill table lacked" }
            for rejected in rejectedSnapshots { text += "; skipped \(rejected)" }
            return text
        }
    }

    /// The newest usable snapshot plus the journal after it; an unusable snapshot (damaged,
    /// another version or configuration, or not continued by the journal) is skipped with a
    /// warning, down to a full replay. Fills the fill table lacks (a journal from before it
    /// existed) are stored on the way; a fill table that disagrees with the journal is an error.
    public static func recover(config: ClusterConfig, journal: any ExchangeJournal, snapshots: ExchangeSnapshotStore?, logger: Logger? = nil) throws -> Result {
        var rejected: [String] = []
        if let snapshots {
            for candidate in snapshots.candidates() {
                do {
                    let snapshot = try snapshots.load(candidate.path, config: config)
                    let state = try ExchangeState(config: config, restoring: snapshot.state)
                    let result = try replayTail(config: config, journal: journal, from: state, audit: snapshot.audit, digest: snapshot.digest,
                                                fold: snapshot.fold, snapshotSeq: snapshot.journalSeq, rejected: rejected)
                    return result
                } catch let error as SnapshotError {
                    rejected.append("\(candidate.path) (\(error))")
                } catch let error as JournalError {
                    rejected.append("\(candidate.path) (\(error))")
                }
                logger?.warning("exchange snapshot not used: \(rejected.last ?? "")")
            }
        }
        return try replayTail(config: config, journal: journal, from: ExchangeState(config: config), audit: FencingAudit(), digest: FillLogDigest(),
                              fold: FoldHistory(), snapshotSeq: nil, rejected: rejected)
    }

    static func replayTail(
        config: ClusterConfig, journal: any ExchangeJournal, from start: ExchangeState, audit startAudit: FencingAudit, digest startDigest: FillLogDigest,
        fold startFold: FoldHistory, snapshotSeq: Int64?, rejected: [String]
    ) throws -> Result {
        var state = start
        var audit = startAudit
        var digest = startDigest
        var fold = startFold
        if let bounds = try journal.recordBounds(), bounds.last < state.journalSeq {
            throw JournalError.corrupt(seq: bounds.last, reason: "the snapshot is at journal seq \(state.journalSeq) but the journal ends at \(bounds.last)")
        }
        let storedHead = try journal.storedFillHead()
        var backfill: [StoredFill] = []
        var backfilled: Int64 = 0
        var recent: [Fill] = []
        var replayed: Int64 = 0
        try journal.forEachRecord(after: state.journalSeq) { record in
            state.apply(record.entry, tsMs: record.tsMs)
            audit.observe(record.entry)
            replayed += 1
            for fill in state.takeNewFills() {
                let stored = StoredFill.chaining(fill, onto: &digest)
                fold.apply(fill)
                recent.append(fill)
                if fill.seq > storedHead { backfill.append(stored) }
            }
            if recent.count > 2 * ExchangeCore.recentFillCapacity { recent.removeFirst(recent.count - ExchangeCore.recentFillCapacity) }
            if backfill.count >= 10_000 {
                try journal.backfill(backfill)
                backfilled += Int64(backfill.count)
                backfill.removeAll(keepingCapacity: true)
            }
            return true
        }
        try journal.backfill(backfill)
        backfilled += Int64(backfill.count)
        if storedHead > digest.count {
            throw JournalError.corrupt(seq: state.journalSeq, reason: "the fill table holds fills up to seq \(storedHead) but the journal makes only \(digest.count)")
        }
        if recent.count < ExchangeCore.recentFillCapacity, digest.count > Int64(recent.count) {
            // Fills before the snapshot come from the table, so the cache starts full.
            let need = min(Int64(ExchangeCore.recentFillCapacity - recent.count), digest.count - Int64(recent.count))
            let before = try journal.storedFills(after: digest.count - Int64(recent.count) - need, limit: Int(need))
            recent = before + recent
        }
        return Result(
            state: state, audit: audit, digest: digest, fold: fold, recentFills: Array(recent.suffix(ExchangeCore.recentFillCapacity)),
            summary: Summary(snapshotSeq: snapshotSeq, replayedRecords: replayed, rejectedSnapshots: rejected, backfilledFills: backfilled))
    }

    /// The chain head the fill table stores for `seq` must be the one the journal recomputes:
    /// checked at the recovered head, so a fill table that disagrees with the journal stops
    /// the exchange instead of serving fills no replay would make.
    public static func verifyStoredHead(journal: any ExchangeJournal, digest: FillLogDigest) async throws {
        guard digest.count > 0, let stored = try await journal.fillChainHead(through: digest.count) else { return }
        guard stored == digest.hexDigest() else {
            throw JournalError.corrupt(seq: digest.count, reason: "the fill table's chain head for fill \(digest.count) is \(stored), the journal replays to \(digest.hexDigest())")
        }
    }

    /// `<sha256 hex> <fill count>` of fills 1…N (N = every fill, or `throughSeq`), by a full
    /// replay of the journal (which `exchange.journal.retain: all` keeps).
    public static func digestLine(config: ClusterConfig, journal: any ExchangeJournal, throughSeq: Int64?) throws -> String {
        if let throughSeq, throughSeq < 0 { throw ReplayError("--through-seq must be ≥ 0 (got \(throughSeq))") }
        var state = ExchangeState(config: config)
        var digest = FillLogDigest()
        var head: FillLogDigest?
        if throughSeq == 0 { head = digest }
        do {
            try journal.forEachRecord(after: 0) { record in
                state.apply(record.entry, tsMs: record.tsMs)
                for fill in state.takeNewFills() {
                    digest.append(fill)
                    if digest.count == throughSeq { head = digest }
                }
                return head == nil
            }
        } catch let error as JournalError {
            if case .pruned = error { throw ReplayError("\(error)") }
            throw error
        }
        if let throughSeq {
            guard let head else { throw ReplayError("the journal holds only \(digest.count) fills; --through-seq \(throughSeq) is beyond its end") }
            return "\(head.hexDigest()) \(throughSeq)"
        }
        return "\(digest.hexDigest()) \(digest.count)"
    }
}

public struct ReplayError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
