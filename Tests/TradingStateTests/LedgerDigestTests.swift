import Foundation
import GRDB
import MMCore
import Testing
@testable import TradingState

extension LedgerStorageTests {
    /// The ledger's running fill-log chain (`GET /v1/fills/digest`): kept in the same
    /// transaction as the fills, over the gap-free prefix only, bounded per transaction, and
    /// caught up after a migration from the v1 schema. Its head must be byte-for-byte
    /// `FillLogDigest` over the same fills: the exchange's rule.
    @Suite("Ledger fill-log chain")
    struct LedgerDigestTests {
        /// A fill with varied contents, so the chain hashes more than one shape.
        static func fill(_ seq: Int64) -> Fill {
            let symbols = ["ACME", "BOLT", "CRUX"]
            return Fill(
                fillId: "F\(seq)", seq: seq, symbol: symbols[Int(seq) % symbols.count], side: seq % 3 == 0 ? .sell : .buy,
                price: 10_000 + seq % 17, qty: 1 + seq % 4, makerOrderId: "Q\(seq % 5)", takerOrderId: "X\(seq)", node: "n\(seq % 2 + 1)",
                fencingToken: seq / 10, tsMs: 1_700_000_000_000 + seq)
        }

        /// The exchange's chain head over fills 1…`through` (64 hex digits).
        static func head(through: Int64) -> String {
            var digest = FillLogDigest()
            if through > 0 { for seq in 1...through { digest.append(fill(seq)) } }
            return digest.hexDigest()
        }

        /// Calls `digest()` until it stops advancing (each call adds at most one limit).
        static func caughtUp(_ repository: any LedgerRepository, maxCalls: Int = 1_000) async throws -> (LedgerDigest, calls: Int) {
            var last = try await repository.digest()
            var calls = 1
            while calls < maxCalls {
                let next = try await repository.digest()
                calls += 1
                if next == last { break }
                last = next
            }
            return (last, calls)
        }

        @Test("after ingesting N fills the head is FillLogDigest over them, chained through N", arguments: LedgerBackend.allCases)
        func followsIngest(_ backend: LedgerBackend) async throws {
            try await withLedgerStore(backend, label: "chain-ingest") { store in
                let repository = try await store.repository()
                let empty = try await repository.digest()
                #expect(empty == LedgerDigest(cursor: 0, chainedThroughSeq: 0, fillLogSha256: String(repeating: "0", count: 64), fillCount: 0))
                var seq: Int64 = 0
                for size in [1, 40, 7, 152] {
                    let batch = (seq + 1...seq + Int64(size)).map(Self.fill)
                    let commit = try await repository.ingest(batch, atMs: 1)
                    #expect(commit.stoppedAt == nil)
                    seq += Int64(size)
                    let digest = try await repository.digest()
                    #expect(digest == LedgerDigest(cursor: seq, chainedThroughSeq: seq, fillLogSha256: Self.head(through: seq), fillCount: seq))
                }
                // The walk over the whole ledger (what `mmd state migrate` proves) agrees.
                let walked = try await LedgerMigration.digest(of: repository)
                #expect(walked.count == seq)
                #expect(walked.digest == Self.head(through: seq))
                // Fills pushed again are duplicates: nothing moves.
                let again = try await repository.record((1...5).map(Self.fill), atMs: 2)
                #expect(again.recorded.isEmpty)
                let unchanged = try await repository.digest()
                #expect(unchanged == LedgerDigest(cursor: seq, chainedThroughSeq: seq, fillLogSha256: Self.head(through: seq), fillCount: seq))
            }
        }

