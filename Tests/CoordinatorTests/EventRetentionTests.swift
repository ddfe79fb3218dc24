import AsyncHTTPClient
import ClusterCheck
import Coordinator
import EtcdKit
import Foundation
import Logging
import MMCore
import MMTestSupport
import Testing

/// `coordinator.events.retain` on both backends: the oldest events are pruned in batches, the
/// pruned ones are folded into the compaction base in the same transaction, and base + retained
/// events judge grants exactly as the whole log would.
@Suite struct EventRetentionTests {
    static let symbols = ["ACME", "BOLT", "CRUX"]
    static let signer = GrantSigner(keyHex: "00112233445566778899aabbccddeeff")
    static let policy = CoordinatorPolicy(symbols: symbols, presenceTtlMs: 1_000, grantTtlMs: 1_000)
    /// Pruning only when a test calls `compact()` (the background trigger needs this much excess).
    static let manualOnly: Int64 = 1_000_000

    /// Grants and releases every symbol `rounds` times (two events each).
    static func churn(_ engine: CoordinatorEngine, clock: ManualClock, rounds: Int) async throws {
        for _ in 0..<rounds {
            _ = try await engine.heartbeat(node: "n1", address: "http://127.0.0.1/n1", incarnation: "a")
            for symbol in symbols {
                let grant = try await engine.acquire(symbol: symbol, node: "n1")
                clock.advance(byMs: 10)
                _ = try await engine.release(symbol: symbol, node: "n1", fencingToken: grant.fencingToken)
                clock.advance(byMs: 5)
            }
        }
    }

    /// Every event after `start`, in small pages (until an empty one: a replica that has not
    /// followed the others has an older head than the log it reads).
    static func readAll(_ engine: CoordinatorEngine, after start: Int64 = 0) async throws -> [ClusterEvent] {
        var events: [ClusterEvent] = []
        var after = start
        while true {
            let page = try await engine.events(after: after, limit: 7, waitMs: 0)
            guard let last = page.events.last else { return events }
            events += page.events
            after = last.seq
        }
    }

    static func fold(_ events: some Sequence<ClusterEvent>) -> GrantLogFold {
        var fold = GrantLogFold()
        for event in events { _ = fold.apply(event) }
        return fold
    }

    /// What must hold after pruning `full` (read before) down to `retained`.
    static func expectConsistent(engine: CoordinatorEngine, full: [ClusterEvent], minRetained: Int, maxRetained: Int) async throws {
        let base = try await engine.eventBase()
        let retained = try await readAll(engine)
        #expect((minRetained...maxRetained).contains(retained.count), "retained \(retained.count) of \(full.count)")
        #expect(base.compactedThroughSeq > 0)
        #expect(retained == full.filter { $0.seq > base.compactedThroughSeq }, "the retained events are the newest, unchanged")
        #expect(base.grants == fold(full.filter { $0.seq <= base.compactedThroughSeq }), "the base is the fold of exactly the pruned events")
        // Asked from below the base: the page starts at the first retained event and says so.
        let page = try await engine.events(after: 0, limit: 1_000, waitMs: 0)
        #expect(page.compactedThroughSeq == base.compactedThroughSeq)
        #expect(page.skipsPrunedEvents(after: 0))
        #expect(page.events.first?.seq == base.compactedThroughSeq + 1)
        let fromBase = try await engine.events(after: base.compactedThroughSeq, limit: 1_000, waitMs: 0)
        #expect(!fromBase.skipsPrunedEvents(after: base.compactedThroughSeq))
        // The check's verdict is the whole log's.
        let incremental = Invariants.grantsNeverOverlap(base: base, events: retained)
        let whole = Invariants.grantsNeverOverlap(events: full)
        #expect(incremental.held && whole.held, "\(incremental.offending)")
        var counts = incremental.counts
        var wholeCounts = whole.counts
        #expect(counts.removeValue(forKey: "compacted_through_seq") == base.compactedThroughSeq)
        #expect(wholeCounts.removeValue(forKey: "compacted_through_seq") == 0)
        #expect(counts == wholeCounts)
    }

    // MARK: Configuration

    @Test func retentionIsConfigurableAndValidated() async throws {
        let defaults = try await ClusterConfig.load(path: nil, environment: [:])
        #expect(defaults.coordinator.eventsRetain == 100_000)
        #expect(defaults.flattened().contains { $0.key == "coordinator.events.retain" && $0.value == "100000" })
        let set = try await ClusterConfig.load(path: nil, environment: [:], overrides: ["coordinator.events.retain": "2500"])
        #expect(set.coordinator.eventsRetain == 2_500)
        #expect(EventRetention(retain: set.coordinator.eventsRetain) == EventRetention(retain: 2_500, slack: 250, batch: 1_000))
        do {
            _ = try await ClusterConfig.load(path: nil, environment: [:], overrides: ["coordinator.events.retain": "50"])
            Issue.record("a retention below 100 must be refused")
        } catch {
            #expect(error.key == "coordinator.events.retain" && error.description.contains("≥ 100"), "\(error)")
        }
        // A running cluster's effective-config.json written before the key existed still reads.
        var json = try JSONSerialization.jsonObject(with: try MMJSON.encode(set)) as! [String: Any]
        var coordinator = json["coordinator"] as! [String: Any]
        coordinator["events_retain"] = nil
        json["coordinator"] = coordinator
        let old = try MMJSON.decode(ClusterConfig.self, from: try JSONSerialization.data(withJSONObject: json))
        #expect(old.coordinator.eventsRetain == ClusterConfig.CoordinatorSettings.defaultEventsRetain)
    }

