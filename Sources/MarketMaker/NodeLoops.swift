import AsyncPrimitives
import Logging
import MMCore
import ServiceLifecycle

// The node's long-running loops, each a swift-service-lifecycle Service. They are handed to
// the application in this order: presence, assignments, quoting, authority, prices,
// positions. The service group shuts services down one by one in REVERSE order, so on
// SIGTERM the inputs stop first, then no grant is acquired or renewed any more, then the
// quoting engine cancels every quote and releases every grant, and only then does the
// presence loop leave the cluster: cancel, release, leave — in that order.

/// Logs the first failure of a streak, every 50th after it and the recovery, so a peer that is
/// down for a minute costs a few log lines, not thousands.
struct FailureStreak {
    let what: String
    private var count = 0

    init(_ what: String) { self.what = what }

    mutating func failed(_ error: any Error, logger: Logger) {
        // A request cut short by shutdown is not a peer failing.
        if Task.isCancelled { return }
        count += 1
        if count == 1 || count % 50 == 0 {
            logger.warning("\(what) failed (\(count) in a row): \(error)")
        }
    }

    mutating func succeeded(logger: Logger) {
        if count > 0 { logger.info("\(what) works again after \(count) failure(s)") }
        count = 0
    }
}

/// Sleeps unless the task is cancelled; never throws, so loops end by checking cancellation.
func pause(milliseconds: Int64) async {
    try? await Task.sleep(for: .milliseconds(max(milliseconds, 0)))
}

/// Runs `body` until graceful shutdown (or cancellation), then returns normally. `wake` is
/// rung on graceful shutdown so a loop parked on it notices at once.
func runUntilShutdown(wake: Doorbell, _ body: @escaping @Sendable () async -> Void) async {
    await withGracefulShutdownHandler {
        await cancelWhenGracefulShutdown {
            await body()
        }
    } onGracefulShutdown: {
        wake.ring()
    }
}

// MARK: Presence

/// Heartbeats the coordinator (the first accepted heartbeat registers the node and makes it
/// ready); on graceful shutdown, which comes last, leaves the cluster explicitly.
public struct PresenceService: Service {
    let state: NodeState
    let registry: any PresenceRegistry
    let logger: Logger

    public init(state: NodeState, registry: any PresenceRegistry, logger: Logger) {
        self.state = state
        self.registry = registry
        self.logger = logger
    }

    public func run() async throws {
        let settings = state.settings
        let wake = state.presenceBell
        // Graceful shutdown ends the loop between heartbeats, not during one (see `heartbeat`).
        await withGracefulShutdownHandler {
            var streak = FailureStreak("heartbeat")
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                switch await heartbeat(settings) {
                case .success?:
                    await state.markRegistered()
                    streak.succeeded(logger: logger)
                case .failure(let error)?:
                    await state.countHeartbeatFailure()
                    streak.failed(error, logger: logger)
                case nil:
                    logger.warning("heartbeat not answered within \(settings.heartbeatShutdownGraceMs) ms of shutdown: leaving without it")
                }
                guard !Task.isShuttingDownGracefully else { break }
                await wake.wait(timeout: .milliseconds(settings.heartbeatIntervalMs))
            }
        } onGracefulShutdown: {
            wake.ring()
        }
        guard Task.isShuttingDownGracefully, !Task.isCancelled else { return }
        let presence = self
        let outcome = await withTimeLimit(.milliseconds(settings.leaveTimeoutMs)) { await presence.leave(settings.nodeId) }
        // Not fatal: the supervisor's death notice, or without heartbeats the presence TTL,
        // ends the membership.
        switch outcome {
        case .success(let result)?: logger.info("left the cluster (left=\(result.left))")
        case .failure(let error)?: logger.warning("leave failed, the coordinator will expire this node instead: \(error)")
        case nil: logger.warning("leave not answered within \(settings.leaveTimeoutMs) ms, the coordinator will expire this node instead")
        }
    }
}

