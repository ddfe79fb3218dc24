import AsyncHTTPClient
import AsyncPrimitives
import ClusterCheck
import Coordinator
import EtcdKit
import Logging
import MMCore
import MMTestSupport
import PropertyBased
import Testing

/// Model-based test: random interleavings of join, leave, heartbeat, crash (silence), death
/// (the supervisor's notice for a reaped process), a dead process's late heartbeat, acquire,
/// renew, batch renew, release, clock advance and coordinator restart (rebuilt from the same
/// repository), checked after every step from the clients' point of view: the grants the
/// nodes were actually handed, not the coordinator's own bookkeeping.
@Suite struct CoordinatorModelTests {
    static let symbols = ["ACME", "BOLT", "CRUX", "DYNA", "EVOK"]
    static let nodes = ["n1", "n2", "n3", "n4"]
    static let ttl: Int64 = 1_000
    static let policy = CoordinatorPolicy(symbols: symbols, presenceTtlMs: ttl, grantTtlMs: ttl)

    /// What the nodes hold: the latest copy of each grant they were given.
    struct HeldGrant {
        var grant: AuthorityGrant
        /// The incarnation of the process that acquired it, and the coordinator run that issued it.
        var incarnation: String
        var run: Int
        var released = false
    }

    /// Where the harness's coordinator keeps its state.
    enum Backend {
        /// One engine over SQLite; a restart is a new engine on the same store (quiet period, re-adoption).
        case embedded
        /// `replicas` engines over one etcd, each step served by one of them (chosen by the step),
        /// so decisions are made on stale state and must be caught by the commit's compare; a
        /// restart replaces the serving replica (it reads the whole state: nothing is quiet).
        case etcd(EtcdCoordinatorStore, replicas: Int)
    }

    final class Harness {
        let clock = ManualClock(startMs: 1_700_000_000_000)
        let backend: Backend
        let store: GRDBCoordinatorStore
        let signer = GrantSigner(keyHex: "00112233445566778899aabbccddeeff")
        var engines: [CoordinatorEngine]
        var serving = 0
        /// Mutations go to the serving replica.
        var engine: CoordinatorEngine { engines[serving] }
        /// A replica brought up to date before each read, so the checks see the committed state
        /// whatever the serving replica has seen (the embedded engine is always current).
        private var observer: CoordinatorEngine?
        var startedAtMs: EpochMs
        var running: Set<String> = []
        /// Each node's current process (a new one per start: heartbeat after not running).
        var incarnations: [String: String] = [:]
        var starts = 0
        var startsOf: [String: Int] = [:]
        /// The last incarnation of each node reported dead, the coordinator run it was reported
        /// to (that memory does not survive a restart) and the node's start count then.
        var died: [String: (incarnation: String, run: Int, starts: Int)] = [:]
        var run = 0
        /// symbol → token → grant as last handed out.
        var held: [String: [Int64: HeldGrant]] = [:]
        var highestToken: [String: Int64] = [:]
        var previousTable: AssignmentTable
        var previousLive: [String] = []
        var sawRestart = false
        /// Symbols with a token when the coordinator last restarted: only these may be quiet.
        var tokenedAtRestart: Set<String> = []
        /// Symbols whose previous-run grant was re-adopted since the last restart.
        var adoptedSinceRestart: Set<String> = []

        init(_ backend: Backend = .embedded) async throws {
            self.backend = backend
            store = try GRDBCoordinatorStore()
            switch backend {
            case .embedded:
                engines = [try await CoordinatorEngine(policy: CoordinatorModelTests.policy, store: store, signer: signer, clock: clock)]
            case .etcd(let shared, let replicas):
                engines = []
                for _ in 0..<replicas { engines.append(await Self.replica(shared, signer: signer, clock: clock)) }
                observer = await Self.replica(shared, signer: signer, clock: clock)
            }
            startedAtMs = clock.nowMs()
            previousTable = await engines[0].assignmentTable
        }

        static func replica(_ store: EtcdCoordinatorStore, signer: GrantSigner, clock: ManualClock) async -> CoordinatorEngine {
            let engine = await CoordinatorEngine(policy: CoordinatorModelTests.policy, sharedStore: store, signer: signer, clock: clock)
            let healthy = await engine.isHealthy
            let why = await engine.storeError ?? ""
            #expect(healthy, "replica could not load the state: \(why)")
            return engine
        }

