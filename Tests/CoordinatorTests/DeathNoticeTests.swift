import Coordinator
import Foundation
import HTTPTypes
import MMCore
import Testing

/// The supervisor's death notice on the pure state machine: a reaped incarnation's presence
/// and grants end at once, nothing of any other incarnation does, and nothing it sent before
/// dying can bring it back.
@Suite struct DeathNoticeStateTests {
    static let symbols = ["ACME", "BOLT", "CRUX"]
    static let policy = CoordinatorPolicy(symbols: symbols, presenceTtlMs: 1_000, grantTtlMs: 2_000)
    static let t0: EpochMs = 1_000_000

    func fresh() -> CoordinatorState {
        var state = CoordinatorState(policy: Self.policy, recovered: .init(headSeq: 0, fencingTokens: [:]), nowMs: Self.t0)
        _ = state.takePending()
        return state
    }

    /// Each node acquires every symbol assigned to it; returns symbol → grant.
    func acquireAssigned(_ state: inout CoordinatorState, nowMs: EpochMs) throws -> [String: GrantRecord] {
        var grants: [String: GrantRecord] = [:]
        for (symbol, node) in state.assignments.symbols { grants[symbol] = try state.acquire(symbol: symbol, node: node, nowMs: nowMs) }
        return grants
    }

