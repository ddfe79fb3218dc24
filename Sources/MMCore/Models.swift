import Foundation

// Every model that crosses a process boundary. All integers: prices in the symbol's ticks,
// quantities in lots, cash and PnL in ticks×lots, times in Unix epoch milliseconds.

public typealias Ticks = Int64
public typealias Lots = Int64
public typealias EpochMs = Int64

/// A tradable instrument as configured for the cluster.
public struct SymbolSpec: Codable, Sendable, Hashable {
    public var symbol: String
    /// The price of one tick as a decimal string, for display only ("0.01").
    public var tickSize: String
    /// The reference price's anchor, in ticks.
    public var basePrice: Ticks
    /// Units per lot, for display only.
    public var lotSize: Int64

    public init(symbol: String, tickSize: String, basePrice: Ticks, lotSize: Int64) {
        self.symbol = symbol
        self.tickSize = tickSize
        self.basePrice = basePrice
        self.lotSize = lotSize
    }
}

public enum Side: String, Codable, Sendable, CaseIterable {
    case buy, sell

    public var opposite: Side { self == .buy ? .sell : .buy }
    /// +1 for buy, -1 for sell: the sign a fill of this side gives the quantity.
    public var sign: Int64 { self == .buy ? 1 : -1 }
}

public enum TimeInForce: String, Codable, Sendable, CaseIterable {
    /// Rests on the book until filled or cancelled.
    case gtc
    /// Matches what it can at once; the remainder is cancelled.
    case ioc
}

/// The market maker's two-sided resting quote for one symbol, as the exchange holds it.
/// A side with no price is withdrawn; quantities are what is still resting.
public struct Quote: Codable, Sendable, Hashable {
    public var symbol: String
    public var node: String
    public var fencingToken: Int64
    public var bidPrice: Ticks?
    public var bidQty: Lots
    public var askPrice: Ticks?
    public var askQty: Lots
    public var updatedAtMs: EpochMs

    public init(symbol: String, node: String, fencingToken: Int64, bidPrice: Ticks?, bidQty: Lots, askPrice: Ticks?, askQty: Lots, updatedAtMs: EpochMs) {
        self.symbol = symbol
        self.node = node
        self.fencingToken = fencingToken
        self.bidPrice = bidPrice
        self.bidQty = bidQty
        self.askPrice = askPrice
        self.askQty = askQty
        self.updatedAtMs = updatedAtMs
    }
}

/// `PUT /v1/quotes/{symbol}`: atomically replaces the symbol's market-maker quote.
/// A side is present when its price is given; its qty must then be > 0.
public struct QuoteRequest: Codable, Sendable, Hashable {
    public var node: String
    public var grant: AuthorityGrant
    public var bidPrice: Ticks?
    public var bidQty: Lots
    public var askPrice: Ticks?
    public var askQty: Lots

    public init(node: String, grant: AuthorityGrant, bidPrice: Ticks?, bidQty: Lots, askPrice: Ticks?, askQty: Lots) {
        self.node = node
        self.grant = grant
        self.bidPrice = bidPrice
        self.bidQty = bidQty
        self.askPrice = askPrice
        self.askQty = askQty
    }
}

/// Body of every fenced mutation that carries nothing else: quote cancel, order cancel.
public struct FencedRequest: Codable, Sendable, Hashable {
    public var node: String
    public var grant: AuthorityGrant

    public init(node: String, grant: AuthorityGrant) {
        self.node = node
        self.grant = grant
    }
}

/// `POST /v1/orders`: a limit order from a market-maker node. Idempotent by client_order_id.
public struct OrderRequest: Codable, Sendable, Hashable {
    public var clientOrderId: String
    public var symbol: String
    public var side: Side
    public var price: Ticks
    public var qty: Lots
    public var timeInForce: TimeInForce
    public var node: String
    public var grant: AuthorityGrant

    public init(clientOrderId: String, symbol: String, side: Side, price: Ticks, qty: Lots, timeInForce: TimeInForce, node: String, grant: AuthorityGrant) {
        self.clientOrderId = clientOrderId
        self.symbol = symbol
        self.side = side
        self.price = price
        self.qty = qty
        self.timeInForce = timeInForce
        self.node = node
        self.grant = grant
    }
}

public enum OrderStatus: String, Codable, Sendable {
    case resting, filled, cancelled, partiallyFilledCancelled = "partially_filled_cancelled"
}