        /// The committed state, for checks.
        func reader() async -> CoordinatorEngine {
            guard let observer else { return engine }
            await observer.resync()
            return observer
        }

        var now: EpochMs { clock.nowMs() }

        func restart() async throws {
            if case .etcd(let shared, _) = backend {
                // A replica killed and started again: it reads the whole state, so nothing is lost.
                engines[serving] = await Self.replica(shared, signer: signer, clock: clock)
                return
            }
            engines[0] = try await CoordinatorEngine(policy: CoordinatorModelTests.policy, store: store, signer: signer, clock: clock)
            startedAtMs = now
            sawRestart = true
            run += 1
            tokenedAtRestart = Set(highestToken.filter { $0.value > 0 }.keys)
            adoptedSinceRestart = []
        }

        /// The node's incarnation, starting a new process when it is not running.
        func start(_ node: String) -> String {
            if !running.contains(node) || incarnations[node] == nil {
                starts += 1
                startsOf[node, default: 0] += 1
                incarnations[node] = "\(node)-p\(starts)"
                running.insert(node)
            }
            return incarnations[node]!
        }

        func liveHeld(_ symbol: String) -> [AuthorityGrant] {
            (held[symbol] ?? [:]).values.filter { !$0.released && now < $0.grant.expiresAtMs }.map(\.grant)
        }

        /// Records a grant a node received and checks the rules a grant must satisfy.
        /// Within one grant TTL of a restart (the startup window).
        var inStartupWindow: Bool { sawRestart && now < startedAtMs + CoordinatorModelTests.ttl }

