import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import MMCore
import MMServiceKit
import MMTestSupport
import ServiceLifecycle
import Testing

@testable import MarketMaker

/// The whole node — every loop as a Service in one ServiceGroup — over fake authorities, in
/// real (short) time: acquiring, quoting, renewing, the dead-man's switch, failover retries and
/// the order of a graceful shutdown.
@Suite struct NodeLifecycleTests {
    static func environment(_ directory: DataDirectory, tokens: RoleTokens) -> ServiceEnvironment {
        var config = ClusterConfig.defaults
        config.coordinator.grantTtlMs = 1_000
        config.coordinator.presenceTtlMs = 1_000
        config.node.heartbeatIntervalMs = 100
        config.node.renewIntervalMs = 100
        config.node.safetyMarginMs = 100
        config.node.deadmanTimeoutMs = 1_000
        config.node.refreshIntervalMs = 200
        config.exchange.priceIntervalMs = 20
        return ServiceEnvironment(process: .node(1), role: .node, config: config, dataDirectory: directory, tokens: tokens, clock: ManualClock())
    }

    static func makeNode(_ fake: FakeAuthorities, incarnation: String? = nil) throws -> (MarketMakerNode, RoleTokens) {
        let directory = TestPaths.temporaryDataDirectory("node-lifecycle")
        let tokens = try RoleTokens.generate(in: directory)
        let dependencies = NodeDependencies(presence: fake, authority: fake, assignments: fake, orders: fake, prices: fake, positions: fake)
        let node = MarketMakerNode(
            environment: environment(directory, tokens: tokens), dependencies: dependencies, time: SystemMonotonicTime(), incarnation: incarnation)
        return (node, tokens)
    }

    /// Every heartbeat names the process's incarnation (the one the supervisor passed, else a
    /// random one fixed for the process's life), so a death notice can end exactly this process.
    @Test func everyHeartbeatCarriesTheIncarnation() async throws {
        func heartbeatIncarnations(_ incarnation: String?) async throws -> [String?] {
            let fake = Self.flatFake(["ACME": "n1"])
            let (node, _) = try Self.makeNode(fake, incarnation: incarnation)
            let group = ServiceGroup(configuration: .init(services: node.services, logger: Logger(label: "test.node")))
            let running = Task { try await group.run() }
            #expect(await eventually(timeout: .seconds(5)) { fake.state.withLock { $0.heartbeatIncarnations.count } >= 3 })
            await group.triggerGracefulShutdown()
            try await running.value
            return fake.state.withLock { $0.heartbeatIncarnations }
        }
        let given = try await heartbeatIncarnations("sup-n1.7:3")
        #expect(Set(given) == ["sup-n1.7:3"])
        let first = try await heartbeatIncarnations(nil)
        let second = try await heartbeatIncarnations(nil)
        #expect(Set(first).count == 1, "one incarnation for the whole life of a process: \(first)")
        let generated = try #require(first.first ?? nil)
        #expect(generated.count == 16 && generated.allSatisfy(\.isHexDigit), "16 hex digits: \(generated)")
        #expect(Incarnation.isValid(generated))
        #expect(Set(second).count == 1)
        #expect(second.first != first.first, "each start gets its own incarnation")
    }

    static func flatFake(_ symbols: [String: String]) -> FakeAuthorities {
        let fake = FakeAuthorities(grantTtlMs: 1_000)
        fake.assign(symbols)
        for (index, symbol) in symbols.keys.sorted().enumerated() { fake.setPrice(symbol, 5_000 + Int64(index) * 100, tick: 1) }
        fake.update { $0.positions = PositionsView(version: 0, positions: symbols.keys.map { Position.flat($0) }) }
        return fake
    }