    @Test func deathEndsPresenceAndOnlyThatIncarnationsGrants() throws {
        var state = fresh()
        // Both nodes happen to use the same incarnation string: a notice is about one node only.
        _ = try state.heartbeat(node: "n1", address: "a", incarnation: "inc-1", nowMs: Self.t0)
        _ = try state.heartbeat(node: "n2", address: "b", incarnation: "inc-1", nowMs: Self.t0)
        let grants = try acquireAssigned(&state, nowMs: Self.t0)
        let ofN1 = state.assignments.symbols(of: "n1")
        let ofN2 = state.assignments.symbols(of: "n2")
        try #require(!ofN1.isEmpty && !ofN2.isEmpty, "the test needs both nodes holding symbols: \(state.assignments.symbols)")
        _ = state.takePending()

        let now = Self.t0 + 100
        let result = try state.memberDied(node: "n1", incarnation: "inc-1", pid: 4242, exit: "signal 9", nowMs: now)
        #expect(result == DeathNoticeResult(node: "n1", incarnation: "inc-1", ended: true, revokedGrants: ofN1, reason: nil))
        #expect(state.members["n1"]?.status == .dead)
        #expect(state.members["n1"]?.presence(nowMs: now).expiresInMs == 0)
        #expect(state.members["n2"]?.status == .alive)
        for symbol in ofN1 { #expect(state.liveGrant(symbol: symbol, nowMs: now) == nil, "\(symbol) of the dead process still granted") }
        for symbol in ofN2 { #expect(state.liveGrant(symbol: symbol, nowMs: now) == grants[symbol], "\(symbol) of n2 must survive n1's death") }

        let mutation = state.takePending()
        #expect(mutation.fencingTokens.isEmpty, "a revoke mints no token")
        #expect(mutation.events.map(\.kind) == ["death"] + ofN1.map { _ in "revoke" } + ["rebalance"])
        let death = mutation.events[0]
        #expect(death.node == "n1")
        #expect(death.detail.contains("inc-1") && death.detail.contains("4242") && death.detail.contains("signal 9"), "\(death.detail)")
        for (event, symbol) in zip(mutation.events.dropFirst(), ofN1) {
            #expect(event.symbol == symbol)
            #expect(event.node == "n1")
            #expect(event.fencingToken == grants[symbol]?.fencingToken)
            #expect(event.tsMs == now && event.expiresAtMs == now, "a revoked grant ends at the notice")
            #expect(event.detail == "holder's process died (incarnation inc-1)")
        }
        #expect(state.fencingTokens == Dictionary(uniqueKeysWithValues: grants.map { ($0.key, $0.value.fencingToken) }))
        #expect(Set(state.assignments.symbols.values) == ["n2"], "every symbol moves to the survivor")
    }

    @Test func newIncarnationsGrantSurvivesALateDeathNoticeOfTheOldOne() throws {
        var state = fresh()
        _ = try state.heartbeat(node: "n1", address: "a", incarnation: "old", nowMs: Self.t0)
        let oldGrant = try state.acquire(symbol: "ACME", node: "n1", nowMs: Self.t0)
        _ = state.takePending()

        // The node restarts before the notice arrives: a heartbeat with a new incarnation.
        _ = try state.heartbeat(node: "n1", address: "a", incarnation: "new", nowMs: Self.t0 + 50)
        let restart = state.takePending().events
        #expect(restart.map(\.kind) == ["join"], "a restart of a live member changes no assignment")
        #expect(restart.first?.detail.contains("new incarnation new (was old)") == true, "\(restart.first?.detail ?? "")")
        #expect(state.members["n1"]?.incarnation == "new")
        #expect(state.liveGrant(symbol: "ACME", nowMs: Self.t0 + 50) == oldGrant, "grants stay until the new process acquires")
        let newGrant = try state.acquire(symbol: "BOLT", node: "n1", nowMs: Self.t0 + 60)
        _ = state.takePending()

        let result = try state.memberDied(node: "n1", incarnation: "old", pid: 17, exit: "exit code 1", nowMs: Self.t0 + 100)
        #expect(!result.ended)
        #expect(result.revokedGrants == ["ACME"], "the old process's grant ends")
        #expect(result.reason?.contains("not the current one (new)") == true, "\(result.reason ?? "")")
        #expect(state.members["n1"]?.status == .alive)
        #expect(state.liveGrant(symbol: "BOLT", nowMs: Self.t0 + 100) == newGrant)
        #expect(state.liveGrant(symbol: "ACME", nowMs: Self.t0 + 100) == nil)
        #expect(state.takePending().events.map(\.kind) == ["revoke"], "no death, no rebalance: the member lives on")
        // The new process acquires ACME at once, above the old token.
        #expect(try state.acquire(symbol: "ACME", node: "n1", nowMs: Self.t0 + 110).fencingToken == oldGrant.fencingToken + 1)
    }

    @Test func lateHeartbeatOfTheDeadIncarnationIsRefusedAndChangesNothing() throws {
        var state = fresh()
        _ = try state.heartbeat(node: "n1", address: "a", incarnation: "a1", nowMs: Self.t0)
        _ = try state.heartbeat(node: "n2", address: "b", incarnation: "b1", nowMs: Self.t0)
        _ = try state.memberDied(node: "n1", incarnation: "a1", nowMs: Self.t0 + 10)
        _ = state.takePending()
        let members = state.members
        let assignments = state.assignments
        let headSeq = state.headSeq

        #expect(throws: CoordinatorRefusal.incarnationEnded(node: "n1", incarnation: "a1")) {
            try state.heartbeat(node: "n1", address: "a", incarnation: "a1", nowMs: Self.t0 + 20)
        }
        #expect(state.members == members)
        #expect(state.assignments == assignments)
        #expect(state.headSeq == headSeq)
        #expect(state.takePending().isEmpty)
        let refusal = CoordinatorRefusal.incarnationEnded(node: "n1", incarnation: "a1").apiError
        #expect(refusal.status == 409 && refusal.code == "incarnation_ended")
        #expect(refusal.details?["incarnation"] == "a1")
        // A dead member acquires nothing, as any member that is not alive.
        #expect(throws: CoordinatorRefusal.notAssigned(symbol: "ACME", node: "n1", assignedTo: "n2")) {
            try state.acquire(symbol: "ACME", node: "n1", nowMs: Self.t0 + 20)
        }
        // The restarted process (a new incarnation) joins again; the dead one stays refused.
        _ = state.takePending()
        _ = try state.heartbeat(node: "n1", address: "a", incarnation: "a2", nowMs: Self.t0 + 30)
        #expect(state.takePending().events.map(\.kind) == ["join", "rebalance"])
        #expect(state.members["n1"]?.status == .alive)
        #expect(throws: CoordinatorRefusal.incarnationEnded(node: "n1", incarnation: "a1")) {
            try state.heartbeat(node: "n1", address: "a", incarnation: "a1", nowMs: Self.t0 + 40)
        }
        #expect(state.members["n1"]?.incarnation == "a2")
    }

    /// A restart also ends the replaced incarnation: its late heartbeat cannot switch the member
    /// back to the dead process (which would make a death notice for the live one miss).
    @Test func replacedIncarnationsAreRememberedBoundedly() throws {
        var state = fresh()
        for index in 0...10 {
            _ = try state.heartbeat(node: "n1", address: "a", incarnation: "i\(index)", nowMs: Self.t0 + Int64(index))
        }
        #expect(throws: CoordinatorRefusal.incarnationEnded(node: "n1", incarnation: "i9")) {
            try state.heartbeat(node: "n1", address: "a", incarnation: "i9", nowMs: Self.t0 + 20)
        }
        let remembered = try #require(state.members["n1"]?.endedIncarnations)
        #expect(remembered == (2...9).map { "i\($0)" }, "the last \(MemberRecord.rememberedEndedIncarnations), oldest first")
        // Nodes that send no incarnation share the unknown one: never ended, never refused.
        _ = try state.heartbeat(node: "n2", address: "b", nowMs: Self.t0 + 20)
        _ = try state.heartbeat(node: "n2", address: "b", incarnation: "x", nowMs: Self.t0 + 21)
        _ = try state.heartbeat(node: "n2", address: "b", nowMs: Self.t0 + 22)
        #expect(state.members["n2"]?.endedIncarnations == ["x"])
        #expect(state.members["n2"]?.presence(nowMs: Self.t0 + 22).incarnation == nil)
        #expect(state.members["n1"]?.presence(nowMs: Self.t0 + 22).incarnation == "i10")
    }

    @Test func symbolsAreReassignedAtOnceAndTheNextTokenIsIssuedBeforeTheTTL() throws {
        var state = fresh()
        _ = try state.heartbeat(node: "n1", address: "a", incarnation: "a1", nowMs: Self.t0)
        let held = try acquireAssigned(&state, nowMs: Self.t0)
        #expect(held.count == 3)
        _ = try state.heartbeat(node: "n2", address: "b", incarnation: "b1", nowMs: Self.t0 + 10)
        let moved = state.assignments.symbols(of: "n2")
        try #require(!moved.isEmpty, "n2 should take some symbols when it joins")
        // Without a notice, n2 waits for n1's grants (a whole grant TTL if n1 just vanished).
        #expect(throws: CoordinatorRefusal.heldByOther(symbol: moved[0], holder: "n1", expiresInMs: 1_990)) {
            try state.acquire(symbol: moved[0], node: "n2", nowMs: Self.t0 + 10)
        }

        let now = Self.t0 + 20
        _ = try state.memberDied(node: "n1", incarnation: "a1", nowMs: now)
        #expect(state.assignments.symbols == ["ACME": "n2", "BOLT": "n2", "CRUX": "n2"])
        _ = state.takePending()
        for symbol in Self.symbols {
            let grant = try state.acquire(symbol: symbol, node: "n2", nowMs: now)
            #expect(grant.fencingToken == held[symbol]!.fencingToken + 1)
            #expect(now < held[symbol]!.expiresAtMs, "granted \(held[symbol]!.expiresAtMs - now) ms before the old grant would have lapsed")
        }
        #expect(state.takePending().events.filter { $0.kind == "grant" }.count == 3)
    }

    @Test func mismatchedOrRepeatedNoticesEndNothing() throws {
        var state = fresh()
        _ = try state.heartbeat(node: "n1", address: "a", incarnation: "a1", nowMs: Self.t0)
        let grant = try state.acquire(symbol: "CRUX", node: "n1", nowMs: Self.t0)
        _ = state.takePending()

        let mismatch = try state.memberDied(node: "n1", incarnation: "zz", nowMs: Self.t0 + 5)
        #expect(mismatch == DeathNoticeResult(
            node: "n1", incarnation: "zz", ended: false, revokedGrants: [], reason: "incarnation zz is not the current one (a1); nothing to end"))
        #expect(state.members["n1"]?.status == .alive)
        #expect(state.liveGrant(symbol: "CRUX", nowMs: Self.t0 + 5) == grant)
        #expect(state.takePending().isEmpty)

        _ = try state.memberDied(node: "n1", incarnation: "a1", nowMs: Self.t0 + 6)
        _ = state.takePending()
        let repeated = try state.memberDied(node: "n1", incarnation: "a1", nowMs: Self.t0 + 7)
        #expect(!repeated.ended)
        #expect(repeated.revokedGrants.isEmpty)
        #expect(repeated.reason?.contains("already dead") == true, "\(repeated.reason ?? "")")
        #expect(state.takePending().isEmpty, "a retried notice is a no-op")
    }

    @Test func unknownNodesAndBadNoticesAreRefusedAndChangeNothing() throws {
        var state = fresh()
        _ = try state.heartbeat(node: "n1", address: "a", incarnation: "a1", nowMs: Self.t0)
        _ = try state.acquire(symbol: "ACME", node: "n1", nowMs: Self.t0)
        _ = state.takePending()
        let members = state.members

        #expect(throws: CoordinatorRefusal.unknownNode("n9")) { try state.memberDied(node: "n9", incarnation: "a1", nowMs: Self.t0 + 1) }
        #expect(CoordinatorRefusal.unknownNode("n9").apiError.status == 404)
        #expect(throws: CoordinatorRefusal.invalidNodeId("N1")) { try state.memberDied(node: "N1", incarnation: "a1", nowMs: Self.t0 + 1) }
        let badIncarnations = ["", "has space", String(repeating: "a", count: 65), "é", "a/b", "a\"b"]
        for bad in badIncarnations {
            do throws(CoordinatorRefusal) {
                _ = try state.memberDied(node: "n1", incarnation: bad, nowMs: Self.t0 + 1)
                Issue.record("incarnation '\(bad)' accepted by a notice")
            } catch {
                #expect(error.apiError.status == 400 && error.apiError.code == "invalid_field")
                #expect(error.apiError.details?["field"] == "incarnation")
            }
            #expect(throws: CoordinatorRefusal.self, "heartbeat with incarnation '\(bad)'") {
                try state.heartbeat(node: "n1", address: "a", incarnation: bad.isEmpty ? "?" : bad, nowMs: Self.t0 + 1)
            }
        }
        #expect(Incarnation.isValid(String(repeating: "a", count: 64)))
        #expect(Incarnation.isValid("sup-n1.7:3_X"))
        #expect(throws: CoordinatorRefusal.invalidField(field: "pid", reason: "must be a positive process id (got 0)")) {
            try state.memberDied(node: "n1", incarnation: "a1", pid: 0, nowMs: Self.t0 + 1)
        }
        for exit in ["", "signal 9\nforged", String(repeating: "x", count: 257)] {
            #expect(throws: CoordinatorRefusal.self) { try state.memberDied(node: "n1", incarnation: "a1", exit: exit, nowMs: Self.t0 + 1) }
        }
        #expect(state.members == members)
        #expect(state.liveGrant(symbol: "ACME", nowMs: Self.t0 + 1) != nil)
        #expect(state.takePending().isEmpty)
    }
}

