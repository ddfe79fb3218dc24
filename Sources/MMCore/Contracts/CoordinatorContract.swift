import Foundation

// MARK: Coordinator: membership, assignments, authority grants, fencing tokens, events.

public enum CoordinatorRoutes {
    public static let heartbeat = RouteSpec(.POST, "/v1/members/{node}/heartbeat", roles: [.node])
    public static let leave = RouteSpec(.DELETE, "/v1/members/{node}", roles: [.node])
    /// The supervisor reaped this node's process: end that incarnation now, not at its TTL.
    public static let death = RouteSpec(.POST, "/v1/members/{node}/death", roles: [.supervisor])
    public static let members = RouteSpec.read("/v1/members")
    /// `?after_version=V&wait_ms=W`: long-polls until the assignment version exceeds V.
    public static let assignments = RouteSpec.read("/v1/assignments")
    public static let acquire = RouteSpec(.POST, "/v1/authority/{symbol}/acquire", roles: [.node])
    public static let renew = RouteSpec(.POST, "/v1/authority/{symbol}/renew", roles: [.node])
    public static let release = RouteSpec(.POST, "/v1/authority/{symbol}/release", roles: [.node])
    /// Renews all of a node's grants in one call.
    public static let renewBatch = RouteSpec(.POST, "/v1/authority/renew", roles: [.node])
    public static let authority = RouteSpec.read("/v1/authority")
    public static let authorityOf = RouteSpec.read("/v1/authority/{symbol}")
    /// `?after=SEQ&limit=N&wait_ms=W`.
    public static let events = RouteSpec.read("/v1/events")
    /// What the events pruned by retention established (`EventLogBase`): a reader folds the
    /// retained events onto it instead of needing the whole history.
    public static let eventsBase = RouteSpec.read("/v1/events/base")

    public static let all: [RouteSpec] = [
        heartbeat, leave, death, members, assignments, acquire, renew, release, renewBatch, authority, authorityOf, events, eventsBase,
    ]
}

public enum CoordinatorErrorCode {
    public static let unknownNode = "unknown_node"                 // 404
    public static let invalidNodeId = "invalid_node_id"            // 400
    public static let notAssigned = "not_assigned"                 // 409
    public static let heldByOther = "held_by_other"                // 409
    public static let grantLapsed = "grant_lapsed"                 // 409
    public static let staleFencingToken = "stale_fencing_token"    // 409
    public static let startupQuiet = "startup_quiet_period"        // 503, with retry_after_ms
    /// A heartbeat from a process the coordinator knows has ended (reported dead, or replaced
    /// by a newer incarnation of the same node id).
    public static let incarnationEnded = "incarnation_ended"       // 409
    /// A renewal presented a grant this coordinator did not sign (altered or forged).
    public static let invalidGrant = "invalid_grant"               // 403
    /// The coordinator could not read or persist its state (SQLite write failed, etcd
    /// unreachable or without quorum): nothing was decided.
    public static let storeUnavailable = "store_unavailable"       // 503, with retry_after_ms
}

/// One start of a node process. A node id outlives its processes; the incarnation names one
/// of them, so the coordinator can tell "this process died" apart from "this node restarted".
public enum Incarnation {
    public static let maxBytes = 64

    /// 1–64 bytes of `A–Z a–z 0–9 . _ : -`: no escaping anywhere (JSON, log details, URLs).
    public static func isValid(_ incarnation: String) -> Bool {
        let bytes = incarnation.utf8
        guard !bytes.isEmpty, bytes.count <= maxBytes else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "-"):
                true
            default:
                false
            }
        }
    }

    /// 16 hex digits from the system's CSPRNG: unique enough that two starts of one node id
    /// never share one, which is all the coordinator relies on.
    public static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        let value = generator.next() as UInt64
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

public struct HeartbeatRequest: Codable, Sendable, Hashable {
    public var address: String
    /// Which start of the node process sends this (`Incarnation`). Absent (an older node) is
    /// treated as unknown: such a node can only be failed over by its presence TTL.
    public var incarnation: String?
    public init(address: String, incarnation: String? = nil) {
        self.address = address
        self.incarnation = incarnation
    }
}

public struct HeartbeatResponse: Codable, Sendable, Hashable {
    public var node: String
    public var expiresAtMs: EpochMs
    public var assignmentsVersion: Int64
    public init(node: String, expiresAtMs: EpochMs, assignmentsVersion: Int64) {
        self.node = node
        self.expiresAtMs = expiresAtMs
        self.assignmentsVersion = assignmentsVersion
    }
}