    /// DESIGN.md: no quote outlives its owner's authority by more than T. While renewals fail
    /// (the coordinator or its store unreachable) the node keeps arming its dead-man's switch
    /// only as long as a lease is still valid; once all have lapsed it stops, so the exchange
    /// pulls what it left resting. A new grant arms the switch again before the first quote.
    @Test func theDeadmanIsNotReArmedOnceEveryGrantHasLapsed() async throws {
        let fake = Self.flatFake(["ACME": "n1"])
        let (node, _) = try Self.makeNode(fake)
        let group = ServiceGroup(configuration: .init(services: node.services, logger: Logger(label: "test.node")))
        let running = Task { try await group.run() }
        #expect(await eventually(timeout: .seconds(5)) { fake.book["ACME"] != nil && fake.log.contains("deadman n1 1000") })

        fake.update { $0.authorityDown = true }
        #expect(await eventually(timeout: .seconds(3)) { await !node.state.holdsValidLease() }, "the lease lapses without renewals")
        // A round already under way may still arm once; after that, nothing for several rounds.
        try await Task.sleep(for: .milliseconds(250))
        let armedAfterLapse = fake.log.filter { $0.hasPrefix("deadman") }.count
        try await Task.sleep(for: .milliseconds(800))
        #expect(fake.log.filter { $0.hasPrefix("deadman") }.count == armedAfterLapse, "re-armed without any valid grant: \(fake.log.suffix(12))")
        #expect(fake.log.contains("renew refused: down"), "renewals were attempted meanwhile")

        let resumedAt = fake.log.count
        fake.update { $0.authorityDown = false }
        #expect(await eventually(timeout: .seconds(5)) { fake.log[resumedAt...].contains { $0.hasPrefix("replace ACME") } })
        let after = Array(fake.log[resumedAt...])
        let firstArm = try #require(after.firstIndex { $0.hasPrefix("deadman") })
        let firstQuote = try #require(after.firstIndex { $0.hasPrefix("replace ACME") })
        #expect(firstArm < firstQuote, "armed before quoting again: \(after)")
        await group.triggerGracefulShutdown()
        try await running.value
    }

    @Test func quotesRenewsArmsTheDeadmanAndShutsDownInOrder() async throws {
        let fake = Self.flatFake(["ACME": "n1", "BOLT": "n1", "CRUX": "n2"])
        let (node, _) = try Self.makeNode(fake)
        let group = ServiceGroup(configuration: .init(services: node.services, logger: Logger(label: "test.node")))
        let running = Task { try await group.run() }

        #expect(await eventually(timeout: .seconds(5)) { fake.book.keys.sorted() == ["ACME", "BOLT"] })
        #expect(await node.state.registered)
        // Only assigned symbols are acquired; CRUX belongs to n2.
        #expect(!fake.log.contains("acquire CRUX"))
        // Renewal rounds run and re-arm the dead-man's switch at the configured timeout.
        #expect(await eventually(timeout: .seconds(3)) { fake.log.contains { $0.hasPrefix("renew ") } && fake.log.contains("deadman n1 1000") })

        // A fill is answered with a replacement quote.
        let quotesBefore = fake.log.filter { $0.hasPrefix("replace ACME") }.count
        fake.fill("ACME", netDelta: 50)
        #expect(await eventually(timeout: .seconds(3)) { fake.book["ACME"]?.bidPrice == nil && fake.book["ACME"]?.askPrice != nil })
        #expect(fake.log.filter { $0.hasPrefix("replace ACME") }.count > quotesBefore)

        // Under load a grant can lapse locally before shutdown (the node then cancels and
        // releases that symbol on its own); the order rule is about the shutdown itself.
        let shutdownBegan = fake.log.count
        await group.triggerGracefulShutdown()
        try await running.value

        let log = Array(fake.log[shutdownBegan...])
        let firstCancel = try #require(log.firstIndex { $0.hasPrefix("cancel") })
        let lastCancel = try #require(log.lastIndex { $0.hasPrefix("cancel") })
        let firstRelease = try #require(log.firstIndex { $0.hasPrefix("release") })
        let leave = try #require(log.firstIndex(of: "leave n1"))
        #expect(Set(log.filter { $0.hasPrefix("cancel") }.map { String($0.split(separator: "#")[0]) }) == ["cancel ACME", "cancel BOLT"])
        #expect(lastCancel < firstRelease)
        #expect(firstRelease < leave)
        #expect(leave == log.count - 1, "nothing after leaving: \(log.suffix(from: leave))")
        // Nothing acquired, renewed or quoted once the shutdown began cancelling.
        #expect(!log[firstCancel...].contains { $0.hasPrefix("replace") || $0.hasPrefix("acquire") || $0.hasPrefix("renew") })
        #expect(fake.book.isEmpty)
    }

