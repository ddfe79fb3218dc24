import Exchange
import Foundation
import MMCore
import PropertyBased
import Testing

/// Snapshots and the journal tail must rebuild exactly what a full replay does, and a damaged
/// snapshot must never be trusted.
extension ExchangeCoreTests {
    /// The journal records of a driver's run, each with the fills it made, chained.
    func journalRecords(_ driver: StateDriver, config: ClusterConfig) -> [(record: JournalRecord, fills: [StoredFill])] {
        var state = ExchangeState(config: config)
        var digest = FillLogDigest()
        var out: [(JournalRecord, [StoredFill])] = []
        for (index, (ts, entry)) in driver.journal.enumerated() {
            state.apply(entry, tsMs: ts)
            let stored = state.takeNewFills().map { StoredFill.chaining($0, onto: &digest) }
            out.append((JournalRecord(seq: Int64(index + 1), tsMs: ts, entry: entry), stored))
        }
        return out
    }

    /// The state and audit after the first `count` records, as a snapshot.
    func snapshot(after count: Int, of records: [(record: JournalRecord, fills: [StoredFill])], config: ClusterConfig) -> ExchangeSnapshot {
        var state = ExchangeState(config: config)
        var audit = FencingAudit()
        var digest = FillLogDigest()
        var fold = FoldHistory()
        for (record, _) in records.prefix(count) {
            state.apply(record.entry, tsMs: record.tsMs)
            audit.observe(record.entry)
            for fill in state.takeNewFills() {
                digest.append(fill)
                fold.apply(fill)
            }
        }
        return ExchangeSnapshot(journalSeq: Int64(count), state: state.persisted, audit: audit, digest: digest, fold: fold)
    }

    /// A GRDB journal in a fresh directory holding `records` (and their fills unless told not to).
    func fileJournal(_ records: [(record: JournalRecord, fills: [StoredFill])], storeFills: Bool = true) async throws -> (GRDBExchangeJournal, String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mm-snapshot-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let journal = try GRDBExchangeJournal(path: directory + "/exchange.sqlite")
        for chunk in stride(from: 0, to: records.count, by: 50) {
            let slice = records[chunk..<min(chunk + 50, records.count)]
            try await journal.append(slice.map(\.record), fills: storeFills ? slice.flatMap(\.fills) : [])
        }
        return (journal, directory)
    }

    @Test("snapshot at any point + the journal tail gives byte-identical fills, digest and state to a full replay")
    func snapshotPlusTailEqualsFullReplay() async throws {
        let config = try await Fixture.config()
        await propertyCheck(count: 30, input: Gen.int(in: 0...Int.max)) { seed in
            let driver = runRandom(seed: UInt64(seed), config: config)
            let records = journalRecords(driver, config: config)
            let cut = Int(UInt64(seed) % UInt64(records.count + 1))
            let taken = snapshot(after: cut, of: records, config: config)
            // Through the file format, as a restart reads it.
            guard let decoded = try? ExchangeSnapshot.decode(taken.encoded(config: config), config: config),
                  var state = try? ExchangeState(config: config, restoring: decoded.state) else {
                Issue.record("the snapshot at \(cut) did not round-trip (seed \(seed))")
                return
            }
            #expect(decoded == taken)
            var digest = decoded.digest
            var tailFills: [Fill] = []
            for (record, _) in records.dropFirst(cut) {
                state.apply(record.entry, tsMs: record.tsMs)
                for fill in state.takeNewFills() {
                    digest.append(fill)
                    tailFills.append(fill)
                }
            }
            var full = FillLogDigest()
            driver.fills.forEach { full.append($0) }
            #expect(tailFills == Array(driver.fills.dropFirst(Int(taken.digest.count))), "seed \(seed), cut \(cut)")
            #expect(digest == full && digest.hexDigest() == full.hexDigest())
            #expect(state.persisted == driver.state.persisted, "snapshot + tail must rebuild the same books, tokens and counters")
        }
    }