        @Test("pushed fills out of order are chained only once the prefix is gap-free", arguments: LedgerBackend.allCases)
        func outOfOrderPushes(_ backend: LedgerBackend) async throws {
            try await withLedgerStore(backend, label: "chain-order") { store in
                let repository = try await store.repository()
                _ = try await repository.record([1, 2].map(Self.fill), atMs: 1)
                _ = try await repository.record([5, 3].map(Self.fill), atMs: 1)
                let early = try await repository.digest()
                #expect(early.chainedThroughSeq == 3 && early.fillLogSha256 == Self.head(through: 3) && early.fillCount == 4 && early.cursor == 0)
                _ = try await repository.record([Self.fill(4)], atMs: 1)
                let joined = try await repository.digest()
                #expect(joined.chainedThroughSeq == 5 && joined.fillLogSha256 == Self.head(through: 5) && joined.fillCount == 5)
                // A gap (6 missing) keeps the chain at 5 however many fills follow it.
                _ = try await repository.record([7, 9, 8].map(Self.fill), atMs: 1)
                let gap = try await repository.digest()
                #expect(gap.chainedThroughSeq == 5 && gap.fillLogSha256 == Self.head(through: 5) && gap.fillCount == 8)
                // The pull loop fills the gap; the rest are duplicates and the chain runs to 9.
                let commit = try await repository.ingest((1...9).map(Self.fill), atMs: 2)
                #expect(commit.recorded == ["F6"] && commit.cursor == 9)
                let complete = try await repository.digest()
                #expect(complete == LedgerDigest(cursor: 9, chainedThroughSeq: 9, fillLogSha256: Self.head(through: 9), fillCount: 9))
                // A refused batch changes nothing of the chain either.
                await #expect(throws: LedgerRejection.self) { _ = try await repository.record([Self.fill(10), Self.fill(11), makeFill(9, id: "OTHER")], atMs: 3) }
                let afterRefusal = try await repository.digest()
                #expect(afterRefusal == complete)
            }
        }

        @Test("random push orders: the chain covers exactly the gap-free prefix", arguments: LedgerBackend.allCases)
        func randomPushOrders(_ backend: LedgerBackend) async throws {
            for seed: UInt64 in [1, 2] {
                try await withLedgerStore(backend, label: "chain-random") { store in
                    let repository = try await store.repository()
                    var generator = SplitMix64(seed: seed)
                    var pending = (1...60).map { Int64($0) }.shuffled(using: &generator)
                    var present: Set<Int64> = []
                    while !pending.isEmpty {
                        let size = Int.random(in: 1...min(6, pending.count), using: &generator)
                        let batch = pending.prefix(size).map(Self.fill)
                        pending.removeFirst(size)
                        _ = try await repository.record(batch, atMs: 1)
                        present.formUnion(batch.map(\.seq))
                        var prefix: Int64 = 0
                        while present.contains(prefix + 1) { prefix += 1 }
                        let digest = try await repository.digest()
                        #expect(digest.chainedThroughSeq == prefix, "seed \(seed)")
                        #expect(digest.fillLogSha256 == Self.head(through: prefix), "seed \(seed)")
                        #expect(digest.fillCount == Int64(present.count), "seed \(seed)")
                    }
                }
            }
        }

        @Test("the per-transaction limit leaves a remainder that writes and digest reads catch up", arguments: LedgerBackend.allCases)
        func boundedPerTransaction(_ backend: LedgerBackend) async throws {
            try await withLedgerStore(backend, label: "chain-limit") { store in
                let repository = try await store.repository(chainAdvanceLimit: 10)
                _ = try await repository.ingest((1...35).map(Self.fill), atMs: 1)
                // The write chained 10; this read adds at most 10 more.
                let first = try await repository.digest()
                #expect(first.chainedThroughSeq == 20 && first.fillLogSha256 == Self.head(through: 20) && first.cursor == 35 && first.fillCount == 35)
                // The next write chains 10 more (old fills first, then its own if the limit allows).
                _ = try await repository.ingest([Self.fill(36)], atMs: 2)
                let (final, calls) = try await Self.caughtUp(repository)
                #expect(final == LedgerDigest(cursor: 36, chainedThroughSeq: 36, fillLogSha256: Self.head(through: 36), fillCount: 36))
                #expect(calls >= 2)
            }
        }

