import Foundation
import Hummingbird
import MMCore
import MMServiceKit
@testable import OperatorGUI

/// Canned cluster views: every state the page must render distinctly.
enum Fixtures {
    static let t0: EpochMs = 1_700_000_000_000

    static func quote(_ node: String, token: Int64, bid: Ticks?, ask: Ticks?, qty: Lots = 5, at: EpochMs = t0) -> ClusterSnapshot.QuoteView {
        ClusterSnapshot.QuoteView(node: node, fencingToken: token, bid: bid, bidQty: bid == nil ? 0 : qty, ask: ask, askQty: ask == nil ? 0 : qty, updatedAtMs: at)
    }

    /// ACME held and quoted by n1; BOLT held by n2 but not quoted; EVOK (tick 0.05) with no
    /// holder and a leftover quote from n3, whose presence expired.
    static func snapshot(takenAt: EpochMs = t0, acmeQuote: ClusterSnapshot.QuoteView? = quote("n1", token: 7, bid: 10_003, ask: 10_007), errors: [ClusterSnapshot.ServiceError] = []) -> ClusterSnapshot {
        ClusterSnapshot(
            takenAtMs: takenAt,
            supervisor: SupervisorInfo(pid: 4242, uptimeMs: 125_000, startedAtMs: takenAt - 125_000),
            processes: [
                ProcessStatus(name: "coordinator", role: "coordinator", pid: 101, state: .running, restarts: 0, uptimeMs: 120_000, port: 7401, lastExit: nil),
                ProcessStatus(name: "n3", role: "node", pid: nil, state: .backoff, restarts: 2, uptimeMs: nil, port: 7413, lastExit: ProcessExit(code: nil, signal: 9, atMs: takenAt - 2_000)),
            ],
            members: [
                .init(node: "n1", status: .alive, expiresInMs: 2_400),
                .init(node: "n2", status: .alive, expiresInMs: 1_900),
                .init(node: "n3", status: .expired, expiresInMs: 0),
            ],
            assignments: .init(version: 12, symbols: ["ACME": "n1", "BOLT": "n2", "EVOK": "n1"]),
            symbols: [
                .init(symbol: "ACME", tickSize: "0.01", referencePrice: 10_005, assignedTo: "n1",
                      authority: .init(node: "n1", fencingToken: 7, expiresInMs: 2_600), quote: acmeQuote,
                      position: .init(netQty: -3, avgPrice: 10_010, realizedPnl: 1_234, unrealizedPnl: 15, fillCount: 9)),
                .init(symbol: "BOLT", tickSize: "0.01", referencePrice: 2_500, assignedTo: "n2",
                      authority: .init(node: "n2", fencingToken: 3, expiresInMs: 1_100), quote: nil,
                      position: nil),
                .init(symbol: "EVOK", tickSize: "0.05", referencePrice: 801, assignedTo: "n1",
                      authority: nil, quote: quote("n3", token: 4, bid: 799, ask: nil, qty: 2),
                      position: .init(netQty: 4, avgPrice: 800, realizedPnl: -10, unrealizedPnl: 4, fillCount: 2)),
            ],
            totals: .init(realizedPnl: 1_224, unrealizedPnl: 19, fillCount: 11),
            recentFills: [
                Fill(fillId: "f-11", seq: 11, symbol: "ACME", side: .sell, price: 10_007, qty: 1, makerOrderId: "q-1", takerOrderId: "x-9", node: "n1", fencingToken: 7, tsMs: takenAt - 500),
                Fill(fillId: "f-10", seq: 10, symbol: "EVOK", side: .buy, price: 799, qty: 2, makerOrderId: "q-2", takerOrderId: "x-8", node: "n3", fencingToken: 4, tsMs: takenAt - 9_000),
            ],
            recentEvents: [
                // Fixed times, not relative to takenAt: the same events seen by later snapshots.
                ClusterEvent(seq: 40, tsMs: t0 - 1_000, kind: "expire", node: "n3", detail: "no heartbeat within 3000 ms"),
                ClusterEvent(seq: 39, tsMs: t0 - 1_500, kind: "rebalance", detail: "version 12"),
                ClusterEvent(seq: 7, tsMs: t0 - 2_000, kind: "exit", node: "n3", detail: "killed by signal 9"),
            ],
            errors: errors)
    }

    static let config: ClusterConfig = {
        var config = ClusterConfig.defaults
        config.listen.host = "127.0.0.1"
        return config
    }()

    static func environment(clock: any EpochClock = ManualClock(startMs: t0), port: Int = 0) throws -> ServiceEnvironment {
        let directory = DataDirectory(NSTemporaryDirectory() + "mm-gui-unit-\(UUID().uuidString.prefix(8))")
        var tokens: [Role: String] = [:]
        for role in Role.sharedTokenRoles { tokens[role] = "token-\(role.rawValue)" }
        return ServiceEnvironment(process: .gui, role: .observer, config: config, dataDirectory: directory, tokens: RoleTokens(tokens: tokens), clock: clock, portOverride: port)
    }

    /// A GUI application over a canned source, without the periodic refresher so each test
    /// decides exactly when a refresh happens.
    struct Harness {
        let source: CannedSnapshotSource
        let store: DashboardStore
        let refresher: SnapshotRefresher
        let clock: ManualClock
        let environment: ServiceEnvironment

        init(_ snapshot: ClusterSnapshot = Fixtures.snapshot(), quoteHistory: Int = 200) throws {
            clock = ManualClock(startMs: Fixtures.t0)
            environment = try Fixtures.environment(clock: clock)
            source = CannedSnapshotSource(snapshot)
            store = DashboardStore(facts: ClusterFacts(environment.config), refreshIntervalMs: 300, quoteHistory: quoteHistory)
            refresher = SnapshotRefresher(source: source, store: store, clock: clock, logger: environment.logger)
        }

        func application() -> some ApplicationProtocol {
            buildApplication(environment, router: buildGUIRouter(environment, store: store))
        }
    }
}

extension Data {
    var text: String { String(decoding: self, as: UTF8.self) }
}
