import AsyncPrimitives
import Foundation
import Logging
import MMCore

/// The coordinator's one writer: applies each request to `CoordinatorState` on the injected
/// clock, persists what must be durable before answering, signs grants, and wakes long-polls.
///
/// Mutations run one at a time (an async lock held across the store write), because the
/// actor would otherwise let a second request read state the first has changed but not yet
/// persisted. If a store write fails, the in-memory state may be ahead of the disk, so the
/// engine reloads from the store exactly as after a restart (quiet period included).
public actor CoordinatorEngine {
    private var state: CoordinatorState
    private let store: any CoordinatorStore
    private let signer: GrantSigner
    private let clock: any EpochClock
    private let logger: Logger
    private var needsReload = false

    /// Held from a mutation's state change until its store write is done. FIFO, so a burst of
    /// heartbeats and renewals is applied in arrival order and none waits behind newcomers.
    private let mutationLock = AsyncFIFOLock()
    /// Signalled whenever the assignment table changes (assignment long-polls wait on it).
    private let assignmentsChanged = ChangeSignal()
    /// Signalled whenever the event log grows (event long-polls and parked acquires wait on it:
    /// a release, a lapse, a leave or a death is always an event).
    private let eventsChanged = ChangeSignal()

    /// Loads the durable state and logs `coordinator_started` (which starts the quiet period
    /// when the store shows a previous run).
    public init(policy: CoordinatorPolicy, store: any CoordinatorStore, signer: GrantSigner, clock: any EpochClock, logger: Logger = Logger(label: "mm.coordinator")) async throws {
        let recovered = try await store.load()
        var state = CoordinatorState(policy: policy, recovered: recovered, nowMs: clock.nowMs())
        try await store.commit(state.takePending())
        self.state = state
        self.store = store
        self.signer = signer
        self.clock = clock
        self.logger = logger
    }

    // MARK: Commands

    public func heartbeat(node: String, address: String, incarnation: String? = nil) async throws -> HeartbeatResponse {
        try await mutate { state, now throws(CoordinatorRefusal) in
            try state.heartbeat(node: node, address: address, incarnation: incarnation, nowMs: now)
        }
    }

    /// A death notice from the supervisor. Like every mutation it is persisted before the
    /// answer and wakes the long-polls, so the new assignee (watching assignments) and any
    /// acquire parked on the dead holder's grant (woken by the event log) move at once.
    public func memberDied(node: String, _ notice: DeathNotice) async throws -> DeathNoticeResult {
        try await mutate { state, now throws(CoordinatorRefusal) in
            try state.memberDied(node: node, incarnation: notice.incarnation, pid: notice.pid, exit: notice.exit, nowMs: now)
        }
    }

    public func leave(node: String) async throws -> LeaveResult {
        try await mutate { state, now throws(CoordinatorRefusal) in try state.leave(node: node, nowMs: now) }
    }

    /// Grants `symbol` to `node`. While another node's grant is live, the request is parked for
    /// up to `waitMs` and retried whenever the event log moves (a release, a lapse, a leave), so a
    /// handover costs one release, not a polling interval. Every other refusal answers at once.
    public func acquire(symbol: String, node: String, waitMs: Int64 = 0) async throws -> AuthorityGrant {
        // How long an HTTP request is held open is a matter of real time, not of the injected
        // clock that decides expiries (a test's manual clock would otherwise never let it go).
        let deadline = ContinuousClock.now + .milliseconds(waitMs)
        func remainingMs() -> Int64 {
            let left = (deadline - ContinuousClock.now).components
            return left.seconds * 1_000 + left.attoseconds / 1_000_000_000_000_000
        }
        while true {
            let mayPark = remainingMs() > 0
            let outcome: Result<GrantRecord, CoordinatorRefusal> = try await mutate { state, now throws(CoordinatorRefusal) in
                do throws(CoordinatorRefusal) {
                    return .success(try state.acquire(symbol: symbol, node: node, nowMs: now))
                } catch {
                    guard case .heldByOther = error, mayPark else { throw error }
                    return .failure(error)
                }
            }
            // Taken in the same actor turn as the refused attempt (no await in between), so an
            // event logged by any later mutation — the release we wait for — ends the wait.
            let ticket = eventsChanged.version
            switch outcome {
            case .success(let grant):
                return sign(grant)
            case .failure(let refusal):
                let remaining = remainingMs()
                // Closed: graceful shutdown, answer now rather than hold the server's drain open.
                guard remaining > 0, !Task.isCancelled, !eventsChanged.isClosed else { throw refusal.apiError }
                var waitMs = remaining
                // Woken early by any event; at the latest when the holder's grant would lapse.
                if case .heldByOther(_, _, let expiresInMs) = refusal { waitMs = min(remaining, max(expiresInMs, 1)) }
                await eventsChanged.wait(after: ticket, timeoutMs: waitMs)
            }
        }
    }

    /// `presented` is the signed grant being renewed, if the node sent it: after a restart it
    /// lets the grant continue (re-adoption, see `CoordinatorState.renew`).
    public func renew(symbol: String, node: String, fencingToken: Int64, presented: AuthorityGrant? = nil) async throws -> AuthorityGrant {
        let signer = signer
        return sign(try await mutate { state, now throws(CoordinatorRefusal) in
            try state.renew(symbol: symbol, node: node, fencingToken: fencingToken, presented: presented, isAuthentic: signer.isAuthentic, nowMs: now)
        })
    }

    /// Renews each listed grant independently: one refusal does not fail the others.
    public func renew(_ request: BatchRenewRequest) async throws -> BatchRenewResult {
        guard NodeID.isValid(request.node) else { throw CoordinatorRefusal.invalidNodeId(request.node).apiError }
        var seen = Set<String>()
        for item in request.grants where !seen.insert(item.symbol).inserted {
            throw APIError.invalidField("grants", "lists '\(item.symbol)' more than once")
        }
        let signer = signer
        let outcomes: [Result<GrantRecord, CoordinatorRefusal>] = try await mutate { state, now throws(CoordinatorRefusal) in
            guard state.members[request.node] != nil else { throw .unknownNode(request.node) }
            return request.grants.map { item in
                Result { () throws(CoordinatorRefusal) in
                    try state.renew(
                        symbol: item.symbol, node: request.node, fencingToken: item.fencingToken, presented: item.grant,
                        isAuthentic: signer.isAuthentic, nowMs: now)
                }
            }
        }
        var result = BatchRenewResult(renewed: [], refused: [])
        for (item, outcome) in zip(request.grants, outcomes) {
            switch outcome {
            case .success(let grant): result.renewed.append(sign(grant))
            case .failure(let refusal):
                result.refused.append(.init(symbol: item.symbol, code: refusal.code, message: refusal.apiError.message))
            }
        }
        return result
    }

    public func release(symbol: String, node: String, fencingToken: Int64) async throws -> ReleaseResult {
        try await mutate { state, now throws(CoordinatorRefusal) in
            try state.release(symbol: symbol, node: node, fencingToken: fencingToken, nowMs: now)
        }
    }

    /// Expires silent members and lapsed grants (called by the sweeper service).
    public func sweep() async {
        do {
            try await mutate { state, now throws(CoordinatorRefusal) in state.sweep(nowMs: now) }
        } catch {
            logger.error("sweep failed: \(error)")
        }
    }

    // MARK: Queries

    public func members() -> [NodePresence] {
        let now = clock.nowMs()
        return state.members.values.sorted { $0.node < $1.node }.map { $0.presence(nowMs: now) }
    }

    public var assignmentTable: AssignmentTable { state.assignments }

    /// The table once its version exceeds `afterVersion`, or the current one after `waitMs`.
    public func assignments(afterVersion: Int64?, waitMs: Int64) async -> AssignmentTable {
        if let afterVersion, state.assignments.version <= afterVersion, waitMs > 0 {
            await assignmentsChanged.wait(after: assignmentsChanged.version, timeoutMs: waitMs)
        }
        return state.assignments
    }

    public func authority() -> AuthorityList {
        let now = clock.nowMs()
        return AuthorityList(
            authority: state.policy.symbols.map { state.authority(symbol: $0, nowMs: now) }, quietForMs: state.quietForMs(nowMs: now))
    }

    public func authority(symbol: String) throws -> AuthorityStatus {
        guard state.isKnown(symbol: symbol) else { throw APIError.unknownSymbol(symbol) }
        return state.authority(symbol: symbol, nowMs: clock.nowMs())
    }

    public var quietForMs: Int64 { state.quietForMs(nowMs: clock.nowMs()) }
    /// Symbols still waiting out the startup quiet period (not re-adopted by their holder).
    public var quietSymbolCount: Int { state.quietForMs(nowMs: clock.nowMs()) > 0 ? state.unresolvedSymbols.count : 0 }
    public var headSeq: Int64 { state.headSeq }

    /// The live grant of `symbol`, signed, if any (tests and inspection).
    public func liveGrant(symbol: String) -> AuthorityGrant? {
        state.liveGrant(symbol: symbol, nowMs: clock.nowMs()).map(sign)
    }

    /// Events after `seq`; when there are none yet, waits up to `waitMs` for the next one.
    public func events(after seq: Int64, limit: Int, waitMs: Int64) async throws -> EventPage {
        if state.headSeq <= seq, waitMs > 0 {
            await eventsChanged.wait(after: eventsChanged.version, timeoutMs: waitMs)
        }
        let head = state.headSeq
        let events = try await store.events(after: seq, limit: limit)
        return EventPage(events: events, headSeq: head)
    }

    /// Graceful shutdown: answers every long-poll and parked acquire now, and every later one
    /// at once, so keep-alive clients cannot hold the HTTP server's drain open for their wait.
    /// Synchronous and callable from anywhere (a shutdown handler cannot await the actor).
    public nonisolated func endLongPolls() {
        assignmentsChanged.close()
        eventsChanged.close()
    }

    // MARK: Internals

    private func sign(_ grant: GrantRecord) -> AuthorityGrant {
        signer.sign(symbol: grant.symbol, node: grant.node, fencingToken: grant.fencingToken, grantedAtMs: grant.grantedAtMs, expiresAtMs: grant.expiresAtMs)
    }

    private func mutate<T>(_ body: (inout CoordinatorState, EpochMs) throws(CoordinatorRefusal) -> T) async throws -> T {
        await mutationLock.lock()
        defer { mutationLock.unlock() }
        if needsReload { try await reload() }
        let versionBefore = state.assignments.version
        let headBefore = state.headSeq
        // The clock is read under the lock, so successive mutations see non-decreasing time.
        let outcome = Result { () throws(CoordinatorRefusal) in try body(&state, clock.nowMs()) }
        let mutation = state.takePending()
        if !mutation.isEmpty {
            do {
                try await store.commit(mutation)
            } catch {
                logger.error("coordinator store write failed, reloading from the store: \(error)")
                needsReload = true
                try? await reload()
                throw APIError(
                    status: 503, code: "store_unavailable",
                    message: "the coordinator could not persist this change (\(error)); nothing was granted, retry shortly")
            }
        }
        if state.assignments.version != versionBefore { assignmentsChanged.signal() }
        if state.headSeq != headBefore { eventsChanged.signal() }
        switch outcome {
        case .success(let value): return value
        case .failure(let refusal): throw refusal.apiError
        }
    }

    private func reload() async throws {
        let recovered = try await store.load()
        var fresh = CoordinatorState(policy: state.policy, recovered: recovered, nowMs: clock.nowMs())
        try await store.commit(fresh.takePending())
        state = fresh
        needsReload = false
        assignmentsChanged.signal()
        eventsChanged.signal()
    }
}
