import MMCore
import PropertyBased
import Testing
@testable import TradingState

extension LedgerStorageTests {
    /// Whatever the delivery — duplicated, reordered within a batch, redelivered later, pushed or
    /// pulled — the ledger holds each distinct fill once and positions equal the reference fold.
    @Suite("Ledger exactly-once property")
    struct LedgerPropertyTests {
        @Test("random streams with duplication, reordering and redelivery fold to the distinct fills", arguments: LedgerBackend.allCases)
        func positionsEqualFoldOfDistinctFills(_ backend: LedgerBackend) async throws {
            await propertyCheck(count: 30, input: Gen.int(in: 1...80), Gen.uint64()) { fillCount, seed in
                do {
                    try await withLedgerStore(backend, label: "property") { store in
                        try await Self.check(fillCount: fillCount, seed: seed, ledger: try await store.open())
                    }
                } catch {
                    Issue.record("scenario (\(fillCount) fills, seed \(seed), \(backend)) threw \(error)")
                }
            }
        }

        static func check(fillCount: Int, seed: UInt64, ledger: TradingLedger) async throws {
            var random = SplitMix64(seed: seed)
            let symbols = Array(testSymbols.prefix(3))
            let fills: [Fill] = (1...fillCount).map { seq in
                makeFill(
                    Int64(seq), symbols.randomElement(using: &random)!, Bool.random(using: &random) ? .buy : .sell,
                    price: Int64.random(in: 90...110, using: &random), qty: Int64.random(in: 1...7, using: &random))
            }

            // Deliver in consecutive slices; each slice goes through the push path or the pull
            // path, shuffled, with in-batch duplicates and redelivered earlier fills.
            var next = 0
            var delivered: [Fill] = []
            var pushedIds: Set<String> = []
            var recordedIds: [String] = []
            while next < fills.count {
                let size = Int.random(in: 1...10, using: &random)
                let slice = Array(fills[next..<min(next + size, fills.count)])
                next += slice.count
                var batch = slice
                for _ in 0..<Int.random(in: 0...3, using: &random) {
                    if let again = (delivered + slice).randomElement(using: &random) { batch.append(again) }
                }
                batch.shuffle(using: &random)
                if Bool.random(using: &random) {
                    let result = try await ledger.record(batch)
                    recordedIds += result.recorded
                    pushedIds.formUnion(result.recorded)
                } else {
                    // The pull path: one page from the log, as the ingest loop plans it.
                    let cursor = try await ledger.repository.cursorState().cursor
                    let plan = IngestPlan.plan(page: batch, after: cursor)
                    if !plan.batch.isEmpty {
                        let commit = try await ledger.ingest(plan.batch)
                        #expect(commit.stoppedAt == nil)
                        recordedIds += commit.recorded
                    }
                }
                delivered += slice
            }
            // Finally the ingest loop catches up with the whole log (pushed fills come back as
            // duplicates), as it does after every restart.
            let cursor = try await ledger.repository.cursorState().cursor
            let tail = IngestPlan.plan(page: fills, after: cursor)
            #expect(tail.missingSeq == nil)
            if !tail.batch.isEmpty {
                let commit = try await ledger.ingest(tail.batch)
                #expect(commit.stoppedAt == nil)
                #expect(commit.cursor == Int64(fills.count))
                recordedIds += commit.recorded
                #expect(Set(commit.duplicates).isSubset(of: pushedIds))
            }

            #expect(recordedIds.count == fills.count, "every fill recorded exactly once")
            #expect(Set(recordedIds) == Set(fills.map(\.fillId)))
            let view = await ledger.positions()
            #expect(view.version == Int64(fills.count))
            #expect(view.positions.map(\.fillCount).reduce(0, +) == Int64(fills.count))
            let mismatches = economicMismatches(view, distinct: fills)
            #expect(mismatches.isEmpty, "\(mismatches)")
            let stored = try await ledger.repository.ledger(symbol: nil, after: 0, limit: 1_000)
            #expect(stored.fills == fills)
            // What readers see is what is on disk.
            #expect(try await ledger.repository.positions() == view)
        }
    }
}
