import Foundation
import MMCore
import Testing

/// The pure join of ClusterSnapshotBuilder: what the snapshot says when services answer,
/// and when some do not.
@Suite struct ClusterSnapshotBuilderTests {
    let config = ClusterConfig.defaults
    let now: EpochMs = 1_700_000_010_000

    func down(_ url: String) -> ClientError { .unreachable(TransportError(url: url, reason: "connection refused")) }

    func inputs(allDown: Bool = false) -> ClusterSnapshotBuilder.Inputs {
        if allDown {
            return .init(
                processes: .failure(down("sup")), supervisorEvents: .failure(down("sup")), members: .failure(down("c")),
                assignments: .failure(down("c")), authority: .failure(down("c")), coordinatorEvents: .failure(down("c")),
                prices: .failure(down("x")), quotes: .failure(down("x")), fills: .failure(down("x")), positions: .failure(down("s")))
        }
        let supervisor = SupervisorInfo(pid: 10, uptimeMs: 5_000, startedAtMs: now - 5_000, phase: "running")
        let processes = [
            ProcessStatus(name: "gui", role: "gui", pid: 15, state: .running, restarts: 0, uptimeMs: 1, port: 7404, lastExit: nil),
            ProcessStatus(name: "n1", role: "node", pid: 14, state: .backoff, restarts: 2, uptimeMs: nil, port: 7411, lastExit: ProcessExit(code: nil, signal: 9, atMs: now - 100)),
            ProcessStatus(name: "coordinator", role: "coordinator", pid: 11, state: .running, restarts: 0, uptimeMs: 1, port: 7401, lastExit: nil),
        ]
        let fills = (1...30).map { seq in
            Fill(fillId: "f\(seq)", seq: Int64(seq), symbol: "ACME", side: .buy, price: 10_000, qty: 1, makerOrderId: "m", takerOrderId: "t", node: "n1", fencingToken: 1, tsMs: now - Int64(100 - seq))
        }
        return .init(
            processes: .success(ProcessList(supervisor: supervisor, processes: processes)),
            supervisorEvents: .success([ClusterEvent(seq: 1, tsMs: now - 50, kind: "exit", node: "n1", detail: "n1 was killed")]),
            members: .success([
                NodePresence(node: "n10", address: "", joinedAtMs: 0, lastHeartbeatMs: 0, expiresAtMs: now + 1_000, expiresInMs: 1_000, status: .alive),
                NodePresence(node: "n2", address: "", joinedAtMs: 0, lastHeartbeatMs: 0, expiresAtMs: now + 1_500, expiresInMs: 1_500, status: .alive),
            ]),
            assignments: .success(AssignmentTable(version: 7, symbols: ["ACME": "n2", "BOLT": "n10"])),
            authority: .success(AuthorityList(authority: [
                AuthorityStatus(symbol: "ACME", assignedTo: "n2", node: "n2", fencingToken: 4, expiresAtMs: now + 900, expiresInMs: 900),
                AuthorityStatus(symbol: "BOLT", assignedTo: "n10", node: "n1", fencingToken: 3, expiresAtMs: now - 10, expiresInMs: 0),
            ], quietForMs: 0)),
            coordinatorEvents: .success([
                ClusterEvent(seq: 8, tsMs: now - 40, kind: "grant", symbol: "ACME", node: "n2", fencingToken: 4, detail: "granted"),
                ClusterEvent(seq: 7, tsMs: now - 60, kind: "expire", node: "n1", detail: "expired"),
            ]),
            prices: .success([ReferencePrice(symbol: "ACME", price: 10_010, tickIndex: 3, tsMs: now), ReferencePrice(symbol: "BOLT", price: 2_500, tickIndex: 3, tsMs: now)]),
            quotes: .success([Quote(symbol: "ACME", node: "n2", fencingToken: 4, bidPrice: 10_008, bidQty: 5, askPrice: nil, askQty: 0, updatedAtMs: now - 5)]),
            fills: .success(fills),
            positions: .success(PositionsView(version: 30, positions: [
                Position(symbol: "ACME", netQty: 30, avgPrice: 10_000, openCost: 300_000, realizedPnl: 120, fillCount: 30, lastFillSeq: 30, version: 30),
                Position(symbol: "BOLT", netQty: -2, avgPrice: 2_510, openCost: -5_020, realizedPnl: -7, fillCount: 4, lastFillSeq: 9, version: 9),
            ])))
    }

