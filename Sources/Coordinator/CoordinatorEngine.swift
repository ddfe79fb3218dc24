import AsyncPrimitives
import Foundation
import Logging
import MMCore
import Synchronization

/// The coordinator's one writer: applies each request to `CoordinatorState` on the injected
/// clock, persists what must be durable before answering, signs grants, and wakes long-polls.
///
/// Mutations run one at a time (an async lock held across the store write), because the
/// actor would otherwise let a second request read state the first has changed but not yet
/// persisted. If a store write fails, the in-memory state may be ahead of the disk, so the
/// engine reloads from the store exactly as after a restart (quiet period included).
public actor CoordinatorEngine {
    /// Where decisions are made durable.
    enum Backend {
        /// One process owns the store (SQLite): the in-memory state is the truth, the store its log.
        case embedded(any CoordinatorStore)
        /// Every replica shares the store (etcd): the store is the truth, and a decision counts
        /// only once it is committed on the state it was made on.
        case shared(any SharedCoordinatorStore)
    }

    private var state: CoordinatorState
    private let backend: Backend
    private let signer: GrantSigner
    private let clock: any EpochClock
    private let logger: Logger
    private var needsReload = false

    // Shared backend only.
    /// The state as stored at `revision` (nil before the first load).
    private var committed: CoordinatorSnapshot?
    /// The stored state's version this replica last read or wrote.
    public private(set) var revision: Int64 = 0
    /// Why the last store access failed; nil once one succeeds.
    public private(set) var storeError: String? {
        didSet { if storeError != nil { storeFailedAt = ContinuousClock.now } }
    }
    /// When it last failed: decisions within `storeRetryAfterMs` of that are refused at once.
    private var storeFailedAt: ContinuousClock.Instant?
    /// Taken when a shared store is still empty (from an embedded run's SQLite file): its
    /// tokens and members continue, so a move from SQLite to etcd never reuses a token.
    private let bootstrap: RecoveredCoordinatorState?
    /// How many times a decision is retried on fresher state when another replica wrote first.
    private static let maxCommitAttempts = 8

    /// Held from a mutation's state change until its store write is done. FIFO, so a burst of
    /// heartbeats and renewals is applied in arrival order and none waits behind newcomers.
    private let mutationLock = AsyncFIFOLock()
    /// Signalled whenever the assignment table changes (assignment long-polls wait on it).
    private let assignmentsChanged = ChangeSignal()
    /// Signalled whenever the event log grows (event long-polls and parked acquires wait on it:
    /// a release, a lapse, a leave or a death is always an event).
    private let eventsChanged = ChangeSignal()
    let metrics = CoordinatorMetrics()

    /// Loads the durable state and logs `coordinator_started` (which starts the quiet period
    /// when the store shows a previous run).
    public init(policy: CoordinatorPolicy, store: any CoordinatorStore, signer: GrantSigner, clock: any EpochClock, logger: Logger = Logger(label: "mm.coordinator")) async throws {
        let recovered = try await store.load()
        var state = CoordinatorState(policy: policy, recovered: recovered, nowMs: clock.nowMs())
        try await store.commit(state.takePending())
        self.state = state
        self.backend = .embedded(store)
        self.signer = signer
        self.clock = clock
        self.logger = logger
        self.bootstrap = nil
    }

    /// A replica over a shared store. It tries to load the state at once; if the store cannot
    /// be reached it starts anyway, not ready (`isLoaded` false, `storeError` says why), and
    /// answers 503 until a later attempt (`resync`, or any command) succeeds.
    public init(
        policy: CoordinatorPolicy, sharedStore: any SharedCoordinatorStore, signer: GrantSigner, clock: any EpochClock,
        bootstrap: RecoveredCoordinatorState? = nil, logger: Logger = Logger(label: "mm.coordinator")
    ) async {
        // A placeholder until the first load: nothing is answered from it (every command loads first).
        var placeholder = CoordinatorState(policy: policy, recovered: RecoveredCoordinatorState(headSeq: 0, fencingTokens: [:]), nowMs: clock.nowMs())
        _ = placeholder.takePending()
        self.state = placeholder
        self.backend = .shared(sharedStore)
        self.signer = signer
        self.clock = clock
        self.logger = logger
        self.bootstrap = bootstrap
        self.needsReload = true
        await resync()
    }

    /// Loaded, and the last store access succeeded.
    public var isHealthy: Bool { isLoaded && storeError == nil }

    /// True once the state has been read from the store (always true when embedded).
    public var isLoaded: Bool {
        if case .shared = backend { return committed != nil }
        return true
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
            // Taken before the attempt, so an event logged by any mutation after the state this
            // attempt saw — the release we wait for — ends the wait (at worst one extra attempt).
            let ticket = eventsChanged.version
            let outcome: Result<GrantRecord, CoordinatorRefusal> = try await mutate { state, now throws(CoordinatorRefusal) in
                do throws(CoordinatorRefusal) {
                    return .success(try state.acquire(symbol: symbol, node: node, nowMs: now))
                } catch {
                    guard case .heldByOther = error, mayPark else { throw error }
                    return .failure(error)
                }
            }
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
        let grant = sign(try await mutate { state, now throws(CoordinatorRefusal) in
            try state.renew(symbol: symbol, node: node, fencingToken: fencingToken, presented: presented, isAuthentic: signer.isAuthentic, nowMs: now)
        })
        metrics.renewed(1)
        return grant
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
        metrics.renewed(result.renewed.count)
        return result
    }

    public func release(symbol: String, node: String, fencingToken: Int64) async throws -> ReleaseResult {
        try await mutate { state, now throws(CoordinatorRefusal) in
            try state.release(symbol: symbol, node: node, fencingToken: fencingToken, nowMs: now)
        }
    }

    /// Raises fencing counters to the exchange's highest accepted tokens (see `TokenFloorSync`).
    @discardableResult
    public func raiseTokens(toAtLeast floor: [String: Int64]) async throws -> [String] {
        try await mutate { state, now throws(CoordinatorRefusal) in state.raiseTokens(toAtLeast: floor, nowMs: now) }
    }

    /// Expires silent members and lapsed grants (called by the sweeper service).
    public func sweep() async {
        do {
            try await mutate { state, now throws(CoordinatorRefusal) in state.sweep(nowMs: now) }
        } catch {
            // A store outage is reported (throttled) where the store is used; every 50 ms
            // sweep repeating it would only flood the log.
            if (error as? APIError)?.code != CoordinatorErrorCode.storeUnavailable { logger.error("sweep failed: \(error)") }
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
        return try await eventPage(after: seq, limit: limit, head: state.headSeq)
    }

    /// The newest `count` events, one read.
    public func events(tail count: Int) async throws -> EventPage {
        let head = state.headSeq
        return try await eventPage(after: LogCursor.tailStart(count: count, headSeq: head), limit: count, head: head)
    }

    private func eventPage(after seq: Int64, limit: Int, head: Int64) async throws -> EventPage {
        let page: (events: [ClusterEvent], compactedThroughSeq: Int64)
        switch backend {
        case .embedded(let store): page = try await store.eventPage(after: seq, limit: limit)
        case .shared(let store):
            // While etcd is known to be failing, say why at once rather than time out.
            if let storeError { throw storeUnavailable(storeError) }
            do { page = try await store.eventPage(after: seq, limit: limit) } catch {
                storeError = "\(error)"
                throw storeUnavailable(error)
            }
        }
        return EventPage(events: page.events, headSeq: head, compactedThroughSeq: page.compactedThroughSeq)
    }

    /// The compaction base of the event log: what the events pruned by retention established.
    public func eventBase() async throws -> EventLogBase {
        let head = state.headSeq
        let base: (compactedThroughSeq: Int64, grants: GrantLogFold)
        switch backend {
        case .embedded(let store): base = try await store.eventBase()
        case .shared(let store):
            if let storeError { throw storeUnavailable(storeError) }
            do { base = try await store.eventBase() } catch {
                storeError = "\(error)"
                throw storeUnavailable(error)
            }
        }
        return EventLogBase(compactedThroughSeq: base.compactedThroughSeq, headSeq: max(head, base.compactedThroughSeq), grants: base.grants)
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

    private func mutate<T>(_ body: @escaping (inout CoordinatorState, EpochMs) throws(CoordinatorRefusal) -> T) async throws -> T {
        switch backend {
        case .embedded(let store):
            await mutationLock.lock()
            defer { mutationLock.unlock() }
            return try await mutateEmbedded(store, body)
        case .shared:
            return try await mutateShared(body)
        }
    }

    private func mutateEmbedded<T>(
        _ store: any CoordinatorStore, _ body: @escaping (inout CoordinatorState, EpochMs) throws(CoordinatorRefusal) -> T
    ) async throws -> T {
        if needsReload { try await reload() }
        let versionBefore = state.assignments.version
        let headBefore = state.headSeq
        // The clock is read under the lock, so successive mutations see non-decreasing time.
        let outcome = Result { () throws(CoordinatorRefusal) in try body(&state, clock.nowMs()) }
        let mutation = state.takePending()
        if !mutation.isEmpty {
            do {
                try await store.commit(mutation)
                metrics.committed(mutation.events)
            } catch {
                metrics.storeFailed()
                logger.error("coordinator store write failed, reloading from the store: \(error)")
                needsReload = true
                try? await reload()
                throw storeUnavailable(error)
            }
        }
        signalChanges(versionBefore: versionBefore, headBefore: headBefore)
        return try outcome.mapError(\.apiError).get()
    }

    /// A decision waiting for the shared store: `apply` runs it on a state (true when it was a
    /// refusal) and keeps its own result; `complete` answers its caller.
    private struct QueuedDecision {
        let apply: (inout CoordinatorState, EpochMs) -> Bool
        let complete: (APIError?) -> Void
    }

    /// The result of one queued decision, read by its caller once the batch is committed.
    private final class DecisionOutcome<T> {
        var result: Result<T, CoordinatorRefusal>?
    }

    /// Where a queued decision's caller waits: completed by the commit, in either order with
    /// the caller's suspension.
    private final class AnswerSlot: Sendable {
        private enum State { case empty, waiting(CheckedContinuation<Void, any Error>), done(APIError?) }
        private let state = Mutex(State.empty)

        func wait(_ continuation: CheckedContinuation<Void, any Error>) {
            let done: APIError?? = state.withLock { state in
                if case .done(let error) = state { return .some(error) }
                state = .waiting(continuation)
                return .none
            }
            if let done { resume(continuation, done) }
        }

        func complete(_ error: APIError?) {
            let waiting: CheckedContinuation<Void, any Error>? = state.withLock { state in
                if case .waiting(let continuation) = state { return continuation }
                state = .done(error)
                return nil
            }
            if let waiting { resume(waiting, error) }
        }

        private func resume(_ continuation: CheckedContinuation<Void, any Error>, _ error: APIError?) {
            if let error { continuation.resume(throwing: error) } else { continuation.resume() }
        }
    }

    /// Decisions waiting while a commit is in flight: the next commit takes all of them.
    private var queuedDecisions: [QueuedDecision] = []
    private var isCommitting = false

    /// Queues the decision and returns once the commit that carries it has succeeded. Decisions
    /// that arrive while a commit is in flight are taken together by the next one (group
    /// commit): one etcd transaction per batch, not per request, with each decision applied in
    /// arrival order to the state the previous ones left, exactly as if one at a time.
    private func mutateShared<T>(_ body: @escaping (inout CoordinatorState, EpochMs) throws(CoordinatorRefusal) -> T) async throws -> T {
        let outcome = DecisionOutcome<T>()
        let answer = AnswerSlot()
        queuedDecisions.append(QueuedDecision(
            apply: { state, now in
                let result = Result { () throws(CoordinatorRefusal) in try body(&state, now) }
                outcome.result = result
                if case .failure = result { return true }
                return false
            },
            complete: { error in answer.complete(error) }))
        if !isCommitting {
            isCommitting = true
            Task { await self.commitQueuedDecisions() }
        }
        try await withCheckedThrowingContinuation { answer.wait($0) }
        guard let result = outcome.result else { throw storeUnavailable("no decision was recorded") }
        return try result.mapError(\.apiError).get()
    }

    private func commitQueuedDecisions() async {
        guard case .shared(let store) = backend else { return }
        await mutationLock.lock()
        while !queuedDecisions.isEmpty {
            let batch = queuedDecisions
            queuedDecisions = []
            let failure = await commit(batch, to: store)
            for decision in batch { decision.complete(failure) }
        }
        // No await since the queue was seen empty, so no decision can be left behind.
        isCommitting = false
        mutationLock.unlock()
    }

    /// Decides the batch on a copy of the state and commits the whole result only if the stored
    /// state is still the one it was decided on; if another replica wrote first, reads theirs
    /// and decides again. So every answer, refusals included, rests on the latest committed
    /// state, and no grant, renewal or token exists that etcd did not confirm. Returns the error
    /// every decision of the batch gets, or nil when each gets its own outcome.
    private func commit(_ batch: [QueuedDecision], to store: any SharedCoordinatorStore) async -> APIError? {
        // While the store is known to be failing, refuse at once rather than make every
        // request wait out etcd's timeout; the follower service's probe clears this the moment
        // etcd answers again.
        if let storeError, let failedAt = storeFailedAt, ContinuousClock.now - failedAt < .milliseconds(Self.storeRetryAfterMs) {
            return storeUnavailable(storeError)
        }
        for _ in 1...Self.maxCommitAttempts {
            if needsReload || committed == nil {
                do { try await loadShared(store) } catch { return storeUnavailable(error) }
            }
            let versionBefore = state.assignments.version
            let headBefore = state.headSeq
            var working = state
            // One clock reading per batch, taken in the actor: time never goes back between decisions.
            let now = clock.nowMs()
            var refused = false
            for decision in batch where decision.apply(&working, now) { refused = true }
            let events = working.takePending().events
            let next = working.snapshot
            if events.isEmpty && next == committed {
                // Nothing to write. A success rests on state etcd already confirmed; a refusal
                // might rest on state another replica has since changed, so it is only given
                // once the stored state is known to be the one it was decided on.
                if refused {
                    let current: Int64
                    do { current = try await store.currentRevision() } catch {
                        storeError = "\(error)"
                        return storeUnavailable(error)
                    }
                    guard current == revision else {
                        needsReload = true
                        continue
                    }
                }
                state = working
                return nil
            }
            let written: Int64?
            do {
                written = try await store.commit(from: committed, to: next, events: events, ifRevision: revision)
            } catch {
                // The write may or may not have happened: read the store again before deciding anything.
                metrics.storeFailed()
                needsReload = true
                storeError = "\(error)"
                reportStoreFailure("etcd write failed (outcome unknown, re-reading before the next decision): \(error)")
                return storeUnavailable(error)
            }
            guard let written else {
                needsReload = true
                continue
            }
            state = working
            committed = next
            revision = written
            metrics.committed(events)
            storeError = nil
            reportStoreRecovered()
            signalChanges(versionBefore: versionBefore, headBefore: headBefore)
            return nil
        }
        return APIError(
            status: 503, code: "store_unavailable",
            message: "other coordinator replicas kept changing the state while this decision was retried \(Self.maxCommitAttempts) times; nothing was granted, retry shortly")
    }

    /// Reads the shared state again (another replica wrote, or the last write's outcome is
    /// unknown). An empty store is bootstrapped: the first replica writes the initial state,
    /// and a replica that loses that race reads the winner's.
    private func loadShared(_ store: any SharedCoordinatorStore) async throws {
        let versionBefore = state.assignments.version
        let headBefore = state.headSeq
        do {
            var loaded = try await store.load()
            if loaded.snapshot == nil {
                var fresh = CoordinatorState(
                    policy: state.policy, recovered: bootstrap ?? RecoveredCoordinatorState(headSeq: 0, fencingTokens: [:]), nowMs: clock.nowMs())
                let events = fresh.takePending().events
                let snapshot = fresh.snapshot
                if let written = try await store.commit(from: nil, to: snapshot, events: events, ifRevision: 0) {
                    logger.info("initialised the shared coordinator state (\(snapshot.fencingTokens.count) fencing token(s) carried over)")
                    loaded = (snapshot, written)
                } else {
                    loaded = try await store.load()
                }
            }
            guard let snapshot = loaded.snapshot else { throw SharedStoreError.foreignValue(key: "state/head", reason: "vanished while being read") }
            state = CoordinatorState(policy: state.policy, snapshot: snapshot)
            committed = snapshot
            revision = loaded.revision
            needsReload = false
            storeError = nil
            reportStoreRecovered()
        } catch {
            needsReload = true
            storeError = "\(error)"
            throw error
        }
        signalChanges(versionBefore: versionBefore, headBefore: headBefore)
    }

    /// Follows another replica's write at `revision`: reads the state again, so reads and
    /// long-polls here are current and the next decision needs no retry.
    public func followed(revision newer: Int64) async {
        guard case .shared(let store) = backend, newer > revision || committed == nil else { return }
        await mutationLock.lock()
        defer { mutationLock.unlock() }
        guard newer > revision || committed == nil else { return }
        try? await loadShared(store)
    }

    /// Reads the shared state again whatever its revision (after a lost watch, or at start).
    public func resync() async {
        guard case .shared(let store) = backend else { return }
        await mutationLock.lock()
        defer { mutationLock.unlock() }
        do { try await loadShared(store) } catch {
            reportStoreFailure("cannot read the coordinator state from etcd: \(error)")
        }
    }

    /// The shared store, for the replica's follower service.
    public nonisolated var sharedStore: (any SharedCoordinatorStore)? {
        if case .shared(let store) = backend { return store }
        return nil
    }

    /// The last store failure logged, and when: an outage is logged when it starts, when its
    /// reason changes, and then every 10 s, not on every probe.
    private var lastReportedFailure: (message: String, at: ContinuousClock.Instant)?

    private func reportStoreFailure(_ message: String) {
        let now = ContinuousClock.now
        if let last = lastReportedFailure, last.message == message, now - last.at < .seconds(10) { return }
        lastReportedFailure = (message, now)
        logger.error("\(message)")
    }

    private func reportStoreRecovered() {
        guard lastReportedFailure != nil else { return }
        lastReportedFailure = nil
        logger.notice("the coordinator's store answers again")
    }

    private func signalChanges(versionBefore: Int64, headBefore: Int64) {
        if state.assignments.version != versionBefore { assignmentsChanged.signal() }
        if state.headSeq != headBefore { eventsChanged.signal() }
    }

    private func storeUnavailable(_ error: Any) -> APIError {
        APIError(
            status: 503, code: CoordinatorErrorCode.storeUnavailable,
            message: "the coordinator could not read or persist its state (\(error)); nothing was granted, retry shortly",
            details: ["retry_after_ms": "\(Self.storeRetryAfterMs)"])
    }

    /// What a refusal for an unavailable store tells clients to wait: the follower service
    /// probes the store this often, so a quorum's return is noticed within about this long.
    public static let storeRetryAfterMs: Int64 = 100

    private func reload() async throws {
        guard case .embedded(let store) = backend else { return }
        let recovered = try await store.load()
        var fresh = CoordinatorState(policy: state.policy, recovered: recovered, nowMs: clock.nowMs())
        try await store.commit(fresh.takePending())
        state = fresh
        needsReload = false
        assignmentsChanged.signal()
        eventsChanged.signal()
    }
}
