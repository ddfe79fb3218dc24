import Foundation
import GRDB
import Logging
import MMCore
import Synchronization

/// Where the coordinator's durable state lives: the event log, the per-symbol fencing
/// counters and the live member set (changed only on join, leave, expiry, death or a new
/// incarnation, never by a plain heartbeat). Live grants are deliberately not here (see the
/// architecture doc): their holders re-adopt them after a restart, and the startup window
/// makes forgetting the others safe.
///
/// An etcd-backed implementation would keep the same contract: `commit` is one transaction
/// (compare-and-swap on each token key so a token can only rise), `load` reads the counters
/// and the log head.
/// Reading an event log that retention may prune: both backends' stores.
public protocol PrunableEventLog: Sendable {
    /// Events with seq > `after`, oldest first, at most `limit`.
    func events(after seq: Int64, limit: Int) async throws -> [ClusterEvent]
    /// The same events and, read together with them, the seq through which the log was
    /// pruned (0 when nothing was), so a reader below it learns of the gap.
    func eventPage(after seq: Int64, limit: Int) async throws -> (events: [ClusterEvent], compactedThroughSeq: Int64)
    /// The compaction base: through which seq events were pruned and their fold.
    func eventBase() async throws -> (compactedThroughSeq: Int64, grants: GrantLogFold)
}

extension PrunableEventLog {
    /// A store that never prunes (test doubles).
    public func eventPage(after seq: Int64, limit: Int) async throws -> (events: [ClusterEvent], compactedThroughSeq: Int64) {
        (try await events(after: seq, limit: limit), 0)
    }
    public func eventBase() async throws -> (compactedThroughSeq: Int64, grants: GrantLogFold) { (0, GrantLogFold()) }
}

public protocol CoordinatorStore: PrunableEventLog {
    func load() async throws -> RecoveredCoordinatorState
    /// Makes the mutation durable atomically, or throws and changes nothing. Fencing tokens
    /// may only rise: an attempt to lower or repeat one is refused.
    func commit(_ mutation: CoordinatorMutation) async throws
}

/// When and how much of the event log is pruned, shared by both backends.
public struct EventRetention: Sendable, Hashable {
    /// The most recent events always kept.
    public var retain: Int64
    /// Pruning starts once this many events beyond `retain` have accumulated, so it runs in
    /// batches (a tenth of `retain`, at most 1,000) rather than once per event.
    public var slack: Int64
    /// Most events folded and deleted per transaction: a commit waits behind one batch at most.
    public var batch: Int

    public init(retain: Int64, slack: Int64? = nil, batch: Int = 1_000) {
        self.retain = max(1, retain)
        self.slack = max(1, slack ?? min(self.retain / 10, 1_000))
        self.batch = max(1, batch)
    }

    public static let `default` = EventRetention(retain: ClusterConfig.CoordinatorSettings.defaultEventsRetain)

    /// True when the log holding events (`compactedThrough`, `head`] is due for pruning.
    public func isDue(head: Int64, compactedThrough: Int64) -> Bool { head - compactedThrough >= retain + slack }
}

/// Runs one compaction at a time in the background: a commit that finds the log due starts it
/// and returns (O(1) on the request path); the task prunes batch by batch until the log is
/// within retention, then stops.
final class CompactionScheduler: Sendable {
    private struct State {
        var running = false
        /// The highest seq through which the log is known to be pruned.
        var compactedThrough: Int64 = 0
    }
    private let state = Mutex(State())

    var compactedThrough: Int64 { state.withLock { $0.compactedThrough } }

    func noteCompacted(through seq: Int64) { state.withLock { $0.compactedThrough = max($0.compactedThrough, seq) } }

    /// Starts `work` unless a run is in progress or the log is not due.
    func startIfDue(head: Int64, retention: EventRetention, _ work: @escaping @Sendable () async -> Void) {
        let start = state.withLock { state -> Bool in
            guard !state.running, retention.isDue(head: head, compactedThrough: state.compactedThrough) else { return false }
            state.running = true
            return true
        }
        guard start else { return }
        Task.detached(priority: .background) {
            await work()
            self.state.withLock { $0.running = false }
        }
    }
}

public enum CoordinatorStoreError: Error, CustomStringConvertible {
    case tokenWouldNotRise(symbol: String, token: Int64)
    /// The stored compaction base does not decode: never guessed at, since the grant check
    /// would continue from it.
    case unreadableBase(reason: String)

