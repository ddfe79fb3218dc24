import MMCore

/// The coordinator's fixed rules: which symbols exist and how long presence and grants last.
public struct CoordinatorPolicy: Sendable, Hashable {
    public var symbols: [String]
    public var presenceTtlMs: Int64
    public var grantTtlMs: Int64
    /// Departed (left or expired) members kept for `GET /v1/members`; older ones are forgotten
    /// so a stream of made-up node ids cannot grow memory without bound.
    public var retainedDepartedMembers: Int

    public init(symbols: [String], presenceTtlMs: Int64, grantTtlMs: Int64, retainedDepartedMembers: Int = 256) {
        self.symbols = symbols
        self.presenceTtlMs = presenceTtlMs
        self.grantTtlMs = grantTtlMs
        self.retainedDepartedMembers = retainedDepartedMembers
    }

    public init(_ config: ClusterConfig) {
        self.init(symbols: config.symbolNames, presenceTtlMs: config.coordinator.presenceTtlMs, grantTtlMs: config.coordinator.grantTtlMs)
    }
}

/// The event kinds of the coordinator's durable log.
public enum CoordinatorEventKind: String, Sendable, CaseIterable {
    case join, leave, expire
    /// The supervisor reported the member's process dead; its presence ended at once.
    case death
    case grant
    /// A restarted coordinator took over a live grant of its previous run: the holder presented
    /// it correctly signed, unexpired, with the highest token recorded for the symbol.
    case adopt
    case renewRefused = "renew_refused"
    case release
    /// A grant ended by the coordinator before its expiry because its holder's process died.
    case revoke
    case grantExpired = "grant_expired"
    case rebalance
    case coordinatorStarted = "coordinator_started"
    /// Fencing counters raised to the highest tokens the exchange has accepted (after a
    /// backend switch or a lost store), so no token is ever issued twice.
    case tokensRaised = "tokens_raised"
}

public struct MemberRecord: Codable, Sendable, Hashable {
    /// How many ended incarnations a member remembers. A late heartbeat is at most a few
    /// requests behind its process's death, and restarts of one node id come one at a time, so
    /// a handful covers every heartbeat still in flight while bounding memory per node.
    public static let rememberedEndedIncarnations = 8

    public var node: String
    public var address: String
    public var joinedAtMs: EpochMs
    public var lastHeartbeatMs: EpochMs
    public var expiresAtMs: EpochMs
    public var status: PresenceStatus
    /// The incarnation of the latest accepted heartbeat; "" when the node sent none (unknown).
    public var incarnation: String
    /// Incarnations known to be over (reported dead, or replaced by a newer one), oldest
    /// first: a heartbeat from one of them is refused, so it cannot resurrect the member.
    public var endedIncarnations: [String]

    public func presence(nowMs: EpochMs) -> NodePresence {
        NodePresence(
            node: node, address: address, joinedAtMs: joinedAtMs, lastHeartbeatMs: lastHeartbeatMs, expiresAtMs: expiresAtMs,
            expiresInMs: status == .alive ? max(0, expiresAtMs - nowMs) : 0, status: status, incarnation: incarnation.isEmpty ? nil : incarnation)
    }

    /// Records `ended` as over; the unknown incarnation ("") is never recorded, since every
    /// node that sends none shares it.
    mutating func markEnded(_ ended: String) {
        guard !ended.isEmpty, !endedIncarnations.contains(ended) else { return }
        endedIncarnations.append(ended)
        if endedIncarnations.count > Self.rememberedEndedIncarnations {
            endedIncarnations.removeFirst(endedIncarnations.count - Self.rememberedEndedIncarnations)
        }
    }
}

/// An issued grant, unsigned (the engine signs what it returns).
public struct GrantRecord: Codable, Sendable, Hashable {
    public var symbol: String
    public var node: String
    public var fencingToken: Int64
    public var grantedAtMs: EpochMs
    public var expiresAtMs: EpochMs
    /// The holder's incarnation when it acquired: a death notice for that incarnation ends
    /// the grant at once. "" (unknown) is never matched, so such grants run to their expiry.
    public var incarnation: String

    /// A grant is valid while now < expires_at_ms, the same rule the exchange applies.
    public func isLive(at nowMs: EpochMs) -> Bool { nowMs < expiresAtMs }
}

/// A live member as persisted, so a restarted coordinator starts from the same member set
/// (and therefore the same assignment table) instead of rebuilding it heartbeat by heartbeat.
public struct PersistedMember: Sendable, Hashable {
    public var node: String
    public var address: String
    public var incarnation: String
    public var joinedAtMs: EpochMs