    @Test("recovery takes the newest good snapshot and replays only the tail; fills come from the table")
    func recoveryFromSnapshot() async throws {
        let config = try await Fixture.config()
        let driver = runRandom(seed: 11, config: config)
        let records = journalRecords(driver, config: config)
        let (journal, directory) = try await fileJournal(records)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = ExchangeSnapshotStore(directory: directory + "/snapshots", keep: 2)
        let newest = records.count - 7
        try #require(newest > 40, "the run made too few records: \(records.count)")
        try store.write(snapshot(after: 40, of: records, config: config), config: config)
        try store.write(snapshot(after: newest, of: records, config: config), config: config)

        let recovered = try ExchangeRecovery.recover(config: config, journal: journal, snapshots: store)
        #expect(recovered.summary.snapshotSeq == Int64(newest) && recovered.summary.replayedRecords == 7)
        #expect(recovered.summary.rejectedSnapshots.isEmpty && recovered.summary.backfilledFills == 0, "\(recovered.summary)")
        var full = FillLogDigest()
        driver.fills.forEach { full.append($0) }
        #expect(recovered.digest == full)
        #expect(recovered.state.persisted == driver.state.persisted)
        var fold = FoldHistory()
        driver.fills.forEach { fold.apply($0) }
        #expect(recovered.fold == fold, "snapshot fold + tail = fold of the whole log")
        #expect(recovered.recentFills == driver.fills.suffix(ExchangeCore.recentFillCapacity))
        try await ExchangeRecovery.verifyStoredHead(journal: journal, digest: recovered.digest)
        let served = try await journal.fills(after: 0, limit: 10_000)
        #expect(served == driver.fills)
    }

    @Test("a truncated, altered, other-version or other-config snapshot is skipped with the reason; a stray temporary is ignored")
    func damagedSnapshotsFallBack() async throws {
        let config = try await Fixture.config()
        let driver = runRandom(seed: 12, config: config)
        let records = journalRecords(driver, config: config)
        let (journal, directory) = try await fileJournal(records)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = ExchangeSnapshotStore(directory: directory + "/snapshots", keep: 3)
        try #require(records.count > 60, "the run made too few records: \(records.count)")
        try store.write(snapshot(after: 30, of: records, config: config), config: config)
        try store.write(snapshot(after: 60, of: records, config: config), config: config)
        var full = FillLogDigest()
        driver.fills.forEach { full.append($0) }
        let newest = try #require(store.candidates().first)
        let good = try Data(contentsOf: URL(fileURLWithPath: newest.path))

        // kill -9 in the middle of writing a newer one: only its temporary exists.
        try Data(good.prefix(good.count / 2)).write(to: URL(fileURLWithPath: directory + "/snapshots/snapshot-00000000000000000120.json.tmp"))

        let damages: [(name: String, data: Data, reason: String)] = [
            ("truncated", Data(good.prefix(good.count - 7)), "truncated"),
            ("altered", { var copy = good; copy[copy.count - 20] ^= 0x01; return copy }(), "checksum"),
            ("other version", Data(String(decoding: good, as: UTF8.self).replacingOccurrences(of: "\"version\":\(ExchangeSnapshot.formatVersion)", with: "\"version\":99").utf8), "version 99"),
            ("empty", Data(), "no header line"),
        ]
        for damage in damages {
            try damage.data.write(to: URL(fileURLWithPath: newest.path))
            let recovered = try ExchangeRecovery.recover(config: config, journal: journal, snapshots: store)
            #expect(recovered.summary.snapshotSeq == 30, "\(damage.name): falls back to the previous snapshot")
            #expect(recovered.summary.rejectedSnapshots.count == 1 && recovered.summary.rejectedSnapshots[0].contains(damage.reason),
                    "\(damage.name): \(recovered.summary.rejectedSnapshots)")
            #expect(recovered.digest == full, "\(damage.name): same fill log as a full replay")
            #expect(recovered.state.persisted == driver.state.persisted)
        }