    @Test func retriesRefusedAcquiresQuicklyUntilGranted() async throws {
        let fake = Self.flatFake(["ACME": "n1"])
        fake.update {
            $0.acquireErrors["ACME"] = [
                FakeAuthorities.apiError(503, "startup_quiet_period", details: ["retry_after_ms": "50"]),
                FakeAuthorities.apiError(409, "held_by_other"),
                FakeAuthorities.apiError(409, "held_by_other"),
            ]
        }
        let (node, _) = try Self.makeNode(fake)
        let group = ServiceGroup(configuration: .init(services: node.services, logger: Logger(label: "test.node")))
        let running = Task { try await group.run() }
        let started = ContinuousClock.now
        #expect(await eventually(timeout: .seconds(15)) { fake.book["ACME"] != nil })
        // Three refusals, each retried (every ~150 ms; the pacing itself is tested with a
        // manual clock in the engine tests), then granted: never a TTL-long wait.
        _ = started
        #expect(fake.log.filter { $0 == "acquire ACME" }.count == 4)
        let refusals = await node.state.status().counters.acquireRefusals
        #expect(refusals == ["startup_quiet_period": 1, "held_by_other": 2])
        await group.triggerGracefulShutdown()
        try await running.value
    }

    /// An acquire the coordinator parks (the previous holder has not released yet) holds up no
    /// other symbol, and once granted late the lease is counted from a fresh renewal.
    @Test func aParkedAcquireBlocksNoOtherSymbol() async throws {
        let fake = Self.flatFake(["ACME": "n1", "BOLT": "n1"])
        fake.update { $0.parkedAcquires = ["ACME"] }
        let (node, _) = try Self.makeNode(fake)
        let group = ServiceGroup(configuration: .init(services: node.services, logger: Logger(label: "test.node")))
        let running = Task { try await group.run() }
        #expect(await eventually(timeout: .seconds(5)) { fake.book["BOLT"] != nil })
        try await Task.sleep(for: .milliseconds(300))
        #expect(fake.book["ACME"] == nil, "still parked")
        #expect(fake.log.filter { $0 == "acquire ACME parked" }.count == 1, "one parked request, not a retry loop")
        fake.update { $0.parkedAcquires = [] }
        #expect(await eventually(timeout: .seconds(5)) { fake.book["ACME"] != nil })
        #expect(fake.log.contains("renew one ACME#1"), "a late grant is renewed at once so its lease counts from now")
        await group.triggerGracefulShutdown()
        try await running.value
    }

