import Foundation
import MMCore
import MMServiceKit
import MMTestSupport
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

        let signer = try GrantSigner(dataDirectory: cluster.dataDirectory)
        let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
        var grants: [String: AuthorityGrant] = [:]
        for symbol in Self.quotedSymbols {
            grants[symbol] = signer.sign(symbol: symbol, node: "n1", fencingToken: 1, grantedAtMs: nowMs, expiresAtMs: nowMs + 3_600_000)
        }
        let frozenGrants = grants
        let quoter = Task { await Self.quoteUntilCancelled(exchange: exchange, grants: frozenGrants) }

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
        for symbol in Self.quotedSymbols {
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
        await stateProcess.stop()
        await exchangeProcess.stop()
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
