import Foundation

// MARK: Trading state: the fill ledger and the only writer of positions.

public enum TradingStateRoutes {
    /// Record a batch of fills (exactly-once by fill_id). Exchange role only.
    public static let recordFills = RouteSpec(.POST, "/v1/fills", roles: [.exchange])
    /// `?after_version=V&wait_ms=W`: long-polls until the ledger version exceeds V.
    /// `&symbols=A,B`: answers only those positions and waits until one of THEM is newer than V
    /// (what a node asks for, so fills on other nodes' symbols do not wake it).
    public static let positions = RouteSpec.read("/v1/positions")
    public static let position = RouteSpec.read("/v1/positions/{symbol}")
    /// `?symbol=&after=SEQ&limit=N`: pages through the ledger in seq order.
    public static let ledger = RouteSpec.read("/v1/fills")
    public static let ingest = RouteSpec.read("/v1/ingest")
    /// The ledger's fill-log chain head over its gap-free prefix, for the incremental check.
    public static let ledgerDigest = RouteSpec.read("/v1/fills/digest")

    public static let all: [RouteSpec] = [recordFills, positions, position, ledger, ingest, ledgerDigest]
}

public enum TradingStateErrorCode {
    /// A fill_id already recorded with different contents: the first is kept. 409.
    public static let conflictingDuplicate = "conflicting_duplicate"
    /// A seq already recorded under another fill_id: the exchange's log and the ledger disagree. 409.
    public static let seqConflict = "seq_conflict"
}

public struct RecordFillsRequest: Codable, Sendable, Hashable {
    public var fills: [Fill]
    public init(fills: [Fill]) { self.fills = fills }
}

public struct RecordFillsResult: Codable, Sendable, Hashable {
    public var recorded: [String]
    public var duplicates: [String]
    public var version: Int64
    public init(recorded: [String], duplicates: [String], version: Int64) {
        self.recorded = recorded
        self.duplicates = duplicates
        self.version = version
    }
}

/// The ledger's running fill-log chain (`FillLogDigest`) over fills 1…`chained_through_seq`,
/// the longest gap-free prefix it holds, kept up to date in the same transaction as the fills.
/// Equal to the exchange's head at the same seq ⇔ the ledger holds exactly the exchange's
/// fills 1…that seq, each once and unaltered.
public struct LedgerDigest: Codable, Sendable, Hashable {
    /// The ingest cursor (every fill up to it was ingested in order).
    public var cursor: Int64
    public var chainedThroughSeq: Int64
    /// Chain head through `chained_through_seq` (64 hex digits).
    public var fillLogSha256: String
    /// Fills the ledger holds in all (pushed fills ahead of the cursor included).
    public var fillCount: Int64

    public init(cursor: Int64, chainedThroughSeq: Int64, fillLogSha256: String, fillCount: Int64) {
        self.cursor = cursor
        self.chainedThroughSeq = chainedThroughSeq
        self.fillLogSha256 = fillLogSha256
        self.fillCount = fillCount
    }
}

public struct PositionsView: Codable, Sendable, Hashable {
    /// The ledger version: the number of distinct fills applied.
    public var version: Int64
    /// Every configured symbol, flat ones included.
    public var positions: [Position]
    public init(version: Int64, positions: [Position]) {
        self.version = version
        self.positions = positions
    }
}

public struct LedgerPage: Codable, Sendable, Hashable {
    public var fills: [Fill]
    /// Pass as `after` to get the next page; null when this page is the last.
    public var nextAfter: Int64?
    public init(fills: [Fill], nextAfter: Int64?) {
        self.fills = fills
        self.nextAfter = nextAfter
    }
}

public struct IngestStatus: Codable, Sendable, Hashable {
    /// Highest exchange seq applied (every seq ≤ cursor is in the ledger).
    public var cursor: Int64
    public var exchangeHeadSeq: Int64?
    public var lag: Int64?
    public var ledgerFillCount: Int64
    public var lastBatchAtMs: EpochMs?
    public var lastError: String?
    /// When `last_error` was last set; null while ingest is healthy.
    public var lastErrorAtMs: EpochMs?
    /// The ledger version (distinct fills applied, pushed ones included).
    public var version: Int64?
    /// Whether this replica pulls the exchange's log (with state replicas on PostgreSQL, one
    /// does at a time; the others follow the store). Absent from older services.
    public var ingesting: Bool?

    public init(cursor: Int64, exchangeHeadSeq: Int64?, lag: Int64?, ledgerFillCount: Int64, lastBatchAtMs: EpochMs?, lastError: String?) {
        self.init(cursor: cursor, exchangeHeadSeq: exchangeHeadSeq, lag: lag, ledgerFillCount: ledgerFillCount, lastBatchAtMs: lastBatchAtMs, lastError: lastError, lastErrorAtMs: nil, version: nil)
    }