public struct LeaveResult: Codable, Sendable, Hashable {
    public var node: String
    public var left: Bool
    public init(node: String, left: Bool) {
        self.node = node
        self.left = left
    }
}

/// The supervisor's word that it reaped a node's process (`POST /v1/members/{node}/death`).
public struct DeathNotice: Codable, Sendable, Hashable {
    /// The incarnation the dead process was started with.
    public var incarnation: String
    public var pid: Int32?
    /// How it ended, for the event log, e.g. "signal 9" or "exit code 1".
    public var exit: String?
    public init(incarnation: String, pid: Int32? = nil, exit: String? = nil) {
        self.incarnation = incarnation
        self.pid = pid
        self.exit = exit
    }
}

public struct DeathNoticeResult: Codable, Sendable, Hashable {
    public var node: String
    public var incarnation: String
    /// True when this notice ended the member's presence (it was alive as that incarnation).
    public var ended: Bool
    /// Symbols whose grants, held by that incarnation, ended at once.
    public var revokedGrants: [String]
    /// Why nothing (or only grants) ended, when `ended` is false.
    public var reason: String?
    public init(node: String, incarnation: String, ended: Bool, revokedGrants: [String], reason: String? = nil) {
        self.node = node
        self.incarnation = incarnation
        self.ended = ended
        self.revokedGrants = revokedGrants
        self.reason = reason
    }
}

public struct MemberList: Codable, Sendable, Hashable {
    public var members: [NodePresence]
    public init(members: [NodePresence]) { self.members = members }
}

public struct AcquireRequest: Codable, Sendable, Hashable {
    public var node: String
    /// While another node still holds the symbol, how long the coordinator may hold the request
    /// open and grant the moment that grant is released or lapses (0 or absent: answer at once).
    public var waitMs: Int64?
    public init(node: String, waitMs: Int64? = nil) {
        self.node = node
        self.waitMs = waitMs
    }
}

public struct RenewRequest: Codable, Sendable, Hashable {
    public var node: String
    public var fencingToken: Int64
    /// The signed grant being renewed (optional). A coordinator that restarted has lost track
    /// of its live grants; presenting one lets it continue the grant at once (re-adoption)
    /// instead of the symbol waiting out the startup quiet period.
    public var grant: AuthorityGrant?
    public init(node: String, fencingToken: Int64, grant: AuthorityGrant? = nil) {
        self.node = node
        self.fencingToken = fencingToken
        self.grant = grant
    }
}

public struct ReleaseResult: Codable, Sendable, Hashable {
    public var symbol: String
    public var released: Bool
    public init(symbol: String, released: Bool) {
        self.symbol = symbol
        self.released = released
    }
}

public struct BatchRenewRequest: Codable, Sendable, Hashable {
    public struct Item: Codable, Sendable, Hashable {
        public var symbol: String
        public var fencingToken: Int64
        /// The signed grant being renewed, for re-adoption (see `RenewRequest.grant`).
        public var grant: AuthorityGrant?
        public init(symbol: String, fencingToken: Int64, grant: AuthorityGrant? = nil) {
            self.symbol = symbol
            self.fencingToken = fencingToken
            self.grant = grant
        }
    }

    public var node: String
    public var grants: [Item]
    public init(node: String, grants: [Item]) {
        self.node = node
        self.grants = grants
    }
}

public struct BatchRenewResult: Codable, Sendable, Hashable {
    public struct Refusal: Codable, Sendable, Hashable {
        public var symbol: String
        public var code: String
        public var message: String
        public init(symbol: String, code: String, message: String) {
            self.symbol = symbol
            self.code = code
            self.message = message
        }
    }

    public var renewed: [AuthorityGrant]
    public var refused: [Refusal]
    public init(renewed: [AuthorityGrant], refused: [Refusal]) {
        self.renewed = renewed
        self.refused = refused
    }
}

public struct AuthorityStatus: Codable, Sendable, Hashable {
    public var symbol: String
    public var assignedTo: String?
    /// The holder of the unexpired grant, if any.
    public var node: String?
    /// The current (or last) fencing token for the symbol; 0 before the first grant.
    public var fencingToken: Int64
    public var expiresAtMs: EpochMs?
    public var expiresInMs: Int64?
    public init(symbol: String, assignedTo: String?, node: String?, fencingToken: Int64, expiresAtMs: EpochMs?, expiresInMs: Int64?) {
        self.symbol = symbol
        self.assignedTo = assignedTo
        self.node = node
        self.fencingToken = fencingToken
        self.expiresAtMs = expiresAtMs
        self.expiresInMs = expiresInMs
    }
}

