import Logging
import MMCore

/// The node's settings, taken once from the cluster config.
public struct NodeSettings: Sendable {
    public var nodeId: String
    /// The base URL the node announces in its heartbeats.
    public var address: String
    /// This process's start (`Incarnation`), sent with every heartbeat, so the supervisor's
    /// death notice for it ends exactly this process's presence and grants, never a successor's.
    public var incarnation: String
    public var quoting: ClusterConfig.QuotingParameters
    public var maxPriceTicks: Ticks
    public var heartbeatIntervalMs: Int64
    public var renewIntervalMs: Int64
    public var safetyMarginMs: Int64
    public var deadmanTimeoutMs: Int64
    public var refreshIntervalMs: Int64
    public var priceIntervalMs: Int64
    /// The coordinator's grant TTL: the longest lifetime the node will ever trust a grant for.
    public var grantTtlMs: Int64
    /// How long to wait before asking again for a grant the coordinator refused.
    public var acquireRetryMs: Int64
    /// How long to wait before re-sending a quote the exchange could not take (unreachable, 5xx).
    public var transientRetryMs: Int64
    /// How long the long-polls (assignments, positions) wait at the server.
    public var longPollWaitMs: Int64
    /// How long the coordinator may park an acquire while the previous holder still holds the
    /// symbol (one grant TTL covers a holder that never releases). 0: answer at once.
    public var acquireWaitMs: Int64
    /// Acquire requests open at once; the rest wait for a slot.
    public var maxAcquiresInFlight: Int
    /// On SIGTERM, how long the engine may spend cancelling quotes and releasing grants, how
    /// long a heartbeat on the wire may still take once shutdown reaches the presence loop, and
    /// how long the leave may take. Against a live cluster each takes milliseconds; against a
    /// stopped (SIGSTOP) exchange or coordinator every request would otherwise wait out the
    /// client timeout (5 s) and hold the exit. Together they keep the exit under 1 s. What is
    /// left undone has its fallback: the dead-man's switch or the next holder's higher token
    /// pulls the quotes, the supervisor's death notice or the TTLs end grants and membership.
    public var shutdownCleanupMs: Int64
    public var heartbeatShutdownGraceMs: Int64
    public var leaveTimeoutMs: Int64

    public init(
        nodeId: String, address: String, quoting: ClusterConfig.QuotingParameters, maxPriceTicks: Ticks, heartbeatIntervalMs: Int64,
        renewIntervalMs: Int64, safetyMarginMs: Int64, deadmanTimeoutMs: Int64, refreshIntervalMs: Int64, priceIntervalMs: Int64, grantTtlMs: Int64,
        acquireRetryMs: Int64 = 150, transientRetryMs: Int64 = 200, longPollWaitMs: Int64 = 5_000, acquireWaitMs: Int64? = nil,
        maxAcquiresInFlight: Int = 16, shutdownCleanupMs: Int64 = 500, heartbeatShutdownGraceMs: Int64 = 300, leaveTimeoutMs: Int64 = 150,
        incarnation: String = Incarnation.random()
    ) {
        self.nodeId = nodeId
        self.address = address
        self.incarnation = incarnation
        self.quoting = quoting
        self.maxPriceTicks = maxPriceTicks
        self.heartbeatIntervalMs = heartbeatIntervalMs
        self.renewIntervalMs = renewIntervalMs
        self.safetyMarginMs = safetyMarginMs
        self.deadmanTimeoutMs = deadmanTimeoutMs
        self.refreshIntervalMs = refreshIntervalMs
        self.priceIntervalMs = priceIntervalMs
        self.grantTtlMs = grantTtlMs
        self.acquireRetryMs = acquireRetryMs
        self.transientRetryMs = transientRetryMs
        self.longPollWaitMs = longPollWaitMs
        self.acquireWaitMs = acquireWaitMs ?? grantTtlMs
        self.maxAcquiresInFlight = maxAcquiresInFlight
        self.shutdownCleanupMs = shutdownCleanupMs
        self.heartbeatShutdownGraceMs = heartbeatShutdownGraceMs
        self.leaveTimeoutMs = leaveTimeoutMs
    }