        @Test("a ledger written with the v1 schema is migrated and its chain catches up", arguments: LedgerBackend.allCases)
        func migratesFromV1(_ backend: LedgerBackend) async throws {
            try await withLedgerStore(backend, label: "chain-v1") { store in
                // 230 pulled fills and one pushed ahead of a gap (232 present, 231 missing).
                let pulled = (1...230).map(Self.fill)
                let pushed = Self.fill(232)
                switch backend {
                case .sqlite:
                    try Self.writeV1SQLiteLedger(path: store.file.path, pulled: pulled, pushed: [pushed])
                case .postgres:
                    let current = try await store.postgresRepository()
                    _ = try await current.ingest(pulled, atMs: 1)
                    _ = try await current.record([pushed], atMs: 1)
                    await current.close()
                    // Back to what a v1 build left: no chain columns, schema version 1.
                    try await store.sql("""
                        ALTER TABLE ledger_state DROP COLUMN fill_count, DROP COLUMN chain_through, DROP COLUMN chain_head;
                        DELETE FROM schema_version WHERE version = 2;
                        """)
                    let version = try await store.sql("SELECT max(version) FROM schema_version;")
                    #expect(version.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
                }
                let repository = try await store.repository(chainAdvanceLimit: 50)
                if let postgres = repository as? PostgresLedgerRepository {
                    let version = try await postgres.schemaVersion()
                    #expect(version == 2)
                }
                // The migration counts the fills but leaves the chain to catch up.
                let first = try await repository.digest()
                #expect(first.chainedThroughSeq == 50 && first.fillLogSha256 == Self.head(through: 50) && first.fillCount == 231 && first.cursor == 230)
                // A write advances it too, in its own transaction.
                _ = try await repository.ingest([Self.fill(231)], atMs: 2)
                let (final, calls) = try await Self.caughtUp(repository)
                #expect(final == LedgerDigest(cursor: 231, chainedThroughSeq: 232, fillLogSha256: Self.head(through: 232), fillCount: 232))
                #expect(calls <= 6)
                // And what it chained is exactly the walk over the ledger.
                let walked = try await LedgerMigration.digest(of: repository)
                #expect(walked.digest == final.fillLogSha256)
                // Reopened, it stays where it was.
                let reopened = try await store.repository().digest()
                #expect(reopened == final)
            }
        }

        /// A `state.sqlite` as a v1 build wrote it: only the v1 migration, the fills, the
        /// state row (no positions: the chain does not read them).
        static func writeV1SQLiteLedger(path: String, pulled: [Fill], pushed: [Fill]) throws {
            let queue = try DatabaseQueue(path: path)
            try GRDBLedgerRepository.migrator.migrate(queue, upTo: "v1: ledger, positions, cursor")
            try queue.write { db in
                var version: Int64 = 0
                for fill in pulled + pushed {
                    version += 1
                    try db.execute(
                        sql: """
                            INSERT INTO fills (seq, fill_id, symbol, side, price, qty, maker_order_id, taker_order_id, node, fencing_token, ts_ms, applied_version, recorded_at_ms)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                            """,
                        arguments: [
                            fill.seq, fill.fillId, fill.symbol, fill.side.rawValue, fill.price, fill.qty, fill.makerOrderId, fill.takerOrderId,
                            fill.node, fill.fencingToken, fill.tsMs, version, 1,
                        ])
                }
                try db.execute(sql: "UPDATE ledger_state SET version = ?, ingest_cursor = ? WHERE id = 1", arguments: [version, pulled.last?.seq ?? 0])
            }
            let columns = try queue.read { db in try db.columns(in: "ledger_state").map(\.name) }
            #expect(!columns.contains("chain_head"))
            try queue.close()
        }
    }
}