    public init(node: String, address: String, incarnation: String, joinedAtMs: EpochMs) {
        self.node = node
        self.address = address
        self.incarnation = incarnation
        self.joinedAtMs = joinedAtMs
    }
}

/// What the repository hands back at startup: the only state that survives a restart.
public struct RecoveredCoordinatorState: Sendable, Hashable {
    public var headSeq: Int64
    public var fencingTokens: [String: Int64]
    /// The members that were alive when the previous run last changed membership.
    public var members: [PersistedMember]

    public init(headSeq: Int64, fencingTokens: [String: Int64], members: [PersistedMember] = []) {
        self.headSeq = headSeq
        self.fencingTokens = fencingTokens
        self.members = members
    }

    /// Any prior event or token means an earlier run may have issued grants still running.
    public var showsPreviousRun: Bool { headSeq > 0 || !fencingTokens.isEmpty }
}

/// What must be durable before a result is returned: appended events, raised tokens and
/// membership changes (a member alive now, or gone).
public struct CoordinatorMutation: Sendable, Hashable {
    public var events: [ClusterEvent] = []
    public var fencingTokens: [String: Int64] = [:]
    public var aliveMembers: [String: PersistedMember] = [:]
    public var departedMembers: Set<String> = []
    public var isEmpty: Bool { events.isEmpty && fencingTokens.isEmpty && aliveMembers.isEmpty && departedMembers.isEmpty }
    public init() {}
}

/// Why the coordinator said no. Each maps to one HTTP status and stable code.
public enum CoordinatorRefusal: Error, Sendable, Hashable {
    case unknownSymbol(String)
    case invalidNodeId(String)
    case invalidAddress(String)
    case invalidField(field: String, reason: String)
    case unknownNode(String)
    case incarnationEnded(node: String, incarnation: String)
    case notAssigned(symbol: String, node: String, assignedTo: String?)
    case heldByOther(symbol: String, holder: String, expiresInMs: Int64)
    case grantLapsed(symbol: String, node: String)
    case staleFencingToken(symbol: String, presented: Int64, current: Int64, holder: String?)
    case startupQuiet(retryAfterMs: Int64)
    case invalidGrant(symbol: String, node: String)

    public var code: String {
        switch self {
        case .unknownSymbol: "unknown_symbol"
        case .invalidNodeId: CoordinatorErrorCode.invalidNodeId
        case .invalidAddress, .invalidField: "invalid_field"
        case .unknownNode: CoordinatorErrorCode.unknownNode
        case .incarnationEnded: CoordinatorErrorCode.incarnationEnded
        case .notAssigned: CoordinatorErrorCode.notAssigned
        case .heldByOther: CoordinatorErrorCode.heldByOther
        case .grantLapsed: CoordinatorErrorCode.grantLapsed
        case .staleFencingToken: CoordinatorErrorCode.staleFencingToken
        case .startupQuiet: CoordinatorErrorCode.startupQuiet
        case .invalidGrant: CoordinatorErrorCode.invalidGrant
        }
    }

    public var apiError: APIError {
        switch self {
        case .unknownSymbol(let symbol):
            return .unknownSymbol(symbol)
        case .invalidNodeId(let node):
            return APIError(
                status: 400, code: code, message: "node id '\(node)' must be 1–32 characters of a–z, 0–9 and '-'", details: ["node": node])
        case .invalidAddress(let why):
            return .invalidField("address", why)
        case .invalidField(let field, let reason):
            return .invalidField(field, reason)
        case .incarnationEnded(let node, let incarnation):
            return APIError(
                status: 409, code: code,
                message: "incarnation '\(incarnation)' of node '\(node)' has ended (its process was reported dead or a newer one took over): "
                    + "this heartbeat changed nothing; a restarted node must start with a new incarnation",
                details: ["node": node, "incarnation": incarnation])
        case .unknownNode(let node):
            return APIError(
                status: 404, code: code, message: "node '\(node)' is not a member: send POST /v1/members/\(node)/heartbeat first",
                details: ["node": node])
        case .notAssigned(let symbol, let node, let assignedTo):
            var details = ["symbol": symbol, "node": node]
            details["assigned_to"] = assignedTo
            return APIError(
                status: 409, code: code,
                message: "symbol '\(symbol)' is assigned to \(assignedTo.map { "'\($0)'" } ?? "no live node"), not '\(node)': watch GET /v1/assignments",
                details: details)
        case .heldByOther(let symbol, let holder, let expiresInMs):
            return APIError(
                status: 409, code: code,
                message: "'\(holder)' holds an unexpired grant for '\(symbol)' for \(expiresInMs) ms more; retry after it is released or expires",
                details: ["symbol": symbol, "holder": holder, "expires_in_ms": "\(expiresInMs)"])
        case .grantLapsed(let symbol, let node):
            return APIError(
                status: 409, code: code,
                message: "'\(node)' holds no unexpired grant for '\(symbol)': stop acting on it and acquire again",
                details: ["symbol": symbol, "node": node])
        case .staleFencingToken(let symbol, let presented, let current, let holder):
            var details = ["symbol": symbol, "presented": "\(presented)", "current": "\(current)"]
            details["holder"] = holder
            return APIError(
                status: 409, code: code,
                message: "fencing token \(presented) for '\(symbol)' is not the current one (\(current)\(holder.map { ", held by '\($0)'" } ?? "")): stop acting on it",
                details: details)
        case .invalidGrant(let symbol, let node):
            return APIError(
                status: 403, code: code,
                message: "the grant presented for '\(symbol)' by '\(node)' is not one this coordinator signed (altered or forged): nothing was renewed",
                details: ["symbol": symbol, "node": node])
        case .startupQuiet(let retryAfterMs):
            return APIError(
                status: 503, code: code,
                message: "the coordinator restarted and grants this symbol to no one until its previous holder re-adopts the grant or one grant TTL has passed, so no earlier grant can overlap; retry in \(retryAfterMs) ms",
                details: ["retry_after_ms": "\(retryAfterMs)"])
        }
    }
}