        try good.write(to: URL(fileURLWithPath: newest.path))
        let otherSymbols = try await Fixture.config(["symbols.names": "BOLT,ACME"])
        let foreign = try ExchangeRecovery.recover(config: otherSymbols, journal: journal, snapshots: store)
        #expect(foreign.summary.snapshotSeq == nil && foreign.summary.rejectedSnapshots.count == 2)
        #expect(foreign.summary.rejectedSnapshots.allSatisfy { $0.contains("another symbol list") }, "\(foreign.summary.rejectedSnapshots)")
    }

    @Test("with journal retention, records covered by the oldest kept snapshot are deleted; without a usable snapshot recovery says why")
    func retentionAndItsLimit() async throws {
        let config = try await Fixture.config(["exchange.journal.retain": "snapshots", "exchange.snapshot.every_records": "100"])
        let driver = runRandom(seed: 13, config: config)
        let records = journalRecords(driver, config: config)
        let (journal, directory) = try await fileJournal(records)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = ExchangeSnapshotStore(directory: directory + "/snapshots", keep: 2)
        try #require(records.count > 60, "the run made too few records: \(records.count)")
        try store.write(snapshot(after: 50, of: records, config: config), config: config)
        let oldestKept = try store.write(snapshot(after: 60, of: records, config: config), config: config)
        #expect(oldestKept == 50)
        try journal.pruneRecords(through: oldestKept)
        #expect(try journal.recordBounds()?.first == 51)

        let recovered = try ExchangeRecovery.recover(config: config, journal: journal, snapshots: store)
        #expect(recovered.summary.snapshotSeq == 60, "\(recovered.summary)")
        #expect(recovered.state.persisted == driver.state.persisted)

        for candidate in store.candidates() { try Data("garbage".utf8).write(to: URL(fileURLWithPath: candidate.path)) }
        #expect {
            _ = try ExchangeRecovery.recover(config: config, journal: journal, snapshots: store)
        } throws: { error in
            "\(error)".contains("deleted by exchange.journal.retain")
        }
        #expect(throws: ReplayError.self) { _ = try ExchangeRecovery.digestLine(config: config, journal: journal, throughSeq: nil) }
    }

    @Test("a journal written before fills had their own table is backfilled on recovery")
    func backfillsTheFillTable() async throws {
        let config = try await Fixture.config()
        let driver = runRandom(seed: 14, config: config)
        let records = journalRecords(driver, config: config)
        let (journal, directory) = try await fileJournal(records, storeFills: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(try journal.storedFillHead() == 0)
        let recovered = try ExchangeRecovery.recover(config: config, journal: journal, snapshots: nil)
        #expect(recovered.summary.backfilledFills == Int64(driver.fills.count))
        #expect(try journal.storedFillHead() == Int64(driver.fills.count))
        let served = try await journal.fills(after: 0, limit: 10_000)
        #expect(served == driver.fills)
        try await ExchangeRecovery.verifyStoredHead(journal: journal, digest: recovered.digest)
    }

    @Test("a restarted core serves old fills from storage, its chain head at any seq, and the same stats as before")
    func restartedCoreServesHistoryFromStorage() async throws {
        let config = try await Fixture.config(["exchange.snapshot.every_records": "500"])
        // Enough fills that the oldest are beyond the in-memory cache.
        var driver = StateDriver(config: config)
        var ts = Fixture.startMs
        for round in 0..<(ExchangeCore.recentFillCapacity + 300) {
            ts += 1
            let quote = Fixture.quote(node: "n1", token: 1, bid: 9_990, ask: 10_010, qty: 1)
            driver.commit((try? driver.state.decideReplaceQuote(symbol: "ACME", quote, signer: Fixture.signer, nowMs: Fixture.startMs)) ?? [], at: ts)
            let side: Side = round % 2 == 0 ? .buy : .sell
            let intent = Fixture.intent(side: side, price: side == .buy ? 10_010 : 9_990, qty: 1, flowIndex: Int64(round))
            driver.commit(driver.state.decideExternal(intent), at: ts)
        }
        #expect(driver.fills.count > ExchangeCore.recentFillCapacity)
        let records = journalRecords(driver, config: config)
        let (journal, directory) = try await fileJournal(records)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = ExchangeSnapshotStore(directory: directory + "/snapshots", keep: 2)
        try store.write(snapshot(after: records.count - 10, of: records, config: config), config: config)

        let core = try ExchangeCore(config: config, signer: Fixture.signer, clock: ManualClock(startMs: ts), journal: journal, snapshots: store)
        #expect(core.recovery.snapshotSeq == Int64(records.count - 10) && core.recovery.replayedRecords == 10)
        let oldest = try await core.fillPage(after: 0, limit: 100)
        #expect(oldest.fills == Array(driver.fills.prefix(100)) && oldest.headSeq == Int64(driver.fills.count))
        let newest = try await core.fillPage(after: Int64(driver.fills.count - 5), limit: 100)
        #expect(newest.fills == Array(driver.fills.suffix(5)))
        var chain = FillLogDigest()
        for fill in driver.fills.prefix(1_000) { chain.append(fill) }
        let head = try await core.fillChainHead(through: 1_000)
        #expect(head == chain.hexDigest())
        let beyond = try await core.fillChainHead(through: Int64(driver.fills.count + 1))
        #expect(beyond == nil)
        var full = FillLogDigest()
        driver.fills.forEach { full.append($0) }
        #expect(await core.stats().fillLogSha256 == full.hexDigest())
    }
}