extension PresenceService {
    /// One heartbeat; nil when graceful shutdown gave up on it. A heartbeat on the wire when
    /// shutdown reaches this loop is not cut at once: cut on this side, it may still reach the
    /// coordinator after the leave and register the node again, holding its symbols for a
    /// presence TTL. It is given `heartbeatShutdownGraceMs`, which a live coordinator never
    /// needs; one that takes longer is stopped or stalled, and a heartbeat it processes late is
    /// ended by the supervisor's death notice for this incarnation (or by the presence TTL).
    func heartbeat(_ settings: NodeSettings) async -> Result<HeartbeatResponse, ClientError>? {
        let request = HeartbeatRequest(address: settings.address, incarnation: settings.incarnation)
        return await withTaskGroup(of: Result<HeartbeatResponse, ClientError>?.self) { group in
            group.addTask {
                do throws(ClientError) {
                    return .success(try await registry.heartbeat(node: settings.nodeId, request))
                } catch {
                    return .failure(error)
                }
            }
            group.addTask {
                // Throws only when cancelled, i.e. the heartbeat was answered first.
                guard (try? await gracefulShutdown()) != nil else { return nil }
                try? await Task.sleep(for: .milliseconds(settings.heartbeatShutdownGraceMs))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    func leave(_ node: String) async -> Result<LeaveResult, ClientError> {
        do throws(ClientError) {
            return .success(try await registry.leave(node: node))
        } catch {
            return .failure(error)
        }
    }
}

/// The assignment feed's long-poll loop: fetch everything newer than the last version seen (at
/// once the first time), apply it, follow the version down if the source restarted from
/// scratch, and retry transient failures without ending the service. (The position feed has
/// its own loop: it also restarts its poll when the assigned symbols change.)
func followVersions<View: Sendable>(
    _ name: String, restartedSource: String, settings: NodeSettings, logger: Logger,
    fetch: @escaping @Sendable (_ afterVersion: Int64?, _ waitMs: Int64) async throws -> View,
    version: KeyPath<View, Int64> & Sendable,
    onRegression: @escaping @Sendable () async -> Void,
    apply: @escaping @Sendable (View) async -> Void
) async {
    await runUntilShutdown(wake: Doorbell()) {
        var streak = FailureStreak(name)
        var known: Int64?
        while !Task.isCancelled {
            do {
                let view = try await fetch(known, known == nil ? 0 : settings.longPollWaitMs)
                streak.succeeded(logger: logger)
                let current = view[keyPath: version]
                if let previous = known, current < previous {
                    logger.warning("\(name): version went back from \(previous) to \(current): \(restartedSource)")
                    await onRegression()
                }
                await apply(view)
                known = current
            } catch {
                streak.failed(error, logger: logger)
                await pause(milliseconds: settings.transientRetryMs)
            }
        }
    }
}

// MARK: Assignments

/// Long-polls the assignment table and applies every newer version.
public struct AssignmentWatcher: Service {
    let state: NodeState
    let source: any AssignmentSource
    let logger: Logger

    public init(state: NodeState, source: any AssignmentSource, logger: Logger) {
        self.state = state
        self.source = source
        self.logger = logger
    }

    public func run() async throws {
        let settings = state.settings
        // A restarted coordinator may count versions from scratch: follow it down too.
        await followVersions(
            "assignment watch", restartedSource: "coordinator restarted", settings: settings, logger: logger,
            fetch: { try await source.assignments(afterVersion: $0, waitMs: $1) }, version: \.version,
            onRegression: { await state.resetAssignmentsVersion() }, apply: { await state.applyAssignments($0) })
    }
}

// MARK: Authority

/// Acquires a grant for every assigned symbol the node does not hold, one request per symbol,
/// concurrently and independently: a request the coordinator parks (the previous holder has not
/// released yet) holds up no other symbol. A parked acquire is granted the moment the previous
/// holder releases or its grant lapses, so a handover costs a release, not a polling interval.
/// Other refusals (not assigned yet, the coordinator's startup quiet period) are retried after
/// `acquireRetryMs` or the hinted delay.
public struct GrantAcquirer: Service {
    let state: NodeState
    let authority: any AuthorityProvider
    let orders: any OrderEntry
    let time: any MonotonicTimeSource
    let logger: Logger

    public init(state: NodeState, authority: any AuthorityProvider, orders: any OrderEntry, time: any MonotonicTimeSource, logger: Logger) {
        self.state = state
        self.authority = authority
        self.orders = orders
        self.time = time
        self.logger = logger
    }

    private enum Event: Sendable {
        case rung
        case attempted(String, retryAfterMs: Int64?)
    }

    public func run() async throws {
        let settings = state.settings
        let bell = state.acquirerBell
        await runUntilShutdown(wake: bell) {
            await withTaskGroup(of: Event.self) { group in
                var inFlight: Set<String> = []
                var notBefore: [String: MonotonicInstant] = [:]
                var listening = false
                while !Task.isCancelled {
                    let wanted = await state.symbolsToAcquire()
                    let now = time.now()
                    notBefore = notBefore.filter { wanted.contains($0.key) }
                    // Bounded so parked acquires never take every connection to the coordinator.
                    for symbol in wanted where inFlight.count < settings.maxAcquiresInFlight
                        && !inFlight.contains(symbol) && (notBefore[symbol] ?? now) <= now {
                        inFlight.insert(symbol)
                        notBefore[symbol] = nil
                        group.addTask { .attempted(symbol, retryAfterMs: await acquire(symbol, settings: settings)) }
                    }
                    if !listening {
                        // Sleeps until assignments change, a symbol is freed or the next retry is due.
                        listening = true
                        let nextDue = notBefore.values.min()
                        let timeout: Duration = nextDue.map { .milliseconds(max($0.milliseconds(since: time.now()), 1)) } ?? .seconds(5)
                        group.addTask {
                            await bell.wait(timeout: timeout)
                            return .rung
                        }
                    }
                    guard let event = await group.next() else { break }
                    switch event {
                    case .rung:
                        listening = false
                    case .attempted(let symbol, let retryAfterMs):
                        inFlight.remove(symbol)
                        if let retryAfterMs {
                            notBefore[symbol] = time.now().adding(milliseconds: retryAfterMs)
                        }
                        // Re-plans the listener's timeout (a retry may now fall due sooner) and
                        // frees a slot for a symbol that waited for one.
                        bell.ring()
                    }
                }
                group.cancelAll()
            }
        }
    }

    /// One acquire attempt; returns nil on success, else how long to wait before retrying.
    private func acquire(_ symbol: String, settings: NodeSettings) async -> Int64? {
        let sentAt = time.now()
        do {
            var grant = try await authority.acquire(symbol: symbol, node: settings.nodeId, waitMs: settings.acquireWaitMs)
            guard grant.symbol == symbol, grant.node == settings.nodeId else {
                logger.error("coordinator answered an acquire of \(symbol) with a grant for \(grant.node)/\(grant.symbol): ignoring it")
                return settings.acquireRetryMs
            }
            var countedFrom = sentAt
            // The lease counts from the send instant, so a request the coordinator parked would
            // arrive with much of its lifetime already spent on paper: renew once at once and
            // count from the renewal's send instead.
            if time.now().milliseconds(since: sentAt) > settings.safetyMarginMs / 2 {
                let renewSentAt = time.now()
                do {
                    grant = try await authority.renew(symbol: symbol, RenewRequest(node: settings.nodeId, fencingToken: grant.fencingToken, grant: grant))
                    countedFrom = renewSentAt
                } catch {
                    logger.info("renewal right after a parked acquire of \(symbol) failed: \(error)")
                }
            }
            // The switch is not kept armed while the node holds nothing, so arm it before the
            // grant lets the engine quote: a switch running out just after the first quote
            // would pull it.
            do {
                _ = try await orders.armDeadman(DeadmanRequest(node: settings.nodeId, timeoutMs: settings.deadmanTimeoutMs))
            } catch {
                logger.warning("arming the dead-man's switch after acquiring \(symbol) failed: \(error)")
            }
            await state.installGrant(grant, requestSentAt: countedFrom)
            return nil
        } catch {
            let code = error.code ?? "unreachable"
            await state.countAcquireRefusal(code)
            switch code {
            case CoordinatorErrorCode.startupQuiet, CoordinatorErrorCode.storeUnavailable:
                // The coordinator knows when to ask again: after its quiet period, or when it
                // next probes a store that failed (etcd without quorum).
                let hinted = error.retryAfterMs ?? settings.acquireRetryMs
                return min(max(hinted, 10), settings.grantTtlMs)
            case CoordinatorErrorCode.heldByOther, CoordinatorErrorCode.notAssigned:
                logger.debug("acquire \(symbol): \(code), retrying")
                return settings.acquireRetryMs
            case CoordinatorErrorCode.unknownNode:
                // Not registered (yet, or expired): the next heartbeat registers again.
                return settings.heartbeatIntervalMs
            default:
                logger.warning("acquire \(symbol) failed: \(error)")
                return max(settings.acquireRetryMs, settings.transientRetryMs)
            }
        }
    }
}

extension ClientError {
    /// `details.retry_after_ms` of an error envelope (the coordinator's startup quiet period).
    var retryAfterMs: Int64? {
        guard case .api(_, let envelope) = self else { return nil }
        return envelope.error.details?["retry_after_ms"].flatMap { Int64($0) }
    }
}

/// Renews every held grant in one batch call each `renew_interval_ms`, counting each renewed
/// lease from the moment the renewal was sent, and re-arms the exchange's dead-man's switch in
/// the same round, so quotes cannot outlive a node that stops renewing by more than its timeout.
public struct GrantRenewer: Service {
    let state: NodeState
    let authority: any AuthorityProvider
    let orders: any OrderEntry
    let time: any MonotonicTimeSource
    let logger: Logger

    public init(state: NodeState, authority: any AuthorityProvider, orders: any OrderEntry, time: any MonotonicTimeSource, logger: Logger) {
        self.state = state
        self.authority = authority
        self.orders = orders
        self.time = time
        self.logger = logger
    }

    public func run() async throws {
        let settings = state.settings
        await runUntilShutdown(wake: state.renewerBell) {
            var renewStreak = FailureStreak("grant renewal")
            var deadmanStreak = FailureStreak("dead-man re-arm")
            var lastArmed: MonotonicInstant?
            while !Task.isCancelled {
                let roundStarted = time.now()
                let leases = await state.leasesToRenew()
                var retrySoon = false
                if !leases.isEmpty { retrySoon = await renew(leases, settings: settings, streak: &renewStreak) }
                // Re-armed each regular round while the node holds a valid lease, and only then:
                // once every grant has lapsed (the coordinator or its store unreachable, say) the
                // node has no authority left, not even to cancel, so the switch must run out and
                // pull whatever it left resting, within T (DESIGN.md: no quote outlives its owner's
                // authority by more than T). A new grant arms it before its first quote (see
                // `GrantAcquirer`). The quick retries of a failed renewal do not re-arm it more
                // often than each round.
                let due = lastArmed.map({ time.now().milliseconds(since: $0) >= settings.renewIntervalMs - Self.failedRenewalRetryMs }) ?? true
                if due, await state.holdsValidLease() {
                    do {
                        _ = try await orders.armDeadman(DeadmanRequest(node: settings.nodeId, timeoutMs: settings.deadmanTimeoutMs))
                        deadmanStreak.succeeded(logger: logger)
                        lastArmed = roundStarted
                    } catch {
                        await state.countDeadmanFailure()
                        deadmanStreak.failed(error, logger: logger)
                    }
                }
                let elapsed = time.now().milliseconds(since: roundStarted)
                let nextRoundMs = retrySoon ? min(Self.failedRenewalRetryMs, settings.renewIntervalMs - elapsed) : settings.renewIntervalMs - elapsed
                await state.renewerBell.wait(timeout: .milliseconds(max(nextRoundMs, 0)))
            }
        }
    }

    /// How soon a failed renewal round is tried again (the coordinator was unreachable, e.g.
    /// restarting, or did not know this node yet): far below a renew interval, so a restarted
    /// coordinator re-adopts the grants, and learns who holds them, moments after it is back
    /// and while the leases still run. One request in flight per node, so it stays cheap.
    static let failedRenewalRetryMs: Int64 = 25

    /// One batch renewal presenting every signed grant (a restarted coordinator re-adopts them);
    /// true when it failed and should be retried soon.
    private func renew(_ leases: [GrantLease], settings: NodeSettings, streak: inout FailureStreak) async -> Bool {
        let request = BatchRenewRequest(
            node: settings.nodeId, grants: leases.map { BatchRenewRequest.Item(symbol: $0.symbol, fencingToken: $0.fencingToken, grant: $0.grant) })
        let sentAt = time.now()
        do {
            let result = try await authority.renew(request)
            await state.applyRenewal(result, requestSentAt: sentAt)
            streak.succeeded(logger: logger)
            return false
        } catch {
            // The leases keep running down on the node's own clock; if renewals keep failing
            // they end locally before the coordinator's, and the engine stops quoting.
            await state.countRenewFailure()
            streak.failed(error, logger: logger)
            // Not known (the coordinator restarted before it persisted our join, or our presence
            // lapsed): heartbeat now rather than at the next interval.
            if error.code == CoordinatorErrorCode.unknownNode { state.presenceBell.ring() }
            return true
        }
    }
}

// MARK: Inputs

/// Polls the exchange's reference prices of the symbols assigned here about once per price
/// tick, and at once when symbols are newly assigned (their quotes need a price first).
public struct PriceFeed: Service {
    let state: NodeState
    let source: any ReferencePriceSource
    let logger: Logger

    public init(state: NodeState, source: any ReferencePriceSource, logger: Logger) {
        self.state = state
        self.source = source
        self.logger = logger
    }

    public func run() async throws {
        let settings = state.settings
        await runUntilShutdown(wake: state.priceBell) {
            var streak = FailureStreak("price poll")
            while !Task.isCancelled {
                let symbols = await state.assigned.sorted()
                if !symbols.isEmpty {
                    do {
                        await state.applyPrices(try await source.prices(symbols: symbols))
                        streak.succeeded(logger: logger)
                    } catch {
                        streak.failed(error, logger: logger)
                    }
                }
                await state.priceBell.wait(timeout: .milliseconds(max(settings.priceIntervalMs, 1)))
            }
        }
    }
}

/// Long-polls trading state for the positions of the symbols assigned here, so the node sees a
/// fill's position effect as soon as trading state has applied it, and is woken by its own
/// symbols' fills only (at 1,000 symbols × 20 nodes an unfiltered poll woke every node for every
/// fill and carried all 1,000 positions). Positions come only from here.
public struct PositionFeed: Service {
    let state: NodeState
    let source: any PositionSource
    let logger: Logger

    public init(state: NodeState, source: any PositionSource, logger: Logger) {
        self.state = state
        self.source = source
        self.logger = logger
    }

    public func run() async throws {
        let settings = state.settings
        let state = self.state, source = self.source, logger = self.logger
        await runUntilShutdown(wake: state.positionBell) {
            var streak = FailureStreak("position watch")
            var known: Int64?
            var asked: [String]?
            while !Task.isCancelled {
                let symbols = await state.assigned.sorted()
                // A new set is asked for at once (no wait): its new symbols' positions are needed
                // before they are quoted. The version stays known for the regression check.
                let waitMs = symbols == asked && known != nil ? settings.longPollWaitMs : 0
                do {
                    let afterVersion = waitMs > 0 ? known : nil
                    let fetch: @Sendable () async throws -> PositionsView = {
                        try await source.positions(symbols: symbols, afterVersion: afterVersion, waitMs: waitMs)
                    }
                    guard let view = waitMs > 0 ? try await Self.unlessReassigned(state, fetch) : try await fetch() else { continue }
                    streak.succeeded(logger: logger)
                    if let previous = known, view.version < previous {
                        logger.warning("position watch: version went back from \(previous) to \(view.version): trading state was reset")
                        await state.resetPositionsVersion()
                    }
                    await state.applyPositions(view)
                    known = view.version
                    asked = symbols
                } catch {
                    streak.failed(error, logger: logger)
                    await pause(milliseconds: settings.transientRetryMs)
                }
            }
        }
    }

    /// Runs the long-poll `fetch`; if the assignment changes meanwhile, cuts it and
    /// returns nil so the loop asks again with the new set. The cut request is cancelled on this
    /// side; the service answers its parked waiter at `wait_ms` at the latest.
    static func unlessReassigned(_ state: NodeState, _ fetch: @escaping @Sendable () async throws -> PositionsView) async throws -> PositionsView? {
        try await withThrowingTaskGroup(of: PositionsView?.self) { group in
            group.addTask { try await fetch() }
            group.addTask {
                await state.positionBell.wait(timeout: nil)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
    }
}