    /// A heartbeat on the wire when shutdown begins is answered before the leave is sent: were
    /// it cut short, the coordinator could process it after the leave and register the node
    /// again for a whole presence TTL, holding its symbols from their next owner.
    @Test func leaveIsSentOnlyAfterTheLastHeartbeatIsAnswered() async throws {
        let fake = Self.flatFake(["ACME": "n1"])
        let (node, _) = try Self.makeNode(fake)
        let group = ServiceGroup(configuration: .init(services: node.services, logger: Logger(label: "test.node")))
        let running = Task { try await group.run() }
        #expect(await eventually(timeout: .seconds(5)) { fake.book["ACME"] != nil })
        let before = fake.log.filter { $0 == "heartbeat n1" }.count
        fake.update { $0.heartbeatDelayMs = 300 }
        // The second heartbeat from here started after the delay was set: shut down while it is
        // on the wire.
        #expect(await eventually(timeout: .seconds(3)) { fake.log.filter { $0 == "heartbeat n1" }.count >= before + 2 })
        await group.triggerGracefulShutdown()
        try await running.value
        try await Task.sleep(for: .milliseconds(400))  // a heartbeat cut short would land now
        let log = fake.log
        let leave = try #require(log.lastIndex(of: "leave n1"))
        let lastHeartbeat = try #require(log.lastIndex(of: "heartbeat n1"))
        let lastAnswer = try #require(log.lastIndex(of: "heartbeat n1 answered"))
        #expect(lastHeartbeat < lastAnswer && lastAnswer < leave, "\(log.suffix(8))")
    }

    @Test func whenRenewalsFailTheNodeStopsQuotingBeforeTheGrantCouldLapse() async throws {
        let fake = Self.flatFake(["ACME": "n1"])
        let (node, _) = try Self.makeNode(fake)
        let group = ServiceGroup(configuration: .init(services: node.services, logger: Logger(label: "test.node")))
        let running = Task { try await group.run() }
        #expect(await eventually(timeout: .seconds(5)) { fake.book["ACME"] != nil })
        fake.update { $0.refuseRenewal = ["ACME"] }
        #expect(await eventually(timeout: .seconds(3)) { fake.log.contains("release ACME#1") })
        let released = try #require(fake.log.firstIndex(of: "release ACME#1"))
        #expect(!fake.log[released...].contains { $0.hasPrefix("replace ACME#1") })
        await group.triggerGracefulShutdown()
        try await running.value
    }

    // MARK: HTTP

    @Test func statusAndReadinessOverHTTP() async throws {
        let fake = Self.flatFake(["ACME": "n1"])
        let (node, tokens) = try Self.makeNode(fake)
        let app = Application(router: node.router.router)
        let (state, time, logger) = (node.state, node.time, node.logger)
        let observer: HTTPFields = [.authorization: "Bearer \(tokens.token(for: .observer)!)"]
        try await app.test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
            }
            try await client.execute(uri: "/v1/status", method: .get) { response in
                #expect(response.status == .unauthorized)
            }
            // Register and hold ACME with one quote sent, as the loops would.
            await state.markRegistered()
            await state.applyAssignments(try await fake.assignments(afterVersion: nil, waitMs: 0))
            await state.installGrant(try await fake.acquire(symbol: "ACME", node: "n1"), requestSentAt: time.now())
            await state.applyPrices(try await fake.prices())
            await state.applyPositions(try await fake.positions(afterVersion: nil, waitMs: 0))
            await QuotingEngine(state: state, orders: fake, authority: fake, time: time, logger: logger).runRound()

            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/v1/status", method: .get, headers: observer) { response in
                #expect(response.status == .ok)
                let status = try MMJSON.decode(NodeStatus.self, from: Data(response.body.readableBytesView))
                #expect(status.node == "n1")
                #expect(status.registered)
                #expect(status.assigned == ["ACME"])
                #expect(status.grants.map(\.symbol) == ["ACME"])
                // Never more than TTL − safety margin; a loaded machine may already have used some of it up.
                #expect(status.grants.first.map { $0.expiresInMs <= 900 } == true)
                #expect(status.quotes.first?.reason == .acquired)
                #expect(status.quotes.first?.bidPrice == 4_998)
                #expect(status.counters.quotesSent == 1)
                let raw = String(decoding: response.body.readableBytesView, as: UTF8.self)
                #expect(raw.contains("\"expires_in_ms\""))
                #expect(raw.contains("\"quotes_by_reason\""))
            }
        }
    }
}
