import Foundation
import MMCore
import MMServiceKit
import MMTestSupport
import Synchronization
import Testing

/// Real `mmd exchange` + `mmd state`: the state service is killed with SIGKILL several times
/// while fills flow, and afterwards the ledger still holds every exchange fill exactly once.
@Suite("Trading state with a real exchange", .serialized)
struct ProcessTests {
    static let quotedSymbols = ["ACME", "BOLT"]

    /// Keeps a two-sided quote resting on each symbol as a node would (node token, signed
    /// grant), re-quoting so fills never run it dry, until cancelled.
    static func quoteUntilCancelled(exchange: ExchangeClient, grants: [String: AuthorityGrant]) async {
        while !Task.isCancelled {
            for symbol in quotedSymbols {
                guard let grant = grants[symbol], let reference = try? await exchange.price(symbol: symbol) else { continue }
                let request = QuoteRequest(node: "n1", grant: grant, bidPrice: reference.price - 1, bidQty: 20, askPrice: reference.price + 1, askQty: 20)
                _ = try? await exchange.replaceQuote(symbol: symbol, request)
            }
            try? await Task.sleep(for: .milliseconds(40))
        }
    }

    /// Every fill of a paged log, following cursors to the end.
    static func allExchangeFills(_ exchange: ExchangeClient) async throws -> [Fill] {
        var fills: [Fill] = []
        while true {
            let page = try await exchange.fills(after: fills.last?.seq ?? 0, limit: 1_000, waitMs: 0)
            if page.fills.isEmpty { return fills }
            fills += page.fills
        }
    }

    static func allLedgerFills(_ state: TradingStateClient) async throws -> [Fill] {
        var fills: [Fill] = []
        var after: Int64 = 0
        while true {
            let page = try await state.ledger(after: after, limit: 1_000)
            fills += page.fills
            guard let next = page.nextAfter else { return fills }
            after = next
        }
    }

    /// Signed one-hour grants for `quotedSymbols`, as the coordinator would issue them.
    static func grants(_ cluster: TestCluster) throws -> [String: AuthorityGrant] {
        let signer = try GrantSigner(dataDirectory: cluster.dataDirectory)
        let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
        var grants: [String: AuthorityGrant] = [:]
        for symbol in quotedSymbols {
            grants[symbol] = signer.sign(symbol: symbol, node: "n1", fencingToken: 1, grantedAtMs: nowMs, expiresAtMs: nowMs + 3_600_000)
        }
        return grants
    }

    /// Once the quotes are withdrawn and the exchange's log stops growing, the ledger (read
    /// through `state`) holds exactly that log, each fill once, and positions equal its fold.
    static func expectLedgerIsTheExchangeLog(exchange: ExchangeClient, state: TradingStateClient, grants: [String: AuthorityGrant]) async throws {
        for symbol in quotedSymbols {
            _ = try? await exchange.cancelQuote(symbol: symbol, FencedRequest(node: "n1", grant: grants[symbol]!))
        }
        // With no quote resting, flow makes no more fills: the log is final once it stops growing.
        var head: Int64 = -1
        let settled = await eventually(timeout: .seconds(10), every: .milliseconds(300)) {
            let now = (try? await exchange.fills(after: 0, limit: 1, waitMs: 0).headSeq) ?? -1
            defer { head = now }
            return now == head && now > 0
        }
        #expect(settled)
        let caughtUp = await eventually(timeout: .seconds(20)) {
            guard let status = try? await state.ingest() else { return false }
            return status.cursor == head && status.lag == 0
        }
        let finalStatus = try? await state.ingest()
        #expect(caughtUp, "state did not reach head \(head): \(String(describing: finalStatus))")

        let exchangeFills = try await Self.allExchangeFills(exchange)
        let ledgerFills = try await Self.allLedgerFills(state)
        #expect(exchangeFills.count == Int(head))
        #expect(exchangeFills.count > 45, "flow made too few fills to mean anything")
        #expect(Set(ledgerFills.map(\.fillId)).count == ledgerFills.count, "a fill id is in the ledger twice")
        #expect(ledgerFills == exchangeFills, "the ledger is not exactly the exchange's fill log")

        let positions = try await state.positions()
        #expect(positions.version == Int64(exchangeFills.count))
        let expected = PositionFold.fold(exchangeFills)
        for position in positions.positions {
            let reference = expected[position.symbol] ?? .flat(position.symbol)
            #expect(PositionFold.economicallyEqual(position, reference), "\(position) ≠ fold \(reference)")
        }
        #expect(positions.positions.map(\.fillCount).reduce(0, +) == Int64(exchangeFills.count))
    }

