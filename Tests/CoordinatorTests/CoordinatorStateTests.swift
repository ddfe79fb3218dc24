import Coordinator
import MMCore
import Testing

/// The pure state machine, step by step, on hand-picked clocks.
@Suite struct CoordinatorStateTests {
    static let symbols = ["ACME", "BOLT", "CRUX"]
    static let policy = CoordinatorPolicy(symbols: symbols, presenceTtlMs: 1_000, grantTtlMs: 2_000)
    static let t0: EpochMs = 1_000_000

    func fresh(_ recovered: RecoveredCoordinatorState = .init(headSeq: 0, fencingTokens: [:])) -> CoordinatorState {
        CoordinatorState(policy: Self.policy, recovered: recovered, nowMs: Self.t0)
    }

    func kinds(_ state: inout CoordinatorState) -> [String] { state.takePending().events.map(\.kind) }

    @Test func freshDirectoryGrantsAtOnceAndLogsStart() throws {
        var state = fresh()
        #expect(state.quietUntilMs == Self.t0)
        let started = state.takePending().events
        #expect(started.map(\.kind) == ["coordinator_started"])
        #expect(state.assignments.version == started[0].seq)
        _ = try state.heartbeat(node: "n1", address: "http://127.0.0.1:1", nowMs: Self.t0)
        #expect(kinds(&state) == ["join", "rebalance"])
        let grant = try state.acquire(symbol: "ACME", node: "n1", nowMs: Self.t0)
        #expect(grant.fencingToken == 1)
        #expect(grant.expiresAtMs == Self.t0 + 2_000)
        let mutation = state.takePending()
        #expect(mutation.fencingTokens == ["ACME": 1])
        #expect(mutation.events.map(\.kind) == ["grant"])
        #expect(mutation.events[0].expiresAtMs == Self.t0 + 2_000)
    }

    /// The exchange's highest accepted tokens are a floor: counters below it are raised (with an
    /// event), counters above it and unknown symbols are left alone, and the next grant is above.
    @Test func tokensAreRaisedToTheExchangesFloorNeverLowered() throws {
        var state = fresh()
        _ = try state.heartbeat(node: "n1", address: "a", nowMs: Self.t0)
        for _ in 0..<3 { _ = try state.acquire(symbol: "BOLT", node: "n1", nowMs: Self.t0) }
        _ = state.takePending()
        let raised = state.raiseTokens(toAtLeast: ["ACME": 9, "BOLT": 2, "ZZZZ": 50], nowMs: Self.t0 + 1)
        #expect(raised == ["ACME 0→9"])
        let mutation = state.takePending()
        #expect(mutation.fencingTokens == ["ACME": 9])
        #expect(mutation.events.map(\.kind) == ["tokens_raised"])
        #expect(state.fencingTokens["BOLT"] == 3, "never lowered")
        #expect(try state.acquire(symbol: "ACME", node: "n1", nowMs: Self.t0 + 2).fencingToken == 10)
        #expect(state.raiseTokens(toAtLeast: ["ACME": 10], nowMs: Self.t0 + 3).isEmpty, "a floor already reached changes nothing")
        #expect(state.takePending().events.map(\.kind) == ["grant"])
    }

    @Test func previousRunStartsAQuietPeriodAndTokensContinue() throws {
        var state = fresh(.init(headSeq: 41, fencingTokens: ["ACME": 7]))
        #expect(state.takePending().events.map(\.seq) == [42])
        _ = try state.heartbeat(node: "n1", address: "a", nowMs: Self.t0)
        #expect(throws: CoordinatorRefusal.startupQuiet(retryAfterMs: 2_000)) { try state.acquire(symbol: "ACME", node: "n1", nowMs: Self.t0) }
        _ = try state.heartbeat(node: "n1", address: "a", nowMs: Self.t0 + 900)
        _ = try state.heartbeat(node: "n1", address: "a", nowMs: Self.t0 + 1_800)
        #expect(throws: CoordinatorRefusal.startupQuiet(retryAfterMs: 1)) { try state.acquire(symbol: "ACME", node: "n1", nowMs: Self.t0 + 1_999) }
        let grant = try state.acquire(symbol: "ACME", node: "n1", nowMs: Self.t0 + 2_000)
        #expect(grant.fencingToken == 8)
    }