public struct AuthorityList: Codable, Sendable, Hashable {
    public var authority: [AuthorityStatus]
    /// While > 0 the coordinator grants nothing (startup quiet period after a restart).
    public var quietForMs: Int64
    public init(authority: [AuthorityStatus], quietForMs: Int64) {
        self.authority = authority
        self.quietForMs = quietForMs
    }
}

public struct EventPage: Codable, Sendable, Hashable {
    public var events: [ClusterEvent]
    public var headSeq: Int64
    /// Coordinator only (absent elsewhere): events with seq ≤ this were pruned by retention
    /// (`coordinator.events.retain`), 0 when none were. Read together with `events`, so when
    /// `after` is below it the page starts at the first retained event and the gap is said,
    /// not silently skipped; `GET /v1/events/base` holds what the pruned events established.
    public var compactedThroughSeq: Int64?
    public init(events: [ClusterEvent], headSeq: Int64, compactedThroughSeq: Int64? = nil) {
        self.events = events
        self.headSeq = headSeq
        self.compactedThroughSeq = compactedThroughSeq
    }

    /// True when events after `after` were pruned before this page was read (a reader that
    /// needs every event must start again from `GET /v1/events/base`).
    public func skipsPrunedEvents(after: Int64) -> Bool { (compactedThroughSeq ?? 0) > after }
}

/// `GET /v1/events/base`: the compaction base of the coordinator's event log. Retention
/// deletes the oldest events in batches; before it does, it folds them into `grants`, in the
/// same transaction as the delete. So `grants` continued with every retained event (seq >
/// `compactedThroughSeq`) is exactly the fold of the whole history, which is what makes the
/// grant check incremental (docs/architecture/check.md).
public struct EventLogBase: Codable, Sendable, Hashable {
    /// Events with seq ≤ this are no longer in the log; 0 when nothing was pruned.
    public var compactedThroughSeq: Int64
    /// The log's head when this was read.
    public var headSeq: Int64
    /// The fold of every pruned event.
    public var grants: GrantLogFold

    public init(compactedThroughSeq: Int64, headSeq: Int64, grants: GrantLogFold) {
        self.compactedThroughSeq = compactedThroughSeq
        self.headSeq = headSeq
        self.grants = grants
    }
}

/// Grant lifetimes folded over the coordinator's event log, one event at a time in seq order:
/// per symbol the open grant, the last ended one and the highest token, plus running counts of
/// what broke the rules. It is the whole state `grants_never_overlap` needs to judge the next
/// event, so the coordinator can persist it when it prunes events (`EventLogBase`) and the
/// checker can continue from it; both run this one function, so they cannot disagree.
///
/// A grant's lifetime is [grant.ts_ms, end) where end is the `release`/`revoke` ts_ms, the
/// `grant_expired` expires_at_ms (every silent renewal included), or — if the coordinator
/// restarted while it was open — the restart's `coordinator_started.expires_at_ms` (nothing
/// is granted for one TTL after a restart and every renewal happened before it), unless its
/// holder re-adopts it (`adopt`, same token), which reopens that very grant.
public struct GrantLogFold: Codable, Sendable, Hashable {
    /// A grant with no end event yet.
    public struct OpenGrant: Codable, Sendable, Hashable {
        public var node: String
        public var fencingToken: Int64
        public var grantedAtMs: EpochMs
        /// Seq of the `grant` or `adopt` event that opened it.
        public var grantSeq: Int64
        public init(node: String, fencingToken: Int64, grantedAtMs: EpochMs, grantSeq: Int64) {
            self.node = node
            self.fencingToken = fencingToken
            self.grantedAtMs = grantedAtMs
            self.grantSeq = grantSeq
        }
    }

    /// The last grant that ended, and when.
    public struct EndedGrant: Codable, Sendable, Hashable {
        public var node: String
        public var fencingToken: Int64
        public var endMs: EpochMs
        public init(node: String, fencingToken: Int64, endMs: EpochMs) {
            self.node = node
            self.fencingToken = fencingToken
            self.endMs = endMs
        }
    }

