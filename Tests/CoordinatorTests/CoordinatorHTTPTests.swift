import AsyncPrimitives
import Coordinator
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MMCore
import MMServiceKit
import MMTestSupport
import NIOCore
import Testing

/// Every endpoint, role rule and error, in process (HummingbirdTesting) on a manual clock.
@Suite struct CoordinatorHTTPTests {
    struct Fixture {
        let clock = ManualClock()
        let cluster: TestCluster
        let environment: ServiceEnvironment
        let store: GRDBCoordinatorStore

        init(store: GRDBCoordinatorStore? = nil) async throws {
            cluster = try TestCluster("coord-http", overrides: ["coordinator.presence_ttl_ms": "1000", "coordinator.grant_ttl_ms": "1500"])
            let config = try await cluster.config
            environment = ServiceEnvironment(
                process: .coordinator, role: .coordinator, config: config, dataDirectory: cluster.dataDirectory, tokens: cluster.tokens, clock: clock)
            self.store = try store ?? GRDBCoordinatorStore()
        }

        func run(_ test: @Sendable @escaping (Client) async throws -> Void) async throws {
            let app = try await buildCoordinatorApplication(environment, store: store)
            let tokens = cluster.tokens
            try await app.test(.router) { client in try await test(Client(client: client, tokens: tokens)) }
        }
    }

    struct Client: Sendable {
        let client: any TestClientProtocol
        let tokens: RoleTokens

        struct Reply {
            let status: Int
            let body: Data
            func decode<T: Decodable>(_ type: T.Type) throws -> T { try MMJSON.decode(type, from: body) }
            var code: String? { (try? MMJSON.decode(ErrorEnvelope.self, from: body))?.error.code }
            var details: [String: String] { (try? MMJSON.decode(ErrorEnvelope.self, from: body))?.error.details ?? [:] }
        }