    // MARK: Embedded (SQLite)

    @Test func embeddedPrunesInBatchesAndKeepsTheBase() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mm-retention-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/coordinator.sqlite"
        let retention = EventRetention(retain: 10, slack: Self.manualOnly, batch: 7)
        let clock = ManualClock()
        let full: [ClusterEvent]
        do {
            let store = try GRDBCoordinatorStore(path: path, retention: retention)
            let engine = try await CoordinatorEngine(policy: Self.policy, store: store, signer: Self.signer, clock: clock)
            try await Self.churn(engine, clock: clock, rounds: 8)
            full = try await Self.readAll(engine)
            #expect(full.count > 40)
            #expect(try await engine.eventBase().compactedThroughSeq == 0, "nothing pruned below the trigger")
            let pruned = try await store.compact()
            #expect(pruned == full.count - 10)
            try await Self.expectConsistent(engine: engine, full: full, minRetained: 10, maxRetained: 10)
            #expect(try await store.compact() == 0, "already within retention")
        }
        // A restart on the same file: the base survives and seqs continue after the old head.
        let store = try GRDBCoordinatorStore(path: path, retention: retention)
        let engine = try await CoordinatorEngine(policy: Self.policy, store: store, signer: Self.signer, clock: clock)
        let restartedAt = try await engine.events(after: full.last!.seq, limit: 10, waitMs: 0).events
        #expect(restartedAt.first?.seq == full.last!.seq + 1 && restartedAt.contains { $0.kind == "coordinator_started" }, "\(restartedAt)")
        let base = try await engine.eventBase()
        #expect(base.compactedThroughSeq == full[full.count - 11].seq)
        #expect(base.grants == Self.fold(full.prefix(full.count - 10)))
    }

    @Test func embeddedPrunesInTheBackgroundAfterCommits() async throws {
        let store = try GRDBCoordinatorStore(retention: EventRetention(retain: 10, slack: 5, batch: 4))
        let clock = ManualClock()
        let engine = try await CoordinatorEngine(policy: Self.policy, store: store, signer: Self.signer, clock: clock)
        try await Self.churn(engine, clock: clock, rounds: 8)
        let head = await engine.headSeq
        // The last commit may have started a run that is still going: wait for it to settle.
        let deadline = ContinuousClock.now + .seconds(5)
        var retained: [ClusterEvent] = []
        while ContinuousClock.now < deadline {
            retained = try await Self.readAll(engine)
            if retained.count < 15 {
                // Settled: no run is left (the last one may still have been finishing its batch).
                try await Task.sleep(for: .milliseconds(300))
                retained = try await Self.readAll(engine)
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect((10..<15).contains(retained.count), "retained \(retained.count)")
        let base = try await engine.eventBase()
        #expect(base.compactedThroughSeq + Int64(retained.count) == head)
        let result = Invariants.grantsNeverOverlap(base: base, events: retained)
        #expect(result.held && result.counts["grants"] == Int64(8 * Self.symbols.count) && result.counts["events"] == head, "\(result.counts)")
    }

    // MARK: etcd

    func withEtcdStores(_ body: (@escaping (String, EventRetention) throws -> EtcdCoordinatorStore) async throws -> Void) async throws {
        try await withEtcdCluster(label: "coord-retention") { cluster in
            let httpClient = EtcdClient.makeHTTPClient()
            do {
                let client = try EtcdClient(endpoints: cluster.clientURLs, httpClient: httpClient)
                try await body { prefix, retention in
                    EtcdCoordinatorStore(client: client, prefix: prefix, retention: retention, logger: Logger(label: "retention-test"))
                }
            } catch {
                try? await httpClient.shutdown()
                throw error
            }
            try await httpClient.shutdown()
        }
    }

    @Test func etcdPrunesWholeCommitsAndReplicasAgreeOnTheBase() async throws {
        try await withEtcdStores { makeStore in
            let retention = EventRetention(retain: 10, slack: Self.manualOnly, batch: 3)
            // Two replicas, each with its own store value (as two processes would have).
            let storeA = try makeStore("/retention/", retention)
            let storeB = try makeStore("/retention/", retention)
            let clock = ManualClock()
            let engineA = await CoordinatorEngine(policy: Self.policy, sharedStore: storeA, signer: Self.signer, clock: clock)
            let engineB = await CoordinatorEngine(policy: Self.policy, sharedStore: storeB, signer: Self.signer, clock: clock)
            try await Self.churn(engineA, clock: clock, rounds: 8)
            let full = try await Self.readAll(engineA)
            #expect(full.count > 40 && full.map(\.seq) == Array(1...Int64(full.count)))
            // Both prune at once: each batch is applied by exactly one of them.
            async let prunedA = storeA.compact()
            async let prunedB = storeB.compact()
            let pruned = try await prunedA + prunedB
            // Whole commits are pruned, so a few more than `retain` may stay.
            let retained = try await Self.readAll(engineB)
            #expect(pruned == full.count - retained.count)
            try await Self.expectConsistent(engine: engineB, full: full, minRetained: 10, maxRetained: 12)
            try await Self.expectConsistent(engine: engineA, full: full, minRetained: 10, maxRetained: 12)
            // Deciding goes on after pruning, and the base keeps up with later pruning.
            try await Self.churn(engineB, clock: clock, rounds: 3)
            let more = full + (try await Self.readAll(engineB, after: full.last!.seq))
            _ = try await storeB.compact()
            try await Self.expectConsistent(engine: engineA, full: more, minRetained: 10, maxRetained: 12)
        }
    }

    @Test func etcdPrunesInTheBackgroundAfterCommits() async throws {
        try await withEtcdStores { makeStore in
            let store = try makeStore("/retention-bg/", EventRetention(retain: 10, slack: 5, batch: 4))
            let clock = ManualClock()
            let engine = await CoordinatorEngine(policy: Self.policy, sharedStore: store, signer: Self.signer, clock: clock)
            try await Self.churn(engine, clock: clock, rounds: 8)
            let head = await engine.headSeq
            let deadline = ContinuousClock.now + .seconds(10)
            var retained: [ClusterEvent] = []
            while ContinuousClock.now < deadline {
                retained = try await Self.readAll(engine)
                if retained.count < 17 {
                // Settled: no run is left (the last one may still have been finishing its batch).
                try await Task.sleep(for: .milliseconds(300))
                retained = try await Self.readAll(engine)
                break
            }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect((10..<17).contains(retained.count), "retained \(retained.count)")
            let base = try await engine.eventBase()
            #expect(base.compactedThroughSeq + Int64(retained.count) == head)
            let result = Invariants.grantsNeverOverlap(base: base, events: retained)
            #expect(result.held && result.counts["grants"] == Int64(8 * Self.symbols.count) && result.counts["events"] == head, "\(result.counts)")
        }
    }

    // MARK: HTTP

    @Test func httpEventsBelowRetentionAndTheBaseRoute() async throws {
        let fixture = try await CoordinatorHTTPTests.Fixture(store: try GRDBCoordinatorStore(retention: EventRetention(retain: 10, slack: Self.manualOnly)))
        let store = fixture.store
        let clock = fixture.clock
        try await fixture.run { client in
            #expect(try await client.heartbeat("n1").status == 200)
            for _ in 0..<6 {
                for symbol in ["ACME", "BOLT"] {
                    let grant = try await client.acquire(symbol, "n1").decode(AuthorityGrant.self)
                    clock.advance(byMs: 10)
                    let released = try await client.send(.post, "/v1/authority/\(symbol)/release", body: RenewRequest(node: "n1", fencingToken: grant.fencingToken))
                    #expect(released.status == 200)
                }
            }
            let before = try await client.send(.get, "/v1/events?after=0&limit=1000", as: .observer).decode(EventPage.self)
            #expect(before.compactedThroughSeq == 0 && before.events.first?.seq == 1)
            #expect(try await store.compact() > 0)

            let page = try await client.send(.get, "/v1/events?after=0&limit=1000", as: .observer)
            #expect(page.status == 200)
            let decoded = try page.decode(EventPage.self)
            let through = try #require(decoded.compactedThroughSeq)
            #expect(through == before.headSeq - 10)
            #expect(decoded.events.first?.seq == through + 1 && decoded.events.count == 10)
            #expect(String(decoding: page.body, as: UTF8.self).contains("\"compacted_through_seq\":\(through)"))

            // tail=N: the newest N in one request; asking past what is retained gives what is
            // retained, and says so by the same `compacted_through_seq`.
            let tail = try await client.send(.get, "/v1/events?tail=3", as: .observer).decode(EventPage.self)
            #expect(tail.events == Array(decoded.events.suffix(3)) && tail.headSeq == before.headSeq)
            let past = try await client.send(.get, "/v1/events?tail=1000", as: .observer).decode(EventPage.self)
            #expect(past.events == decoded.events && past.compactedThroughSeq == through)

            let baseReply = try await client.send(.get, "/v1/events/base", as: .observer)
            #expect(baseReply.status == 200)
            let base = try baseReply.decode(EventLogBase.self)
            #expect(base.compactedThroughSeq == through && base.headSeq == before.headSeq)
            #expect(base.grants == Self.fold(before.events.prefix(Int(through))))
            let verdict = Invariants.grantsNeverOverlap(base: base, events: decoded.events)
            #expect(verdict.held && verdict.counts["grants"] == 12, "\(verdict.counts)")
            // Every role may read it, as /v1/events; no token may not.
            #expect(try await client.send(.get, "/v1/events/base", as: .node).status == 200)
            #expect(try await client.send(.get, "/v1/events/base", as: nil).status == 401)
        }
    }
}