    @Test("kill -9 of the state service during flow loses no fill and counts none twice", arguments: LedgerBackend.allCases)
    func killNineDuringFlow(backend: LedgerBackend) async throws {
        let flow = ["flow.interval_ms": "20", "flow.cross_pct": "80"]
        switch backend {
        case .sqlite:
            try await killNineDuringFlow(overrides: flow)
        case .postgres:
            // The ledger on a real PostgreSQL the test starts: the killed process's open
            // transaction is rolled back by the server, its advisory locks released.
            try await withPostgresServer(label: "state-kill9") { server in
                try await killNineDuringFlow(overrides: flow.merging([
                    "state.backend": "postgres", "state.postgres.url": server.url, "state.postgres.password_file": server.passwordFile,
                ]) { $1 })
            }
        }
    }

    func killNineDuringFlow(overrides: [String: String]) async throws {
        let cluster = try TestCluster("state-kill9", overrides: overrides)
        defer { cluster.removeData() }
        let exchangeProcess = try await cluster.start(.exchange)
        var stateProcess = try await cluster.start(.state)
        defer {
            exchangeProcess.signal(SIGKILL)
            stateProcess.signal(SIGKILL)
        }
        let exchange = ExchangeClient(try await cluster.endpoint(.exchange, as: .node))
        let state = TradingStateClient(try await cluster.endpoint(.state, as: .observer))

        let grants = try Self.grants(cluster)
        let quoter = Task { await Self.quoteUntilCancelled(exchange: exchange, grants: grants) }

        // Three crashes, each after the ledger has moved on since the last restart.
        for round in 1...3 {
            let before = (try? await state.ingest().cursor) ?? 0
            let progressed = await eventually(timeout: .seconds(15)) {
                ((try? await state.ingest().cursor) ?? 0) >= before + 15
            }
            #expect(progressed, "round \(round): the ledger did not advance (cursor \(before)); state log:\n\(stateProcess.logTail())\nexchange log:\n\(exchangeProcess.logTail())")
            await stateProcess.kill9()
            try await Task.sleep(for: .milliseconds(150))
            stateProcess = try await cluster.start(.state)
        }

        quoter.cancel()
        await quoter.value
        try await Self.expectLedgerIsTheExchangeLog(exchange: exchange, state: state, grants: grants)
        await stateProcess.stop()
        await exchangeProcess.stop()
    }

