import Foundation
import GRDB
import MMCore

/// Where the coordinator's durable state lives: the event log, the per-symbol fencing
/// counters and the live member set (changed only on join, leave, expiry, death or a new
/// incarnation, never by a plain heartbeat). Live grants are deliberately not here (see the
/// architecture doc): their holders re-adopt them after a restart, and the startup window
/// makes forgetting the others safe.
///
/// An etcd-backed implementation would keep the same contract: `commit` is one transaction
/// (compare-and-swap on each token key so a token can only rise), `load` reads the counters
/// and the log head.
public protocol CoordinatorStore: Sendable {
    func load() async throws -> RecoveredCoordinatorState
    /// Makes the mutation durable atomically, or throws and changes nothing. Fencing tokens
    /// may only rise: an attempt to lower or repeat one is refused.
    func commit(_ mutation: CoordinatorMutation) async throws
    /// Events with seq > `after`, oldest first, at most `limit`.
    func events(after seq: Int64, limit: Int) async throws -> [ClusterEvent]
}

public enum CoordinatorStoreError: Error, CustomStringConvertible {
    case tokenWouldNotRise(symbol: String, token: Int64)

    public var description: String {
        switch self {
        case .tokenWouldNotRise(let symbol, let token):
            "refusing to store fencing token \(token) for '\(symbol)': the stored one is already as high (is another coordinator writing to this data directory?)"
        }
    }
}

/// The embedded default: SQLite through GRDB, WAL mode, `synchronous = FULL` so a token
/// committed before a grant is returned survives power loss, not only a process crash.
public final class GRDBCoordinatorStore: CoordinatorStore {
    private let writer: any DatabaseWriter

    /// A database file (created if missing).
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        writer = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(writer)
    }

    /// A private in-memory database (tests, benchmarks): survives "restarts" of an engine
    /// built on the same store object, not of the process.
    public init() throws {
        writer = try DatabaseQueue()
        try Self.migrator.migrate(writer)
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
        return migrator
    }

    public func load() async throws -> RecoveredCoordinatorState {
        try await writer.read { db in
            let head = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM event") ?? 0
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
    }

    public func events(after seq: Int64, limit: Int) async throws -> [ClusterEvent] {
        try await writer.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM event WHERE seq > ? ORDER BY seq LIMIT ?", arguments: [seq, limit]
            ).map { row in
                ClusterEvent(
                    seq: row["seq"], tsMs: row["ts_ms"], kind: row["kind"], symbol: row["symbol"], node: row["node"],
                    fencingToken: row["fencing_token"], expiresAtMs: row["expires_at_ms"], detail: row["detail"])
            }
        }
    }
}
