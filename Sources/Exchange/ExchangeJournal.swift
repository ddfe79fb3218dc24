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
    /// Appends records (consecutive seqs following the last one) in one transaction.
    func append(_ records: [JournalRecord]) async throws
    /// Every record in seq order; `body` returns false to stop early.
    func forEachRecord(_ body: (JournalRecord) throws -> Bool) throws
}

public enum JournalError: Error, CustomStringConvertible {
    case corrupt(seq: Int64, reason: String)
    case gap(expected: Int64, found: Int64)
    case missing(String)

    public var description: String {
        switch self {
        case .corrupt(let seq, let reason): "journal record \(seq) cannot be decoded (\(reason)); the journal is damaged, restore it from a backup"
        case .gap(let expected, let found): "journal jumps from seq \(expected - 1) to \(found); the journal is damaged"
        case .missing(let path): "no exchange journal at \(path): is --data-dir the cluster's data directory?"
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

    public func append(_ records: [JournalRecord]) async throws {
        guard !records.isEmpty else { return }
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
        }
    }

    public func forEachRecord(_ body: (JournalRecord) throws -> Bool) throws {
        let decoder = MMJSON.makeDecoder()
        try database.read { db in
            let rows = try Row.fetchCursor(db, sql: "SELECT seq, ts_ms, body FROM journal ORDER BY seq")
            var expected: Int64 = 1
            while let row = try rows.next() {
                let seq: Int64 = row["seq"]
                guard seq == expected else { throw JournalError.gap(expected: expected, found: seq) }
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
}

/// A journal in memory: for tests and the in-process benchmark only (nothing survives).
public final class InMemoryExchangeJournal: ExchangeJournal {
    private let storage = Mutex<(firstStart: EpochMs?, records: [JournalRecord])>((nil, []))
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

    public func append(_ records: [JournalRecord]) async throws {
        if failAppends.withLock({ $0 }) { throw JournalError.missing("in-memory journal set to fail") }
        storage.withLock { $0.records.append(contentsOf: records) }
    }

    public func forEachRecord(_ body: (JournalRecord) throws -> Bool) throws {
        let records = storage.withLock { $0.records }
        for record in records where try !body(record) { return }
    }

    public var records: [JournalRecord] { storage.withLock { $0.records } }
}