    /// `incarnation` nil: a fresh random one (the node was started without `--incarnation`).
    public init(nodeId: String, address: String, config: ClusterConfig, incarnation: String? = nil) {
        self.init(
            nodeId: nodeId, address: address, quoting: config.quoting, maxPriceTicks: config.exchange.maxPriceTicks,
            heartbeatIntervalMs: config.node.heartbeatIntervalMs, renewIntervalMs: config.node.renewIntervalMs,
            safetyMarginMs: config.node.safetyMarginMs, deadmanTimeoutMs: config.node.deadmanTimeoutMs,
            refreshIntervalMs: config.node.refreshIntervalMs, priceIntervalMs: config.exchange.priceIntervalMs,
            grantTtlMs: config.coordinator.grantTtlMs, incarnation: incarnation ?? Incarnation.random())
    }
}

/// Why the node gives a symbol up (the keys of `counters.losses_by_reason`).
public enum LossReason {
    public static let unassigned = "unassigned"
    public static let renewRefused = "renew_refused"
    public static let localExpiry = "local_expiry"
    public static let shutdown = "shutdown"
    public static let unwantedGrant = "unwanted_grant"
}

/// A symbol the node has stopped acting on and still has to clean up after: cancel its quote
/// (when the grant still allows it) and release the grant.
public struct PendingLoss: Sendable, Hashable {
    public var lease: GrantLease
    public var reason: String
    /// False when the exchange or coordinator already said the grant no longer counts: a cancel
    /// would be refused anyway, and the next holder's higher token supersedes the quote.
    public var mayCancel: Bool
}

/// One unit of work for the quoting engine. Each round holds at most one per symbol, and the
/// engine finishes a round before planning the next, so a symbol's exchange requests are
/// strictly ordered (a late replace can never land after the cancel that gave the symbol up).
public enum EngineWork: Sendable, Hashable {
    case quote(symbol: String, lease: GrantLease, decision: QuoteDecision)
    case giveUp(symbol: String, loss: PendingLoss)

    public var symbol: String {
        switch self {
        case .quote(let symbol, _, _), .giveUp(let symbol, _): symbol
        }
    }
}

