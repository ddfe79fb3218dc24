import Foundation

// MARK: Market-maker node: inspection only (it acts on the exchange, nobody acts on it).

public enum NodeRoutes {
    public static let status = RouteSpec.read("/v1/status")
    public static let all: [RouteSpec] = [status]
}

public enum NodeID {
    /// Node ids are 1–32 characters of a–z, 0–9 and '-', so they are safe in paths, file
    /// names and the grant's signed string.
    public static func isValid(_ id: String) -> Bool {
        !id.isEmpty && id.count <= 32 && id.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-"
        }
    }
}

/// Why a node sent a quote: shown by `GET /v1/status` and the GUI.
public enum QuoteReason: String, Codable, Sendable, CaseIterable {
    case acquired, fill, price, position, timer, parameters
}

public struct NodeGrantStatus: Codable, Sendable, Hashable {
    public var symbol: String
    public var fencingToken: Int64
    public var expiresAtMs: EpochMs
    /// Time left by the node's own (safety-margined) reckoning.
    public var expiresInMs: Int64
    public init(symbol: String, fencingToken: Int64, expiresAtMs: EpochMs, expiresInMs: Int64) {
        self.symbol = symbol
        self.fencingToken = fencingToken
        self.expiresAtMs = expiresAtMs
        self.expiresInMs = expiresInMs
    }
}

public struct NodeQuoteStatus: Codable, Sendable, Hashable {
    public var symbol: String
    public var bidPrice: Ticks?
    public var bidQty: Lots
    public var askPrice: Ticks?
    public var askQty: Lots
    public var fencingToken: Int64
    public var reason: QuoteReason
    public var sentAtMs: EpochMs
    /// The inputs the quote was computed from: reference price and the position's net qty and
    /// version (from trading state).
    public var referencePrice: Ticks
    public var netQty: Lots
    public var positionVersion: Int64
    public init(
        symbol: String, bidPrice: Ticks?, bidQty: Lots, askPrice: Ticks?, askQty: Lots, fencingToken: Int64, reason: QuoteReason, sentAtMs: EpochMs,
        referencePrice: Ticks = 0, netQty: Lots = 0, positionVersion: Int64 = 0
    ) {
        self.symbol = symbol
        self.bidPrice = bidPrice
        self.bidQty = bidQty
        self.askPrice = askPrice
        self.askQty = askQty
        self.fencingToken = fencingToken
        self.reason = reason
        self.sentAtMs = sentAtMs
        self.referencePrice = referencePrice
        self.netQty = netQty
        self.positionVersion = positionVersion
    }
}

public struct NodeCounters: Codable, Sendable, Hashable {
    /// Quote replaces accepted by the exchange.
    public var quotesSent: Int64
    public var quotesByReason: [String: Int64]
    /// Exchange refusals of quote replaces and cancels, by error code ("unreachable" when the
    /// exchange could not be reached at all).
    public var rejections: [String: Int64]
    /// Renewal rounds that failed as a whole plus grants refused renewal.
    public var renewFailures: Int64
    public var grantsAcquired: Int64
    public var grantsLost: Int64
    /// Quote cancels accepted by the exchange.
    public var cancelsSent: Int64
    /// Why grants were given up: unassigned, renew_refused, local_expiry, stale_fencing_token, shutdown, …
    public var lossesByReason: [String: Int64]
    /// Acquire attempts the coordinator refused, by error code (held_by_other, startup_quiet_period, …).
    public var acquireRefusals: [String: Int64]
    public var heartbeatFailures: Int64
    public var deadmanFailures: Int64
    public init(
        quotesSent: Int64 = 0, quotesByReason: [String: Int64] = [:], rejections: [String: Int64] = [:], renewFailures: Int64 = 0, grantsAcquired: Int64 = 0,
        grantsLost: Int64 = 0, cancelsSent: Int64 = 0, lossesByReason: [String: Int64] = [:], acquireRefusals: [String: Int64] = [:], heartbeatFailures: Int64 = 0,
        deadmanFailures: Int64 = 0
    ) {
        self.quotesSent = quotesSent
        self.quotesByReason = quotesByReason
        self.rejections = rejections
        self.renewFailures = renewFailures
        self.grantsAcquired = grantsAcquired
        self.grantsLost = grantsLost
        self.cancelsSent = cancelsSent
        self.lossesByReason = lossesByReason
        self.acquireRefusals = acquireRefusals
        self.heartbeatFailures = heartbeatFailures
        self.deadmanFailures = deadmanFailures
    }
}

public struct NodeStatus: Codable, Sendable, Hashable {
    public var node: String
    /// True once the coordinator accepted a heartbeat (what /readyz reports).
    public var registered: Bool
    /// True from SIGTERM on: the node is cancelling, releasing and leaving.
    public var shuttingDown: Bool
    /// Symbols the coordinator assigns to this node (sorted).
    public var assigned: [String]
    public var assignmentsVersion: Int64
    /// The trading-state ledger version the node has seen.
    public var positionsVersion: Int64
    public var grants: [NodeGrantStatus]
    /// The last quote sent per held symbol.
    public var quotes: [NodeQuoteStatus]
    public var counters: NodeCounters
    public init(
        node: String, registered: Bool = true, shuttingDown: Bool = false, assigned: [String], assignmentsVersion: Int64, positionsVersion: Int64 = 0,
        grants: [NodeGrantStatus], quotes: [NodeQuoteStatus], counters: NodeCounters
    ) {
        self.node = node
        self.registered = registered
        self.shuttingDown = shuttingDown
        self.assigned = assigned
        self.assignmentsVersion = assignmentsVersion
        self.positionsVersion = positionsVersion
        self.grants = grants
        self.quotes = quotes
        self.counters = counters
    }
}

public struct NodeClient: Sendable {
    public let endpoint: ServiceEndpoint
    public init(_ endpoint: ServiceEndpoint) { self.endpoint = endpoint }

    public func status() async throws(ClientError) -> NodeStatus {
        try await endpoint.call(.GET, NodeRoutes.status.path)
    }
}
