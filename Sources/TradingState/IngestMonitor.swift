import MMCore

/// What the ingest loop last saw, for `GET /v1/ingest` and the logs.
public actor IngestMonitor {
    public private(set) var cursor: Int64
    public private(set) var exchangeHeadSeq: Int64?
    public private(set) var lastBatchAtMs: EpochMs?
    public private(set) var lastError: String?
    public private(set) var lastErrorAtMs: EpochMs?
    public private(set) var consecutiveFailures: Int = 0

    public init(cursor: Int64, lastBatchAtMs: EpochMs?) {
        self.cursor = cursor
        self.lastBatchAtMs = lastBatchAtMs
    }

    func observedHead(_ headSeq: Int64) {
        exchangeHeadSeq = headSeq
        publishGauges()
    }

    private func publishGauges() {
        let metrics = TradingStateMetrics.shared
        metrics.cursor.set(cursor)
        if let exchangeHeadSeq { metrics.lag.set(max(0, exchangeHeadSeq - cursor)) }
        metrics.ingesting.set(Int64(ingesting ? 1 : 0))
    }

    /// Whether this replica pulls the exchange's log (false while another replica does).
    public private(set) var ingesting = true

    func setIngesting(_ value: Bool) {
        ingesting = value
        publishGauges()
    }

    /// The stored cursor, as another replica left it (a follower's view, or a new leader's start).
    func adopt(cursor: Int64, lastBatchAtMs: EpochMs?) {
        self.cursor = cursor
        if let lastBatchAtMs { self.lastBatchAtMs = lastBatchAtMs }
        publishGauges()
    }

    func applied(cursor: Int64, atMs: EpochMs) {
        self.cursor = cursor
        lastBatchAtMs = atMs
        publishGauges()
    }

    /// A healthy round trip: the error shown is the current problem, not history. Returns
    /// the error it clears, so recovery is logged once.
    @discardableResult
    func healthy() -> String? {
        let cleared = lastError
        lastError = nil
        lastErrorAtMs = nil
        consecutiveFailures = 0
        return cleared
    }

    /// Records a failure; returns true when it is new (so it is logged once, not per retry).
    @discardableResult
    func failed(_ message: String, atMs: EpochMs) -> Bool {
        let isNew = message != lastError
        lastError = message
        lastErrorAtMs = atMs
        consecutiveFailures += 1
        TradingStateMetrics.shared.ingestErrors.increment()
        return isNew
    }

    public func status(version: Int64) -> IngestStatus {
        IngestStatus(
            cursor: cursor, exchangeHeadSeq: exchangeHeadSeq, lag: exchangeHeadSeq.map { max(0, $0 - cursor) },
            ledgerFillCount: version, lastBatchAtMs: lastBatchAtMs, lastError: lastError, lastErrorAtMs: lastErrorAtMs, version: version,
            ingesting: ingesting)
    }
}