/// The exchange's answer to an accepted order (also the replayed answer to a resubmission).
public struct OrderAck: Codable, Sendable, Hashable {
    public var orderId: String
    public var clientOrderId: String
    public var symbol: String
    public var side: Side
    public var price: Ticks
    public var qty: Lots
    public var filledQty: Lots
    public var status: OrderStatus
    public var fillIds: [String]
    public var acceptedAtMs: EpochMs

    public init(orderId: String, clientOrderId: String, symbol: String, side: Side, price: Ticks, qty: Lots, filledQty: Lots, status: OrderStatus, fillIds: [String], acceptedAtMs: EpochMs) {
        self.orderId = orderId
        self.clientOrderId = clientOrderId
        self.symbol = symbol
        self.side = side
        self.price = price
        self.qty = qty
        self.filledQty = filledQty
        self.status = status
        self.fillIds = fillIds
        self.acceptedAtMs = acceptedAtMs
    }
}

/// One execution against a market-maker order or quote. `side` is the market maker's side
/// (buy when its bid was hit). `seq` is gap-free from 1; `fill_id` is never reused.
public struct Fill: Codable, Sendable, Hashable {
    public var fillId: String
    public var seq: Int64
    public var symbol: String
    public var side: Side
    public var price: Ticks
    public var qty: Lots
    /// The market maker's resting order (a quote side or a plain order).
    public var makerOrderId: String
    /// The incoming order that crossed it (usually external flow).
    public var takerOrderId: String
    public var node: String
    public var fencingToken: Int64
    public var tsMs: EpochMs

    public init(fillId: String, seq: Int64, symbol: String, side: Side, price: Ticks, qty: Lots, makerOrderId: String, takerOrderId: String, node: String, fencingToken: Int64, tsMs: EpochMs) {
        self.fillId = fillId
        self.seq = seq
        self.symbol = symbol
        self.side = side
        self.price = price
        self.qty = qty
        self.makerOrderId = makerOrderId
        self.takerOrderId = takerOrderId
        self.node = node
        self.fencingToken = fencingToken
        self.tsMs = tsMs
    }
}

/// The cluster's position in one symbol, as the trading-state service folds it from the ledger.
/// See `PositionFold` for the rules.
public struct Position: Codable, Sendable, Hashable {
    public var symbol: String
    /// Signed: > 0 long, < 0 short.
    public var netQty: Lots
    /// |open_cost| / |net_qty| truncated; 0 when flat. Display only: PnL uses open_cost.
    public var avgPrice: Ticks
    /// Signed cost basis of the open position (ticks×lots): + for long, − for short.
    public var openCost: Int64
    public var realizedPnl: Int64
    public var fillCount: Int64
    public var lastFillSeq: Int64
    /// The ledger version at this position's last change (strictly increasing per change).
    public var version: Int64

    public init(symbol: String, netQty: Lots = 0, avgPrice: Ticks = 0, openCost: Int64 = 0, realizedPnl: Int64 = 0, fillCount: Int64 = 0, lastFillSeq: Int64 = 0, version: Int64 = 0) {
        self.symbol = symbol
        self.netQty = netQty
        self.avgPrice = avgPrice
        self.openCost = openCost
        self.realizedPnl = realizedPnl
        self.fillCount = fillCount
        self.lastFillSeq = lastFillSeq
        self.version = version
    }

    public static func flat(_ symbol: String) -> Position { Position(symbol: symbol) }

    /// Mark-to-market PnL of the open position at `referencePrice` (ticks×lots).
    public func unrealizedPnl(at referencePrice: Ticks) -> Int64 {
        referencePrice * netQty - openCost
    }
}

/// The coordinator's signed permission for one node to act on one symbol until `expires_at_ms`.
public struct AuthorityGrant: Codable, Sendable, Hashable {
    public var symbol: String
    public var node: String
    public var fencingToken: Int64
    public var grantedAtMs: EpochMs
    public var expiresAtMs: EpochMs
    /// Hex HMAC-SHA256 over `GrantSigner.canonicalBytes`.
    public var signature: String

    public init(symbol: String, node: String, fencingToken: Int64, grantedAtMs: EpochMs, expiresAtMs: EpochMs, signature: String) {
        self.symbol = symbol
        self.node = node
        self.fencingToken = fencingToken
        self.grantedAtMs = grantedAtMs
        self.expiresAtMs = expiresAtMs
        self.signature = signature
    }
}