    @Test func joinsEveryServiceIntoOneView() throws {
        let snapshot = ClusterSnapshotBuilder.assemble(config: config, nowMs: now, inputs: inputs())
        #expect(snapshot.schemaVersion == 1)
        #expect(snapshot.takenAtMs == now)
        #expect(snapshot.errors.isEmpty)
        #expect(snapshot.supervisor?.pid == 10)
        // Start order, not arrival order.
        #expect(snapshot.processes.map(\.name) == ["coordinator", "n1", "gui"])
        // n2 before n10: node ids sort numerically.
        #expect(snapshot.members.map(\.node) == ["n2", "n10"])
        #expect(snapshot.assignments?.version == 7)
        #expect(snapshot.symbols.map(\.symbol) == config.symbolNames)

        let acme = try #require(snapshot.symbols.first { $0.symbol == "ACME" })
        #expect(acme.referencePrice == 10_010)
        #expect(acme.assignedTo == "n2")
        #expect(acme.authority == ClusterSnapshot.Authority(node: "n2", fencingToken: 4, expiresInMs: 900))
        #expect(acme.quote?.bid == 10_008 && acme.quote?.ask == nil)
        // 30 lots at 10010 against an open cost of 300000.
        #expect(acme.position?.unrealizedPnl == 300)
        #expect(acme.position?.realizedPnl == 120)

        let bolt = try #require(snapshot.symbols.first { $0.symbol == "BOLT" })
        #expect(bolt.authority == nil, "an expired grant is nobody's authority")
        #expect(bolt.position?.unrealizedPnl == Int64(20)) // 2500 × −2 + 5020

        let crux = try #require(snapshot.symbols.first { $0.symbol == "CRUX" })
        #expect(crux.referencePrice == nil && crux.position == nil && crux.quote == nil)

        #expect(snapshot.totals == ClusterSnapshot.Totals(realizedPnl: 113, unrealizedPnl: 300 + 20, fillCount: 34))
    }

    @Test func recentFillsAndEventsAreNewestFirstAndBounded() {
        let snapshot = ClusterSnapshotBuilder.assemble(config: config, nowMs: now, inputs: inputs())
        #expect(snapshot.recentFills.count == ClusterSnapshotBuilder.recentFillLimit)
        #expect(snapshot.recentFills.first?.seq == 30)
        #expect(snapshot.recentFills.map(\.seq) == Array((11...30).reversed()).map(Int64.init))
        #expect(snapshot.recentEvents.map(\.kind) == ["grant", "exit", "expire"])
    }

    @Test func servicesThatDoNotAnswerAreListedAndTheRestStillRenders() {
        var partial = inputs()
        partial.prices = .failure(down("http://127.0.0.1:7403/v1/prices"))
        partial.quotes = .failure(down("http://127.0.0.1:7403/v1/quotes"))
        partial.fills = .failure(down("http://127.0.0.1:7403/v1/fills"))
        let snapshot = ClusterSnapshotBuilder.assemble(config: config, nowMs: now, inputs: partial)
        #expect(Set(snapshot.errors.map(\.service)) == ["exchange"])
        #expect(snapshot.errors.count == 3)
        #expect(snapshot.errors.allSatisfy { $0.error.contains("connection refused") })
        #expect(snapshot.symbols.allSatisfy { $0.referencePrice == nil && $0.quote == nil })
        #expect(snapshot.symbols.first?.position?.unrealizedPnl == nil, "no price, no mark-to-market")
        #expect(snapshot.symbols.first?.authority?.node == "n2", "the coordinator still answered")
        #expect(snapshot.recentFills.isEmpty)
        #expect(snapshot.totals.realizedPnl == 113 && snapshot.totals.unrealizedPnl == 0)
    }

    @Test func everythingDownStillGivesAValidSnapshot() throws {
        let snapshot = ClusterSnapshotBuilder.assemble(config: config, nowMs: now, inputs: inputs(allDown: true))
        #expect(snapshot.supervisor == nil)
        #expect(snapshot.processes.isEmpty)
        #expect(Set(snapshot.errors.map(\.service)) == ["supervisor", "coordinator", "exchange", "state"])
        #expect(snapshot.symbols.count == config.symbols.count)
        // Encodes to the documented snake_case keys.
        let json = try JSONSerialization.jsonObject(with: MMJSON.encode(snapshot)) as? [String: Any]
        #expect(Set(json?.keys.map { $0 } ?? []) == ["schema_version", "taken_at_ms", "processes", "members", "symbols", "totals", "recent_fills", "recent_events", "errors", "hosts", "warnings"])
    }
}