        /// A `.node` request carries the token of the node it names (in its path or body), as
        /// a well-behaved node's would; one node acting as another is tested with `token:`.
        func send(_ method: HTTPRequest.Method, _ uri: String, as role: Role? = .node, token: String? = nil, json: String? = nil) async throws -> Reply {
            var headers = HTTPFields()
            if let role { headers[.authorization] = "Bearer \(tokens.token(for: role, node: Self.namedNode(uri: uri, json: json))!)" }
            if let token { headers[.authorization] = "Bearer \(token)" }
            if json != nil { headers[.contentType] = "application/json" }
            let response = try await client.execute(uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) })
            return Reply(status: Int(response.status.code), body: Data(buffer: response.body))
        }

        func send(_ method: HTTPRequest.Method, _ uri: String, as role: Role = .node, body: some Encodable) async throws -> Reply {
            try await send(method, uri, as: role, json: String(decoding: try MMJSON.encode(body), as: UTF8.self))
        }

        static func namedNode(uri: String, json: String?) -> String {
            if let json, let match = json.firstMatch(of: /"node"\s*:\s*"([a-z0-9-]+)"/) { return String(match.1) }
            if let match = uri.firstMatch(of: /^\/v1\/members\/([a-z0-9-]+)/) { return String(match.1) }
            return "n1"
        }

        func heartbeat(_ node: String) async throws -> Reply {
            try await send(.post, "/v1/members/\(node)/heartbeat", body: HeartbeatRequest(address: "http://127.0.0.1:1/\(node)"))
        }

        func acquire(_ symbol: String, _ node: String) async throws -> Reply {
            try await send(.post, "/v1/authority/\(symbol)/acquire", body: AcquireRequest(node: node))
        }
    }

    @Test func heartbeatMembersAndLeave() async throws {
        let fixture = try await Fixture()
        let clock = fixture.clock
        try await fixture.run { client in
            let reply = try await client.heartbeat("n1")
            #expect(reply.status == 200)
            let response = try reply.decode(HeartbeatResponse.self)
            #expect(response.node == "n1")
            #expect(response.expiresAtMs == clock.nowMs() + 1_000)
            clock.advance(byMs: 250)
            let members = try await client.send(.get, "/v1/members", as: .observer).decode(MemberList.self).members
            #expect(members.map(\.node) == ["n1"])
            #expect(members[0].expiresInMs == 750)
            #expect(members[0].status == .alive)
            #expect(members[0].address == "http://127.0.0.1:1/n1")
            let left = try await client.send(.delete, "/v1/members/n1")
            #expect(try left.decode(LeaveResult.self) == LeaveResult(node: "n1", left: true))
            let after = try await client.send(.get, "/v1/members", as: .supervisor).decode(MemberList.self).members
            #expect(after[0].status == .left)
            #expect(try await client.send(.delete, "/v1/members/n9").code == "unknown_node")
            #expect(try await client.send(.delete, "/v1/members/n9").status == 404)
        }
    }

    /// Node n1's token acting as n2, route by route, with n2's own live grant: 403
    /// `node_mismatch`, and members, grants and events are exactly as before. n2's own token
    /// then does the same requests, so it is the identity that refused them.
    @Test func oneNodesTokenCannotActAsAnother() async throws {
        let fixture = try await Fixture()
        try await fixture.run { client in
            #expect(try await client.heartbeat("n1").status == 200)
            #expect(try await client.heartbeat("n2").status == 200)
            let table = try await client.send(.get, "/v1/assignments", as: .observer).decode(AssignmentTable.self)
            let symbol = try #require(table.symbols.first { $0.value == "n2" }?.key)
            let grant = try await client.acquire(symbol, "n2").decode(AuthorityGrant.self)
            func snapshot() async throws -> [Data] {
                var bodies: [Data] = []
                for uri in ["/v1/members", "/v1/authority", "/v1/assignments", "/v1/events"] { bodies.append(try await client.send(.get, uri, as: .observer).body) }
                return bodies
            }
            let before = try await snapshot()
            let n1 = client.tokens.token(for: .node, node: "n1")!
            let n2 = client.tokens.token(for: .node, node: "n2")!
            func json(_ value: some Encodable) throws -> String { String(decoding: try MMJSON.encode(value), as: UTF8.self) }
            let renew = RenewRequest(node: "n2", fencingToken: grant.fencingToken, grant: grant)
            let attempts: [(HTTPRequest.Method, String, String?)] = [
                (.post, "/v1/members/n2/heartbeat", try json(HeartbeatRequest(address: "http://127.0.0.1:1/n2"))),
                (.post, "/v1/authority/\(symbol)/renew", try json(renew)),
                (.post, "/v1/authority/renew", try json(BatchRenewRequest(node: "n2", grants: [.init(symbol: symbol, fencingToken: grant.fencingToken, grant: grant)]))),
                (.post, "/v1/authority/\(symbol)/release", try json(RenewRequest(node: "n2", fencingToken: grant.fencingToken))),
                // After the release in n2's own pass: acquiring again mints a new token.
                (.post, "/v1/authority/\(symbol)/acquire", try json(AcquireRequest(node: "n2"))),
                (.delete, "/v1/members/n2", nil),
            ]
            for (method, uri, body) in attempts {
                let reply = try await client.send(method, uri, token: n1, json: body)
                #expect(reply.status == 403, "\(method) \(uri): \(String(decoding: reply.body, as: UTF8.self))")
                #expect(reply.code == "node_mismatch", "\(method) \(uri)")
                #expect(reply.details["token_node"] == "n1" && reply.details["node"] == "n2", "\(method) \(uri)")
            }
            #expect(try await snapshot() == before, "a refused request changed the coordinator's state")
            for (method, uri, body) in attempts {
                let reply = try await client.send(method, uri, token: n2, json: body)
                #expect(reply.status == 200, "\(method) \(uri) as n2: \(String(decoding: reply.body, as: UTF8.self))")
            }
        }
    }

    @Test func badInputIsRefusedWithTheEnvelope() async throws {
        let fixture = try await Fixture()
        try await fixture.run { client in
            let cases: [(HTTPRequest.Method, String, String?, Int, String)] = [
                (.post, "/v1/members/N_1/heartbeat", #"{"address":"x"}"#, 400, "invalid_node_id"),
                (.post, "/v1/members/n1/heartbeat", #"{"address":""}"#, 400, "invalid_field"),
                (.post, "/v1/members/n1/heartbeat", #"{"addr":"x"}"#, 400, "malformed_body"),
                (.post, "/v1/members/n1/heartbeat", "{not json", 400, "malformed_body"),
                (.post, "/v1/authority/ZZZ/acquire", #"{"node":"n1"}"#, 404, "unknown_symbol"),
                (.post, "/v1/authority/ACME/acquire", #"{"node":"n1"}"#, 404, "unknown_node"),
                (.post, "/v1/authority/ACME/acquire", #"{"node":"Bad!"}"#, 400, "invalid_node_id"),
                (.post, "/v1/authority/ACME/renew", #"{"node":"n1"}"#, 400, "malformed_body"),
                (.post, "/v1/authority/ACME/renew", #"{"node":"n1","fencing_token":"one"}"#, 400, "malformed_body"),
                (.post, "/v1/authority/renew", #"{"node":"n1","grants":[{"symbol":"ACME","fencing_token":1},{"symbol":"ACME","fencing_token":1}]}"#, 400, "invalid_field"),
                (.get, "/v1/authority/ZZZ", nil, 404, "unknown_symbol"),
                (.get, "/v1/assignments?after_version=x", nil, 400, "invalid_field"),
                (.get, "/v1/assignments?after_version=0&wait_ms=999999", nil, 400, "invalid_field"),
                (.get, "/v1/events?limit=0", nil, 400, "invalid_field"),
                (.get, "/v1/events?after=-1", nil, 400, "invalid_field"),
                (.get, "/v1/events?tail=0", nil, 400, "invalid_field"),
                (.get, "/v1/events?tail=1001", nil, 400, "invalid_field"),
                (.get, "/v1/events?tail=x", nil, 400, "invalid_field"),
                (.get, "/v1/events?tail=5&after=1", nil, 400, "invalid_field"),
                (.get, "/v1/events?tail=5&limit=5", nil, 400, "invalid_field"),
                (.get, "/v1/events?tail=5&wait_ms=1000", nil, 400, "invalid_field"),
            ]
            for (method, uri, json, status, code) in cases {
                let reply = try await client.send(method, uri, json: json)
                #expect(reply.status == status, "\(method) \(uri) \(json ?? "")")
                #expect(reply.code == code, "\(method) \(uri) \(json ?? ""): \(String(decoding: reply.body, as: UTF8.self))")
            }
            // Nothing changed: no member, no grant, only the startup event.
            #expect(try await client.send(.get, "/v1/members").decode(MemberList.self).members.isEmpty)
            let events = try await client.send(.get, "/v1/events").decode(EventPage.self)
            #expect(events.events.map(\.kind) == ["coordinator_started"])
        }
    }

    @Test func rolesAreEnforcedBeforeAnythingChanges() async throws {
        let fixture = try await Fixture()
        try await fixture.run { client in
            for spec in CoordinatorRoutes.all {
                let uri = spec.path(["node": "n1", "symbol": "ACME"])
                let method = HTTPRequest.Method(rawValue: spec.method.rawValue)!
                let missing = try await client.send(method, uri, as: nil, json: "{}")
                #expect(missing.status == 401, "\(spec)")
                #expect(missing.code == "missing_token")
                let wrong = try await client.send(method, uri, as: nil, token: "not-a-token", json: "{}")
                #expect(wrong.status == 401, "\(spec)")
                #expect(wrong.code == "invalid_token")
                for role in Role.allCases where !spec.roles.contains(role) {
                    let forbidden = try await client.send(method, uri, as: role, json: #"{"address":"x","node":"n1"}"#)
                    #expect(forbidden.status == 403, "\(spec) as \(role)")
                    #expect(forbidden.code == "forbidden_role")
                }
            }
            #expect(try await client.send(.get, "/v1/members").decode(MemberList.self).members.isEmpty)
        }
    }

    @Test func grantLifecycleOverHTTP() async throws {
        let fixture = try await Fixture()
        let clock = fixture.clock
        let signer = try GrantSigner(dataDirectory: fixture.cluster.dataDirectory)
        try await fixture.run { client in
            _ = try await client.heartbeat("n1")
            _ = try await client.heartbeat("n2")
            let table = try await client.send(.get, "/v1/assignments", as: .observer).decode(AssignmentTable.self)
            let owner = try #require(table.symbols["ACME"])
            let other = owner == "n1" ? "n2" : "n1"

            let refused = try await client.acquire("ACME", other)
            #expect(refused.status == 409)
            #expect(refused.code == "not_assigned")
            #expect(refused.details["assigned_to"] == owner)

            let grant = try await client.acquire("ACME", owner).decode(AuthorityGrant.self)
            #expect(grant.fencingToken == 1)
            #expect(grant.expiresAtMs == clock.nowMs() + 1_500)
            #expect(signer.verify(grant, node: owner, symbol: "ACME", nowMs: clock.nowMs()) == .valid)
            let again = try await client.acquire("ACME", owner).decode(AuthorityGrant.self)
            #expect(again.fencingToken == 2, "re-acquire by the holder (a restart) supersedes with a higher token")

            clock.advance(byMs: 500)
            _ = try await client.heartbeat("n1")
            _ = try await client.heartbeat("n2")
            let renewed = try await client.send(.post, "/v1/authority/ACME/renew", body: RenewRequest(node: owner, fencingToken: again.fencingToken)).decode(AuthorityGrant.self)
            #expect(renewed.expiresAtMs == clock.nowMs() + 1_500)
            #expect(signer.isAuthentic(renewed))
            let stale = try await client.send(.post, "/v1/authority/ACME/renew", body: RenewRequest(node: owner, fencingToken: grant.fencingToken))
            #expect(stale.status == 409)
            #expect(stale.code == "stale_fencing_token")

            let status = try await client.send(.get, "/v1/authority/ACME", as: .observer).decode(AuthorityStatus.self)
            #expect(status.node == owner)
            #expect(status.assignedTo == owner)
            #expect(status.fencingToken == again.fencingToken)
            #expect(status.expiresInMs == 1_500)
            let all = try await client.send(.get, "/v1/authority", as: .supervisor).decode(AuthorityList.self)
            #expect(all.quietForMs == 0)
            #expect(all.authority.map(\.symbol) == fixture.environment.config.symbolNames)

            // The owner leaves: ACME moves, the new owner must wait for the release.
            _ = try await client.send(.delete, "/v1/members/\(owner)")
            #expect(try await client.acquire("ACME", other).code == "held_by_other")
            let lapsedRenew = try await client.send(.post, "/v1/authority/ACME/renew", body: RenewRequest(node: owner, fencingToken: again.fencingToken))
            #expect(lapsedRenew.code == "not_assigned")
            let released = try await client.send(.post, "/v1/authority/ACME/release", body: RenewRequest(node: owner, fencingToken: again.fencingToken))
            #expect(try released.decode(ReleaseResult.self) == ReleaseResult(symbol: "ACME", released: true))
            let next = try await client.acquire("ACME", other).decode(AuthorityGrant.self)
            #expect(next.fencingToken == again.fencingToken + 1)
            let staleRelease = try await client.send(.post, "/v1/authority/ACME/release", body: RenewRequest(node: owner, fencingToken: 1))
            #expect(staleRelease.code == "stale_fencing_token")

            // Batch renew: one good, one stale, one unknown symbol.
            let batch = BatchRenewRequest(node: other, grants: [.init(symbol: "ACME", fencingToken: next.fencingToken), .init(symbol: "BOLT", fencingToken: 5), .init(symbol: "ZZZ", fencingToken: 1)])
            let result = try await client.send(.post, "/v1/authority/renew", body: batch).decode(BatchRenewResult.self)
            #expect(result.renewed.map(\.symbol) == ["ACME"])
            #expect(result.refused.map(\.code) == ["stale_fencing_token", "unknown_symbol"])

            let kinds = try await client.send(.get, "/v1/events?after=0&limit=100").decode(EventPage.self).events.map(\.kind)
            #expect(kinds.filter { $0 == "grant" }.count == 3, "grant, re-acquire by the holder, grant to the next owner")
            #expect(kinds.contains("release"))
            #expect(kinds.contains("renew_refused"))
            #expect(kinds.contains("leave"))
        }
    }

    /// A handover without polling: the new owner's acquire is parked while the old owner still
    /// holds the grant and is answered the moment the old owner releases, with the next token.
    @Test func parkedAcquireIsGrantedOnRelease() async throws {
        let fixture = try await Fixture()
        try await fixture.run { client in
            _ = try await client.heartbeat("n1")
            let grant = try await client.acquire("ACME", "n1").decode(AuthorityGrant.self)
            _ = try await client.heartbeat("n2")
            // n2 joining moves some symbols to it; make ACME one of them by having n1 leave.
            _ = try await client.send(.delete, "/v1/members/n1")
            async let parked = client.send(.post, "/v1/authority/ACME/acquire", body: AcquireRequest(node: "n2", waitMs: 20_000))
            try await Task.sleep(for: .milliseconds(200))
            let holder = try await client.send(.get, "/v1/authority/ACME", as: .observer).decode(AuthorityStatus.self)
            #expect(holder.node == "n1", "nothing is granted while the old grant is live")
            let released = ContinuousClock.now
            _ = try await client.send(.post, "/v1/authority/ACME/release", body: RenewRequest(node: "n1", fencingToken: grant.fencingToken))
            let answer = try await parked
            #expect(answer.status == 200)
            let next = try answer.decode(AuthorityGrant.self)
            #expect(next.node == "n2")
            #expect(next.fencingToken == grant.fencingToken + 1)
            #expect(ContinuousClock.now - released < .seconds(5), "answered by the release, not by the wait running out")
        }
    }

    /// A parked acquire whose holder never releases answers held_by_other when its wait ends,
    /// and a wait_ms outside 0...60000 is a 400 naming the field.
    @Test func parkedAcquireTimesOutAndWaitIsValidated() async throws {
        let fixture = try await Fixture()
        try await fixture.run { client in
            _ = try await client.heartbeat("n1")
            _ = try await client.acquire("ACME", "n1")
            _ = try await client.heartbeat("n2")
            _ = try await client.send(.delete, "/v1/members/n1")
            let timedOut = try await client.send(.post, "/v1/authority/ACME/acquire", body: AcquireRequest(node: "n2", waitMs: 100))
            #expect(timedOut.status == 409)
            #expect(timedOut.code == "held_by_other")
            for bad in [-1, 60_001] as [Int64] {
                let refused = try await client.send(.post, "/v1/authority/ACME/acquire", body: AcquireRequest(node: "n2", waitMs: bad))
                #expect(refused.status == 400)
                #expect(refused.code == "invalid_field")
            }
            let status = try await client.send(.get, "/v1/authority/ACME", as: .observer).decode(AuthorityStatus.self)
            #expect(status.node == "n1", "refused and timed-out acquires changed nothing")
        }
    }

    @Test func assignmentsLongPollWakesOnChange() async throws {
        let fixture = try await Fixture()
        try await fixture.run { client in
            let initial = try await client.send(.get, "/v1/assignments").decode(AssignmentTable.self)
            #expect(initial.symbols.isEmpty)
            // Nothing changes: the poll returns the same version after its wait.
            let idle = try await client.send(.get, "/v1/assignments?after_version=\(initial.version)&wait_ms=50").decode(AssignmentTable.self)
            #expect(idle.version == initial.version)
            async let waited = client.send(.get, "/v1/assignments?after_version=\(initial.version)&wait_ms=20000")
            try await Task.sleep(for: .milliseconds(100))
            let joined = try await client.heartbeat("n3").decode(HeartbeatResponse.self)
            let table = try await waited.decode(AssignmentTable.self)
            #expect(table.version > initial.version)
            #expect(table.version == joined.assignmentsVersion)
            #expect(Set(table.symbols.values) == ["n3"])
            // Events long-poll too.
            let head = try await client.send(.get, "/v1/events").decode(EventPage.self).headSeq
            async let nextEvents = client.send(.get, "/v1/events?after=\(head)&wait_ms=20000")
            try await Task.sleep(for: .milliseconds(100))
            _ = try await client.send(.delete, "/v1/members/n3")
            let page = try await nextEvents.decode(EventPage.self)
            #expect(page.events.first?.kind == "leave")
            #expect(page.events.allSatisfy { $0.seq > head })
        }
    }

    @Test func presenceExpiresOnTheInjectedClock() async throws {
        let fixture = try await Fixture()
        let clock = fixture.clock
        try await fixture.run { client in
            _ = try await client.heartbeat("n1")
            let grant = try await client.acquire("BOLT", "n1").decode(AuthorityGrant.self)
            clock.advance(byMs: 1_000)
            // Any request judges expiry first; the sweeper does the same in the background.
            let members = try await client.send(.get, "/v1/members").decode(MemberList.self).members
            #expect(members.first?.expiresInMs == 0)
            let renew = try await client.send(.post, "/v1/authority/BOLT/renew", body: RenewRequest(node: "n1", fencingToken: grant.fencingToken))
            #expect(renew.code == "not_assigned")
            #expect(try await client.send(.get, "/v1/members").decode(MemberList.self).members.first?.status == .expired)
            clock.advance(byMs: 500)
            _ = try await client.heartbeat("n1")
            let events = try await client.send(.get, "/v1/events?limit=1000").decode(EventPage.self).events
            let expired = try #require(events.first { $0.kind == "grant_expired" })
            #expect(expired.expiresAtMs == grant.expiresAtMs)
            #expect(expired.fencingToken == grant.fencingToken)
            #expect(events.contains { $0.kind == "expire" && $0.node == "n1" })
            #expect(events.contains { $0.kind == "rebalance" && $0.detail.contains("BOLT:n1→-") })
        }
    }

    @Test func restartOnTheSameStoreIsQuietThenContinuesTokens() async throws {
        let store = try GRDBCoordinatorStore()
        let first = try await Fixture(store: store)
        try await first.run { client in
            _ = try await client.heartbeat("n1")
            #expect(try await client.acquire("CRUX", "n1").decode(AuthorityGrant.self).fencingToken == 1)
        }
        let second = try await Fixture(store: store)
        let clock = second.clock
        try await second.run { client in
            _ = try await client.heartbeat("n1")
            let quiet = try await client.acquire("CRUX", "n1")
            #expect(quiet.status == 503)
            #expect(quiet.code == "startup_quiet_period")
            #expect(quiet.details["retry_after_ms"] == "1500")
            #expect(try await client.send(.get, "/v1/authority").decode(AuthorityList.self).quietForMs == 1_500)
            clock.advance(byMs: 900)
            _ = try await client.heartbeat("n1")
            clock.advance(byMs: 600)
            _ = try await client.heartbeat("n1")
            #expect(try await client.acquire("CRUX", "n1").decode(AuthorityGrant.self).fencingToken == 2)
        }
    }

    /// A coordinator restarted on the same store and key continues a grant its holder presents
    /// (same token, no quiet period), refuses an altered one with 403 invalid_grant, and
    /// nothing else changes for the refused one.
    @Test func restartReadoptsPresentedGrantsOverHTTP() async throws {
        let fixture = try await Fixture()
        let grants = LockedBox<[String: AuthorityGrant]>([:])
        try await fixture.run { client in
            _ = try await client.heartbeat("n1")
            for symbol in ["ACME", "BOLT"] {
                let grant = try await client.acquire(symbol, "n1").decode(AuthorityGrant.self)
                grants.update { $0[symbol] = grant }
            }
        }
        fixture.clock.advance(byMs: 300)
        // Same environment (same grant key), same store: a restart.
        let app = try await buildCoordinatorApplication(fixture.environment, store: fixture.store)
        let tokens = fixture.cluster.tokens
        let held = grants.value
        try await app.test(.router) { raw in
            let client = Client(client: raw, tokens: tokens)
            _ = try await client.heartbeat("n1")
            var forged = try #require(held["BOLT"])
            forged.expiresAtMs += 60_000
            let batch = BatchRenewRequest(node: "n1", grants: [
                .init(symbol: "ACME", fencingToken: held["ACME"]!.fencingToken, grant: held["ACME"]),
                .init(symbol: "BOLT", fencingToken: forged.fencingToken, grant: forged),
            ])
            let result = try await client.send(.post, "/v1/authority/renew", body: batch).decode(BatchRenewResult.self)
            #expect(result.renewed.map(\.symbol) == ["ACME"])
            #expect(result.renewed.first?.fencingToken == held["ACME"]!.fencingToken)
            #expect(result.refused.map(\.code) == ["invalid_grant"])
            let single = try await client.send(.post, "/v1/authority/BOLT/renew", body: RenewRequest(node: "n1", fencingToken: forged.fencingToken, grant: forged))
            #expect(single.status == 403)
            #expect(single.code == "invalid_grant")
            let authority = try await client.send(.get, "/v1/authority").decode(AuthorityList.self)
            #expect(authority.authority.first { $0.symbol == "ACME" }?.node == "n1")
            #expect(authority.authority.first { $0.symbol == "BOLT" }?.node == nil)
            #expect(authority.quietForMs == 1_500, "BOLT is still unresolved")
            let events = try await client.send(.get, "/v1/events?limit=1000").decode(EventPage.self).events
            #expect(events.filter { $0.kind == "adopt" }.map(\.symbol) == ["ACME"])
            // The genuine BOLT grant still re-adopts: the forgery changed nothing.
            let genuine = try await client.send(.post, "/v1/authority/BOLT/renew", body: RenewRequest(node: "n1", fencingToken: held["BOLT"]!.fencingToken, grant: held["BOLT"]))
            #expect(try genuine.decode(AuthorityGrant.self).fencingToken == held["BOLT"]!.fencingToken)
            #expect(try await client.send(.get, "/v1/authority").decode(AuthorityList.self).quietForMs == 0)
        }
    }

    /// The SQLite store keeps tokens, the event head and the live member set across reopen.
    @Test func sqliteStoreRoundTripsMembersTokensAndHead() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("coord-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("coordinator.sqlite").path
        do {
            let store = try GRDBCoordinatorStore(path: path)
            var mutation = CoordinatorMutation()
            mutation.events = [ClusterEvent(seq: 1, tsMs: 10, kind: "join", node: "n1", detail: "joined")]
            mutation.fencingTokens = ["ACME": 3]
            mutation.aliveMembers = [
                "n1": PersistedMember(node: "n1", address: "http://a", incarnation: "p1", joinedAtMs: 10),
                "n2": PersistedMember(node: "n2", address: "http://b", incarnation: "p2", joinedAtMs: 10),
            ]
            try await store.commit(mutation)
            var departure = CoordinatorMutation()
            departure.events = [ClusterEvent(seq: 2, tsMs: 20, kind: "leave", node: "n2", detail: "left")]
            departure.departedMembers = ["n2"]
            departure.aliveMembers = ["n1": PersistedMember(node: "n1", address: "http://a2", incarnation: "p9", joinedAtMs: 10)]
            try await store.commit(departure)
        }
        let reopened = try await GRDBCoordinatorStore(path: path).load()
        #expect(reopened.headSeq == 2)
        #expect(reopened.fencingTokens == ["ACME": 3])
        #expect(reopened.members == [PersistedMember(node: "n1", address: "http://a2", incarnation: "p9", joinedAtMs: 10)])
    }

    @Test func failedStoreWriteGrantsNothingAndRecoversQuietly() async throws {
        let store = FlakyStore(inner: try GRDBCoordinatorStore())
        let fixture = try await Fixture()
        let clock = fixture.clock
        let engine = try await CoordinatorEngine(
            policy: CoordinatorPolicy(fixture.environment.config), store: store, signer: GrantSigner(keyHex: "aa"), clock: clock)
        _ = try await engine.heartbeat(node: "n1", address: "a")
        #expect(try await engine.acquire(symbol: "BOLT", node: "n1").fencingToken == 1)
        store.failNext()
        await #expect(throws: APIError.self) { try await engine.acquire(symbol: "ACME", node: "n1") }
        #expect(await engine.liveGrant(symbol: "ACME") == nil)
        // Reloaded as after a restart, tokens from the store: BOLT (granted, maybe live) is
        // quiet for one grant TTL; ACME's token never became durable, so no ACME grant can
        // exist and it is granted at once.
        #expect(await engine.quietForMs == 1_500)
        _ = try await engine.heartbeat(node: "n1", address: "a")
        #expect(try await engine.acquire(symbol: "ACME", node: "n1").fencingToken == 1)
        await #expect(throws: APIError.self) { try await engine.acquire(symbol: "BOLT", node: "n1") }
        clock.advance(byMs: 1_500)
        _ = try await engine.heartbeat(node: "n1", address: "a")
        #expect(try await engine.acquire(symbol: "BOLT", node: "n1").fencingToken == 2)
    }
}

/// A store whose next commit fails, to prove a failed write returns no grant.
final class FlakyStore: CoordinatorStore {
    let inner: GRDBCoordinatorStore
    private let failing = LockedBox(false)

    init(inner: GRDBCoordinatorStore) { self.inner = inner }

    func failNext() { failing.value = true }

    func load() async throws -> RecoveredCoordinatorState { try await inner.load() }

    func commit(_ mutation: CoordinatorMutation) async throws {
        let fail = failing.update { failing -> Bool in
            defer { failing = false }
            return failing
        }
        if fail {
            throw HarnessError("injected disk failure")
        }
        try await inner.commit(mutation)
    }

    func events(after seq: Int64, limit: Int) async throws -> [ClusterEvent] { try await inner.events(after: seq, limit: limit) }
}