    public init(
        cursor: Int64, exchangeHeadSeq: Int64?, lag: Int64?, ledgerFillCount: Int64, lastBatchAtMs: EpochMs?, lastError: String?, lastErrorAtMs: EpochMs?,
        version: Int64?, ingesting: Bool? = nil
    ) {
        self.ingesting = ingesting
        self.cursor = cursor
        self.exchangeHeadSeq = exchangeHeadSeq
        self.lag = lag
        self.ledgerFillCount = ledgerFillCount
        self.lastBatchAtMs = lastBatchAtMs
        self.lastError = lastError
        self.lastErrorAtMs = lastErrorAtMs
        self.version = version
    }
}

// MARK: Interfaces

/// Recording fills into the ledger (the exchange side of the contract).
public protocol FillRecorder: Sendable {
    func record(_ request: RecordFillsRequest) async throws(ClientError) -> RecordFillsResult
}

/// Querying positions, optionally waiting for a change.
public protocol PositionSource: Sendable {
    func positions(afterVersion: Int64?, waitMs: Int64) async throws(ClientError) -> PositionsView
    /// Only `symbols`' positions, waiting (with `afterVersion`) until one of them is newer than
    /// it; the answer's `version` is still the ledger version, to pass back as `afterVersion`.
    func positions(symbols: [String], afterVersion: Int64?, waitMs: Int64) async throws(ClientError) -> PositionsView
}

extension PositionSource {
    /// For sources without a filter: the whole view, cut down here. Correct, but wakes on every
    /// fill; `TradingStateClient` asks the service to filter instead.
    public func positions(symbols: [String], afterVersion: Int64?, waitMs: Int64) async throws(ClientError) -> PositionsView {
        let view = try await positions(afterVersion: afterVersion, waitMs: waitMs)
        let bySymbol = Dictionary(view.positions.map { ($0.symbol, $0) }, uniquingKeysWith: { first, _ in first })
        return PositionsView(version: view.version, positions: symbols.map { bySymbol[$0] ?? .flat($0) })
    }
}

public struct TradingStateClient: FillRecorder, PositionSource {
    public let endpoint: ServiceEndpoint
    public init(_ endpoint: ServiceEndpoint) { self.endpoint = endpoint }

    public func record(_ request: RecordFillsRequest) async throws(ClientError) -> RecordFillsResult {
        try await endpoint.call(.POST, TradingStateRoutes.recordFills.path, body: request)
    }
    public func positions(afterVersion: Int64? = nil, waitMs: Int64 = 0) async throws(ClientError) -> PositionsView {
        var query: [(String, String)] = []
        if let afterVersion { query += [("after_version", "\(afterVersion)"), ("wait_ms", "\(waitMs)")] }
        return try await endpoint.call(.GET, TradingStateRoutes.positions.path, query: query, timeoutMs: endpoint.timeoutMs + waitMs)
    }
    public func positions(symbols: [String], afterVersion: Int64? = nil, waitMs: Int64 = 0) async throws(ClientError) -> PositionsView {
        var query = [("symbols", symbols.joined(separator: ","))]
        if let afterVersion { query += [("after_version", "\(afterVersion)"), ("wait_ms", "\(waitMs)")] }
        return try await endpoint.call(.GET, TradingStateRoutes.positions.path, query: query, timeoutMs: endpoint.timeoutMs + waitMs)
    }
    public func position(symbol: String) async throws(ClientError) -> Position {
        try await endpoint.call(.GET, TradingStateRoutes.position.path(["symbol": symbol]))
    }
    /// Long-polls one symbol: returns as soon as its position's version exceeds `afterVersion`,
    /// else after `waitMs` with the current position.
    public func position(symbol: String, afterVersion: Int64, waitMs: Int64) async throws(ClientError) -> Position {
        try await endpoint.call(
            .GET, TradingStateRoutes.position.path(["symbol": symbol]),
            query: [("after_version", "\(afterVersion)"), ("wait_ms", "\(waitMs)")], timeoutMs: endpoint.timeoutMs + waitMs)
    }
    public func ledger(symbol: String? = nil, after: Int64 = 0, limit: Int = 1000) async throws(ClientError) -> LedgerPage {
        var query = [("after", "\(after)"), ("limit", "\(limit)")]
        if let symbol { query.append(("symbol", symbol)) }
        return try await endpoint.call(.GET, TradingStateRoutes.ledger.path, query: query)
    }
    public func ingest() async throws(ClientError) -> IngestStatus {
        try await endpoint.call(.GET, TradingStateRoutes.ingest.path)
    }
    public func ledgerDigest() async throws(ClientError) -> LedgerDigest {
        try await endpoint.call(.GET, TradingStateRoutes.ledgerDigest.path)
    }
}
