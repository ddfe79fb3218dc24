import AsyncHTTPClient
import AsyncPrimitives
import ClusterCheck
import Coordinator
import EtcdKit
import Foundation
import Logging
import MMCore
import MMTestSupport
import Testing

/// Coordinator replicas on a real etcd: concurrent decisions on several replicas, takeover of
/// live grants, foreign values, an unreachable etcd, and tokens carried over from SQLite.
@Suite struct CoordinatorReplicaTests {
    static let symbols = ["ACME", "BOLT", "CRUX", "DYNA", "EVOK", "FLUX"]
    static let signer = GrantSigner(keyHex: "00112233445566778899aabbccddeeff")

    static func policy(ttlMs: Int64 = 1_000) -> CoordinatorPolicy {
        CoordinatorPolicy(symbols: symbols, presenceTtlMs: ttlMs, grantTtlMs: ttlMs)
    }

    /// Runs `body` with stores on one fresh etcd; each store made has its own prefix.
    func withStores(_ body: (@escaping (String) throws -> EtcdCoordinatorStore) async throws -> Void) async throws {
        try await withEtcdCluster(label: "coord-replicas") { cluster in
            let httpClient = EtcdClient.makeHTTPClient()
            do {
                let client = try EtcdClient(endpoints: cluster.clientURLs, httpClient: httpClient)
                try await body { prefix in EtcdCoordinatorStore(client: client, prefix: prefix, logger: Logger(label: "replica-test")) }
            } catch {
                try? await httpClient.shutdown()
                throw error
            }
            try await httpClient.shutdown()
        }
    }

    func replica(_ store: EtcdCoordinatorStore, clock: any EpochClock, ttlMs: Int64 = 1_000, bootstrap: RecoveredCoordinatorState? = nil) async -> CoordinatorEngine {
        await CoordinatorEngine(policy: Self.policy(ttlMs: ttlMs), sharedStore: store, signer: Self.signer, clock: clock, bootstrap: bootstrap)
    }

