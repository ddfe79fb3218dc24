import Foundation
import MMCore
import MMServiceKit
import MMTestSupport
import Synchronization
import Testing

/// Real `mmd` processes: coordinator, trading state, exchange and one or two nodes, with short
/// TTLs so failover happens in about a second.
@Suite(.serialized) struct NodeProcessTests {
    /// Short leases; the exchange's external flow crosses the quotes often.
    static let busy: [String: String] = [
        "coordinator.grant_ttl_ms": "1000", "coordinator.presence_ttl_ms": "1000",
        "node.renew_interval_ms": "300", "node.heartbeat_interval_ms": "250", "node.safety_margin_ms": "100",
        "node.deadman_timeout_ms": "1000", "node.refresh_interval_ms": "1000",
        "flow.interval_ms": "50", "flow.cross_pct": "60",
    ]
    /// The same, but nothing moves: one price tick per 10 minutes and no crossing flow, so
    /// only the refresh timer sends quotes.
    static let quiet = busy.merging(["exchange.price_interval_ms": "600000", "flow.cross_pct": "0", "flow.interval_ms": "1000"]) { $1 }

    /// A running cluster whose processes are all stopped when the test body returns or throws.
    final class Running: Sendable {
        let cluster: TestCluster
        private let processes = Mutex<[String: MMDProcess]>([:])

        init(_ label: String, overrides: [String: String]) throws {
            cluster = try TestCluster(label, overrides: overrides)
        }

        @discardableResult
        func start(_ process: ClusterProcess) async throws -> MMDProcess {
            let running = try await cluster.start(process)
            processes.withLock { $0[process.name] = running }
            return running
        }

        func process(_ name: String) -> MMDProcess? { processes.withLock { $0[name] } }

        func stopAll() async {
            let all = processes.withLock { $0.values.map { $0 } }
            for process in all { await process.stop(grace: .seconds(5)) }
            cluster.removeData()
        }

        func exchange() async throws -> ExchangeClient { ExchangeClient(try await cluster.endpoint(.exchange, as: .observer)) }
        func coordinator() async throws -> CoordinatorClient { CoordinatorClient(try await cluster.endpoint(.coordinator, as: .observer)) }
        func state() async throws -> TradingStateClient { TradingStateClient(try await cluster.endpoint(.state, as: .observer)) }
        func node(_ index: Int) async throws -> NodeClient { NodeClient(try await cluster.endpoint(.node(index), as: .observer)) }

        /// The book's quotes by symbol.
        func book() async throws -> [String: Quote] {
            Dictionary(uniqueKeysWithValues: try await exchange().quotes().map { ($0.symbol, $0) })
        }

        /// The coordinator's current holder and token by symbol (live grants only).
        func holders() async throws -> [String: (node: String, token: Int64)] {
            var result: [String: (node: String, token: Int64)] = [:]
            for status in try await coordinator().authority().authority {
                if let node = status.node { result[status.symbol] = (node, status.fencingToken) }
            }
            return result
        }
    }

    static func withCluster(_ label: String, overrides: [String: String], nodes: [Int] = [1], _ body: (Running) async throws -> Void) async throws {
        let running = try Running(label, overrides: overrides)
        do {
            try await running.start(.coordinator)
            try await running.start(.state)
            try await running.start(.exchange)
            for index in nodes { try await running.start(.node(index)) }
            try await body(running)
        } catch {
            for name in ["n1", "n2"] {
                if let process = running.process(name) { print("--- \(name) log tail ---\n\(process.logTail(lines: 40))") }
            }
            await running.stopAll()
            throw error
        }
        await running.stopAll()
    }

    static let symbols = ClusterConfig.defaults.symbolNames.sorted()