/// `POST /v1/members/{node}/death` in process, on a manual clock that never moves: whatever
/// moves does so because of the notice, not because a TTL ran out.
@Suite struct DeathNoticeHTTPTests {
    typealias Client = CoordinatorHTTPTests.Client

    func heartbeat(_ client: Client, _ node: String, incarnation: String?) async throws -> Client.Reply {
        try await client.send(.post, "/v1/members/\(node)/heartbeat", body: HeartbeatRequest(address: "http://127.0.0.1:1/\(node)", incarnation: incarnation))
    }

    @Test func supervisorNoticeMovesTheSymbolsAtOnce() async throws {
        let fixture = try await CoordinatorHTTPTests.Fixture()
        let symbols = fixture.environment.config.symbolNames
        try await fixture.run { client in
            #expect(try await heartbeat(client, "n1", incarnation: "n1-a").status == 200)
            var tokens: [String: Int64] = [:]
            for symbol in symbols { tokens[symbol] = try await client.acquire(symbol, "n1").decode(AuthorityGrant.self).fencingToken }
            #expect(try await heartbeat(client, "n2", incarnation: "n2-a").status == 200)
            let before = try await client.send(.get, "/v1/assignments", as: .observer).decode(AssignmentTable.self)

            // A node waiting on its assignments learns of the death at once.
            async let waited = client.send(.get, "/v1/assignments?after_version=\(before.version)&wait_ms=20000", as: .observer)
            try await Task.sleep(for: .milliseconds(100))
            let started = ContinuousClock.now
            let reply = try await client.send(
                .post, "/v1/members/n1/death", as: .supervisor, body: DeathNotice(incarnation: "n1-a", pid: 4242, exit: "signal 9"))
            #expect(reply.status == 200, "\(String(decoding: reply.body, as: UTF8.self))")
            let json = try #require(try JSONSerialization.jsonObject(with: reply.body) as? [String: Any])
            #expect(Set(json.keys) == ["node", "incarnation", "ended", "revoked_grants"], "snake_case, no reason when ended: \(json)")
            #expect(try reply.decode(DeathNoticeResult.self) == DeathNoticeResult(node: "n1", incarnation: "n1-a", ended: true, revokedGrants: symbols.sorted()))
            let table = try await waited.decode(AssignmentTable.self)
            #expect(ContinuousClock.now - started < .seconds(5), "the long-poll was woken, not timed out")
            #expect(table.version > before.version)
            #expect(Set(table.symbols.values) == ["n2"])

            for symbol in symbols {
                let grant = try await client.acquire(symbol, "n2")
                #expect(grant.status == 200, "\(symbol): \(String(decoding: grant.body, as: UTF8.self))")
                #expect(try grant.decode(AuthorityGrant.self).fencingToken == tokens[symbol]! + 1)
            }
            let members = try await client.send(.get, "/v1/members", as: .observer).decode(MemberList.self).members
            let n1 = try #require(members.first { $0.node == "n1" })
            #expect(n1.status == .dead)
            #expect(n1.incarnation == "n1-a")
            #expect(n1.expiresInMs == 0)

            let late = try await heartbeat(client, "n1", incarnation: "n1-a")
            #expect(late.status == 409)
            #expect(late.code == "incarnation_ended")
            #expect(late.details["incarnation"] == "n1-a")
            let after = try await client.send(.get, "/v1/members", as: .observer).decode(MemberList.self).members
            #expect(after.first { $0.node == "n1" }?.status == .dead, "the late heartbeat changed nothing")

            let events = try await client.send(.get, "/v1/events?limit=1000").decode(EventPage.self).events
            let death = try #require(events.first { $0.kind == "death" })
            #expect(death.node == "n1" && death.detail.contains("pid 4242"))
            #expect(events.filter { $0.kind == "revoke" }.compactMap(\.symbol).sorted() == symbols.sorted())
        }
    }