        func received(_ grant: AuthorityGrant, by node: String, isNew: Bool) async {
            #expect(signer.isAuthentic(grant))
            #expect(grant.node == node)
            #expect(grant.expiresAtMs == now + CoordinatorModelTests.ttl)
            let view = await reader()
            let table = await view.assignmentTable
            // In the startup window a known grant is renewed for its holder while the table forms.
            #expect(
                table.symbols[grant.symbol] == node || (!isNew && inStartupWindow),
                "granted \(grant.symbol) to \(node) but it is assigned to \(table.symbols[grant.symbol] ?? "nobody")")
            let member = await view.members().first { $0.node == node }
            #expect(member?.status == .alive, "granted to \(node) which is not a live member")
            let previous = highestToken[grant.symbol] ?? 0
            if isNew {
                #expect(grant.fencingToken > previous, "token \(grant.fencingToken) for \(grant.symbol) not above \(previous)")
                // Inside the window only a symbol that cannot have an unknown live grant: never
                // granted before the restart, or its grant re-adopted since.
                #expect(
                    !inStartupWindow || !tokenedAtRestart.contains(grant.symbol) || adoptedSinceRestart.contains(grant.symbol),
                    "new grant of \(grant.symbol) inside the quiet period")
            } else {
                #expect(grant.fencingToken == previous)
                if inStartupWindow { adoptedSinceRestart.insert(grant.symbol) }
            }
            highestToken[grant.symbol] = max(previous, grant.fencingToken)
            let others = liveHeld(grant.symbol).filter { $0.fencingToken != grant.fencingToken }
            #expect(others.isEmpty, "\(grant.symbol) granted to \(node) (token \(grant.fencingToken)) while \(others.map { "\($0.node)#\($0.fencingToken)" }) still held")
            let previousCopy = held[grant.symbol]?[grant.fencingToken]
            // A renewal of an earlier run's grant is a re-adoption: this run now knows the grant,
            // as held by the node's current incarnation (the one a death notice would name).
            let adopted = !isNew && previousCopy.map { $0.run != run } ?? false
            held[grant.symbol, default: [:]][grant.fencingToken] = HeldGrant(
                grant: grant, incarnation: isNew || adopted ? incarnations[node] ?? "" : previousCopy?.incarnation ?? "",
                run: isNew || adopted ? run : previousCopy?.run ?? -1)
        }

        func dropHeld(symbol: String, node: String) {
            held[symbol] = held[symbol]?.filter { $0.value.grant.node != node }
        }

        func checkInvariants() async {
            for symbol in CoordinatorModelTests.symbols {
                #expect(liveHeld(symbol).count <= 1, "two live grants for \(symbol): \(liveHeld(symbol))")
            }
            let view = await reader()
            let table = await view.assignmentTable
            let live = await view.members().filter { $0.status == .alive }.map(\.node).sorted()
            #expect(table.symbols == AssignmentPlanner.assign(symbols: CoordinatorModelTests.symbols, nodes: live), "table is not the function of the live set \(live)")
            if live.isEmpty {
                #expect(table.symbols.isEmpty)
            } else {
                #expect(Set(table.symbols.keys) == Set(CoordinatorModelTests.symbols), "every symbol assigned while \(live) live")
            }
            if table.version == previousTable.version {
                #expect(table.symbols == previousTable.symbols, "the table changed without a new version")
            } else {
                #expect(table.version > previousTable.version, "assignment version went back")
            }
            if Set(live).symmetricDifference(previousLive).count == 1 {
                Movement.check(symbols: CoordinatorModelTests.symbols, before: previousLive, after: live)
            }
            previousTable = table
            previousLive = live
            // Authority view matches what the nodes hold.
            let authority = await view.authority()
            for status in authority.authority {
                let held = liveHeld(status.symbol)
                if let holder = status.node {
                    #expect(held.map(\.node) == [holder], "\(status.symbol): coordinator says \(holder), nodes hold \(held.map(\.node))")
                    #expect(status.fencingToken == highestToken[status.symbol])
                }
            }
        }
    }

    enum Step: CustomStringConvertible {
        case heartbeat(String), leave(String), crash(String), die(String), lateHeartbeat(String), acquire(String, String)
        case renew(String, String, stale: Bool), batchRenew(String), release(String, String), advance(Int64), restart

        init(code: Int) {
            let node = CoordinatorModelTests.nodes[(code / 16) % CoordinatorModelTests.nodes.count]
            let symbol = CoordinatorModelTests.symbols[(code / 64) % CoordinatorModelTests.symbols.count]
            switch code % 16 {
            case 0, 1, 2: self = .heartbeat(node)
            case 3: self = .leave(node)
            case 4: self = (code / 1024) % 2 == 0 ? .crash(node) : .die(node)
            case 5, 6, 7: self = .acquire(node, symbol)
            case 8: self = .renew(node, symbol, stale: false)
            case 9: self = .renew(node, symbol, stale: true)
            case 10: self = .batchRenew(node)
            case 11: self = .release(node, symbol)
            case 12, 13: self = .advance(Int64(50 + (code / 64) % 400))
            case 14: self = .advance(Int64(900 + (code / 64) % 600))
            default: self = code % 7 == 0 ? .restart : code % 7 == 1 ? .lateHeartbeat(node) : .advance(Int64(10 + code % 100))
            }
        }

        var description: String {
            switch self {
            case .heartbeat(let n): "heartbeat(\(n))"
            case .leave(let n): "leave(\(n))"
            case .crash(let n): "crash(\(n))"
            case .die(let n): "die(\(n))"
            case .lateHeartbeat(let n): "lateHeartbeat(\(n))"
            case .acquire(let n, let s): "acquire(\(n),\(s))"
            case .renew(let n, let s, let stale): "renew(\(n),\(s),stale:\(stale))"
            case .batchRenew(let n): "batchRenew(\(n))"
            case .release(let n, let s): "release(\(n),\(s))"
            case .advance(let ms): "advance(\(ms))"
            case .restart: "restart"
            }
        }
    }

    static let acceptableRefusals: Set<String> = [
        "not_assigned", "held_by_other", "grant_lapsed", "stale_fencing_token", "startup_quiet_period", "unknown_node",
    ]

    func code(of error: any Error) -> String {
        (error as? APIError)?.code ?? "unexpected: \(error)"
    }

    func run(_ steps: [Step], harness h: Harness, replicaChoices: [Int] = []) async throws {
        for (index, step) in steps.enumerated() {
            if !replicaChoices.isEmpty { h.serving = replicaChoices[index % replicaChoices.count] % h.engines.count }
            switch step {
            case .heartbeat(let node):
                let incarnation = h.start(node)
                _ = try await h.engine.heartbeat(node: node, address: "http://127.0.0.1/\(node)", incarnation: incarnation)
            case .leave(let node):
                h.running.remove(node)
                // A well-behaved node releases its grants first.
                for symbol in Self.symbols {
                    for grant in h.liveHeld(symbol) where grant.node == node {
                        _ = try await h.engine.release(symbol: symbol, node: node, fencingToken: grant.fencingToken)
                        h.held[symbol]?[grant.fencingToken]?.released = true
                    }
                }
                do { _ = try await h.engine.leave(node: node) } catch { #expect(code(of: error) == "unknown_node") }
            case .crash(let node):
                h.running.remove(node)
            case .die(let node):
                // The supervisor reaps the node's running process and reports it.
                guard h.running.contains(node), let incarnation = h.incarnations[node] else { continue }
                h.running.remove(node)
                let member = await h.reader().members().first { $0.node == node }
                // Grants this process acquired from the current coordinator run, still live.
                let expected = Self.symbols.filter { symbol in
                    (h.held[symbol] ?? [:]).values.contains {
                        $0.grant.node == node && $0.incarnation == incarnation && !$0.released && h.now < $0.grant.expiresAtMs
                            && $0.run == h.run
                    }
                }
                do {
                    let result = try await h.engine.memberDied(node: node, DeathNotice(incarnation: incarnation, pid: 100, exit: "signal 9"))
                    let wasAlive = member?.status == .alive && (member?.expiresAtMs ?? 0) > h.now
                    #expect(result.ended == (wasAlive && member?.incarnation == incarnation), "die(\(node)): \(result)")
                    #expect(result.revokedGrants == expected, "die(\(node)) revoked \(result.revokedGrants), the process held \(expected)")
                    h.died[node] = (incarnation, h.run, h.startsOf[node] ?? 0)
                } catch {
                    #expect(code(of: error) == "unknown_node", "die(\(node)): \(error)")
                    #expect(member == nil)
                }
                // Whatever the coordinator revoked, a dead process acts no more.
                for symbol in Self.symbols {
                    for (token, grant) in h.held[symbol] ?? [:] where grant.grant.node == node && grant.incarnation == incarnation {
                        h.held[symbol]?[token]?.released = true
                    }
                }
            case .lateHeartbeat(let node):
                // A heartbeat the dead process sent just before dying arrives now: refused, and
                // nothing changes (the invariants below run as after every step).
                // (Remembered while fewer than 8 later incarnations of the node have ended.)
                guard let died = h.died[node], died.run == h.run,
                    (h.startsOf[node] ?? 0) - died.starts < MemberRecord.rememberedEndedIncarnations
                else { continue }
                let before = await h.reader().members()
                do {
                    _ = try await h.engine.heartbeat(node: node, address: "http://127.0.0.1/\(node)", incarnation: died.incarnation)
                    Issue.record("late heartbeat of dead incarnation \(died.incarnation) accepted")
                } catch {
                    #expect(code(of: error) == "incarnation_ended")
                }
                #expect(await h.reader().members() == before)
            case .acquire(let node, let symbol):
                let view = await h.reader()
                let table = await view.assignmentTable
                let quiet = await view.quietForMs
                let holders = h.liveHeld(symbol)
                let alive = await view.members().contains { $0.node == node && $0.status == .alive && $0.expiresAtMs > h.now }
                do {
                    let grant = try await h.engine.acquire(symbol: symbol, node: node)
                    // An acquire always mints a higher token; the caller's own earlier grant ends.
                    h.dropHeld(symbol: symbol, node: node)
                    await h.received(grant, by: node, isNew: true)
                } catch {
                    let code = code(of: error)
                    #expect(Self.acceptableRefusals.contains(code), "acquire(\(node),\(symbol)): \(code)")
                    // Liveness: nothing entitled the coordinator to refuse.
                    let entitled = alive && table.symbols[symbol] == node && quiet == 0 && holders.isEmpty
                    #expect(!entitled, "acquire(\(node),\(symbol)) refused with \(code) although assigned, live, not quiet and free")
                }
            case .renew(let node, let symbol, let stale):
                let mine = h.liveHeld(symbol).first { $0.node == node }
                let token = stale ? (h.highestToken[symbol] ?? 0) - 1 : (mine?.fencingToken ?? h.highestToken[symbol] ?? 0)
                do {
                    let grant = try await h.engine.renew(symbol: symbol, node: node, fencingToken: token, presented: stale ? nil : mine)
                    #expect(mine != nil && !stale, "renewed \(symbol) for \(node) with token \(token) it does not hold")
                    await h.received(grant, by: node, isNew: false)
                } catch {
                    #expect(Self.acceptableRefusals.contains(code(of: error)), "renew: \(code(of: error))")
                }
            case .batchRenew(let node):
                let items = Self.symbols.compactMap { symbol in
                    h.liveHeld(symbol).first { $0.node == node }.map { BatchRenewRequest.Item(symbol: symbol, fencingToken: $0.fencingToken, grant: $0) }
                }
                do {
                    let result = try await h.engine.renew(BatchRenewRequest(node: node, grants: items))
                    #expect(result.renewed.count + result.refused.count == items.count)
                    for grant in result.renewed { await h.received(grant, by: node, isNew: false) }
                    for refusal in result.refused { #expect(Self.acceptableRefusals.contains(refusal.code)) }
                } catch {
                    #expect(code(of: error) == "unknown_node")
                }
            case .release(let node, let symbol):
                guard let mine = h.liveHeld(symbol).first(where: { $0.node == node }) else { continue }
                do {
                    let result = try await h.engine.release(symbol: symbol, node: node, fencingToken: mine.fencingToken)
                    #expect(result.released || h.sawRestart, "release of a live grant after no restart must end it")
                } catch {
                    Issue.record("release of a held grant failed: \(error)")
                }
                h.held[symbol]?[mine.fencingToken]?.released = true
            case .advance(let ms):
                // Running nodes heartbeat on time unless the jump itself outlasts their TTL.
                h.clock.advance(byMs: ms)
                await h.engine.sweep()
                for node in h.running.sorted() {
                    _ = try await h.engine.heartbeat(node: node, address: "http://127.0.0.1/\(node)", incarnation: h.incarnations[node])
                }
            case .restart:
                try await h.restart()
            }
            await h.checkInvariants()
        }
    }

    @Test func randomInterleavingsKeepEveryInvariant() async throws {
        await propertyCheck(count: 60, input: Gen.int(in: 0...100_000).array(of: 20...120)) { codes in
            let harness = try await Harness()
            try await run(codes.map(Step.init(code:)), harness: harness)
        }
    }

    /// The same model on etcd, with one to three replicas serving the steps in random turns: a
    /// replica often decides on a state another one has changed since, which only the commit's
    /// compare on the state's revision catches. Every invariant above must still hold.
    @Test func randomInterleavingsKeepEveryInvariantOnEtcdReplicas() async throws {
        try await withSharedStores { makeStore in
            await propertyCheck(count: 12, input: Gen.int(in: 0...100_000).array(of: 20...80)) { codes in
                let replicas = 1 + codes[0] % 3
                let harness = try await Harness(.etcd(makeStore(), replicas: replicas))
                try await run(codes.map(Step.init(code:)), harness: harness, replicaChoices: codes.map { $0 / 7 })
                _ = try await checkLifetimes(harness, requireGrants: false)
            }
        }
    }

    @Test func deathNoticesFreeSymbolsAtOnceOnEtcdReplicas() async throws {
        try await withSharedStores { makeStore in
            let harness = try await Harness(.etcd(makeStore(), replicas: 2))
            let acquireAll = Self.nodes.flatMap { node in Self.symbols.map { Step.acquire(node, $0) } }
            var steps: [Step] = Self.nodes.map { .heartbeat($0) } + acquireAll
            steps += [.die("n1")] + acquireAll + [.lateHeartbeat("n1"), .heartbeat("n1"), .advance(100)] + acquireAll
            steps += [.die("n2"), .restart, .die("n3")] + acquireAll + [.lateHeartbeat("n2"), .restart, .lateHeartbeat("n3"), .advance(1_500)] + acquireAll
            try await run(steps, harness: harness, replicaChoices: [0, 1, 1, 0, 1])
            let events = try await checkLifetimes(harness)
            #expect(events.filter { $0.kind == "death" }.map(\.node) == ["n1", "n2", "n3"])
            #expect(events.filter { $0.kind == "revoke" }.count >= 3, "the dying nodes held grants")
            #expect(!events.contains { $0.kind == "coordinator_started" && $0.seq > 1 }, "a replica restart is not a coordinator restart")
        }
    }

    /// Runs `body` with a one-member etcd; each store it makes has a prefix of its own.
    func withSharedStores(_ body: (@escaping () -> EtcdCoordinatorStore) async throws -> Void) async throws {
        try await withEtcdCluster(label: "coord-model") { cluster in
            let httpClient = EtcdClient.makeHTTPClient()
            do {
                let client = try EtcdClient(endpoints: cluster.clientURLs, httpClient: httpClient)
                let counter = LockedBox(0)
                try await body {
                    let index = counter.update { value -> Int in
                        value += 1
                        return value
                    }
                    return EtcdCoordinatorStore(client: client, prefix: "/model\(index)/", logger: Logger(label: "model"))
                }
            } catch {
                try? await httpClient.shutdown()
                throw error
            }
            try await httpClient.shutdown()
        }
    }

    /// The event log alone proves no two grants of a symbol overlapped: each grant's lifetime
    /// is [grant ts, release or revoke ts, or grant_expired expiry], and grants left open by a
    /// restart end at the latest when the next coordinator_started's quiet period ends.
    @Test func eventLogRebuildsNonOverlappingLifetimes() async throws {
        let harness = try await Harness()
        var generator = SplitMix64(seed: 7)
        let steps = (0..<400).map { _ in Step(code: Int(generator.next() % 100_000)) }
        try await run(steps, harness: harness)
        _ = try await checkLifetimes(harness)
    }

    /// Death notices in the model, scripted so that dying nodes hold grants: each step's checks
    /// apply (a notice revokes exactly the grants the dead process held; the freed symbols are
    /// then granted to their new owners at once, on a clock that has not moved; a late heartbeat
    /// of the dead process is refused and changes nothing), and the log still proves no overlap.
    @Test func deathNoticesFreeSymbolsAtOnce() async throws {
        let harness = try await Harness()
        let acquireAll = Self.nodes.flatMap { node in Self.symbols.map { Step.acquire(node, $0) } }
        var steps: [Step] = Self.nodes.map { .heartbeat($0) } + acquireAll
        steps += [.die("n1")] + acquireAll + [.lateHeartbeat("n1"), .heartbeat("n1"), .advance(100)] + acquireAll
        steps += [.die("n2"), .die("n3")] + acquireAll + [.lateHeartbeat("n2"), .restart, .lateHeartbeat("n3"), .advance(1_500)] + acquireAll
        try await run(steps, harness: harness)
        let events = try await checkLifetimes(harness)
        #expect(events.filter { $0.kind == "death" }.map(\.node) == ["n1", "n2", "n3"])
        #expect(events.filter { $0.kind == "revoke" }.count >= 3, "the dying nodes held grants")
    }

    /// Checks, from the harness's event log alone, that no two grants of a symbol overlapped and
    /// tokens only rose: the same invariant `mmctl check` applies to a live cluster
    /// (`Invariants.grantsNeverOverlap`, which also understands restarts and re-adoption).
    func checkLifetimes(_ harness: Harness, requireGrants: Bool = true) async throws -> [ClusterEvent] {
        harness.clock.advance(byMs: 5_000)
        await harness.engine.sweep()
        let events = try await harness.engine.events(after: 0, limit: 1_000, waitMs: 0).events
        #expect(events.map(\.seq) == Array(1...Int64(events.count)), "gap-free seqs")
        let result = Invariants.grantsNeverOverlap(events: events)
        #expect(result.held, "\(result.summary): \(result.offending)")
        if requireGrants { #expect((result.counts["grants"] ?? 0) > 5, "the run should have produced grants to check") }
        return events
    }
}