    /// Two state replicas on one PostgreSQL ledger: kill -9 of the one that ingests. The other
    /// answers positions on every read throughout, takes the ingest over within 1 s (the
    /// killed session's advisory lock dies with its connection), and the ledger ends as the
    /// exchange's log, each fill once.
    @Test("kill -9 of the ingesting replica: the other serves reads throughout and ingests within 1 s")
    func ingestingReplicaKilled() async throws {
        try await withPostgresServer(label: "state-replicas") { server in
            let cluster = try TestCluster("state-replicas", overrides: [
                "flow.interval_ms": "20", "flow.cross_pct": "80", "state.backend": "postgres", "state.replicas": "2",
                "state.postgres.url": server.url, "state.postgres.password_file": server.passwordFile,
            ])
            defer { cluster.removeData() }
            let exchangeProcess = try await cluster.start(.exchange)
            var replicas = [try await cluster.start(.state), try await cluster.start(.stateReplica(2))]
            defer {
                exchangeProcess.signal(SIGKILL)
                for replica in replicas { replica.signal(SIGKILL) }
            }
            let clients = [
                TradingStateClient(try await cluster.endpoint(.state, as: .observer)),
                TradingStateClient(try await cluster.endpoint(.stateReplica(2), as: .observer)),
            ]
            let exchange = ExchangeClient(try await cluster.endpoint(.exchange, as: .node))
            let grants = try Self.grants(cluster)
            let quoter = Task { await Self.quoteUntilCancelled(exchange: exchange, grants: grants) }

            // Exactly one ingests, and it has recorded some flow.
            var ingestingIndex: Int?
            let settled = await eventually(timeout: .seconds(15)) {
                var leaders: [Int] = []
                for (index, client) in clients.enumerated() where (try? await client.ingest())?.ingesting == true { leaders.append(index) }
                guard leaders.count == 1, let cursor = try? await clients[leaders[0]].ingest().cursor, cursor >= 15 else { return false }
                ingestingIndex = leaders[0]
                return true
            }
            #expect(settled, "no single ingesting replica with flow recorded; logs:\n\(replicas.map { $0.logTail() })")
            let killed = try #require(ingestingIndex)
            let survivor = clients[1 - killed]

            // Reads on the survivor every 10 ms from before the kill until the takeover.
            let failedReads = Mutex<[String]>([])
            // Stopped by a flag, not by cancellation: a cancelled read would count as a failed one.
            let keepReading = Mutex(true)
            let reader = Task {
                var reads = 0
                while keepReading.withLock({ $0 }) {
                    do { _ = try await survivor.positions() } catch { failedReads.withLock { $0.append("\(error)") } }
                    reads += 1
                    try? await Task.sleep(for: .milliseconds(10))
                }
                return reads
            }
            try await Task.sleep(for: .milliseconds(100))
            let cursorAtKill = (try? await survivor.ingest().cursor) ?? 0
            await replicas[killed].kill9()
            let killedAt = ContinuousClock.now
            let tookOver = await eventually(timeout: .seconds(5), every: .milliseconds(10)) {
                guard let status = try? await survivor.ingest() else { return false }
                return status.ingesting == true && status.cursor > cursorAtKill
            }
            let takeover = ContinuousClock.now - killedAt
            print("state replica takeover: ingesting and cursor past \(cursorAtKill) \(takeover) after the kill -9")
            #expect(tookOver, "the surviving replica never ingested; its log:\n\(replicas[1 - killed].logTail())")
            #expect(takeover < .seconds(1), "ingest resumed only \(takeover) after the kill")
            try await Task.sleep(for: .milliseconds(200))
            keepReading.withLock { $0 = false }
            let reads = await reader.value
            #expect(reads > 10)
            #expect(failedReads.withLock { $0 }.isEmpty, "reads failed on the surviving replica: \(failedReads.withLock { $0 })")

            // The killed replica comes back as a follower; the ledger is the exchange's log.
            replicas[killed] = try await cluster.start(killed == 0 ? .state : .stateReplica(2))
            #expect(await eventually(timeout: .seconds(5)) { (try? await clients[killed].ingest())?.ingesting == false })
            quoter.cancel()
            await quoter.value
            try await Self.expectLedgerIsTheExchangeLog(exchange: exchange, state: survivor, grants: grants)
            let restartedView = try await clients[killed].positions()
            let survivorView = try await survivor.positions()
            #expect(restartedView == survivorView, "the two replicas disagree on positions")
            for replica in replicas { await replica.stop() }
            await exchangeProcess.stop()
        }
    }

    @Test("the state service alone starts, is ready, reports the unreachable exchange and stops on SIGTERM")
    func standaloneWithoutExchange() async throws {
        let cluster = try TestCluster("state-alone")
        defer { cluster.removeData() }
        let process = try await cluster.start(.state)
        let state = TradingStateClient(try await cluster.endpoint(.state, as: .observer))
        let reported = await eventually(timeout: .seconds(10)) {
            (try? await state.ingest().lastError)?.contains("unavailable") == true
        }
        #expect(reported)
        let view = try await state.positions()
        #expect(view.positions.count == ClusterConfig.defaults.symbols.count)
        await process.stop(grace: .seconds(10))
        #expect(process.terminationStatus == 0)
    }
}