    /// Re-adoption: after a restart the holder of the previous run's live grant continues it by
    /// presenting it; symbols never granted are granted at once; everything else waits.
    @Test func restartReadoptsPresentedGrantsAndGrantsUntouchedSymbolsAtOnce() throws {
        var state = fresh(.init(headSeq: 41, fencingTokens: ["ACME": 7, "CRUX": 3]))
        _ = state.takePending()
        #expect(state.unresolvedSymbols == ["ACME", "CRUX"])
        _ = try state.heartbeat(node: "n1", address: "a", nowMs: Self.t0)
        _ = state.takePending()
        let signer = GrantSigner(keyHex: "ab")
        let presented = signer.sign(symbol: "ACME", node: "n1", fencingToken: 7, grantedAtMs: Self.t0 - 1_500, expiresAtMs: Self.t0 + 500)
        let renewed = try state.renew(symbol: "ACME", node: "n1", fencingToken: 7, presented: presented, isAuthentic: signer.isAuthentic, nowMs: Self.t0 + 100)
        #expect(renewed.fencingToken == 7)
        #expect(renewed.expiresAtMs == Self.t0 + 100 + 2_000)
        let adopted = state.takePending()
        #expect(adopted.events.map(\.kind) == ["adopt"])
        #expect(adopted.events[0].fencingToken == 7)
        #expect(adopted.fencingTokens.isEmpty, "adoption mints no token")
        #expect(state.unresolvedSymbols == ["CRUX"])
        #expect(state.liveGrant(symbol: "ACME", nowMs: Self.t0 + 100)?.node == "n1")
        // Never granted before: no earlier grant can be live, so no quiet period for BOLT.
        #expect(try state.acquire(symbol: "BOLT", node: "n1", nowMs: Self.t0 + 100).fencingToken == 1)
        // CRUX's holder has not come back: it waits out the window.
        #expect(throws: CoordinatorRefusal.startupQuiet(retryAfterMs: 1_900)) { try state.acquire(symbol: "CRUX", node: "n1", nowMs: Self.t0 + 100) }
        #expect(state.quietForMs(nowMs: Self.t0 + 100) == 1_900)
        // Once adopted, the grant is known: an acquire by the holder supersedes it as always.
        let superseding = try state.acquire(symbol: "ACME", node: "n1", nowMs: Self.t0 + 200)
        #expect(superseding.fencingToken == 8)
    }

    /// Membership is durable: a restart starts from the previous run's live members (alive for
    /// one presence TTL), so the table is the one before the restart and nobody gives up a
    /// symbol while the members heartbeat again; one that does not come back expires.
    @Test func restartRestoresLiveMembersAndTheirTable() throws {
        var before = fresh()
        _ = before.takePending()
        _ = try before.heartbeat(node: "n1", address: "http://a", incarnation: "p1", nowMs: Self.t0)
        var joined = before.takePending()
        #expect(joined.aliveMembers["n1"] == PersistedMember(node: "n1", address: "http://a", incarnation: "p1", joinedAtMs: Self.t0))
        _ = try before.heartbeat(node: "n2", address: "http://b", incarnation: "p2", nowMs: Self.t0)
        _ = try before.heartbeat(node: "n1", address: "http://a", incarnation: "p1", nowMs: Self.t0 + 100)
        joined = before.takePending()
        #expect(Set(joined.aliveMembers.keys) == ["n2"], "a plain heartbeat persists nothing")
        _ = try before.heartbeat(node: "n3", address: "http://c", incarnation: "p3", nowMs: Self.t0 + 100)
        _ = try before.leave(node: "n3", nowMs: Self.t0 + 200)
        #expect(before.takePending().departedMembers == ["n3"])

        let recovered = RecoveredCoordinatorState(
            headSeq: before.headSeq, fencingTokens: [:],
            members: [PersistedMember(node: "n1", address: "http://a", incarnation: "p1", joinedAtMs: Self.t0),
                      PersistedMember(node: "n2", address: "http://b", incarnation: "p2", joinedAtMs: Self.t0)])
        let restartAt = Self.t0 + 5_000
        var after = CoordinatorState(policy: Self.policy, recovered: recovered, nowMs: restartAt)
        #expect(after.liveMembers == ["n1", "n2"])
        #expect(after.assignments.symbols == before.assignments.symbols)
        #expect(after.assignments.version > before.headSeq, "a new, higher version for the restored table")
        #expect(after.takePending().events.map(\.kind) == ["coordinator_started", "rebalance"])
        // n1 heartbeats again; n2 never does and expires after one presence TTL.
        _ = try after.heartbeat(node: "n1", address: "http://a", incarnation: "p1", nowMs: restartAt + 900)
        after.sweep(nowMs: restartAt + 1_000)
        #expect(after.liveMembers == ["n1"])
        let expired = after.takePending()
        #expect(expired.departedMembers == ["n2"])
        #expect(expired.events.map(\.kind) == ["expire", "rebalance"])
    }