    @Test func onlyTheSupervisorMayNoticeAndBadNoticesChangeNothing() async throws {
        let fixture = try await CoordinatorHTTPTests.Fixture()
        try await fixture.run { client in
            _ = try await heartbeat(client, "n1", incarnation: "n1-a")
            let grant = try await client.acquire("ACME", "n1").decode(AuthorityGrant.self)
            let head = try await client.send(.get, "/v1/events").decode(EventPage.self).headSeq

            for role in Role.allCases where role != .supervisor {
                let reply = try await client.send(.post, "/v1/members/n1/death", as: role, body: DeathNotice(incarnation: "n1-a"))
                #expect(reply.status == 403, "\(role)")
                #expect(reply.code == "forbidden_role", "\(role)")
            }
            let cases: [(String, String?, Int, String)] = [
                ("/v1/members/n1/death", "{not json", 400, "malformed_body"),
                ("/v1/members/n1/death", nil, 400, "malformed_body"),
                ("/v1/members/n1/death", #"{"pid":1}"#, 400, "malformed_body"),
                ("/v1/members/n1/death", #"{"incarnation":5}"#, 400, "malformed_body"),
                ("/v1/members/n1/death", #"{"incarnation":"n1-a","pid":99999999999}"#, 400, "malformed_body"),
                ("/v1/members/n1/death", #"{"incarnation":"n1 a"}"#, 400, "invalid_field"),
                ("/v1/members/n1/death", #"{"incarnation":""}"#, 400, "invalid_field"),
                ("/v1/members/n1/death", #"{"incarnation":"n1-a","pid":0}"#, 400, "invalid_field"),
                ("/v1/members/n1/death", #"{"incarnation":"n1-a","exit":"a\nb"}"#, 400, "invalid_field"),
                ("/v1/members/N_1/death", #"{"incarnation":"n1-a"}"#, 400, "invalid_node_id"),
                ("/v1/members/n9/death", #"{"incarnation":"n1-a"}"#, 404, "unknown_node"),
            ]
            for (uri, json, status, code) in cases {
                let reply = try await client.send(.post, uri, as: .supervisor, json: json)
                #expect(reply.status == status, "\(uri) \(json ?? "")")
                #expect(reply.code == code, "\(uri) \(json ?? ""): \(String(decoding: reply.body, as: UTF8.self))")
            }
            let badHeartbeat = try await heartbeat(client, "n1", incarnation: String(repeating: "x", count: 65))
            #expect(badHeartbeat.status == 400)
            #expect(badHeartbeat.code == "invalid_field")
            #expect(badHeartbeat.details["field"] == "incarnation")

            // Nothing changed: n1 alive as n1-a, still holding ACME, no event appended.
            let members = try await client.send(.get, "/v1/members").decode(MemberList.self).members
            #expect(members.map(\.status) == [.alive])
            #expect(members.first?.incarnation == "n1-a")
            let status = try await client.send(.get, "/v1/authority/ACME").decode(AuthorityStatus.self)
            #expect(status.node == "n1" && status.fencingToken == grant.fencingToken)
            #expect(try await client.send(.get, "/v1/events").decode(EventPage.self).headSeq == head)

            // A notice for another incarnation is answered, but ends nothing.
            let other = try await client.send(.post, "/v1/members/n1/death", as: .supervisor, body: DeathNotice(incarnation: "n1-z"))
            #expect(other.status == 200)
            let result = try other.decode(DeathNoticeResult.self)
            #expect(!result.ended && result.revokedGrants.isEmpty)
            #expect(result.reason == "incarnation n1-z is not the current one (n1-a); nothing to end")
            #expect(try await client.send(.get, "/v1/authority/ACME").decode(AuthorityStatus.self).node == "n1")
        }
    }

    /// Old nodes send no incarnation: their heartbeats still work and no notice can match them.
    @Test func heartbeatsWithoutAnIncarnationStillWork() async throws {
        let fixture = try await CoordinatorHTTPTests.Fixture()
        try await fixture.run { client in
            let reply = try await client.send(.post, "/v1/members/n1/heartbeat", json: #"{"address":"http://127.0.0.1:1"}"#)
            #expect(reply.status == 200)
            let members = try await client.send(.get, "/v1/members").decode(MemberList.self).members
            #expect(members.first?.incarnation == nil)
            let json = String(decoding: try await client.send(.get, "/v1/members").body, as: UTF8.self)
            #expect(!json.contains("incarnation"), "absent, not null: \(json)")
            let notice = try await client.send(.post, "/v1/members/n1/death", as: .supervisor, json: #"{"incarnation":"x"}"#)
            #expect(try notice.decode(DeathNoticeResult.self).ended == false)
            #expect(try await client.send(.get, "/v1/members").decode(MemberList.self).members.first?.status == .alive)
        }
    }
}