    /// Many nodes hammer three replicas at once, each request on a random replica, so group
    /// commits carry several decisions and replicas constantly decide on state another one has
    /// changed. Whatever the interleaving: tokens are never handed out twice, the event log
    /// proves no two grants of a symbol overlapped, seqs have no gap, and every replica ends
    /// with the same state.
    @Test func concurrentDecisionsOnThreeReplicasNeverOverlap() async throws {
        try await withStores { makeStore in
            let store = try makeStore("/concurrent/")
            let clock = MonotonicEpochClock()
            var replicas: [CoordinatorEngine] = []
            for _ in 0..<3 { replicas.append(await replica(store, clock: clock, ttlMs: 400)) }
            let engines = replicas
            let nodes = ["n1", "n2", "n3", "n4"]
            let handed = LockedBox<[String: [Int64]]>([:])
            let deadline = ContinuousClock.now + .seconds(3)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, node) in nodes.enumerated() {
                    group.addTask {
                        var random = SplitMix64(seed: UInt64(index + 1))
                        func pick() -> CoordinatorEngine { engines[Int(random.next() % UInt64(engines.count))] }
                        var mine: [String: AuthorityGrant] = [:]
                        var round = 0
                        while ContinuousClock.now < deadline {
                            round += 1
                            // Node n4 goes quiet for a while: its symbols move, its grants lapse.
                            let silent = node == "n4" && (round / 20) % 2 == 1
                            if !silent { _ = try? await pick().heartbeat(node: node, address: "http://127.0.0.1/\(node)", incarnation: "\(node)-1") }
                            let table = await pick().assignmentTable
                            for symbol in Self.symbols where table.symbols[symbol] == node && mine[symbol] == nil && !silent {
                                if let grant = try? await pick().acquire(symbol: symbol, node: node) {
                                    mine[symbol] = grant
                                    handed.update { $0[symbol, default: []].append(grant.fencingToken) }
                                }
                            }
                            for (symbol, grant) in mine where !silent {
                                do {
                                    mine[symbol] = try await pick().renew(symbol: symbol, node: node, fencingToken: grant.fencingToken, presented: grant)
                                } catch {
                                    mine[symbol] = nil
                                }
                            }
                            if random.next() % 7 == 0, let (symbol, grant) = mine.first {
                                _ = try? await pick().release(symbol: symbol, node: node, fencingToken: grant.fencingToken)
                                mine[symbol] = nil
                            }
                            if silent { mine = [:] }
                            try await Task.sleep(for: .milliseconds(Int(random.next() % 30)))
                        }
                    }
                }
                group.addTask {
                    while ContinuousClock.now < deadline {
                        for engine in engines { await engine.sweep() }
                        try await Task.sleep(for: .milliseconds(20))
                    }
                }
                try await group.waitForAll()
            }
            let tokens = handed.value
            #expect(tokens.values.reduce(0) { $0 + $1.count } > 10, "the run should hand out grants: \(tokens)")
            for (symbol, list) in tokens {
                #expect(Set(list).count == list.count, "\(symbol): a token was handed out twice: \(list)")
            }
            // Let every grant lapse so every lifetime in the log is closed.
            try await Task.sleep(for: .milliseconds(500))
            await engines[0].sweep()
            let events = try await engines[0].events(after: 0, limit: 1_000, waitMs: 0).events
            #expect(!events.isEmpty && events.map(\.seq) == Array(1...Int64(events.count)), "gap-free seqs")
            let overlap = Invariants.grantsNeverOverlap(events: events)
            #expect(overlap.held, "\(overlap.summary): \(overlap.offending)")
            var authorities: [AuthorityList] = []
            for engine in engines {
                await engine.resync()
                authorities.append(await engine.authority())
            }
            #expect(authorities.allSatisfy { $0 == authorities[0] }, "replicas disagree after resync")
        }
    }

    /// A replica takes over the live grants another replica issued: renewals continue with the
    /// same token and nothing is quiet (the state, live grants included, is in etcd).
    @Test func replicaTakesOverLiveGrantsWithoutQuietPeriod() async throws {
        try await withStores { makeStore in
            let store = try makeStore("/takeover/")
            let clock = ManualClock(startMs: 1_700_000_000_000)
            let first = await replica(store, clock: clock)
            let second = await replica(store, clock: clock)
            _ = try await first.heartbeat(node: "n1", address: "http://127.0.0.1/n1", incarnation: "a")
            let grant = try await first.acquire(symbol: "ACME", node: "n1")
            clock.advance(byMs: 400)
            // `first` is gone from here on: `second` continues without reading anything first.
            let renewed = try await second.renew(symbol: "ACME", node: "n1", fencingToken: grant.fencingToken, presented: grant)
            #expect(renewed.fencingToken == grant.fencingToken)
            #expect(renewed.expiresAtMs == clock.nowMs() + 1_000)
            #expect(await second.quietForMs == 0)
            let other = try await second.acquire(symbol: "BOLT", node: "n1")
            #expect(other.fencingToken == 1, "a never-granted symbol is granted at once")
            let events = try await second.events(after: 0, limit: 100, waitMs: 0).events
            #expect(events.filter { $0.kind == "coordinator_started" }.count == 1, "a second replica is not a restart")
            #expect(!events.contains { $0.kind == "adopt" }, "nothing to re-adopt: the grant never left the store")
        }
    }

    /// Something else wrote under the prefix: the replica refuses to trust it, is not healthy,
    /// answers 503, and writes nothing.
    @Test func foreignValueUnderThePrefixIsRefused() async throws {
        try await withStores { makeStore in
            let store = try makeStore("/foreign/")
            let clock = ManualClock(startMs: 1_700_000_000_000)
            let writer = await replica(store, clock: clock)
            _ = try await writer.heartbeat(node: "n1", address: "http://127.0.0.1/n1")
            let revision = await writer.revision
            // A value this coordinator did not write, in a bucket of its layout.
            _ = try await store.client.put("/foreign/state/symbols/07", "{\"not\": \"a symbol record\"}")
            let reader = await replica(store, clock: clock)
            #expect(await !reader.isHealthy)
            let why = await reader.storeError ?? ""
            #expect(why.contains("/foreign/state/symbols/07") && why.contains("did not write"), "\(why)")
            do {
                _ = try await reader.heartbeat(node: "n2", address: "http://127.0.0.1/n2")
                Issue.record("a replica on foreign state answered a heartbeat")
            } catch let error as APIError {
                #expect(error.status == 503 && error.code == "store_unavailable")
            }
            // The writer's next commit is refused by the compare (the state moved), and its
            // reread refuses the foreign value as well: nothing is written on top of it.
            do {
                _ = try await writer.heartbeat(node: "n3", address: "http://127.0.0.1/n3")
                Issue.record("a write on top of a foreign value succeeded")
            } catch let error as APIError {
                #expect(error.code == "store_unavailable")
            }
            #expect(try await store.currentRevision() == revision, "the head was not rewritten")
        }
    }

    /// No etcd at the configured address: the replica starts, is not ready, says why, and
    /// answers 503 without granting anything.
    @Test func unreachableEtcdMakesTheReplicaUnreadyNotWrong() async throws {
        let httpClient = EtcdClient.makeHTTPClient(connectTimeout: .milliseconds(200))
        let port = PortAllocator.portBase()
        let client = try EtcdClient(
            endpoints: ["http://127.0.0.1:\(port)"], httpClient: httpClient,
            configuration: .init(attemptTimeout: .milliseconds(300), requestTimeout: .milliseconds(600)))
        let store = EtcdCoordinatorStore(client: client, prefix: "/nowhere/", logger: Logger(label: "replica-test"))
        let engine = await replica(store, clock: ManualClock())
        #expect(await !engine.isHealthy)
        let why = await engine.storeError ?? ""
        #expect(why.contains("127.0.0.1:\(port)"), "names the endpoint: \(why)")
        do {
            _ = try await engine.acquire(symbol: "ACME", node: "n1")
            Issue.record("acquired without etcd")
        } catch let error as APIError {
            #expect(error.status == 503 && error.code == "store_unavailable")
        }
        try await httpClient.shutdown()
    }

    /// A cluster moving from SQLite to etcd: the first replica starts from the embedded run's
    /// tokens and members, so the next token is above every one already issued, and the quiet
    /// period of a restart applies (grants of the embedded run may still be live).
    @Test func tokensContinueFromAnEmbeddedRun() async throws {
        let sqlite = try GRDBCoordinatorStore()
        let clock = ManualClock(startMs: 1_700_000_000_000)
        do {
            let embedded = try await CoordinatorEngine(policy: Self.policy(), store: sqlite, signer: Self.signer, clock: clock)
            _ = try await embedded.heartbeat(node: "n1", address: "http://127.0.0.1/n1")
            for _ in 0..<4 { _ = try await embedded.acquire(symbol: "ACME", node: "n1") }
            #expect(await embedded.liveGrant(symbol: "ACME")?.fencingToken == 4)
        }
        let carried = try await sqlite.load()
        try await withStores { makeStore in
            let engine = await replica(try makeStore("/moved/"), clock: clock, bootstrap: carried)
            #expect(await engine.isHealthy)
            do {
                _ = try await engine.acquire(symbol: "ACME", node: "n1")
                Issue.record("granted inside the quiet period after moving from SQLite")
            } catch let error as APIError {
                #expect(error.code == "startup_quiet_period")
            }
            clock.advance(byMs: 1_001)
            _ = try await engine.heartbeat(node: "n1", address: "http://127.0.0.1/n1")
            let grant = try await engine.acquire(symbol: "ACME", node: "n1")
            #expect(grant.fencingToken == 5, "tokens continue from the SQLite run's 4")
            // A second replica reads the carried-over state, not the SQLite file again.
            let second = await replica(try makeStore("/moved/"), clock: clock, bootstrap: RecoveredCoordinatorState(headSeq: 0, fencingTokens: [:]))
            #expect(try await second.authority(symbol: "ACME").fencingToken == 5)
        }
    }
}
