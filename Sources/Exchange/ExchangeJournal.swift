import Foundation
import GRDB
import MMCore
import Synchronization

/// Where accepted commands are made durable. The SQLite implementation is the embedded
/// default; the protocol is the seam for moving the journal elsewhere (a replicated log)
/// without the exchange noticing.
public protocol ExchangeJournal: Sendable {
    /// The exchange's first-start time: recorded on the very first open, returned ever after.
    /// The reference-price tick index counts from it, so a restart resumes the same path.
    func firstStartMs(recordingIfAbsent nowMs: EpochMs) throws -> EpochMs
    /// Appends records (consecutive seqs following the last one) and the fills they made
    /// (consecutive seqs too), in one transaction: a fill is stored exactly when the record
    /// that made it is.
    func append(_ records: [JournalRecord], fills: [StoredFill]) async throws
    /// Every record after `seq` in seq order; `body` returns false to stop early. Throws
    /// `JournalError.pruned` when records after `seq` were deleted by retention.
    func forEachRecord(after seq: Int64, _ body: (JournalRecord) throws -> Bool) throws
    /// The lowest record seq kept (nil: no record), and the highest.
    func recordBounds() throws -> (first: Int64, last: Int64)?
    /// Deletes records with seq ≤ `seq` (journal retention; a snapshot covers them).
    func pruneRecords(through seq: Int64) throws

    /// The highest fill seq stored (0: none).
    func storedFillHead() throws -> Int64
    /// Stores fills made by records already journaled (recovery backfills a journal written
    /// before fills had their own table).
    func backfill(_ fills: [StoredFill]) throws
    /// Up to `limit` stored fills with seq > `after`, in seq order (blocking: for startup).
    func storedFills(after seq: Int64, limit: Int) throws -> [Fill]
    /// The same, without blocking a task's thread (for serving).
    func fills(after seq: Int64, limit: Int) async throws -> [Fill]
    /// The fill-log chain head through fill `seq` (hex), nil when that fill is not stored.
    func fillChainHead(through seq: Int64) async throws -> String?
}

extension ExchangeJournal {
    public func forEachRecord(_ body: (JournalRecord) throws -> Bool) throws { try forEachRecord(after: 0, body) }
}

/// A fill as stored: its canonical bytes (what is hashed and served) and the chain head
/// through it.
public struct StoredFill: Sendable, Hashable {
    public var fill: Fill
    public var canonical: Data
    public var chainHead: [UInt8]

    public init(fill: Fill, canonical: Data, chainHead: [UInt8]) {
        self.fill = fill
        self.canonical = canonical
        self.chainHead = chainHead
    }

    /// Chains `fill` onto `digest` and returns it as stored.
    public static func chaining(_ fill: Fill, onto digest: inout FillLogDigest) -> StoredFill {
        let canonical = FillLogDigest.canonical(fill)
        digest.append(canonical: canonical)
        return StoredFill(fill: fill, canonical: canonical, chainHead: digest.head)
    }
}

public enum JournalError: Error, CustomStringConvertible {
    case corrupt(seq: Int64, reason: String)
    case gap(expected: Int64, found: Int64)
    case missing(String)
    case pruned(after: Int64, firstKept: Int64)

    public var description: String {
        switch self {
        case .corrupt(let seq, let reason): "journal record \(seq) cannot be decoded (\(reason)); the journal is damaged, restore it from a backup"
        case .gap(let expected, let found): "journal jumps from seq \(expected - 1) to \(found); the journal is damaged"
        case .missing(let path): "no exchange journal at \(path): is --data-dir the cluster's data directory?"
        case .pruned(let after, let firstKept):
            "journal records \(after + 1)…\(firstKept - 1) were deleted by exchange.journal.retain: snapshots; only a snapshot at seq ≥ \(firstKept - 1) can be continued (a full replay needs exchange.journal.retain: all)"
        }
    }
}

/// The journal in SQLite through GRDB: WAL mode, one transaction per group commit.
///
/// `synchronous = FULL`: a commit is fsynced before it is acknowledged, so an acknowledged
/// command (and any fill it made) survives power loss, not just a process crash. NORMAL
/// would survive `kill -9` but could lose the last commits on power loss, and a lost
/// acknowledged fill would let its seq and fill_id be reused. Group commit pays the fsync
/// once per batch, not per command. See docs/architecture/exchange.md.
public final class GRDBExchangeJournal: ExchangeJournal {
    let database: DatabasePool
    public let path: String

