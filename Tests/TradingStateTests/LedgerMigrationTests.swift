import Foundation
import MMCore
import MMServiceKit
import MMTestSupport
import Testing
@testable import TradingState

/// `mmd state migrate --to postgres`: a SQLite ledger copied into PostgreSQL, proven by count,
/// fill-log digest, positions and cursor; an altered row is caught; a non-empty destination
/// is refused.
@Suite(.postgresServer) struct LedgerMigrationTests {
    static func fill(_ seq: Int64) -> Fill {
        let symbols = ["ACME", "BOLT", "CRUX"]
        return Fill(
            fillId: "F\(seq)", seq: seq, symbol: symbols[Int(seq) % symbols.count], side: seq % 3 == 0 ? .sell : .buy,
            price: 10_000 + seq % 17, qty: 1 + seq % 4, makerOrderId: "Q\(seq % 5)", takerOrderId: "X\(seq)", node: "n1",
            fencingToken: 1, tsMs: 1_700_000_000_000 + seq)
    }

    /// 4,500 pulled fills (more than two pages) and 3 pushed ahead of the cursor.
    func filledSQLiteLedger(_ store: LedgerStore) async throws -> any LedgerRepository {
        let source = try GRDBLedgerRepository(path: store.file.path, symbols: testSymbols)
        var seq: Int64 = 0
        while seq < 4_500 {
            let batch = (seq + 1...min(seq + 700, 4_500)).map(Self.fill)
            let commit = try await source.ingest(batch, atMs: 1)
            #expect(commit.stoppedAt == nil)
            seq += Int64(batch.count)
        }
        _ = try await source.record([4_502, 4_503, 4_507].map(Self.fill), atMs: 2)
        return source
    }

    @Test func copiesEveryFillAndProvesIt() async throws {
        try await withLedgerStore(.postgres, label: "migrate") { store in
            let source = try await filledSQLiteLedger(store)
            let destination = try await store.postgresRepository()
            let report = try await LedgerMigration.copy(from: source, to: destination, atMs: 3)
            #expect(report.fills == 4_503 && report.cursor == 4_500)
            #expect(report.digest == (try await LedgerMigration.digest(of: source)).digest)
            #expect(try await destination.positions().positions.sorted { $0.symbol < $1.symbol }.map(\.netQty)
                == (try await source.positions().positions.sorted { $0.symbol < $1.symbol }.map(\.netQty)))
            // The copied ledger continues: the next pulled fill is 4,501.
            let next = try await destination.ingest([Self.fill(4_501)], atMs: 4)
            #expect(next.stoppedAt == nil && next.cursor == 4_501 && next.recorded == ["F4501"])
            // The pushed ones arrive again from the exchange's log: duplicates, counted once.
            let again = try await destination.ingest([4_502, 4_503].map(Self.fill), atMs: 5)
            #expect(again.duplicates == ["F4502", "F4503"] && again.cursor == 4_503)
            #expect(try await destination.cursorState().version == 4_504)
        }
    }

    @Test func anAlteredRowIsCaughtByTheDigest() async throws {
        try await withLedgerStore(.postgres, label: "migrate-altered") { store in
            let source = try await filledSQLiteLedger(store)
            let destination = try await store.postgresRepository()
            _ = try await LedgerMigration.copy(from: source, to: destination, atMs: 3)
            // Same count, same positions' net quantities? No matter: one field of one row.
            try await store.sql("UPDATE fills SET taker_order_id = 'tampered' WHERE seq = 1234;")
            do {
                _ = try await LedgerMigration.verify(source: source, destination: destination)
                Issue.record("an altered row passed verification")
            } catch let failure as LedgerMigration.Failure {
                guard case .mismatch(let what, _, _) = failure else { Issue.record("\(failure)"); return }
                #expect(what == "fill-log digest")
            }
        }
    }

    @Test func aNonEmptyDestinationIsRefusedAndLeftAlone() async throws {
        try await withLedgerStore(.postgres, label: "migrate-nonempty") { store in
            let source = try await filledSQLiteLedger(store)
            let destination = try await store.postgresRepository()
            _ = try await destination.ingest([Self.fill(1)], atMs: 1)
            do {
                _ = try await LedgerMigration.copy(from: source, to: destination, atMs: 3)
                Issue.record("copied into a ledger that already had fills")
            } catch let failure as LedgerMigration.Failure {
                #expect(failure == .destinationNotEmpty(fills: 1))
            }
            #expect(try await destination.cursorState().version == 1)
        }
    }
}

/// State replicas on one PostgreSQL: one ingests at a time; when its process (connection) is
/// gone another takes over at its next check.
@Suite(.postgresServer) struct IngestLeadershipTests {
    @Test func oneReplicaLeadsAndAnotherTakesOverWhenItCloses() async throws {
        try await withLedgerStore(.postgres, label: "leader") { store in
            let first = try await store.postgresRepository()
            let second = try await store.postgresRepository()
            #expect(await first.holdsIngestLeadership())
            #expect(await !second.holdsIngestLeadership(), "only one replica leads")
            #expect(await first.holdsIngestLeadership(), "the leader keeps leading")
            #expect(await !second.holdsIngestLeadership())
            await first.close()  // as a dead process's connection: the server releases the lock
            // The server ends the closed session's backend (and its lock) a moment after the close.
            #expect(await eventually(timeout: .seconds(5)) { await second.holdsIngestLeadership() }, "the follower takes over")
        }
    }

    @Test func aSQLiteLedgerAlwaysLeads() async throws {
        try await withLedgerStore(.sqlite, label: "leader-sqlite") { store in
            let repository = try await store.repository()
            #expect(await repository.holdsIngestLeadership())
        }
    }
}

/// PostgreSQL unreachable when the state service starts: it does not exit into a restart
/// loop; it answers /readyz 503 naming the server and why, never the password, and keeps
/// trying.
@Suite struct PostgresUnreachableAtStartTests {
    @Test func theServiceIsNotReadyAndSaysWhy() async throws {
        let directory = TestPaths.temporaryDataDirectory("state-nopg")
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        try directory.ensureExists()
        let tokens = try RoleTokens.generate(in: directory)
        let passwordFile = directory.file("pg-password")
        try Data("hunter2-not-logged\n".utf8).write(to: URL(fileURLWithPath: passwordFile))
        let base = PortAllocator.portBase()
        var config = ClusterConfig.defaults
        config.listen.portBase = base
        config.state.backend = .postgres
        config.state.postgres = .init(url: "postgres://mm@127.0.0.1:\(base + 19)/ledger", passwordFile: passwordFile)
        let environment = ServiceEnvironment(process: .state, role: .state, config: config, dataDirectory: directory, tokens: tokens)
        let service = Task { try await TradingStateService.run(environment, exitWithParent: false) }
        defer { service.cancel() }
        var answer: TransportResponse?
        for _ in 0..<100 {
            answer = try? await AHCTransport.shared.send(TransportRequest(method: .GET, url: config.baseURL(of: .state) + "/readyz", timeoutMs: 500))
            if answer != nil { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let response = try #require(answer, "the service stays up while PostgreSQL is unreachable")
        let body = String(decoding: response.body, as: UTF8.self)
        #expect(response.status == 503)
        #expect(body.contains("127.0.0.1:\(base + 19)") && body.contains("unreachable"), "\(body)")
        #expect(!body.contains("hunter2"), "the password never appears")
    }
}