    public var description: String {
        switch self {
        case .unreadableBase(let reason):
            "the coordinator's event-log compaction base (table event_base) does not read: \(reason); is a newer version writing this data directory?"
        case .tokenWouldNotRise(let symbol, let token):
            "refusing to store fencing token \(token) for '\(symbol)': the stored one is already as high (is another coordinator writing to this data directory?)"
        }
    }
}

/// The embedded default: SQLite through GRDB, WAL mode, `synchronous = FULL` so a token
/// committed before a grant is returned survives power loss, not only a process crash.
public final class GRDBCoordinatorStore: CoordinatorStore {
    private let writer: any DatabaseWriter
    public let retention: EventRetention
    private let compaction = CompactionScheduler()
    private let logger: Logger

    /// A database file (created if missing).
    public init(path: String, retention: EventRetention = .default, logger: Logger = Logger(label: "mm.coordinator.store")) throws {
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        writer = try DatabasePool(path: path, configuration: configuration)
        self.retention = retention
        self.logger = logger
        try Self.migrator.migrate(writer)
        try noteStoredBase()
    }

    /// A private in-memory database (tests, benchmarks): survives "restarts" of an engine
    /// built on the same store object, not of the process.
    public init(retention: EventRetention = .default, logger: Logger = Logger(label: "mm.coordinator.store")) throws {
        writer = try DatabaseQueue()
        self.retention = retention
        self.logger = logger
        try Self.migrator.migrate(writer)
        try noteStoredBase()
    }