public enum PresenceStatus: String, Codable, Sendable {
    case alive, expired, left
    /// The supervisor reported the member's process dead (a death notice), so its presence
    /// ended at once instead of at the TTL.
    case dead
}

public struct NodePresence: Codable, Sendable, Hashable {
    public var node: String
    public var address: String
    public var joinedAtMs: EpochMs
    public var lastHeartbeatMs: EpochMs
    public var expiresAtMs: EpochMs
    public var expiresInMs: Int64
    public var status: PresenceStatus
    /// The process start its latest heartbeat came from; absent when the node sent none.
    public var incarnation: String?

    public init(
        node: String, address: String, joinedAtMs: EpochMs, lastHeartbeatMs: EpochMs, expiresAtMs: EpochMs, expiresInMs: Int64, status: PresenceStatus,
        incarnation: String? = nil
    ) {
        self.node = node
        self.address = address
        self.joinedAtMs = joinedAtMs
        self.lastHeartbeatMs = lastHeartbeatMs
        self.expiresAtMs = expiresAtMs
        self.expiresInMs = expiresInMs
        self.status = status
        self.incarnation = incarnation
    }
}

/// Symbol → node for the live member set. Symbols are absent while no node is alive.
public struct AssignmentTable: Codable, Sendable, Hashable {
    public var version: Int64
    public var symbols: [String: String]

    public init(version: Int64, symbols: [String: String]) {
        self.version = version
        self.symbols = symbols
    }

    public func symbols(of node: String) -> [String] {
        symbols.filter { $0.value == node }.map(\.key).sorted()
    }
}

/// One entry of the coordinator's durable event log (also used for supervisor events).
public struct ClusterEvent: Codable, Sendable, Hashable {
    public var seq: Int64
    public var tsMs: EpochMs
    /// join, leave, expire, death, grant, adopt, renew_refused, release, revoke, rebalance,
    /// grant_expired, coordinator_started; supervisor: spawn, exit, restart, fatal.
    public var kind: String
    public var symbol: String?
    public var node: String?
    public var fencingToken: Int64?
    /// For grant, renew and grant_expired events: the grant's expiry at that moment, so a
    /// checker can rebuild every grant's lifetime [granted, min(release, expiry)] from the log.
    public var expiresAtMs: EpochMs?
    public var detail: String

    public init(seq: Int64, tsMs: EpochMs, kind: String, symbol: String? = nil, node: String? = nil, fencingToken: Int64? = nil, expiresAtMs: EpochMs? = nil, detail: String) {
        self.seq = seq
        self.tsMs = tsMs
        self.kind = kind
        self.symbol = symbol
        self.node = node
        self.fencingToken = fencingToken
        self.expiresAtMs = expiresAtMs
        self.detail = detail
    }
}

/// The exchange's reference price for a symbol at one tick of its price path.
public struct ReferencePrice: Codable, Sendable, Hashable {
    public var symbol: String
    public var price: Ticks
    public var tickIndex: Int64
    public var tsMs: EpochMs

    public init(symbol: String, price: Ticks, tickIndex: Int64, tsMs: EpochMs) {
        self.symbol = symbol
        self.price = price
        self.tickIndex = tickIndex
        self.tsMs = tsMs
    }
}

/// `GET /v1/info` on every service.
public struct ServiceInfo: Codable, Sendable, Hashable {
    public var role: String
    public var name: String
    public var version: String
    public var pid: Int32
    public var startedAtMs: EpochMs
    public var configDigest: String
    /// The answering process's own clock (its `EpochClock`) when it built this answer, so a
    /// reader can estimate how far that clock is from its own (`mmctl status` across hosts,
    /// `ClockOffset`). Optional because a process of an older build does not send it; a reader
    /// then knows nothing about that clock rather than something wrong.
    public var nowMs: EpochMs?

    public init(role: String, name: String, version: String, pid: Int32, startedAtMs: EpochMs, configDigest: String, nowMs: EpochMs? = nil) {
        self.role = role
        self.name = name
        self.version = version
        self.pid = pid
        self.startedAtMs = startedAtMs
        self.configDigest = configDigest
        self.nowMs = nowMs
    }
}

public enum MMVersion {
    public static let current = "0.1.0"
}