/// The coordinator as a pure state machine: membership, assignments, grants and fencing
/// tokens. No I/O and no clock of its own: every call takes `nowMs`, and everything that must
/// be durable accumulates in `pending` (events numbered from `headSeq`, raised tokens) for
/// the engine to persist before it answers.
public struct CoordinatorState: Sendable {
    public let policy: CoordinatorPolicy
    private let knownSymbols: Set<String>
    public private(set) var members: [String: MemberRecord] = [:]
    public private(set) var grants: [String: GrantRecord] = [:]
    /// The last fencing token issued per symbol (0 or absent before the first grant).
    public private(set) var fencingTokens: [String: Int64]
    public private(set) var assignments: AssignmentTable
    public private(set) var quietUntilMs: EpochMs
    /// Symbols for which a grant of the previous run may still be live without this run
    /// knowing it: those with a recorded token, until `quietUntilMs` or until their holder
    /// re-adopts the grant. Only these wait out the quiet period; a symbol never granted
    /// (no token) cannot have a live grant, and an adopted one is known again.
    public private(set) var unresolvedSymbols: Set<String>
    public private(set) var headSeq: Int64
    public private(set) var pending = CoordinatorMutation()
    /// No member or grant expires before this instant (a lower bound: extensions only move
    /// deadlines later), so the per-command expiry check costs nothing until one is due.
    private var nextDeadlineMs: EpochMs = .max

    /// A coordinator coming up on `recovered` state at `nowMs`. After a previous run it grants
    /// nothing until `nowMs + grant TTL`: any grant it issued before the restart expires by
    /// then, whatever renewals it received, because each one ran at most one TTL from a
    /// moment before this one.
    public init(policy: CoordinatorPolicy, recovered: RecoveredCoordinatorState, nowMs: EpochMs) {
        self.policy = policy
        self.knownSymbols = Set(policy.symbols)
        self.fencingTokens = recovered.fencingTokens
        self.headSeq = recovered.headSeq
        let previousRun = recovered.showsPreviousRun
        self.quietUntilMs = previousRun ? nowMs + policy.grantTtlMs : nowMs
        self.unresolvedSymbols = previousRun ? Set(recovered.fencingTokens.filter { $0.value > 0 }.keys) : []
        self.assignments = AssignmentTable(version: 0, symbols: [:])
        // The previous run's live members come back alive for one presence TTL: the table is
        // the one before the restart, so no node gives up a symbol it holds while the members
        // heartbeat again; one that does not come back expires as usual.
        for member in recovered.members {
            members[member.node] = MemberRecord(
                node: member.node, address: member.address, joinedAtMs: member.joinedAtMs, lastHeartbeatMs: nowMs,
                expiresAtMs: nowMs + policy.presenceTtlMs, status: .alive, incarnation: member.incarnation, endedIncarnations: [])
        }
        if !recovered.members.isEmpty { nextDeadlineMs = nowMs + policy.presenceTtlMs }
        let started = append(
            nowMs, .coordinatorStarted, expiresAtMs: quietUntilMs,
            detail: previousRun
                ? "previous run found (last event \(recovered.headSeq)): \(unresolvedSymbols.count) symbol(s) with earlier grants wait until \(quietUntilMs) unless their holder re-adopts its grant"
                : "fresh data directory: granting at once")
        // The version is the seq of the event that last changed the table, so it is durable
        // and never reused across restarts.
        assignments.version = started
        rebalance(nowMs: nowMs)
    }