    private func noteStoredBase() throws {
        let through = try writer.read { db in try Int64.fetchOne(db, sql: "SELECT through_seq FROM event_base WHERE id = 1") ?? 0 }
        compaction.noteCompacted(through: through)
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE event (
                        seq INTEGER PRIMARY KEY,
                        ts_ms INTEGER NOT NULL,
                        kind TEXT NOT NULL,
                        symbol TEXT,
                        node TEXT,
                        fencing_token INTEGER,
                        expires_at_ms INTEGER,
                        detail TEXT NOT NULL
                    );
                    CREATE TABLE fencing (
                        symbol TEXT PRIMARY KEY,
                        token INTEGER NOT NULL CHECK (token > 0)
                    );
                    """)
        }
        migrator.registerMigration("v2-members") { db in
            try db.execute(
                sql: """
                    CREATE TABLE member (
                        node TEXT PRIMARY KEY,
                        address TEXT NOT NULL,
                        incarnation TEXT NOT NULL,
                        joined_at_ms INTEGER NOT NULL
                    );
                    """)
        }
        migrator.registerMigration("v3-event-base") { db in
            // One row: the seq through which events were pruned and their fold (JSON of
            // GrantLogFold), written in the same transaction as the delete.
            try db.execute(
                sql: """
                    CREATE TABLE event_base (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        through_seq INTEGER NOT NULL,
                        grants TEXT NOT NULL
                    );
                    """)
        }
        return migrator
    }

    public func load() async throws -> RecoveredCoordinatorState {
        try await writer.read { db in
            // The base too: were every event pruned, seqs must still continue after the last one.
            let head = max(
                try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM event") ?? 0,
                try Int64.fetchOne(db, sql: "SELECT through_seq FROM event_base WHERE id = 1") ?? 0)
            var tokens: [String: Int64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT symbol, token FROM fencing") {
                tokens[row["symbol"]] = row["token"]
            }
            let members = try Row.fetchAll(db, sql: "SELECT node, address, incarnation, joined_at_ms FROM member ORDER BY node").map { row in
                PersistedMember(node: row["node"], address: row["address"], incarnation: row["incarnation"], joinedAtMs: row["joined_at_ms"])
            }
            return RecoveredCoordinatorState(headSeq: head, fencingTokens: tokens, members: members)
        }
    }

    public func commit(_ mutation: CoordinatorMutation) async throws {
        guard !mutation.isEmpty else { return }
        try await writer.write { db in
            for (symbol, token) in mutation.fencingTokens.sorted(by: { $0.key < $1.key }) {
                try db.execute(
                    sql: """
                        INSERT INTO fencing (symbol, token) VALUES (?, ?)
                        ON CONFLICT(symbol) DO UPDATE SET token = excluded.token WHERE excluded.token > fencing.token
                        """,
                    arguments: [symbol, token])
                guard db.changesCount == 1 else { throw CoordinatorStoreError.tokenWouldNotRise(symbol: symbol, token: token) }
            }
            for node in mutation.departedMembers.sorted() {
                try db.execute(sql: "DELETE FROM member WHERE node = ?", arguments: [node])
            }
            for member in mutation.aliveMembers.values.sorted(by: { $0.node < $1.node }) {
                try db.execute(
                    sql: """
                        INSERT INTO member (node, address, incarnation, joined_at_ms) VALUES (?, ?, ?, ?)
                        ON CONFLICT(node) DO UPDATE SET address = excluded.address, incarnation = excluded.incarnation, joined_at_ms = excluded.joined_at_ms
                        """,
                    arguments: [member.node, member.address, member.incarnation, member.joinedAtMs])
            }
            // Explicit seqs: a collision (a second writer) fails the whole transaction.
            for event in mutation.events {
                try db.execute(
                    sql: "INSERT INTO event (seq, ts_ms, kind, symbol, node, fencing_token, expires_at_ms, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    arguments: [event.seq, event.tsMs, event.kind, event.symbol, event.node, event.fencingToken, event.expiresAtMs, event.detail])
            }
        }
        if let head = mutation.events.last?.seq {
            compaction.startIfDue(head: head, retention: retention) { [self] in
                do { _ = try await compact() } catch {
                    // Nothing is lost: the events stay until the next commit finds the log due again.
                    logger.error("pruning the coordinator's event log failed (will retry): \(error)")
                }
            }
        }
    }

    /// Prunes the oldest events until at most `retention.retain` remain, one transaction per
    /// batch: each folds its events onto the stored base, deletes them and stores the new base,
    /// so the base and the retained events always add up to the whole history. Returns how
    /// many events were pruned. Runs in the background after commits; tests call it directly.
    @discardableResult
    public func compact() async throws -> Int {
        var pruned = 0
        while true {
            let batch = try await writer.write { [retention] db -> (count: Int, through: Int64) in
                let stored = try Row.fetchOne(db, sql: "SELECT through_seq, grants FROM event_base WHERE id = 1")
                let through: Int64 = stored?["through_seq"] ?? 0
                var fold = try stored.map { row in try Self.decodeFold(row["grants"]) } ?? GrantLogFold()
                let head = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM event") ?? 0
                let rows = try Row.fetchAll(
                    db, sql: "SELECT * FROM event WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                    arguments: [through, head - retention.retain, retention.batch])
                guard let last: Int64 = rows.last?["seq"] else { return (0, through) }
                for row in rows { _ = fold.apply(Self.event(row)) }
                try db.execute(sql: "DELETE FROM event WHERE seq <= ?", arguments: [last])
                try db.execute(
                    sql: """
                        INSERT INTO event_base (id, through_seq, grants) VALUES (1, ?, ?)
                        ON CONFLICT(id) DO UPDATE SET through_seq = excluded.through_seq, grants = excluded.grants
                        """,
                    arguments: [last, String(decoding: try MMJSON.encode(fold), as: UTF8.self)])
                return (rows.count, last)
            }
            compaction.noteCompacted(through: batch.through)
            pruned += batch.count
            if batch.count < retention.batch { return pruned }
        }
    }

    public func eventBase() async throws -> (compactedThroughSeq: Int64, grants: GrantLogFold) {
        try await writer.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT through_seq, grants FROM event_base WHERE id = 1") else { return (0, GrantLogFold()) }
            return (row["through_seq"], try Self.decodeFold(row["grants"]))
        }
    }

    public func eventPage(after seq: Int64, limit: Int) async throws -> (events: [ClusterEvent], compactedThroughSeq: Int64) {
        // One read transaction: the events and the base they continue are the same moment's.
        try await writer.read { db in
            let through = try Int64.fetchOne(db, sql: "SELECT through_seq FROM event_base WHERE id = 1") ?? 0
            let events = try Row.fetchAll(db, sql: "SELECT * FROM event WHERE seq > ? ORDER BY seq LIMIT ?", arguments: [seq, limit]).map(Self.event)
            return (events, through)
        }
    }

    private static func decodeFold(_ text: String) throws -> GrantLogFold {
        do {
            return try MMJSON.decode(GrantLogFold.self, from: Data(text.utf8))
        } catch {
            throw CoordinatorStoreError.unreadableBase(reason: MMJSON.describe(error))
        }
    }

    private static func event(_ row: Row) -> ClusterEvent {
        ClusterEvent(
            seq: row["seq"], tsMs: row["ts_ms"], kind: row["kind"], symbol: row["symbol"], node: row["node"],
            fencingToken: row["fencing_token"], expiresAtMs: row["expires_at_ms"], detail: row["detail"])
    }

    public func events(after seq: Int64, limit: Int) async throws -> [ClusterEvent] {
        try await writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM event WHERE seq > ? ORDER BY seq LIMIT ?", arguments: [seq, limit]).map(Self.event)
        }
    }
}
