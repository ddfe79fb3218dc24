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
    public init(symbol: String, bidPrice: Ticks?, bidQty: Lots, askPrice: Ticks?, askQty: Lots, fencingToken: Int64, reason: QuoteReason, sentAtMs: EpochMs) {
        self.symbol = symbol
        self.bidPrice = bidPrice
        self.bidQty = bidQty
        self.askPrice = askPrice
        self.askQty = askQty
        self.fencingToken = fencingToken
        self.reason = reason
        self.sentAtMs = sentAtMs
    }
}

public struct NodeCounters: Codable, Sendable, Hashable {
    public var quotesSent: Int64
    public var quotesByReason: [String: Int64]
    public var rejections: [String: Int64]
    public var renewFailures: Int64
    public var grantsAcquired: Int64
    public var grantsLost: Int64
    public init(quotesSent: Int64 = 0, quotesByReason: [String: Int64] = [:], rejections: [String: Int64] = [:], renewFailures: Int64 = 0, grantsAcquired: Int64 = 0, grantsLost: Int64 = 0) {
        self.quotesSent = quotesSent
        self.quotesByReason = quotesByReason
        self.rejections = rejections
        self.renewFailures = renewFailures
        self.grantsAcquired = grantsAcquired
        self.grantsLost = grantsLost
    }
}

public struct NodeStatus: Codable, Sendable, Hashable {
    public var node: String
    public var assigned: [String]
    public var assignmentsVersion: Int64
    public var grants: [NodeGrantStatus]
    public var quotes: [NodeQuoteStatus]
    public var counters: NodeCounters
    public init(node: String, assigned: [String], assignmentsVersion: Int64, grants: [NodeGrantStatus], quotes: [NodeQuoteStatus], counters: NodeCounters) {
        self.node = node
        self.assigned = assigned
        self.assignmentsVersion = assignmentsVersion
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