    /// A replica taking up the whole state another replica committed: nothing is unknown, so
    /// there is no quiet period and no event (the state is the same one, only read again).
    public init(policy: CoordinatorPolicy, snapshot: CoordinatorSnapshot) {
        self.policy = policy
        self.knownSymbols = Set(policy.symbols)
        self.members = Dictionary(uniqueKeysWithValues: snapshot.members.map { ($0.node, $0) })
        self.grants = Dictionary(uniqueKeysWithValues: snapshot.grants.map { ($0.symbol, $0) })
        self.fencingTokens = snapshot.fencingTokens
        self.assignments = snapshot.head.assignments
        self.quietUntilMs = snapshot.head.quietUntilMs
        self.unresolvedSymbols = Set(snapshot.head.unresolvedSymbols)
        self.headSeq = snapshot.head.headSeq
        // Due at once: the first command sweeps and computes the real next deadline.
        self.nextDeadlineMs = 0
    }

    /// Everything this state is, for a store that keeps the whole state (etcd) so that any
    /// replica can continue from it exactly.
    public var snapshot: CoordinatorSnapshot {
        CoordinatorSnapshot(
            head: CoordinatorSnapshot.Head(
                headSeq: headSeq, assignments: assignments, quietUntilMs: quietUntilMs, unresolvedSymbols: unresolvedSymbols.sorted()),
            members: members.values.sorted { $0.node < $1.node },
            grants: grants.values.sorted { $0.symbol < $1.symbol },
            fencingTokens: fencingTokens)
    }

    // MARK: Membership

    /// `incarnation` nil or "" means the node did not say (an older node): it matches no death
    /// notice. A different incarnation from a live member is a restart of that node: the new one
    /// is recorded and the old one counts as ended, so its late heartbeats cannot take over again.
    /// Grants stay as they are (the restarted node's acquire supersedes them, as always).
    public mutating func heartbeat(node: String, address: String, incarnation: String? = nil, nowMs: EpochMs) throws(CoordinatorRefusal) -> HeartbeatResponse {
        sweep(nowMs: nowMs)
        try validate(node: node)
        guard !address.isEmpty, address.utf8.count <= 256 else {
            throw .invalidAddress("must be 1–256 bytes, e.g. \"http://127.0.0.1:7411\"")
        }
        let incarnation = incarnation ?? ""
        if !incarnation.isEmpty { try validate(incarnation: incarnation) }
        if let member = members[node], member.endedIncarnations.contains(incarnation) {
            throw .incarnationEnded(node: node, incarnation: incarnation)
        }
        let expiresAtMs = nowMs + policy.presenceTtlMs
        if var member = members[node], member.status == .alive {
            member.lastHeartbeatMs = nowMs
            member.expiresAtMs = expiresAtMs
            let moved = member.address != address
            member.address = address
            if member.incarnation != incarnation {
                let previous = member.incarnation
                member.markEnded(previous)
                member.incarnation = incarnation
                append(nowMs, .join, node: node, detail: "new incarnation \(describe(incarnation)) (was \(describe(previous))): the node restarted")
                persist(member)
            } else if moved {
                persist(member)
            }
            members[node] = member
        } else {
            var member = MemberRecord(
                node: node, address: address, joinedAtMs: nowMs, lastHeartbeatMs: nowMs, expiresAtMs: expiresAtMs, status: .alive,
                incarnation: incarnation, endedIncarnations: members[node]?.endedIncarnations ?? [])
            if let previous = members[node]?.incarnation, previous != incarnation { member.markEnded(previous) }
            members[node] = member
            persist(member)
            nextDeadlineMs = min(nextDeadlineMs, expiresAtMs)
            append(nowMs, .join, node: node, detail: "joined at \(address)" + (incarnation.isEmpty ? "" : " (incarnation \(incarnation))"))
            forgetOldDepartedMembers()
            rebalance(nowMs: nowMs)
        }
        return HeartbeatResponse(node: node, expiresAtMs: expiresAtMs, assignmentsVersion: assignments.version)
    }

    /// A graceful leave. The node's grants stay valid until released or expired (the node may
    /// still be acting under them), but cannot be renewed because its symbols move away.
    public mutating func leave(node: String, nowMs: EpochMs) throws(CoordinatorRefusal) -> LeaveResult {
        sweep(nowMs: nowMs)
        try validate(node: node)
        guard var member = members[node] else { throw .unknownNode(node) }
        guard member.status == .alive else { return LeaveResult(node: node, left: false) }
        member.status = .left
        member.expiresAtMs = nowMs
        members[node] = member
        persist(member)
        append(nowMs, .leave, node: node, detail: "left gracefully")
        rebalance(nowMs: nowMs)
        return LeaveResult(node: node, left: true)
    }