    /// The most recently changed position with a fill, once one reaches trading state.
    static func firstFilledPosition(_ state: TradingStateClient) async -> Position? {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if let positions = try? await state.positions().positions,
               let filled = positions.filter({ $0.fillCount > 0 }).max(by: { $0.version < $1.version }) {
                return filled
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    /// Every symbol quoted exactly once, each by the coordinator's current holder with its
    /// current token.
    static func everySymbolQuotedByItsHolder(_ running: Running) async -> Bool {
        guard let book = try? await running.book(), let holders = try? await running.holders() else { return false }
        guard book.keys.sorted() == symbols, holders.keys.sorted() == symbols else { return false }
        return symbols.allSatisfy { symbol in
            guard let quote = book[symbol], let holder = holders[symbol] else { return false }
            return quote.node == holder.node && quote.fencingToken == holder.token && (quote.bidPrice != nil || quote.askPrice != nil)
        }
    }

    // MARK: Tests

    @Test func quotesEverySymbolOnceAndReplacesAfterFills() async throws {
        try await Self.withCluster("node-busy", overrides: Self.busy) { running in
            let allQuoted = await eventually(timeout: .seconds(10)) { await Self.everySymbolQuotedByItsHolder(running) }
            #expect(allQuoted)
            let node = try await running.node(1)

            // Wait for fills to reach trading state, then for the node to have quoted on them.
            let state = try await running.state()
            let filled = await Self.firstFilledPosition(state)
            let position = try #require(filled, "no fill reached trading state: the flow never crossed the quotes")
            let replaced = await eventually(timeout: .seconds(5)) {
                guard let status = try? await node.status() else { return false }
                return status.quotes.contains { $0.symbol == position.symbol && $0.positionVersion >= position.version }
                    && (status.counters.quotesByReason["fill"] ?? 0) > 0
            }
            #expect(replaced, "the node never re-quoted \(position.symbol) after fill seq \(position.lastFillSeq)")

            // The book's quote for that symbol was replaced after the fill happened.
            let fills = try await running.exchange().fills(after: position.lastFillSeq - 1, limit: 1, waitMs: 0).fills
            let fill = try #require(fills.first)
            let bookUpdatedAfterFill = await eventually(timeout: .seconds(5)) {
                ((try? await running.book())?[fill.symbol]?.updatedAtMs ?? 0) >= fill.tsMs
            }
            #expect(bookUpdatedAfterFill)

            let status = try await node.status()
            #expect(status.assigned == Self.symbols)
            #expect(status.grants.map(\.symbol) == Self.symbols)
            #expect(status.grants.allSatisfy { $0.expiresInMs > 0 && $0.expiresInMs <= 900 })
            #expect(status.counters.rejections.isEmpty, "rejections: \(status.counters.rejections)")
            // Nothing accepted from a superseded token, ever.
            #expect(try await running.exchange().stats().staleAccepted == 0)
        }
    }

    @Test func refreshesAnUnchangedQuoteAndShutsDownCleanlyOnSIGTERM() async throws {
        try await Self.withCluster("node-quiet", overrides: Self.quiet) { running in
            let allQuoted = await eventually(timeout: .seconds(10)) { await Self.everySymbolQuotedByItsHolder(running) }
            #expect(allQuoted)
            let first = try await running.book()
            // Nothing changes, yet every quote is re-sent within the 1 s refresh interval.
            let refreshed = await eventually(timeout: .seconds(3)) {
                guard let now = try? await running.book() else { return false }
                return Self.symbols.allSatisfy { (now[$0]?.updatedAtMs ?? 0) > (first[$0]?.updatedAtMs ?? .max) }
            }
            #expect(refreshed)
            let status = try await running.node(1).status()
            #expect((status.counters.quotesByReason["timer"] ?? 0) >= Self.symbols.count)
            #expect(status.counters.quotesByReason["price"] == nil)
            #expect(status.counters.quotesByReason["fill"] == nil)

            // SIGTERM: quotes cancelled, grants released, the node leaves, exit 0.
            let node = try #require(running.process("n1"))
            node.signal(SIGTERM)
            await node.waitForExit(timeout: .seconds(10))
            #expect(node.terminationStatus == 0)
            #expect(try await running.book().isEmpty)
            let members = try await running.coordinator().members()
            #expect(members.first { $0.node == "n1" }?.status == .left)
            let events = try await running.coordinator().events(after: 0, limit: 1_000).events.filter { $0.node == "n1" }
            let releases = events.filter { $0.kind == "release" }
            #expect(Set(releases.compactMap(\.symbol)) == Set(Self.symbols))
            let leave = try #require(events.firstIndex { $0.kind == "leave" })
            #expect(events.lastIndex { $0.kind == "release" }! < leave)
        }
    }

    @Test func aReassignedSymbolMovesToTheNewHolder() async throws {
        try await Self.withCluster("node-reassign", overrides: Self.quiet) { running in
            let allQuoted = await eventually(timeout: .seconds(10)) { await Self.everySymbolQuotedByItsHolder(running) }
            #expect(allQuoted)
            let before = try await running.holders()
            try await running.start(.node(2))
            // Rendezvous hashing moves some symbols to n2; n1 cancels and releases them, n2 takes over.
            let split = await eventually(timeout: .seconds(10)) {
                guard await Self.everySymbolQuotedByItsHolder(running), let holders = try? await running.holders() else { return false }
                return holders.values.contains { $0.node == "n2" } && holders.values.contains { $0.node == "n1" }
            }
            #expect(split)
            let holders = try await running.holders()
            let moved = holders.filter { $0.value.node == "n2" }.map(\.key).sorted()
            for symbol in moved {
                #expect(holders[symbol]!.token > before[symbol]!.token)
            }
            let n1 = try await running.node(1).status()
            #expect(Set(n1.grants.map(\.symbol)).isDisjoint(with: moved))
            #expect(Set(n1.quotes.map(\.symbol)).isDisjoint(with: moved))
            #expect((n1.counters.lossesByReason["unassigned"] ?? 0) == Int64(moved.count))
            let n2 = try await running.node(2).status()
            #expect(n2.grants.map(\.symbol) == moved)
            #expect(try await running.exchange().stats().staleAccepted == 0)
        }
    }

    /// A graceful leave hands every symbol over through release and leave, never by waiting out
    /// a TTL: with grant and presence TTLs of 30 s, the survivor must quote the leaver's symbols
    /// long before either could lapse. (A heartbeat that reached the coordinator after the leave
    /// once re-registered the leaver and held its symbols for a presence TTL.)
    @Test func aGracefulLeaveHandsOverWithoutWaitingOutATTL() async throws {
        let longLeases = Self.quiet.merging([
            "coordinator.grant_ttl_ms": "30000", "coordinator.presence_ttl_ms": "30000", "node.deadman_timeout_ms": "30000",
        ]) { $1 }
        try await Self.withCluster("node-handover", overrides: longLeases, nodes: [1, 2]) { running in
            let split = await eventually(timeout: .seconds(15)) {
                guard await Self.everySymbolQuotedByItsHolder(running), let holders = try? await running.holders() else { return false }
                return Set(holders.values.map(\.node)) == ["n1", "n2"]
            }
            #expect(split)
            let before = try await running.holders()
            let leaving = before.filter { $0.value.node == "n2" }.map(\.key).sorted()
            #expect(!leaving.isEmpty)
            let node = try #require(running.process("n2"))
            node.signal(SIGTERM)
            await node.waitForExit(timeout: .seconds(10))
            #expect(node.terminationStatus == 0)
            let handedOver = await eventually(timeout: .seconds(10)) {
                guard await Self.everySymbolQuotedByItsHolder(running), let holders = try? await running.holders() else { return false }
                return leaving.allSatisfy { holders[$0]?.node == "n1" }
            }
            #expect(handedOver, "n1 must hold and quote \(leaving) well within the 30 s TTLs")
            let holders = try await running.holders()
            for symbol in leaving { #expect(holders[symbol]!.token > before[symbol]!.token) }
            let members = try await running.coordinator().members()
            #expect(members.first { $0.node == "n2" }?.status == .left, "n2 left and stayed gone")
        }
    }

    @Test func aPausedNodePastItsTTLIsSupersededAndNeverActsOnItsOldGrants() async throws {
        try await Self.withCluster("node-sigstop", overrides: Self.busy, nodes: [1, 2]) { running in
            let bothHold = await eventually(timeout: .seconds(10)) {
                guard await Self.everySymbolQuotedByItsHolder(running), let holders = try? await running.holders() else { return false }
                return holders.values.contains { $0.node == "n1" } && holders.values.contains { $0.node == "n2" }
            }
            #expect(bothHold)
            let before = try await running.holders()
            let pausedSymbols = before.filter { $0.value.node == "n1" }.map(\.key).sorted()
            let n1 = try #require(running.process("n1"))

            n1.signal(SIGSTOP)
            // n2 takes every symbol once n1's presence and grants lapse (TTL 1 s).
            let takenOver = await eventually(timeout: .seconds(8)) {
                guard await Self.everySymbolQuotedByItsHolder(running), let holders = try? await running.holders() else { return false }
                return holders.values.allSatisfy { $0.node == "n2" }
            }
            #expect(takenOver)
            let superseded = try await running.holders()
            for symbol in pausedSymbols {
                #expect(superseded[symbol]!.token > before[symbol]!.token)
            }
            n1.signal(SIGCONT)

            // Resumed, n1 finds its leases over on its own monotonic clock: it sends nothing
            // with its old grants; whatever it sends later carries fresh, higher tokens.
            try await Task.sleep(for: .milliseconds(1_500))
            let allQuoted = await eventually(timeout: .seconds(10)) { await Self.everySymbolQuotedByItsHolder(running) }
            #expect(allQuoted)
            let status = try await running.node(1).status()
            for quote in status.quotes {
                #expect(quote.fencingToken > (before[quote.symbol]?.token ?? 0))
            }
            #expect((status.counters.lossesByReason["local_expiry"] ?? 0) + (status.counters.lossesByReason["unassigned"] ?? 0) >= Int64(pausedSymbols.count))
            let stats = try await running.exchange().stats()
            #expect(stats.staleAccepted == 0)
            for symbol in Self.symbols {
                #expect((stats.highestTokens[symbol] ?? 0) >= (superseded[symbol]?.token ?? 0))
            }
        }
    }

    @Test func killedAndRestartedItResumesWithHigherTokens() async throws {
        try await Self.withCluster("node-kill9", overrides: Self.quiet) { running in
            let allQuoted = await eventually(timeout: .seconds(10)) { await Self.everySymbolQuotedByItsHolder(running) }
            #expect(allQuoted)
            let before = try await running.holders()
            let n1 = try #require(running.process("n1"))
            await n1.kill9()

            // The dead-man's switch pulls the orphaned quotes; the grants lapse.
            let pulledByDeadman = await eventually(timeout: .seconds(5)) { (try? await running.book())?.isEmpty == true }
            #expect(pulledByDeadman)
            let grantsLapsed = await eventually(timeout: .seconds(5)) { (try? await running.holders())?.isEmpty == true }
            #expect(grantsLapsed)

            try await running.start(.node(1))
            let requoted = await eventually(timeout: .seconds(10)) { await Self.everySymbolQuotedByItsHolder(running) }
            #expect(requoted)
            let after = try await running.holders()
            for symbol in Self.symbols {
                #expect(after[symbol]!.node == "n1")
                #expect(after[symbol]!.token > before[symbol]!.token)
            }
            let status = try await running.node(1).status()
            #expect(status.counters.quotesByReason["acquired"] == Int64(Self.symbols.count))
        }
    }
}