    /// One symbol's grant history, as far as the next event's verdict depends on it.
    public struct SymbolGrants: Codable, Sendable, Hashable {
        public var symbol: String
        public var highestToken: Int64?
        public var open: OpenGrant?
        public var lastEnded: EndedGrant?
        public init(symbol: String, highestToken: Int64? = nil, open: OpenGrant? = nil, lastEnded: EndedGrant? = nil) {
            self.symbol = symbol
            self.highestToken = highestToken
            self.open = open
            self.lastEnded = lastEnded
        }
    }

    /// What one event broke, as one human-readable line.
    public enum Violation: Sendable, Hashable {
        /// A grant (or re-adoption) while another grant of the symbol was live.
        case overlap(String)
        /// A token not above every earlier one of its symbol (or a re-adoption of an old one).
        case tokenNotIncreasing(String)
        /// An end event for a grant that was never open.
        case unmatchedEnd(String)
    }

    /// Every event folded (all kinds).
    public var events: Int64 = 0
    /// The seq of the last event folded (0 before any).
    public var throughSeq: Int64 = 0
    public var grants: Int64 = 0
    public var coordinatorStarts: Int64 = 0
    public var overlapping: Int64 = 0
    public var tokensNotIncreasing: Int64 = 0
    public var unmatchedEnds: Int64 = 0
    /// Per symbol; encoded as an array sorted by symbol (stable JSON, symbols never rewritten
    /// as keys).
    public private(set) var symbols: [String: SymbolGrants] = [:]

    public init() {}

    public var held: Bool { overlapping == 0 && tokensNotIncreasing == 0 && unmatchedEnds == 0 }
    public var openGrants: Int { symbols.values.reduce(0) { $0 + ($1.open == nil ? 0 : 1) } }
    public var symbolsWithTokens: Int { symbols.values.reduce(0) { $0 + ($1.highestToken == nil ? 0 : 1) } }

    /// Folds one event (callers go in seq order) and says what it broke: nothing, or one line
    /// per rule (a grant can both overlap and repeat a token).
    public mutating func apply(_ event: ClusterEvent) -> [Violation] {
        events += 1
        throughSeq = max(throughSeq, event.seq)
        switch event.kind {
        case "grant":
            guard let symbol = event.symbol, let token = event.fencingToken else { return [] }
            grants += 1
            let node = event.node ?? "?"
            var entry = symbols[symbol] ?? SymbolGrants(symbol: symbol)
            var violations: [Violation] = []
            if let previous = entry.open {
                violations.append(.overlap(
                    "\(symbol): grant #\(token) to \(node) at \(event.tsMs) (event \(event.seq)) while #\(previous.fencingToken) of \(previous.node) (event \(previous.grantSeq)) was never ended"))
            } else if let previous = entry.lastEnded, event.tsMs < previous.endMs {
                violations.append(.overlap(
                    "\(symbol): grant #\(token) to \(node) at \(event.tsMs) (event \(event.seq)) starts \(previous.endMs - event.tsMs) ms before #\(previous.fencingToken) of \(previous.node) ended at \(previous.endMs)"))
            }
            if let highest = entry.highestToken, token <= highest {
                violations.append(.tokenNotIncreasing("\(symbol): grant token \(token) (event \(event.seq)) is not above the earlier \(highest)"))
            }
            entry.highestToken = max(entry.highestToken ?? token, token)
            entry.open = OpenGrant(node: node, fencingToken: token, grantedAtMs: event.tsMs, grantSeq: event.seq)
            symbols[symbol] = entry
            return counted(violations)
        case "adopt":
            guard let symbol = event.symbol, let token = event.fencingToken else { return [] }
            let node = event.node ?? "?"
            var entry = symbols[symbol] ?? SymbolGrants(symbol: symbol)
            var violations: [Violation] = []
            if let previous = entry.open {
                violations.append(.overlap(
                    "\(symbol): #\(token) re-adopted by \(node) at \(event.tsMs) (event \(event.seq)) while #\(previous.fencingToken) of \(previous.node) (event \(previous.grantSeq)) was never ended"))
            } else if let highest = entry.highestToken, token != highest {
                violations.append(.tokenNotIncreasing("\(symbol): re-adopted token \(token) (event \(event.seq)) is not the latest one \(highest)"))
            } else if let previous = entry.lastEnded, previous.fencingToken == token, previous.node != node {
                violations.append(.overlap("\(symbol): #\(token) of \(previous.node) re-adopted by another node, \(node) (event \(event.seq))"))
            }
            entry.highestToken = max(entry.highestToken ?? token, token)
            entry.open = OpenGrant(node: node, fencingToken: token, grantedAtMs: event.tsMs, grantSeq: event.seq)
            symbols[symbol] = entry
            return counted(violations)
        case "release", "revoke", "grant_expired":
            guard let symbol = event.symbol else { return [] }
            var entry = symbols[symbol] ?? SymbolGrants(symbol: symbol)
            guard let current = entry.open, current.fencingToken == event.fencingToken else {
                // An end for a grant never seen open: harmless if it is a duplicate close of the
                // last grant; otherwise the log is not telling a consistent story.
                guard entry.lastEnded?.fencingToken != event.fencingToken else { return [] }
                return counted([.unmatchedEnd("\(symbol): \(event.kind) of token \(event.fencingToken.map(String.init) ?? "?") (event \(event.seq)) for no open grant")])
            }
            let end = event.kind == "grant_expired" ? (event.expiresAtMs ?? event.tsMs) : event.tsMs
            entry.lastEnded = EndedGrant(node: current.node, fencingToken: current.fencingToken, endMs: end)
            entry.open = nil
            symbols[symbol] = entry
            return []
        case "coordinator_started":
            coordinatorStarts += 1
            let quietUntil = event.expiresAtMs ?? event.tsMs
            for (symbol, entry) in symbols {
                guard let open = entry.open else { continue }
                symbols[symbol]?.lastEnded = EndedGrant(node: open.node, fencingToken: open.fencingToken, endMs: quietUntil)
                symbols[symbol]?.open = nil
            }
            return []
        default:
            return []
        }
    }

