import MMCore
import Testing
@testable import TradingState

extension LedgerStorageTests {
    @Suite("Ledger repository")
    struct LedgerRepositoryTests {
        @Test("new fills are recorded once; the same fill again is a duplicate and changes nothing", arguments: LedgerBackend.allCases)
        func exactlyOnce(_ backend: LedgerBackend) async throws {
            try await withLedgerStore(backend) { store in
                let ledger = try await store.open()
                let first = try await ledger.record([makeFill(1, price: 100, qty: 2), makeFill(2, "BOLT", .sell, price: 50, qty: 3)])
                #expect(first.recorded == ["F1", "F2"])
                #expect(first.duplicates.isEmpty)
                #expect(first.version == 2)
                let again = try await ledger.record([makeFill(2, "BOLT", .sell, price: 50, qty: 3), makeFill(1, price: 100, qty: 2), makeFill(3)])
                #expect(again.recorded == ["F3"])
                #expect(Set(again.duplicates) == ["F1", "F2"])
                #expect(again.version == 3)
                let view = await ledger.positions()
                #expect(view.positions.map(\.symbol) == testSymbols)
                #expect(view.positions.first { $0.symbol == "ACME" }?.netQty == 3)
                #expect(view.positions.first { $0.symbol == "ACME" }?.version == 3)
                #expect(view.positions.first { $0.symbol == "BOLT" }?.netQty == -3)
                #expect(view.positions.first { $0.symbol == "BOLT" }?.version == 2)
                #expect(view.positions.first { $0.symbol == "CRUX" } == .flat("CRUX"))
            }
        }

        @Test("a conflicting duplicate rejects the whole batch and keeps the first recording", arguments: LedgerBackend.allCases)
        func conflictingDuplicateIsAtomic(_ backend: LedgerBackend) async throws {
            try await withLedgerStore(backend) { store in
                let ledger = try await store.open()
                _ = try await ledger.record([makeFill(1, qty: 2)])
                await #expect(throws: LedgerRejection.self) {
                    _ = try await ledger.record([makeFill(2), makeFill(1, qty: 3)])
                }
                do {
                    _ = try await ledger.record([makeFill(2), makeFill(1, qty: 3)])
                } catch let rejection as LedgerRejection {
                    guard case .conflictingDuplicate(let id, let fields, let stored, _) = rejection else {
                        Issue.record("expected conflicting_duplicate, got \(rejection)")
                        return
                    }
                    #expect(id == "F1")
                    #expect(fields == ["qty"])
                    #expect(stored.qty == 2)
                }
                let page = try await ledger.repository.ledger(symbol: nil, after: 0, limit: 10)
                #expect(page.fills.map(\.fillId) == ["F1"])
                #expect(page.fills.first?.qty == 2)
                #expect(await ledger.positions().version == 1)
            }
        }

        @Test("a seq already owned by another fill_id is refused", arguments: LedgerBackend.allCases)
        func seqConflict(_ backend: LedgerBackend) async throws {
            try await withLedgerStore(backend) { store in
                let ledger = try await store.open()
                _ = try await ledger.record([makeFill(1)])
                do {
                    _ = try await ledger.record([makeFill(1, id: "OTHER")])
                    Issue.record("expected a seq conflict")
                } catch let rejection as LedgerRejection {
                    #expect(rejection == .seqConflict(seq: 1, storedFillId: "F1", presentedFillId: "OTHER"))
                }
                #expect(await ledger.positions().version == 1)
            }
        }

        @Test("fills arriving after a later seq of their symbol are refolded in seq order", arguments: LedgerBackend.allCases)
        func lateFillRefolds(_ backend: LedgerBackend) async throws {
            try await withLedgerStore(backend) { store in
                let ledger = try await store.open()
                // Applied in arrival order these would realize differently (truncation of 1/3 lots).
                let fills = [
                    makeFill(1, "ACME", .buy, price: 101, qty: 3), makeFill(2, "ACME", .buy, price: 100, qty: 3),
                    makeFill(3, "ACME", .sell, price: 102, qty: 1), makeFill(4, "ACME", .sell, price: 103, qty: 5),
                ]
                _ = try await ledger.record([fills[3], fills[0]])
                _ = try await ledger.record([fills[2]])
                _ = try await ledger.record([fills[1]])
                let view = await ledger.positions()
                #expect(economicMismatches(view, distinct: fills).isEmpty)
                #expect(view.positions.first { $0.symbol == "ACME" }?.lastFillSeq == 4)
                #expect(view.positions.first { $0.symbol == "ACME" }?.version == 4)
            }
        }