    public init(path: String, readOnly: Bool = false) throws {
        self.path = path
        if readOnly && !FileManager.default.fileExists(atPath: path) { throw JournalError.missing(path) }
        var configuration = Configuration()
        configuration.readonly = readOnly
        configuration.label = "exchange-journal"
        configuration.prepareDatabase { db in
            if !db.configuration.readonly {
                try db.execute(sql: "PRAGMA synchronous = FULL")
            }
        }
        database = try DatabasePool(path: path, configuration: configuration)
        if !readOnly {
            try database.write { db in
                try db.execute(sql: """
                    CREATE TABLE IF NOT EXISTS journal (
                        seq INTEGER PRIMARY KEY,
                        ts_ms INTEGER NOT NULL,
                        kind TEXT NOT NULL,
                        body TEXT NOT NULL
                    );
                    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
                    CREATE TABLE IF NOT EXISTS fills (
                        seq INTEGER PRIMARY KEY,
                        body TEXT NOT NULL,
                        chain BLOB NOT NULL
                    );
                    """)
            }
        }
    }

    public func firstStartMs(recordingIfAbsent nowMs: EpochMs) throws -> EpochMs {
        if database.configuration.readonly {
            return try database.read { db in try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'first_start_ms'") } ?? nowMs
        }
        return try database.write { db in
            if let existing = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'first_start_ms'") { return existing }
            try db.execute(sql: "INSERT INTO meta (key, value) VALUES ('first_start_ms', ?)", arguments: [nowMs])
            return nowMs
        }
    }

    public func append(_ records: [JournalRecord], fills: [StoredFill]) async throws {
        guard !records.isEmpty || !fills.isEmpty else { return }
        let encoder = MMJSON.makeEncoder()
        let rows = try records.map { record in
            let body = try record.entry.hotPathJSON() ?? Array(encoder.encode(record.entry))
            return (record.seq, record.tsMs, record.entry.kind.rawValue, String(decoding: body, as: UTF8.self))
        }
        try await database.write { db in
            let statement = try db.cachedStatement(sql: "INSERT INTO journal (seq, ts_ms, kind, body) VALUES (?, ?, ?, ?)")
            for row in rows {
                try statement.execute(arguments: [row.0, row.1, row.2, row.3])
            }
            try Self.insert(fills, db)
        }
    }

    private static func insert(_ fills: [StoredFill], _ db: Database) throws {
        guard !fills.isEmpty else { return }
        let statement = try db.cachedStatement(sql: "INSERT INTO fills (seq, body, chain) VALUES (?, ?, ?)")
        for stored in fills {
            try statement.execute(arguments: [stored.fill.seq, String(decoding: stored.canonical, as: UTF8.self), Data(stored.chainHead)])
        }
    }

    public func forEachRecord(after start: Int64, _ body: (JournalRecord) throws -> Bool) throws {
        let decoder = MMJSON.makeDecoder()
        try database.read { db in
            let rows = try Row.fetchCursor(db, sql: "SELECT seq, ts_ms, body FROM journal WHERE seq > ? ORDER BY seq", arguments: [start])
            var expected: Int64 = start + 1
            while let row = try rows.next() {
                let seq: Int64 = row["seq"]
                guard seq == expected else {
                    if expected == start + 1 { throw JournalError.pruned(after: start, firstKept: seq) }
                    throw JournalError.gap(expected: expected, found: seq)
                }
                expected += 1
                let text: String = row["body"]
                let entry: JournalEntry
                do { entry = try decoder.decode(JournalEntry.self, from: Data(text.utf8)) } catch {
                    throw JournalError.corrupt(seq: seq, reason: MMJSON.describe(error))
                }
                if try !body(JournalRecord(seq: seq, tsMs: row["ts_ms"], entry: entry)) { return }
            }
        }
    }

    public func recordBounds() throws -> (first: Int64, last: Int64)? {
        // Two queries: SQLite answers a lone MIN or MAX of the key from the b-tree's edge, but
        // both in one SELECT scan the whole table (2 s at 10M records).
        try database.read { db in
            guard let first = try Int64.fetchOne(db, sql: "SELECT MIN(seq) FROM journal"),
                  let last = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM journal") else { return nil }
            return (first, last)
        }
    }

    public func pruneRecords(through seq: Int64) throws {
        try database.write { db in try db.execute(sql: "DELETE FROM journal WHERE seq <= ?", arguments: [seq]) }
    }

    public func storedFillHead() throws -> Int64 {
        try database.read { db in try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM fills") } ?? 0
    }

    public func backfill(_ fills: [StoredFill]) throws {
        try database.write { db in try Self.insert(fills, db) }
    }

    static let fillPageSQL = "SELECT body FROM fills WHERE seq > ? ORDER BY seq LIMIT ?"

    public func storedFills(after seq: Int64, limit: Int) throws -> [Fill] {
        try Self.decodeFills(database.read { db in try String.fetchAll(db, sql: Self.fillPageSQL, arguments: [seq, limit]) })
    }

    public func fills(after seq: Int64, limit: Int) async throws -> [Fill] {
        try Self.decodeFills(await database.read { db in try String.fetchAll(db, sql: Self.fillPageSQL, arguments: [seq, limit]) })
    }

    static func decodeFills(_ bodies: [String]) throws -> [Fill] {
        let decoder = MMJSON.makeDecoder()
        return try bodies.map { try decoder.decode(Fill.self, from: Data($0.utf8)) }
    }

    public func fillChainHead(through seq: Int64) async throws -> String? {
        if seq == 0 { return FillLogDigest.emptyHead.lowercaseHex }
        let chain = try await database.read { db in try Data.fetchOne(db, sql: "SELECT chain FROM fills WHERE seq = ?", arguments: [seq]) }
        return chain.map { $0.lowercaseHex }
    }
}

/// A journal in memory: for tests and the in-process benchmark only (nothing survives).
public final class InMemoryExchangeJournal: ExchangeJournal {
    private struct Storage {
        var firstStart: EpochMs?
        var records: [JournalRecord] = []
        /// Seq of `records[0]` minus one (records before it were pruned).
        var prunedThrough: Int64 = 0
        var fills: [StoredFill] = []
    }
    private let storage = Mutex(Storage())
    /// Set to make the next appends fail (tests of the failure path).
    public let failAppends = Mutex(false)

    public init() {}

    public func firstStartMs(recordingIfAbsent nowMs: EpochMs) throws -> EpochMs {
        storage.withLock { state in
            if let first = state.firstStart { return first }
            state.firstStart = nowMs
            return nowMs
        }
    }

    public func append(_ records: [JournalRecord], fills: [StoredFill]) async throws {
        if failAppends.withLock({ $0 }) { throw JournalError.missing("in-memory journal set to fail") }
        storage.withLock {
            $0.records.append(contentsOf: records)
            $0.fills.append(contentsOf: fills)
        }
    }

    public func forEachRecord(after start: Int64, _ body: (JournalRecord) throws -> Bool) throws {
        let (records, prunedThrough) = storage.withLock { ($0.records, $0.prunedThrough) }
        if start < prunedThrough { throw JournalError.pruned(after: start, firstKept: prunedThrough + 1) }
        for record in records.dropFirst(Int(start - prunedThrough)) where try !body(record) { return }
    }

    public func recordBounds() throws -> (first: Int64, last: Int64)? {
        storage.withLock { state in
            guard let first = state.records.first, let last = state.records.last else { return nil }
            return (first.seq, last.seq)
        }
    }

    public func pruneRecords(through seq: Int64) throws {
        storage.withLock { state in
            let drop = Int(max(0, min(seq - state.prunedThrough, Int64(state.records.count))))
            state.records.removeFirst(drop)
            state.prunedThrough += Int64(drop)
        }
    }

    public func storedFillHead() throws -> Int64 { storage.withLock { $0.fills.last?.fill.seq ?? 0 } }

    public func backfill(_ fills: [StoredFill]) throws { storage.withLock { $0.fills.append(contentsOf: fills) } }

    public func fills(after seq: Int64, limit: Int) async throws -> [Fill] { try storedFills(after: seq, limit: limit) }

    public func storedFills(after seq: Int64, limit: Int) throws -> [Fill] {
        storage.withLock { state in
            let start = Int(max(0, min(seq, Int64(state.fills.count))))
            return state.fills[start..<min(start + max(limit, 0), state.fills.count)].map(\.fill)
        }
    }

    public func fillChainHead(through seq: Int64) async throws -> String? {
        if seq == 0 { return FillLogDigest.emptyHead.lowercaseHex }
        return storage.withLock { state in
            seq >= 1 && seq <= Int64(state.fills.count) ? state.fills[Int(seq - 1)].chainHead.lowercaseHex : nil
        }
    }

    public var records: [JournalRecord] { storage.withLock { $0.records } }
}