    /// Each condition of the rule, broken alone, prevents adoption and changes nothing.
    @Test func readoptionRefusesWhatItCannotProve() throws {
        let signer = GrantSigner(keyHex: "ab")
        func restarted() throws -> CoordinatorState {
            var state = fresh(.init(headSeq: 41, fencingTokens: ["ACME": 7]))
            _ = try state.heartbeat(node: "n1", address: "a", nowMs: Self.t0)
            _ = try state.heartbeat(node: "n2", address: "b", nowMs: Self.t0)
            _ = state.takePending()
            return state
        }
        let good = signer.sign(symbol: "ACME", node: "n1", fencingToken: 7, grantedAtMs: Self.t0 - 1_000, expiresAtMs: Self.t0 + 1_000)
        var forged = good
        forged.expiresAtMs += 60_000
        let cases: [(what: String, node: String, token: Int64, presented: AuthorityGrant, at: EpochMs, refusal: CoordinatorRefusal)] = [
            ("forged expiry", "n1", 7, forged, Self.t0, .invalidGrant(symbol: "ACME", node: "n1")),
            ("another node's grant", "n2", 7, good, Self.t0, .grantLapsed(symbol: "ACME", node: "n2")),
            ("not the highest token", "n1", 6, signer.sign(symbol: "ACME", node: "n1", fencingToken: 6, grantedAtMs: Self.t0, expiresAtMs: Self.t0 + 1_000), Self.t0,
             .staleFencingToken(symbol: "ACME", presented: 6, current: 7, holder: nil)),
            ("expired", "n1", 7, good, Self.t0 + 1_000, .grantLapsed(symbol: "ACME", node: "n1")),
            ("after the window", "n1", 7, signer.sign(symbol: "ACME", node: "n1", fencingToken: 7, grantedAtMs: Self.t0, expiresAtMs: Self.t0 + 9_000), Self.t0 + 2_000,
             .grantLapsed(symbol: "ACME", node: "n1")),
        ]
        for item in cases {
            var state = try restarted()
            #expect(throws: item.refusal, "\(item.what)") {
                try state.renew(symbol: "ACME", node: item.node, fencingToken: item.token, presented: item.presented, isAuthentic: signer.isAuthentic, nowMs: item.at)
            }
            #expect(state.liveGrant(symbol: "ACME", nowMs: item.at) == nil, "\(item.what)")
            #expect(!state.takePending().events.contains { $0.kind == "adopt" }, "\(item.what)")
        }
    }

    /// While the table forms after a restart the first node back is briefly assigned
    /// everything; a re-adopted grant keeps renewing for its holder until the window ends.
    @Test func startupWindowRenewsKnownGrantsWhateverTheTableSays() throws {
        let signer = GrantSigner(keyHex: "ab")
        var state = fresh(.init(headSeq: 41, fencingTokens: ["ACME": 7]))
        _ = try state.heartbeat(node: "n1", address: "a", nowMs: Self.t0)
        _ = try state.heartbeat(node: "n2", address: "b", nowMs: Self.t0)
        let holder = try #require(state.assignments.symbols["ACME"])
        let other = holder == "n1" ? "n2" : "n1"
        // `other` held ACME before the restart (the table then differed); it presents the grant.
        let presented = signer.sign(symbol: "ACME", node: other, fencingToken: 7, grantedAtMs: Self.t0, expiresAtMs: Self.t0 + 1_500)
        _ = try state.renew(symbol: "ACME", node: other, fencingToken: 7, presented: presented, isAuthentic: signer.isAuthentic, nowMs: Self.t0 + 30)
        for at in [Self.t0 + 900, Self.t0 + 1_800] {
            _ = try state.heartbeat(node: "n1", address: "a", nowMs: at)
            _ = try state.heartbeat(node: "n2", address: "b", nowMs: at)
        }
        _ = try state.renew(symbol: "ACME", node: other, fencingToken: 7, nowMs: Self.t0 + 1_900)
        // The holder-to-be cannot take it meanwhile: the grant is known and live.
        #expect(throws: CoordinatorRefusal.heldByOther(symbol: "ACME", holder: other, expiresInMs: 2_000)) {
            try state.acquire(symbol: "ACME", node: holder, nowMs: Self.t0 + 1_900)
        }
        // The window is over: the usual rule, so the grant moves on.
        #expect(throws: CoordinatorRefusal.notAssigned(symbol: "ACME", node: other, assignedTo: holder)) {
            try state.renew(symbol: "ACME", node: other, fencingToken: 7, nowMs: Self.t0 + 2_000)
        }
    }

    @Test func acquireRules() throws {
        var state = fresh()
        #expect(throws: CoordinatorRefusal.unknownSymbol("ZZZ")) { try state.acquire(symbol: "ZZZ", node: "n1", nowMs: Self.t0) }
        #expect(throws: CoordinatorRefusal.invalidNodeId("N 1")) { try state.acquire(symbol: "ACME", node: "N 1", nowMs: Self.t0) }
        #expect(throws: CoordinatorRefusal.unknownNode("n1")) { try state.acquire(symbol: "ACME", node: "n1", nowMs: Self.t0) }
        _ = try state.heartbeat(node: "n1", address: "a", nowMs: Self.t0)
        _ = try state.heartbeat(node: "n2", address: "b", nowMs: Self.t0)
        let owner = try #require(state.assignments.symbols["ACME"])
        let other = owner == "n1" ? "n2" : "n1"
        #expect(throws: CoordinatorRefusal.notAssigned(symbol: "ACME", node: other, assignedTo: owner)) {
            try state.acquire(symbol: "ACME", node: other, nowMs: Self.t0)
        }
        let first = try state.acquire(symbol: "ACME", node: owner, nowMs: Self.t0)
        // Re-acquire by the holder (a restarted node): a fresh grant with a higher token.
        let again = try state.acquire(symbol: "ACME", node: owner, nowMs: Self.t0 + 500)
        #expect(again.fencingToken == first.fencingToken + 1)
        #expect(again.expiresAtMs == Self.t0 + 2_500)
        // The owner leaves: ACME moves to the other node, which must wait for the grant.
        _ = try state.heartbeat(node: other, address: "b", nowMs: Self.t0 + 900)
        #expect(try state.leave(node: owner, nowMs: Self.t0 + 900) == LeaveResult(node: owner, left: true))
        #expect(state.assignments.symbols["ACME"] == other)
        #expect(throws: CoordinatorRefusal.heldByOther(symbol: "ACME", holder: owner, expiresInMs: 1_600)) {
            try state.acquire(symbol: "ACME", node: other, nowMs: Self.t0 + 900)
        }
        _ = try state.heartbeat(node: other, address: "b", nowMs: Self.t0 + 1_800)
        _ = state.takePending()
        let next = try state.acquire(symbol: "ACME", node: other, nowMs: Self.t0 + 2_500)
        #expect(next.fencingToken == again.fencingToken + 1)
        #expect(kinds(&state) == ["grant_expired", "grant"])
    }

    @Test func renewRules() throws {
        var state = fresh()
        _ = try state.heartbeat(node: "n1", address: "a", nowMs: Self.t0)
        let grant = try state.acquire(symbol: "BOLT", node: "n1", nowMs: Self.t0)
        _ = state.takePending()
        let renewed = try state.renew(symbol: "BOLT", node: "n1", fencingToken: grant.fencingToken, nowMs: Self.t0 + 600)
        #expect(renewed.expiresAtMs == Self.t0 + 2_600)
        #expect(renewed.grantedAtMs == grant.grantedAtMs)
        #expect(state.takePending().isEmpty, "successful renewals are not logged")
        #expect(throws: CoordinatorRefusal.staleFencingToken(symbol: "BOLT", presented: 0, current: 1, holder: "n1")) {
            try state.renew(symbol: "BOLT", node: "n1", fencingToken: 0, nowMs: Self.t0 + 700)
        }
        #expect(throws: CoordinatorRefusal.unknownNode("n9")) { try state.renew(symbol: "BOLT", node: "n9", fencingToken: 1, nowMs: Self.t0 + 700) }
        #expect(kinds(&state) == ["renew_refused"])
        // Presence lapses (no heartbeat for 1 s): the grant still runs but cannot be renewed.
        #expect(throws: CoordinatorRefusal.notAssigned(symbol: "BOLT", node: "n1", assignedTo: nil)) {
            try state.renew(symbol: "BOLT", node: "n1", fencingToken: 1, nowMs: Self.t0 + 1_000)
        }
        #expect(kinds(&state) == ["expire", "rebalance", "renew_refused"])
        _ = try state.heartbeat(node: "n1", address: "a", nowMs: Self.t0 + 2_599)
        #expect(try state.renew(symbol: "BOLT", node: "n1", fencingToken: 1, nowMs: Self.t0 + 2_599).expiresAtMs == Self.t0 + 4_599)
        #expect(throws: CoordinatorRefusal.grantLapsed(symbol: "BOLT", node: "n1")) {
            _ = try state.heartbeat(node: "n1", address: "a", nowMs: Self.t0 + 4_599)
            return try state.renew(symbol: "BOLT", node: "n1", fencingToken: 1, nowMs: Self.t0 + 4_599)
        }
    }

    @Test func releaseEndsAtOnceAndIsIdempotent() throws {
        var state = fresh()
        _ = try state.heartbeat(node: "n1", address: "a", nowMs: Self.t0)
        let grant = try state.acquire(symbol: "CRUX", node: "n1", nowMs: Self.t0)
        #expect(throws: CoordinatorRefusal.staleFencingToken(symbol: "CRUX", presented: 2, current: 1, holder: "n1")) {
            try state.release(symbol: "CRUX", node: "n1", fencingToken: 2, nowMs: Self.t0 + 10)
        }
        #expect(throws: CoordinatorRefusal.staleFencingToken(symbol: "CRUX", presented: 1, current: 1, holder: "n1")) {
            try state.release(symbol: "CRUX", node: "n2", fencingToken: 1, nowMs: Self.t0 + 10)
        }
        _ = state.takePending()
        #expect(try state.release(symbol: "CRUX", node: "n1", fencingToken: grant.fencingToken, nowMs: Self.t0 + 10).released)
        let events = state.takePending().events
        #expect(events.map(\.kind) == ["release"])
        #expect(events[0].tsMs == Self.t0 + 10)
        #expect(state.liveGrant(symbol: "CRUX", nowMs: Self.t0 + 10) == nil)
        #expect(try !state.release(symbol: "CRUX", node: "n1", fencingToken: 1, nowMs: Self.t0 + 20).released)
        #expect(try state.acquire(symbol: "CRUX", node: "n1", nowMs: Self.t0 + 20).fencingToken == 2)
    }

    @Test func sweepExpiresMembersAndGrantsWithTheirFinalExpiry() throws {
        var state = fresh()
        _ = try state.heartbeat(node: "n1", address: "a", nowMs: Self.t0)
        _ = try state.acquire(symbol: "ACME", node: "n1", nowMs: Self.t0)
        _ = state.takePending()
        state.sweep(nowMs: Self.t0 + 999)
        #expect(state.takePending().isEmpty)
        state.sweep(nowMs: Self.t0 + 1_000)
        #expect(kinds(&state) == ["expire", "rebalance"])
        #expect(state.assignments.symbols.isEmpty)
        state.sweep(nowMs: Self.t0 + 2_000)
        let events = state.takePending().events
        #expect(events.map(\.kind) == ["grant_expired"])
        #expect(events[0].expiresAtMs == Self.t0 + 2_000)
        #expect(state.members["n1"]?.status == .expired)
    }

    @Test func heartbeatValidationAndLeave() throws {
        var state = fresh()
        #expect(throws: CoordinatorRefusal.invalidNodeId("")) { try state.heartbeat(node: "", address: "a", nowMs: Self.t0) }
        #expect(throws: CoordinatorRefusal.self) { try state.heartbeat(node: "n1", address: "", nowMs: Self.t0) }
        #expect(throws: CoordinatorRefusal.unknownNode("n1")) { try state.leave(node: "n1", nowMs: Self.t0) }
        let response = try state.heartbeat(node: "n1", address: "a", nowMs: Self.t0)
        #expect(response.expiresAtMs == Self.t0 + 1_000)
        #expect(response.assignmentsVersion == state.assignments.version)
        #expect(try state.leave(node: "n1", nowMs: Self.t0 + 1).left)
        #expect(try !state.leave(node: "n1", nowMs: Self.t0 + 2).left)
        _ = state.takePending()
        _ = try state.heartbeat(node: "n1", address: "a", nowMs: Self.t0 + 3)
        #expect(kinds(&state) == ["join", "rebalance"], "a heartbeat after leaving rejoins")
    }
}