        @Test("ingest applies up to a conflicting fill, advances the cursor to just before it, and reports it", arguments: LedgerBackend.allCases)
        func ingestStopsAtConflict(_ backend: LedgerBackend) async throws {
            try await withLedgerStore(backend) { store in
                let ledger = try await store.open()
                _ = try await ledger.record([makeFill(3, qty: 7)])
                let commit = try await ledger.ingest([makeFill(1), makeFill(2), makeFill(3, qty: 1), makeFill(4)])
                #expect(commit.cursor == 2)
                #expect(commit.recorded == ["F1", "F2"])
                guard case .conflictingDuplicate(let id, _, _, _)? = commit.stoppedAt else {
                    Issue.record("expected a conflict at F3, got \(String(describing: commit.stoppedAt))")
                    return
                }
                #expect(id == "F3")
                #expect(try await ledger.repository.cursorState().cursor == 2)
                #expect(try await ledger.repository.fill(seq: 4) == nil)
            }
        }

        @Test("ingest refuses a batch that does not continue the cursor", arguments: LedgerBackend.allCases)
        func ingestNeedsContiguity(_ backend: LedgerBackend) async throws {
            try await withLedgerStore(backend) { store in
                let ledger = try await store.open()
                await #expect(throws: LedgerRejection.notContiguous(expectedSeq: 1, gotSeq: 2)) {
                    _ = try await ledger.ingest([makeFill(2)])
                }
                _ = try await ledger.ingest([makeFill(1)])
                await #expect(throws: LedgerRejection.notContiguous(expectedSeq: 3, gotSeq: 4)) {
                    _ = try await ledger.ingest([makeFill(2), makeFill(4)])
                }
                #expect(try await ledger.repository.cursorState().cursor == 1)
            }
        }

        @Test("ingest stops at an invalid fill without skipping it", arguments: LedgerBackend.allCases)
        func ingestStopsAtInvalidFill(_ backend: LedgerBackend) async throws {
            try await withLedgerStore(backend) { store in
                let ledger = try await store.open()
                let commit = try await ledger.ingest([makeFill(1), makeFill(2, "NOPE"), makeFill(3)])
                #expect(commit.cursor == 1)
                guard case .invalidFill(_, let id, let field, _)? = commit.stoppedAt else {
                    Issue.record("expected an invalid fill, got \(String(describing: commit.stoppedAt))")
                    return
                }
                #expect(id == "F2")
                #expect(field == "symbol")
            }
        }

        @Test("everything survives reopening the database", arguments: LedgerBackend.allCases)
        func durableAcrossReopen(_ backend: LedgerBackend) async throws {
            try await withLedgerStore(backend) { store in
                let fills = (1...50).map { (index: Int) -> Fill in
                    let side: Side = index % 3 == 0 ? .sell : .buy
                    return makeFill(Int64(index), testSymbols[index % 3], side, price: Int64(100 + index % 7), qty: Int64(index % 4 + 1))
                }
                do {
                    let ledger = try await store.open()
                    _ = try await ledger.ingest(Array(fills[0..<30]))
                    _ = try await ledger.record(Array(fills[30...]))
                }
                let reopened = try await store.open()
                let view = await reopened.positions()
                #expect(view.version == 50)
                #expect(economicMismatches(view, distinct: fills).isEmpty)
                let state = try await reopened.repository.cursorState()
                #expect(state.cursor == 30)
                #expect(state.version == 50)
                let page = try await reopened.repository.ledger(symbol: nil, after: 0, limit: 100)
                #expect(page.fills == fills)
                #expect(page.nextAfter == nil)
            }
        }

        @Test("ledger pages in seq order, per symbol, and says where the next page starts", arguments: LedgerBackend.allCases)
        func paging(_ backend: LedgerBackend) async throws {
            try await withLedgerStore(backend) { store in
                let ledger = try await store.open()
                _ = try await ledger.record((1...10).map { makeFill(Int64($0), $0 % 2 == 0 ? "ACME" : "BOLT") })
                let first = try await ledger.repository.ledger(symbol: "ACME", after: 0, limit: 3)
                #expect(first.fills.map(\.seq) == [2, 4, 6])
                #expect(first.nextAfter == 6)
                let second = try await ledger.repository.ledger(symbol: "ACME", after: 6, limit: 3)
                #expect(second.fills.map(\.seq) == [8, 10])
                #expect(second.nextAfter == nil)
                let all = try await ledger.repository.ledger(symbol: nil, after: 7, limit: 3)
                #expect(all.fills.map(\.seq) == [8, 9, 10])
                #expect(all.nextAfter == nil)
            }
        }
    }
}