/// Everything the node knows, in one actor: its assignments, the leases it holds, the inputs
/// read from the authorities (prices from the exchange, positions from trading state) and
/// what it last sent. None of it is needed after a restart: it is all read back or re-acquired.
public actor NodeState {
    public let settings: NodeSettings
    let time: any MonotonicTimeSource
    let clock: any EpochClock
    let logger: Logger
    /// Rung when the engine has something to look at (inputs moved, a lease came or went).
    public nonisolated let engineBell = Doorbell()
    /// Rung when there may be a symbol to acquire.
    public nonisolated let acquirerBell = Doorbell()
    /// Rung when the coordinator no longer knows this node (it restarted, or the presence
    /// lapsed): the presence loop heartbeats at once instead of at its next interval.
    public nonisolated let presenceBell = Doorbell()
    /// Rung when the renewal round should run now: a new assignment table means the
    /// coordinator changed something, possibly restarted and forgot who holds what, and a
    /// renewal presenting the grants at once lets it re-adopt them (and show their holders)
    /// within milliseconds instead of at the next interval.
    public nonisolated let renewerBell = Doorbell()
    /// Rung when symbols are newly assigned, so their prices are fetched before the acquire.
    public nonisolated let priceBell = Doorbell()
    /// Rung when symbols are newly assigned: the position long-poll asks for the node's symbols
    /// only, so it is cut and asked again at once with the new set (a newly assigned symbol's
    /// position must be known before it is quoted). Symbols that only leave do not cut it (a
    /// cut request costs a connection): the next answer is followed by a poll of the new set.
    public nonisolated let positionBell = Doorbell()

    public private(set) var registered = false
    public private(set) var shuttingDown = false
    public private(set) var assignmentsVersion: Int64 = -1
    public private(set) var assigned: Set<String> = []
    public private(set) var leases: [String: GrantLease] = [:] {
        didSet { if leases.count != oldValue.count { NodeMetrics.shared.held(leases.count) } }
    }
    public private(set) var pendingLosses: [String: PendingLoss] = [:]
    public private(set) var prices: [String: ReferencePrice] = [:]
    public private(set) var positions: [String: Position] = [:]
    public private(set) var positionsVersion: Int64 = -1
    public private(set) var lastSent: [String: SentQuote] = [:]
    private var retryAt: [String: MonotonicInstant] = [:]
    public private(set) var counters = NodeCounters() {
        didSet { NodeMetrics.shared.mirror(from: oldValue, to: counters) }
    }

    public init(settings: NodeSettings, time: any MonotonicTimeSource, clock: any EpochClock, logger: Logger) {
        self.settings = settings
        self.time = time
        self.clock = clock
        self.logger = logger
    }

    // MARK: Presence

    public func markRegistered() {
        if !registered { logger.info("registered with the coordinator as \(settings.nodeId)") }
        registered = true
    }

    public func countHeartbeatFailure() { counters.heartbeatFailures += 1 }

    // MARK: Assignments

    /// Applies a newer assignment table; symbols no longer assigned here are given up at once.
    @discardableResult
    public func applyAssignments(_ table: AssignmentTable) -> Bool {
        guard table.version > assignmentsVersion else { return false }
        assignmentsVersion = table.version
        let mine = Set(table.symbols(of: settings.nodeId))
        if mine != assigned {
            // Only the change: at 1,000 symbols whole lists would flood the log on every table.
            let added = mine.subtracting(assigned).sorted(), removed = assigned.subtracting(mine).sorted()
            logger.info("assignments v\(table.version): \(mine.count) symbols, +\(Self.shortList(added)) -\(Self.shortList(removed))")
            if !added.isEmpty {
                priceBell.ring()
                positionBell.ring()
            }
        }
        assigned = mine
        // The position feed follows only assigned symbols: a position kept for a symbol that
        // leaves would go stale, and be quoted from if the symbol came back before the feed's
        // first answer for it ("nothing is quoted until a position is known" must hold then too).
        for symbol in positions.keys where !mine.contains(symbol) { positions.removeValue(forKey: symbol) }
        for symbol in leases.keys.sorted() where !mine.contains(symbol) {
            loseSymbol(symbol, reason: LossReason.unassigned, mayCancel: true)
        }
        acquirerBell.ring()
        if !leases.isEmpty { renewerBell.ring() }
        return true
    }

    static func shortList(_ symbols: [String]) -> String {
        symbols.isEmpty ? "none" : symbols.prefix(8).joined(separator: ",") + (symbols.count > 8 ? " and \(symbols.count - 8) more" : "")
    }

    /// The coordinator restarted and counts versions from scratch: accept its next table.
    public func resetAssignmentsVersion() { assignmentsVersion = -1 }

    /// Assigned symbols the node neither holds nor is still cleaning up after.
    public func symbolsToAcquire() -> [String] {
        guard !shuttingDown else { return [] }
        return assigned.filter { leases[$0] == nil && pendingLosses[$0] == nil }.sorted()
    }

    // MARK: Grants

    /// Installs a freshly acquired grant; one the node no longer wants (unassigned meanwhile,
    /// shutting down, or useless on arrival) is queued for release instead.
    @discardableResult
    public func installGrant(_ grant: AuthorityGrant, requestSentAt: MonotonicInstant) -> Bool {
        let lease = GrantLease(grant: grant, requestSentAt: requestSentAt, safetyMarginMs: settings.safetyMarginMs, maximumLifetimeMs: settings.grantTtlMs)
        counters.grantsAcquired += 1
        let unwanted = shuttingDown || !assigned.contains(grant.symbol) || leases[grant.symbol] != nil || pendingLosses[grant.symbol] != nil
        if unwanted || !lease.isValid(at: time.now()) {
            logger.info("releasing grant \(grant.symbol)#\(grant.fencingToken) at once: \(unwanted ? "no longer wanted" : "its lifetime is within the safety margin")")
            if pendingLosses[grant.symbol] == nil {
                pendingLosses[grant.symbol] = PendingLoss(lease: lease, reason: LossReason.unwantedGrant, mayCancel: false)
                counters.grantsLost += 1
                counters.lossesByReason[LossReason.unwantedGrant, default: 0] += 1
            }
            engineBell.ring()
            return false
        }
        logger.info("acquired \(grant.symbol) token \(grant.fencingToken), trusted for \(lease.remainingMs(at: time.now())) ms")
        leases[grant.symbol] = lease
        retryAt[grant.symbol] = nil
        engineBell.ring()
        return true
    }

    public func countAcquireRefusal(_ code: String) { counters.acquireRefusals[code, default: 0] += 1 }

    /// The grants to renew this round (only those still valid: a lapsed one cannot be renewed).
    public func leasesToRenew() -> [GrantLease] {
        let now = time.now()
        return leases.values.filter { $0.isValid(at: now) }.sorted { $0.symbol < $1.symbol }
    }

    /// Whether the node holds authority for anything right now: only then does it keep its
    /// dead-man's switch armed (see `GrantRenewer`).
    public func holdsValidLease() -> Bool {
        let now = time.now()
        return leases.values.contains { $0.isValid(at: now) }
    }

    public func applyRenewal(_ result: BatchRenewResult, requestSentAt: MonotonicInstant) {
        for grant in result.renewed {
            guard let lease = leases[grant.symbol] else { continue }
            leases[grant.symbol] = lease.renewed(
                with: grant, requestSentAt: requestSentAt, safetyMarginMs: settings.safetyMarginMs, maximumLifetimeMs: settings.grantTtlMs)
        }
        for refusal in result.refused where leases[refusal.symbol] != nil {
            counters.renewFailures += 1
            logger.warning("renewal of \(refusal.symbol) refused: \(refusal.code): \(refusal.message)")
            // The coordinator no longer backs the grant; cancel only while our own reckoning
            // still says it is valid (the exchange would accept it until then).
            loseSymbol(refusal.symbol, reason: LossReason.renewRefused, mayCancel: true)
        }
    }

    public func countRenewFailure() { counters.renewFailures += 1 }
    public func countDeadmanFailure() { counters.deadmanFailures += 1 }

    /// Stops acting on `symbol` at once and queues its cleanup for the engine.
    public func loseSymbol(_ symbol: String, reason: String, mayCancel: Bool) {
        guard let lease = leases.removeValue(forKey: symbol) else { return }
        logger.warning("giving up \(symbol) (token \(lease.fencingToken)): \(reason)")
        pendingLosses[symbol] = PendingLoss(lease: lease, reason: reason, mayCancel: mayCancel)
        retryAt[symbol] = nil
        counters.grantsLost += 1
        counters.lossesByReason[reason, default: 0] += 1
        engineBell.ring()
    }

    /// The engine cleaned up after a lost symbol: it may be acquired again if still assigned.
    public func finishLoss(_ symbol: String) {
        pendingLosses[symbol] = nil
        lastSent[symbol] = nil
        acquirerBell.ring()
    }

    // MARK: Inputs

    public func applyPrices(_ newPrices: [ReferencePrice]) {
        var moved = false
        for price in newPrices {
            if let known = prices[price.symbol], known.tickIndex > price.tickIndex { continue }
            if prices[price.symbol] != price {
                prices[price.symbol] = price
                if leases[price.symbol] != nil { moved = true }
            }
        }
        if moved { engineBell.ring() }
    }

    /// Trading state's ledger version went back (its data was reset): forget what it said.
    public func resetPositionsVersion() {
        positionsVersion = -1
        positions = [:]
    }

    public func applyPositions(_ view: PositionsView) {
        guard view.version >= positionsVersion else { return }
        positionsVersion = view.version
        var moved = false
        // Only assigned symbols: an answer to a poll made before a symbol left must not bring
        // its position back (it would be stale if the symbol returned).
        for position in view.positions where positions[position.symbol] != position && assigned.contains(position.symbol) {
            if let known = positions[position.symbol], known.version > position.version { continue }
            positions[position.symbol] = position
            if leases[position.symbol] != nil { moved = true }
        }
        if moved { engineBell.ring() }
    }

    // MARK: The engine's rounds

    /// Everything the engine should do now, and when to look again if nothing rings sooner.
    public func planRound() -> (work: [EngineWork], nextDeadline: MonotonicInstant?) {
        let now = time.now()
        for (symbol, lease) in leases where !lease.isValid(at: now) {
            loseSymbol(symbol, reason: LossReason.localExpiry, mayCancel: false)
        }
        var work: [EngineWork] = pendingLosses.sorted { $0.key < $1.key }.map { .giveUp(symbol: $0.key, loss: $0.value) }
        var deadline: MonotonicInstant?
        func consider(_ instant: MonotonicInstant) { deadline = min(deadline ?? instant, instant) }
        for (symbol, lease) in leases.sorted(by: { $0.key < $1.key }) {
            consider(lease.validUntil)
            if let retry = retryAt[symbol], retry > now {
                consider(retry)
                continue
            }
            let last = lastSent[symbol]
            if let decision = QuoteDecision.decide(
                fencingToken: lease.fencingToken, price: prices[symbol], position: positions[symbol], last: last,
                parameters: settings.quoting, maxPriceTicks: settings.maxPriceTicks, refreshIntervalMs: settings.refreshIntervalMs, now: now)
            {
                work.append(.quote(symbol: symbol, lease: lease, decision: decision))
            } else if let last, last.fencingToken == lease.fencingToken {
                consider(last.sentAt.adding(milliseconds: settings.refreshIntervalMs))
            }
        }
        return (work, deadline)
    }

    /// The lease to act with, checked against the monotonic clock at the moment of asking:
    /// the engine calls this immediately before every replace and cancel.
    public func validLease(for symbol: String, token: Int64) -> GrantLease? {
        guard let lease = leases[symbol], lease.fencingToken == token else { return nil }
        let now = time.now()
        guard lease.isValid(at: now) else {
            loseSymbol(symbol, reason: LossReason.localExpiry, mayCancel: false)
            return nil
        }
        return lease
    }

    /// Whether a cleanup may still cancel: its lease is valid right now by the node's reckoning.
    public func mayStillCancel(_ loss: PendingLoss) -> Bool {
        loss.mayCancel && loss.lease.isValid(at: time.now())
    }

    public func recordSent(symbol: String, token: Int64, decision: QuoteDecision, sentAt: MonotonicInstant) {
        switch decision.action {
        case .replace:
            counters.quotesSent += 1
            counters.quotesByReason[decision.reason.rawValue, default: 0] += 1
        case .cancel:
            counters.cancelsSent += 1
        }
        guard leases[symbol]?.fencingToken == token else { return }
        lastSent[symbol] = SentQuote(
            target: decision.target, fencingToken: token, reason: decision.reason, inputs: decision.inputs, sentAt: sentAt, sentAtMs: clock.nowMs())
        retryAt[symbol] = nil
    }

    public func recordRefusal(symbol: String, token: Int64, refusal: ExchangeRefusal) {
        counters.rejections[refusal.code, default: 0] += 1
        guard leases[symbol]?.fencingToken == token else { return }
        switch refusal {
        case .lostAuthority(let code):
            loseSymbol(symbol, reason: code, mayCancel: false)
        case .refused:
            retryAt[symbol] = time.now().adding(milliseconds: settings.refreshIntervalMs)
        case .transient:
            retryAt[symbol] = time.now().adding(milliseconds: settings.transientRetryMs)
        }
    }

    /// A cleanup's cancel was refused; counted like any other exchange refusal.
    public func countCancelRefusal(_ refusal: ExchangeRefusal) { counters.rejections[refusal.code, default: 0] += 1 }
    public func countCancel() { counters.cancelsSent += 1 }

    // MARK: Shutdown

    /// From here on nothing is acquired and every held symbol is given up (with a cancel).
    public func beginShutdown() {
        guard !shuttingDown else { return }
        shuttingDown = true
        logger.info("shutting down: cancelling quotes and releasing \(leases.count) grant(s)")
        for symbol in leases.keys.sorted() { loseSymbol(symbol, reason: LossReason.shutdown, mayCancel: true) }
        engineBell.ring()
    }

    /// True once shutting down and nothing is held or left to clean up.
    public var isDrained: Bool { shuttingDown && leases.isEmpty && pendingLosses.isEmpty }

    // MARK: Inspection

    public func status() -> NodeStatus {
        let now = time.now()
        let grants = leases.values.sorted { $0.symbol < $1.symbol }.map {
            NodeGrantStatus(symbol: $0.symbol, fencingToken: $0.fencingToken, expiresAtMs: $0.grant.expiresAtMs, expiresInMs: $0.remainingMs(at: now))
        }
        let quotes = lastSent.filter { leases[$0.key]?.fencingToken == $0.value.fencingToken }.sorted { $0.key < $1.key }.map { symbol, sent in
            NodeQuoteStatus(
                symbol: symbol, bidPrice: sent.target.bidPrice, bidQty: sent.target.bidQty, askPrice: sent.target.askPrice, askQty: sent.target.askQty,
                fencingToken: sent.fencingToken, reason: sent.reason, sentAtMs: sent.sentAtMs,
                referencePrice: sent.inputs.referencePrice, netQty: sent.inputs.netQty, positionVersion: sent.inputs.positionVersion)
        }
        return NodeStatus(
            node: settings.nodeId, registered: registered, shuttingDown: shuttingDown, assigned: assigned.sorted(),
            assignmentsVersion: max(assignmentsVersion, 0), positionsVersion: max(positionsVersion, 0), grants: grants, quotes: quotes, counters: counters)
    }
}
