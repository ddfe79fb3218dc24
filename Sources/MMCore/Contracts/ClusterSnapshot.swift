import Foundation

/// The documented, stable schema of `mmctl status --json` and of the GUI's `/api/view`.
/// Fields are only ever added; `schema_version` changes only if one is ever removed.
public struct ClusterSnapshot: Codable, Sendable, Hashable {
    public static let currentSchemaVersion = 1

    public struct Member: Codable, Sendable, Hashable {
        public var node: String
        public var status: PresenceStatus
        public var expiresInMs: Int64
        public init(node: String, status: PresenceStatus, expiresInMs: Int64) {
            self.node = node
            self.status = status
            self.expiresInMs = expiresInMs
        }
    }

    public struct Authority: Codable, Sendable, Hashable {
        public var node: String
        public var fencingToken: Int64
        public var expiresInMs: Int64
        public init(node: String, fencingToken: Int64, expiresInMs: Int64) {
            self.node = node
            self.fencingToken = fencingToken
            self.expiresInMs = expiresInMs
        }
    }

    public struct QuoteView: Codable, Sendable, Hashable {
        public var node: String
        public var fencingToken: Int64
        public var bid: Ticks?
        public var bidQty: Lots
        public var ask: Ticks?
        public var askQty: Lots
        public var updatedAtMs: EpochMs
        public init(node: String, fencingToken: Int64, bid: Ticks?, bidQty: Lots, ask: Ticks?, askQty: Lots, updatedAtMs: EpochMs) {
            self.node = node
            self.fencingToken = fencingToken
            self.bid = bid
            self.bidQty = bidQty
            self.ask = ask
            self.askQty = askQty
            self.updatedAtMs = updatedAtMs
        }
    }

    public struct PositionView: Codable, Sendable, Hashable {
        public var netQty: Lots
        public var avgPrice: Ticks
        public var realizedPnl: Int64
        public var unrealizedPnl: Int64?
        public var fillCount: Int64
        public init(netQty: Lots, avgPrice: Ticks, realizedPnl: Int64, unrealizedPnl: Int64?, fillCount: Int64) {
            self.netQty = netQty
            self.avgPrice = avgPrice
            self.realizedPnl = realizedPnl
            self.unrealizedPnl = unrealizedPnl
            self.fillCount = fillCount
        }
    }

    public struct SymbolView: Codable, Sendable, Hashable {
        public var symbol: String
        public var tickSize: String
        public var referencePrice: Ticks?
        public var assignedTo: String?
        public var authority: Authority?
        public var quote: QuoteView?
        public var position: PositionView?
        public init(symbol: String, tickSize: String, referencePrice: Ticks?, assignedTo: String?, authority: Authority?, quote: QuoteView?, position: PositionView?) {
            self.symbol = symbol
            self.tickSize = tickSize
            self.referencePrice = referencePrice
            self.assignedTo = assignedTo
            self.authority = authority
            self.quote = quote
            self.position = position
        }
    }

    public struct Assignments: Codable, Sendable, Hashable {
        public var version: Int64
        public var symbols: [String: String]
        public init(version: Int64, symbols: [String: String]) {
            self.version = version
            self.symbols = symbols
        }
    }

    public struct Totals: Codable, Sendable, Hashable {
        public var realizedPnl: Int64
        public var unrealizedPnl: Int64
        public var fillCount: Int64
        public init(realizedPnl: Int64, unrealizedPnl: Int64, fillCount: Int64) {
            self.realizedPnl = realizedPnl
            self.unrealizedPnl = unrealizedPnl
            self.fillCount = fillCount
        }
    }

    public struct ServiceError: Codable, Sendable, Hashable {
        public var service: String
        public var error: String
        public init(service: String, error: String) {
            self.service = service
            self.error = error
        }
    }

    public var schemaVersion: Int
    public var takenAtMs: EpochMs
    public var supervisor: SupervisorInfo?
    public var processes: [ProcessStatus]
    public var members: [Member]
    public var assignments: Assignments?
    public var symbols: [SymbolView]
    public var totals: Totals
    public var recentFills: [Fill]
    public var recentEvents: [ClusterEvent]
    public var errors: [ServiceError]

    public init(schemaVersion: Int = ClusterSnapshot.currentSchemaVersion, takenAtMs: EpochMs, supervisor: SupervisorInfo?, processes: [ProcessStatus], members: [Member], assignments: Assignments?, symbols: [SymbolView], totals: Totals, recentFills: [Fill], recentEvents: [ClusterEvent], errors: [ServiceError]) {
        self.schemaVersion = schemaVersion
        self.takenAtMs = takenAtMs
        self.supervisor = supervisor
        self.processes = processes
        self.members = members
        self.assignments = assignments
        self.symbols = symbols
        self.totals = totals
        self.recentFills = recentFills
        self.recentEvents = recentEvents
        self.errors = errors
    }
}