@Suite("Fill validation and ingest planning")
struct FillValidatorTests {
    static let validator = FillValidator(config: .defaults)

    static let badFills: [(String, Fill)] = {
        var cases: [(String, Fill)] = []
        var fill = makeFill(1)
        fill.fillId = ""; cases.append(("fill_id", fill))
        fill = makeFill(0); cases.append(("seq", fill))
        fill = makeFill(-3); cases.append(("seq", fill))
        fill = makeFill(1, "ZZZZ"); cases.append(("symbol", fill))
        fill = makeFill(1, price: 0); cases.append(("price", fill))
        fill = makeFill(1, price: -5); cases.append(("price", fill))
        fill = makeFill(1, price: ClusterConfig.defaults.exchange.maxPriceTicks + 1); cases.append(("price", fill))
        fill = makeFill(1, qty: 0); cases.append(("qty", fill))
        fill = makeFill(1, qty: -1); cases.append(("qty", fill))
        fill = makeFill(1, qty: ClusterConfig.defaults.exchange.maxOrderQty + 1); cases.append(("qty", fill))
        fill = makeFill(1); fill.node = ""; cases.append(("node", fill))
        fill = makeFill(1); fill.fencingToken = -1; cases.append(("fencing_token", fill))
        fill = makeFill(1); fill.tsMs = -1; cases.append(("ts_ms", fill))
        fill = makeFill(1); fill.fillId = String(repeating: "x", count: 129); cases.append(("fill_id", fill))
        return cases
    }()

    @Test("each bad field is named", arguments: badFills)
    func rejects(_ field: String, _ fill: Fill) {
        guard case .invalidFill(let index, _, let named, _)? = Self.validator.problem(with: fill, at: 4) else {
            Issue.record("\(fill) passed validation")
            return
        }
        #expect(named == field)
        #expect(index == 4)
    }

    @Test("a valid fill passes")
    func accepts() {
        #expect(Self.validator.problem(with: makeFill(1, "EVOK", .sell, price: 1, qty: 1), at: 0) == nil)
    }

    struct PlanCase: Sendable {
        let page: [Int64]
        let cursor: Int64
        let batch: [Int64]
        let missing: Int64?
    }

    static let planCases: [PlanCase] = [
        PlanCase(page: [5, 3, 4, 2], cursor: 1, batch: [2, 3, 4, 5], missing: nil),
        PlanCase(page: [1, 2, 3], cursor: 2, batch: [3], missing: nil),
        PlanCase(page: [4, 5], cursor: 2, batch: [], missing: 3),
        PlanCase(page: [3, 4, 6, 7], cursor: 2, batch: [3, 4], missing: 5),
        PlanCase(page: [], cursor: 9, batch: [], missing: nil),
    ]

    @Test("ingest plan: sorted, old seqs dropped, stops before a hole", arguments: planCases)
    func plan(_ planCase: PlanCase) {
        let plan = IngestPlan.plan(page: planCase.page.map { makeFill($0) }, after: planCase.cursor)
        #expect(plan.batch.map(\.seq) == planCase.batch)
        #expect(plan.missingSeq == planCase.missing)
    }
}