    /// The supervisor reaped the process that ran `node` as `incarnation`. A reaped process
    /// can no longer act, so unlike a leave or an expiry (where the node may still be acting)
    /// its grants can end now: the next holder starts at once instead of after a grant TTL.
    ///
    /// * The member's presence ends (`dead`, a `death` event, rebalance) only if it is alive
    ///   as exactly that incarnation: a notice that arrives after the node restarted must not
    ///   end the new process.
    /// * Independently, every live grant that this node acquired as that incarnation ends
    ///   (`revoke`). Tokens are untouched: the next acquire mints token + 1 as always, which
    ///   fences anything the dead process left at the exchange.
    /// * The incarnation is remembered as ended, so a heartbeat it sent before dying that
    ///   arrives now is refused instead of bringing the member back.
    public mutating func memberDied(
        node: String, incarnation: String, pid: Int32? = nil, exit: String? = nil, nowMs: EpochMs
    ) throws(CoordinatorRefusal) -> DeathNoticeResult {
        sweep(nowMs: nowMs)
        try validate(node: node)
        try validate(incarnation: incarnation)
        if let pid, pid <= 0 { throw .invalidField(field: "pid", reason: "must be a positive process id (got \(pid))") }
        // It goes into the event log verbatim, so no control characters (a forged line break
        // in an operator's timeline) and a bounded size.
        if let exit, exit.isEmpty || exit.utf8.count > 256 || exit.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f }) {
            throw .invalidField(field: "exit", reason: "must be 1–256 bytes without control characters, e.g. \"signal 9\"")
        }
        guard var member = members[node] else { throw .unknownNode(node) }

        let ends = member.incarnation == incarnation && member.status == .alive
        if ends {
            member.status = .dead
            member.expiresAtMs = nowMs
            var how = "process died (incarnation \(incarnation)"
            if let pid { how += ", pid \(pid)" }
            if let exit { how += ", \(exit)" }
            append(nowMs, .death, node: node, detail: how + ")")
        }
        member.markEnded(incarnation)
        members[node] = member
        if ends { persist(member) }

        var revoked: [String] = []
        for symbol in grants.keys.sorted() {
            guard let grant = grants[symbol], grant.node == node, grant.incarnation == incarnation, grant.isLive(at: nowMs) else { continue }
            grants[symbol] = nil
            append(
                nowMs, .revoke, symbol: symbol, node: node, fencingToken: grant.fencingToken, expiresAtMs: nowMs,
                detail: "holder's process died (incarnation \(incarnation))")
            revoked.append(symbol)
        }
        if ends { rebalance(nowMs: nowMs) }

        let reason: String?
        if ends {
            reason = nil
        } else if member.incarnation == incarnation {
            reason = "incarnation \(incarnation) is the member's last one but it is already \(member.status.rawValue); no presence to end"
        } else {
            reason = "incarnation \(incarnation) is not the current one (\(describe(member.incarnation))); "
                + (revoked.isEmpty ? "nothing to end" : "the member stays, only that incarnation's grants ended")
        }
        return DeathNoticeResult(node: node, incarnation: incarnation, ended: ends, revokedGrants: revoked, reason: reason)
    }

    /// Expires silent members and lapsed grants. Every command runs it first, so a decision
    /// never rests on a member or grant that has already expired; the periodic sweep only
    /// makes the events (and the rebalance) prompt when no request arrives.
    public mutating func sweep(nowMs: EpochMs) {
        guard nowMs >= nextDeadlineMs else { return }
        var membershipChanged = false
        for node in members.keys.sorted() {
            guard var member = members[node], member.status == .alive, member.expiresAtMs <= nowMs else { continue }
            member.status = .expired
            members[node] = member
            persist(member)
            append(nowMs, .expire, node: node, detail: "no heartbeat for \(policy.presenceTtlMs) ms")
            membershipChanged = true
        }
        if membershipChanged { rebalance(nowMs: nowMs) }
        for symbol in grants.keys.sorted() {
            if let grant = grants[symbol], !grant.isLive(at: nowMs) { closeExpiredGrant(grant, nowMs: nowMs) }
        }
        let memberDeadlines = members.values.lazy.filter { $0.status == .alive }.map(\.expiresAtMs)
        nextDeadlineMs = min(memberDeadlines.min() ?? .max, grants.values.lazy.map(\.expiresAtMs).min() ?? .max)
    }

    public var liveMembers: [String] {
        members.values.filter { $0.status == .alive }.map(\.node).sorted()
    }

    // MARK: Grants

    /// Grants `symbol` to `node` with a new, higher fencing token. When the caller already
    /// holds the unexpired grant (it restarted after a crash, or retried a lost response) the
    /// old grant ends now and a fresh one supersedes it: whatever the earlier incarnation left
    /// on the exchange is fenced out by the higher token, as the design asks of a restart.
    public mutating func acquire(symbol: String, node: String, nowMs: EpochMs) throws(CoordinatorRefusal) -> GrantRecord {
        sweep(nowMs: nowMs)
        try validate(symbol: symbol)
        try validate(node: node)
        guard let member = members[node] else { throw .unknownNode(node) }
        let assignedTo = assignments.symbols[symbol]
        guard member.status == .alive, assignedTo == node else { throw .notAssigned(symbol: symbol, node: node, assignedTo: assignedTo) }
        if let existing = grants[symbol] {
            if existing.isLive(at: nowMs) {
                guard existing.node == node else {
                    throw .heldByOther(symbol: symbol, holder: existing.node, expiresInMs: existing.expiresAtMs - nowMs)
                }
                grants[symbol] = nil
                append(nowMs, .release, symbol: symbol, node: node, fencingToken: existing.fencingToken, expiresAtMs: nowMs, detail: "superseded by a new acquire from its holder")
            } else {
                closeExpiredGrant(existing, nowMs: nowMs)
            }
        }
        guard !isQuiet(symbol: symbol, nowMs: nowMs) else { throw .startupQuiet(retryAfterMs: quietUntilMs - nowMs) }
        let token = (fencingTokens[symbol] ?? 0) + 1
        let grant = GrantRecord(
            symbol: symbol, node: node, fencingToken: token, grantedAtMs: nowMs, expiresAtMs: nowMs + policy.grantTtlMs, incarnation: member.incarnation)
        grants[symbol] = grant
        nextDeadlineMs = min(nextDeadlineMs, grant.expiresAtMs)
        fencingTokens[symbol] = token
        pending.fencingTokens[symbol] = token
        append(nowMs, .grant, symbol: symbol, node: node, fencingToken: token, expiresAtMs: grant.expiresAtMs, detail: "granted for \(policy.grantTtlMs) ms")
        return grant
    }

    /// Extends the current grant by one TTL from now. Refusals are logged (renew_refused): a
    /// node told to stop is something an operator wants to see on the timeline.
    ///
    /// `presented` is the signed grant the holder is renewing; `isAuthentic` checks its
    /// signature (called only when it matters). After a restart the coordinator does not know
    /// the previous run's live grants; a renewal presenting one re-adopts it (see `adopt`).
    public mutating func renew(
        symbol: String, node: String, fencingToken: Int64, presented: AuthorityGrant? = nil, isAuthentic: (AuthorityGrant) -> Bool = { _ in false },
        nowMs: EpochMs
    ) throws(CoordinatorRefusal) -> GrantRecord {
        sweep(nowMs: nowMs)
        try validate(symbol: symbol)
        try validate(node: node)
        guard members[node] != nil else { throw .unknownNode(node) }
        let current = fencingTokens[symbol] ?? 0
        if grants[symbol] == nil, let presented, let adopted = try adopt(presented, symbol: symbol, node: node, fencingToken: fencingToken, isAuthentic: isAuthentic, nowMs: nowMs) {
            return extend(adopted, nowMs: nowMs)
        }
        let refusal: CoordinatorRefusal
        if let grant = grants[symbol], fencingToken == current, grant.node == node {
            if !grant.isLive(at: nowMs) {
                closeExpiredGrant(grant, nowMs: nowMs)
                refusal = .grantLapsed(symbol: symbol, node: node)
            } else if members[node]?.status == .alive, assignments.symbols[symbol] == node || nowMs < quietUntilMs {
                // Within the startup window the table is still forming from the nodes' first
                // heartbeats (the first node back is briefly assigned everything), so a grant
                // this run knows is renewed for its holder whatever the table says; once the
                // window ends the table is whole again and the usual rule applies.
                return extend(grant, nowMs: nowMs)
            } else {
                refusal = .notAssigned(symbol: symbol, node: node, assignedTo: assignments.symbols[symbol])
            }
        } else if fencingToken == current, grants[symbol] == nil {
            // The node's own grant already ended (released, expired or lost in a restart).
            refusal = .grantLapsed(symbol: symbol, node: node)
        } else {
            refusal = .staleFencingToken(symbol: symbol, presented: fencingToken, current: current, holder: grants[symbol]?.node)
        }
        append(nowMs, .renewRefused, symbol: symbol, node: node, fencingToken: fencingToken, detail: refusal.code)
        throw refusal
    }

    /// Ends the holder's grant at once so the next assignee need not wait for the expiry.
    /// Releasing a grant that already ended is a harmless no-op (released: false).
    public mutating func release(symbol: String, node: String, fencingToken: Int64, nowMs: EpochMs) throws(CoordinatorRefusal) -> ReleaseResult {
        sweep(nowMs: nowMs)
        try validate(symbol: symbol)
        try validate(node: node)
        let current = fencingTokens[symbol] ?? 0
        guard fencingToken == current else {
            throw .staleFencingToken(symbol: symbol, presented: fencingToken, current: current, holder: grants[symbol]?.node)
        }
        guard let grant = grants[symbol] else { return ReleaseResult(symbol: symbol, released: false) }
        guard grant.node == node else {
            throw .staleFencingToken(symbol: symbol, presented: fencingToken, current: current, holder: grant.node)
        }
        guard grant.isLive(at: nowMs) else {
            closeExpiredGrant(grant, nowMs: nowMs)
            return ReleaseResult(symbol: symbol, released: false)
        }
        grants[symbol] = nil
        append(nowMs, .release, symbol: symbol, node: node, fencingToken: grant.fencingToken, expiresAtMs: nowMs, detail: "released by holder")
        return ReleaseResult(symbol: symbol, released: true)
    }

    /// Re-adoption after a restart: the grant this run lost track of continues, instead of the
    /// symbol going unquoted for the quiet period. Safe because a token is durable before its
    /// grant is returned and a new token is only minted once the previous grant has ended, so
    /// a grant carrying the highest recorded token is the only one for the symbol that can be
    /// live; the signature proves this coordinator issued it to exactly this node. Nil when
    /// the rule does not apply (the caller then answers as for any unknown grant); throws when
    /// the presented grant is not one this coordinator signed, so a forgery is refused loudly.
    private mutating func adopt(
        _ presented: AuthorityGrant, symbol: String, node: String, fencingToken: Int64, isAuthentic: (AuthorityGrant) -> Bool, nowMs: EpochMs
    ) throws(CoordinatorRefusal) -> GrantRecord? {
        guard unresolvedSymbols.contains(symbol), nowMs < quietUntilMs,
            presented.symbol == symbol, presented.node == node, presented.fencingToken == fencingToken,
            fencingToken == fencingTokens[symbol], nowMs < presented.expiresAtMs,
            let member = members[node], member.status == .alive
        else { return nil }
        guard isAuthentic(presented) else { throw .invalidGrant(symbol: symbol, node: node) }
        // A grant can never run longer than one TTL from now, whatever it says.
        let grant = GrantRecord(
            symbol: symbol, node: node, fencingToken: fencingToken, grantedAtMs: presented.grantedAtMs,
            expiresAtMs: min(presented.expiresAtMs, nowMs + policy.grantTtlMs), incarnation: member.incarnation)
        grants[symbol] = grant
        unresolvedSymbols.remove(symbol)
        nextDeadlineMs = min(nextDeadlineMs, grant.expiresAtMs)
        append(
            nowMs, .adopt, symbol: symbol, node: node, fencingToken: fencingToken, expiresAtMs: grant.expiresAtMs,
            detail: "re-adopted after a coordinator restart: presented signed and unexpired with the highest recorded token")
        return grant
    }

    /// How long symbols not yet re-adopted keep waiting (0 once every one is resolved).
    public func quietForMs(nowMs: EpochMs) -> Int64 {
        unresolvedSymbols.isEmpty ? 0 : max(0, quietUntilMs - nowMs)
    }

    /// True while a grant of the previous run may be live for `symbol` unknown to this run.
    public func isQuiet(symbol: String, nowMs: EpochMs) -> Bool {
        nowMs < quietUntilMs && unresolvedSymbols.contains(symbol)
    }

    /// Raises each known symbol's counter to at least `floor` (the highest token the exchange
    /// has accepted): the next grant is above anything ever used for the symbol, whichever
    /// store issued it. Never lowers a counter; returns the symbols raised.
    @discardableResult
    public mutating func raiseTokens(toAtLeast floor: [String: Int64], nowMs: EpochMs) -> [String] {
        sweep(nowMs: nowMs)
        var raised: [String] = []
        for (symbol, token) in floor.sorted(by: { $0.key < $1.key }) where knownSymbols.contains(symbol) && token > (fencingTokens[symbol] ?? 0) {
            raised.append("\(symbol) \(fencingTokens[symbol] ?? 0)→\(token)")
            fencingTokens[symbol] = token
            pending.fencingTokens[symbol] = token
        }
        if !raised.isEmpty {
            append(nowMs, .tokensRaised, detail: "fencing counters raised to the exchange's highest accepted tokens: " + raised.joined(separator: ", "))
        }
        return raised
    }

    // MARK: Inspection

    public func authority(symbol: String, nowMs: EpochMs) -> AuthorityStatus {
        let live = grants[symbol].flatMap { $0.isLive(at: nowMs) ? $0 : nil }
        return AuthorityStatus(
            symbol: symbol, assignedTo: assignments.symbols[symbol], node: live?.node, fencingToken: fencingTokens[symbol] ?? 0,
            expiresAtMs: live?.expiresAtMs, expiresInMs: live.map { $0.expiresAtMs - nowMs })
    }

    public func liveGrant(symbol: String, nowMs: EpochMs) -> GrantRecord? {
        grants[symbol].flatMap { $0.isLive(at: nowMs) ? $0 : nil }
    }

    public func isKnown(symbol: String) -> Bool { knownSymbols.contains(symbol) }

    /// Hands the durable part of everything since the last call to the engine.
    public mutating func takePending() -> CoordinatorMutation {
        defer { pending = CoordinatorMutation() }
        return pending
    }

    // MARK: Internals

    private func validate(symbol: String) throws(CoordinatorRefusal) {
        guard knownSymbols.contains(symbol) else { throw .unknownSymbol(symbol) }
    }

    private func validate(node: String) throws(CoordinatorRefusal) {
        guard NodeID.isValid(node) else { throw .invalidNodeId(node) }
    }

    private func validate(incarnation: String) throws(CoordinatorRefusal) {
        guard Incarnation.isValid(incarnation) else {
            throw .invalidField(field: "incarnation", reason: "must be 1–\(Incarnation.maxBytes) bytes of A–Z a–z 0–9 . _ : -")
        }
    }

    private func describe(_ incarnation: String) -> String { incarnation.isEmpty ? "unknown" : incarnation }

    private mutating func extend(_ grant: GrantRecord, nowMs: EpochMs) -> GrantRecord {
        var renewed = grant
        renewed.expiresAtMs = max(grant.expiresAtMs, nowMs + policy.grantTtlMs)
        grants[grant.symbol] = renewed
        return renewed
    }

    private mutating func closeExpiredGrant(_ grant: GrantRecord, nowMs: EpochMs) {
        grants[grant.symbol] = nil
        append(
            nowMs, .grantExpired, symbol: grant.symbol, node: grant.node, fencingToken: grant.fencingToken, expiresAtMs: grant.expiresAtMs,
            detail: "expired at \(grant.expiresAtMs)")
    }

    private mutating func rebalance(nowMs: EpochMs) {
        let table = AssignmentPlanner.assign(symbols: policy.symbols, nodes: liveMembers)
        guard table != assignments.symbols else { return }
        let moves = AssignmentPlanner.moves(from: assignments.symbols, to: table)
        let seq = append(nowMs, .rebalance, detail: moves.joined(separator: ","))
        assignments = AssignmentTable(version: seq, symbols: table)
    }

    /// Records the member's durable presence: alive (with its address and incarnation) or gone.
    private mutating func persist(_ member: MemberRecord) {
        if member.status == .alive {
            pending.departedMembers.remove(member.node)
            pending.aliveMembers[member.node] = PersistedMember(
                node: member.node, address: member.address, incarnation: member.incarnation, joinedAtMs: member.joinedAtMs)
        } else {
            pending.aliveMembers[member.node] = nil
            pending.departedMembers.insert(member.node)
        }
    }

    private mutating func forgetOldDepartedMembers() {
        let departed = members.values.filter { $0.status != .alive }
        guard departed.count > policy.retainedDepartedMembers else { return }
        let oldest = departed.sorted { ($0.expiresAtMs, $0.node) < ($1.expiresAtMs, $1.node) }.prefix(departed.count - policy.retainedDepartedMembers)
        for member in oldest { members[member.node] = nil }
    }

    @discardableResult
    private mutating func append(
        _ nowMs: EpochMs, _ kind: CoordinatorEventKind, symbol: String? = nil, node: String? = nil, fencingToken: Int64? = nil,
        expiresAtMs: EpochMs? = nil, detail: String
    ) -> Int64 {
        headSeq += 1
        pending.events.append(
            ClusterEvent(seq: headSeq, tsMs: nowMs, kind: kind.rawValue, symbol: symbol, node: node, fencingToken: fencingToken, expiresAtMs: expiresAtMs, detail: detail))
        return headSeq
    }
}