    private mutating func counted(_ violations: [Violation]) -> [Violation] {
        for violation in violations {
            switch violation {
            case .overlap: overlapping += 1
            case .tokenNotIncreasing: tokensNotIncreasing += 1
            case .unmatchedEnd: unmatchedEnds += 1
            }
        }
        return violations
    }

    private enum CodingKeys: String, CodingKey {
        case events, throughSeq, grants, coordinatorStarts, overlapping, tokensNotIncreasing, unmatchedEnds, symbols
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        events = try container.decode(Int64.self, forKey: .events)
        throughSeq = try container.decode(Int64.self, forKey: .throughSeq)
        grants = try container.decode(Int64.self, forKey: .grants)
        coordinatorStarts = try container.decode(Int64.self, forKey: .coordinatorStarts)
        overlapping = try container.decode(Int64.self, forKey: .overlapping)
        tokensNotIncreasing = try container.decode(Int64.self, forKey: .tokensNotIncreasing)
        unmatchedEnds = try container.decode(Int64.self, forKey: .unmatchedEnds)
        let list = try container.decode([SymbolGrants].self, forKey: .symbols)
        symbols = Dictionary(list.map { ($0.symbol, $0) }, uniquingKeysWith: { _, last in last })
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(events, forKey: .events)
        try container.encode(throughSeq, forKey: .throughSeq)
        try container.encode(grants, forKey: .grants)
        try container.encode(coordinatorStarts, forKey: .coordinatorStarts)
        try container.encode(overlapping, forKey: .overlapping)
        try container.encode(tokensNotIncreasing, forKey: .tokensNotIncreasing)
        try container.encode(unmatchedEnds, forKey: .unmatchedEnds)
        try container.encode(symbols.values.sorted { $0.symbol < $1.symbol }, forKey: .symbols)
    }
}

// MARK: Interfaces

/// Registering and renewing node presence.
public protocol PresenceRegistry: Sendable {
    func heartbeat(node: String, _ request: HeartbeatRequest) async throws(ClientError) -> HeartbeatResponse
    func leave(node: String) async throws(ClientError) -> LeaveResult
}

/// Telling the coordinator that a node's process is gone (the supervisor, on reaping it).
public protocol DeathNotifier: Sendable {
    func notifyDeath(node: String, _ notice: DeathNotice) async throws(ClientError) -> DeathNoticeResult
}

/// Acquiring, renewing and releasing symbol authority.
public protocol AuthorityProvider: Sendable {
    func acquire(symbol: String, node: String, waitMs: Int64) async throws(ClientError) -> AuthorityGrant
    func renew(symbol: String, _ request: RenewRequest) async throws(ClientError) -> AuthorityGrant
    func renew(_ request: BatchRenewRequest) async throws(ClientError) -> BatchRenewResult
    func release(symbol: String, _ request: RenewRequest) async throws(ClientError) -> ReleaseResult
}

/// Inspecting authority, membership and assignments.
public protocol ClusterInspection: Sendable {
    func members() async throws(ClientError) -> [NodePresence]
    func assignments(afterVersion: Int64?, waitMs: Int64) async throws(ClientError) -> AssignmentTable
    func authority() async throws(ClientError) -> AuthorityList
    func events(after seq: Int64, limit: Int, waitMs: Int64) async throws(ClientError) -> EventPage
}

public struct CoordinatorClient: PresenceRegistry, DeathNotifier, AuthorityProvider, ClusterInspection {
    public let endpoint: ServiceEndpoint
    public init(_ endpoint: ServiceEndpoint) { self.endpoint = endpoint }

    public func heartbeat(node: String, _ request: HeartbeatRequest) async throws(ClientError) -> HeartbeatResponse {
        try await endpoint.call(.POST, CoordinatorRoutes.heartbeat.path(["node": node]), body: request)
    }
    /// Needs the supervisor's token. Ends `notice.incarnation`'s presence and grants at once.
    public func notifyDeath(node: String, _ notice: DeathNotice) async throws(ClientError) -> DeathNoticeResult {
        try await endpoint.call(.POST, CoordinatorRoutes.death.path(["node": node]), body: notice)
    }
    public func leave(node: String) async throws(ClientError) -> LeaveResult {
        try await endpoint.call(.DELETE, CoordinatorRoutes.leave.path(["node": node]))
    }
    public func acquire(symbol: String, node: String, waitMs: Int64 = 0) async throws(ClientError) -> AuthorityGrant {
        try await endpoint.call(
            .POST, CoordinatorRoutes.acquire.path(["symbol": symbol]), body: AcquireRequest(node: node, waitMs: waitMs > 0 ? waitMs : nil),
            timeoutMs: endpoint.longPollTimeoutMs(waitMs: waitMs))
    }
    public func renew(symbol: String, _ request: RenewRequest) async throws(ClientError) -> AuthorityGrant {
        try await endpoint.call(.POST, CoordinatorRoutes.renew.path(["symbol": symbol]), body: request)
    }
    public func renew(_ request: BatchRenewRequest) async throws(ClientError) -> BatchRenewResult {
        try await endpoint.call(.POST, CoordinatorRoutes.renewBatch.path, body: request)
    }
    public func release(symbol: String, _ request: RenewRequest) async throws(ClientError) -> ReleaseResult {
        try await endpoint.call(.POST, CoordinatorRoutes.release.path(["symbol": symbol]), body: request)
    }
    public func members() async throws(ClientError) -> [NodePresence] {
        try await endpoint.call(.GET, CoordinatorRoutes.members.path, as: MemberList.self).members
    }
    public func assignments(afterVersion: Int64? = nil, waitMs: Int64 = 0) async throws(ClientError) -> AssignmentTable {
        var query: [(String, String)] = []
        if let afterVersion { query += [("after_version", "\(afterVersion)"), ("wait_ms", "\(waitMs)")] }
        return try await endpoint.call(.GET, CoordinatorRoutes.assignments.path, query: query, timeoutMs: endpoint.longPollTimeoutMs(waitMs: waitMs))
    }
    public func authority() async throws(ClientError) -> AuthorityList {
        try await endpoint.call(.GET, CoordinatorRoutes.authority.path)
    }
    public func authority(symbol: String) async throws(ClientError) -> AuthorityStatus {
        try await endpoint.call(.GET, CoordinatorRoutes.authorityOf.path(["symbol": symbol]))
    }
    public func events(after seq: Int64 = 0, limit: Int = 200, waitMs: Int64 = 0) async throws(ClientError) -> EventPage {
        try await endpoint.call(
            .GET, CoordinatorRoutes.events.path, query: [("after", "\(seq)"), ("limit", "\(limit)"), ("wait_ms", "\(waitMs)")],
            timeoutMs: endpoint.longPollTimeoutMs(waitMs: waitMs))
    }
    /// The newest `count` events (1…1000), in one request.
    public func events(tail count: Int) async throws(ClientError) -> EventPage {
        try await endpoint.call(.GET, CoordinatorRoutes.events.path, query: LogCursor.tail(count).query)
    }
    /// The compaction base of the event log (what the pruned events established).
    public func eventsBase() async throws(ClientError) -> EventLogBase {
        try await endpoint.call(.GET, CoordinatorRoutes.eventsBase.path)
    }
}
