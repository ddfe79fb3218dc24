import Foundation
import GRDB
import MMCore

/// The embedded ledger: one SQLite file in WAL mode, schema by `DatabaseMigrator`.
///
/// Writes go through GRDB's single writer, so batches from the ingest loop and from
/// `POST /v1/fills` are serialized; reads (positions at startup, ledger pages) run
/// concurrently on WAL snapshots.
public final class GRDBLedgerRepository: LedgerRepository {
    /// SQLite's `synchronous` level (see docs/architecture/state.md for the choice).
    public enum Durability: String, Sendable {
        /// WAL synced at checkpoints: a process crash loses nothing committed; a power loss
        /// may roll back the last commits, which the exchange's log redelivers.
        case normal = "NORMAL"
        /// WAL synced at every commit: nothing committed is lost even on power loss.
        case full = "FULL"
    }

    private let pool: DatabasePool
    private let symbols: [String]
    /// Most fills one transaction adds to the fill-log chain (`LedgerChain`).
    private let chainAdvanceLimit: Int

    public init(
        path: String, symbols: [String], durability: Durability = .normal, chainAdvanceLimit: Int = defaultChainAdvanceLimit
    ) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.label = "state-ledger"
        let synchronous = durability.rawValue
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        self.symbols = symbols
        self.chainAdvanceLimit = chainAdvanceLimit
        try Self.migrator.migrate(pool)
        try pool.write { db in
            for symbol in symbols {
                try db.execute(sql: "INSERT OR IGNORE INTO positions (symbol) VALUES (?)", arguments: [symbol])
            }
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: ledger, positions, cursor") { db in
            // seq is the rowid: the exchange's gap-free order is the ledger's physical order,
            // so paging by seq is a range scan.
            try db.execute(sql: """
                CREATE TABLE fills (
                    seq INTEGER PRIMARY KEY,
                    fill_id TEXT NOT NULL UNIQUE,
                    symbol TEXT NOT NULL,
                    side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
                    price INTEGER NOT NULL CHECK (price > 0),
                    qty INTEGER NOT NULL CHECK (qty > 0),
                    maker_order_id TEXT NOT NULL,
                    taker_order_id TEXT NOT NULL,
                    node TEXT NOT NULL,
                    fencing_token INTEGER NOT NULL,
                    ts_ms INTEGER NOT NULL,
                    applied_version INTEGER NOT NULL UNIQUE,
                    recorded_at_ms INTEGER NOT NULL
                );
                CREATE INDEX fills_by_symbol ON fills (symbol, seq);
                CREATE TABLE positions (
                    symbol TEXT PRIMARY KEY,
                    net_qty INTEGER NOT NULL DEFAULT 0,
                    avg_price INTEGER NOT NULL DEFAULT 0,
                    open_cost INTEGER NOT NULL DEFAULT 0,
                    realized_pnl INTEGER NOT NULL DEFAULT 0,
                    fill_count INTEGER NOT NULL DEFAULT 0,
                    last_fill_seq INTEGER NOT NULL DEFAULT 0,
                    version INTEGER NOT NULL DEFAULT 0
                );
                CREATE TABLE ledger_state (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    version INTEGER NOT NULL,
                    ingest_cursor INTEGER NOT NULL,
                    last_batch_at_ms INTEGER
                );
                INSERT INTO ledger_state (id, version, ingest_cursor, last_batch_at_ms) VALUES (1, 0, 0, NULL);
                """)
        }
        migrator.registerMigration("v2: fill-log chain and fill count") { db in
            // The chain starts empty (head = 32 zero bytes, through 0) and catches up with the
            // next writes and digest reads, at most `chainAdvanceLimit` fills per transaction,
            // so opening a big v1 ledger stays quick. Counting the fills is one pass over the
            // table's b-tree, once.
            try db.execute(sql: """
                ALTER TABLE ledger_state ADD COLUMN fill_count INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE ledger_state ADD COLUMN chain_through INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE ledger_state ADD COLUMN chain_head BLOB NOT NULL DEFAULT X'\(String(repeating: "00", count: 32))';
                UPDATE ledger_state SET fill_count = (SELECT count(*) FROM fills);
                """)
        }
        return migrator
    }

    // MARK: Writes

    public func record(_ fills: [Fill], atMs: EpochMs) async throws -> LedgerCommit {
        let symbols = self.symbols, limit = chainAdvanceLimit
        return try await pool.write { db in
            var batch = try BatchWriter(db: db, symbols: symbols, chainAdvanceLimit: limit)
            // Seq order, so positions fold in the exchange's order whatever order the pusher used.
            for fill in fills.sorted(by: { $0.seq < $1.seq }) {
                if let rejection = try batch.apply(fill, atMs: atMs) { throw rejection }
            }
            try batch.finish(cursor: nil, atMs: atMs)
            return LedgerCommit(recorded: batch.recorded, duplicates: batch.duplicates, view: batch.view)
        }
    }

    public func ingest(_ fills: [Fill], atMs: EpochMs) async throws -> IngestCommit {
        let symbols = self.symbols, limit = chainAdvanceLimit
        return try await pool.write { db in
            var batch = try BatchWriter(db: db, symbols: symbols, chainAdvanceLimit: limit)
            var cursor = batch.state.cursor
            var stoppedAt: LedgerRejection?
            for fill in fills {
                guard fill.seq == cursor + 1 else { throw LedgerRejection.notContiguous(expectedSeq: cursor + 1, gotSeq: fill.seq) }
                if let rejection = try batch.apply(fill, atMs: atMs) {
                    stoppedAt = rejection
                    break
                }
                cursor = fill.seq
            }
            try batch.finish(cursor: cursor, atMs: atMs)
            return IngestCommit(recorded: batch.recorded, duplicates: batch.duplicates, cursor: cursor, view: batch.view, stoppedAt: stoppedAt)
        }
    }

    // MARK: Reads

    public func positions() async throws -> PositionsView {
        let symbols = self.symbols
        return try await pool.read { db in
            let state = try Self.loadState(db)
            let positions = try Self.loadPositions(db)
            return PositionsView(version: state.version, positions: symbols.map { positions[$0] ?? .flat($0) })
        }
    }

    public func ledger(symbol: String?, after: Int64, limit: Int) async throws -> LedgerPage {
        try await pool.read { db in
            // One row more than asked tells whether another page exists.
            let rows: [Row]
            if let symbol {
                rows = try Row.fetchAll(
                    db.cachedStatement(sql: "SELECT * FROM fills WHERE symbol = ? AND seq > ? ORDER BY seq LIMIT ?"),
                    arguments: [symbol, after, limit + 1])
            } else {
                rows = try Row.fetchAll(
                    db.cachedStatement(sql: "SELECT * FROM fills WHERE seq > ? ORDER BY seq LIMIT ?"), arguments: [after, limit + 1])
            }
            let fills = try rows.prefix(limit).map(Self.fill(from:))
            return LedgerPage(fills: fills, nextAfter: rows.count > limit ? fills.last?.seq : nil)
        }
    }

    public func fill(seq: Int64) async throws -> Fill? {
        try await pool.read { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM fills WHERE seq = ?"), arguments: [seq]).map(Self.fill(from:))
        }
    }

    public func cursorState() async throws -> LedgerCursorState {
        try await pool.read { db in try Self.loadState(db) }
    }

    public func digest() async throws -> LedgerDigest {
        let (current, behind) = try await pool.read { db in
            let digest = try Self.loadDigest(db)
            // The fill after the chain's end is there: a remainder the writes left (migration
            // from v1, or the per-transaction limit). Otherwise the chain is as far as it goes.
            let next = try Bool.fetchOne(
                db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM fills WHERE seq = ?)"), arguments: [digest.chainedThroughSeq + 1]) ?? false
            return (digest, next)
        }
        guard behind else { return current }
        let limit = chainAdvanceLimit
        return try await pool.write { db in
            let stored = try Self.loadChain(db)
            var chain = try Self.chain(stored, limit: limit)
            try Self.advance(&chain, db: db)
            if chain.advanced > 0 {
                try db.cachedStatement(sql: "UPDATE ledger_state SET chain_through = ?, chain_head = ? WHERE id = 1")
                    .execute(arguments: [chain.through, Data(chain.head)])
            }
            return try Self.loadDigest(db)
        }
    }

    // MARK: Fill-log chain

    static func loadChain(_ db: Database) throws -> StoredChain {
        guard let row = try Row.fetchOne(db, sql: "SELECT chain_through, chain_head, fill_count FROM ledger_state WHERE id = 1") else {
            throw LedgerStorageError.missingStateRow
        }
        let head: Data = row["chain_head"]
        return StoredChain(through: row["chain_through"], head: [UInt8](head), fillCount: row["fill_count"])
    }

    static func chain(_ stored: StoredChain, limit: Int) throws -> LedgerChain {
        guard let chain = LedgerChain(through: stored.through, head: stored.head, limit: limit) else {
            throw LedgerStorageError.corruptRow("ledger_state has chain_through \(stored.through) and a chain_head of \(stored.head.count) bytes, not 32")
        }
        return chain
    }

    static func loadDigest(_ db: Database) throws -> LedgerDigest {
        let stored = try loadChain(db)
        let state = try loadState(db)
        let resumed = try Self.chain(stored, limit: 1)  // validates the stored head
        return LedgerDigest(cursor: state.cursor, chainedThroughSeq: resumed.through, fillLogSha256: resumed.digest.hexDigest(), fillCount: stored.fillCount)
    }

    /// Extends `chain` from the table: runs of consecutive seqs after its end, read a page at
    /// a time, until a gap, the table's end or the per-transaction limit. The window keeps
    /// only the gap-free run (seq = after + row number), so a gap costs no decoding.
    static func advance(_ chain: inout LedgerChain, db: Database) throws {
        while chain.nextReadCount > 0 {
            let count = chain.nextReadCount
            let after = chain.through
            let rows = try Row.fetchAll(
                db.cachedStatement(sql: """
                    SELECT * FROM (SELECT *, row_number() OVER (ORDER BY seq) AS rn FROM fills WHERE seq > ? AND seq <= ?)
                    WHERE seq = ? + rn ORDER BY seq
                    """), arguments: [after, after + Int64(count), after])
            chain.extend(with: try rows.map(fill(from:)))
            if chain.through < after + Int64(count) { return }
        }
    }

    // MARK: Row mapping

    static func loadState(_ db: Database) throws -> LedgerCursorState {
        guard let row = try Row.fetchOne(db, sql: "SELECT version, ingest_cursor, last_batch_at_ms FROM ledger_state WHERE id = 1") else {
            throw LedgerStorageError.missingStateRow
        }
        return LedgerCursorState(cursor: row["ingest_cursor"], version: row["version"], lastBatchAtMs: row["last_batch_at_ms"])
    }

    static func loadPositions(_ db: Database) throws -> [String: Position] {
        var positions: [String: Position] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT * FROM positions") {
            let position = Position(
                symbol: row["symbol"], netQty: row["net_qty"], avgPrice: row["avg_price"], openCost: row["open_cost"],
                realizedPnl: row["realized_pnl"], fillCount: row["fill_count"], lastFillSeq: row["last_fill_seq"], version: row["version"])
            positions[position.symbol] = position
        }
        return positions
    }

    static func fill(from row: Row) throws -> Fill {
        let sideName: String = row["side"]
        guard let side = Side(rawValue: sideName) else { throw LedgerStorageError.corruptRow("fill seq \(row["seq"] as Int64) has side '\(sideName)'") }
        return Fill(
            fillId: row["fill_id"], seq: row["seq"], symbol: row["symbol"], side: side, price: row["price"], qty: row["qty"],
            makerOrderId: row["maker_order_id"], takerOrderId: row["taker_order_id"], node: row["node"],
            fencingToken: row["fencing_token"], tsMs: row["ts_ms"])
    }
}

public enum LedgerStorageError: Error, CustomStringConvertible {
    case missingStateRow
    case corruptRow(String)

    public var description: String {
        switch self {
        case .missingStateRow: "state.sqlite has no ledger_state row: the file was edited by hand or is not this service's database"
        case .corruptRow(let what): "state.sqlite holds an impossible row (\(what)): restore it from a backup or rebuild it by re-ingesting the exchange's log"
        }
    }
}

/// One write transaction's work: classify each fill against the ledger, insert the new
/// ones, fold them into positions, then write positions and the ledger state once.
private struct BatchWriter {
    let db: Database
    let symbols: [String]
    var state: LedgerCursorState
    var positions: [String: Position]
    var changed: Set<String> = []
    /// Symbols that received a fill older than their last one: refolded from the ledger in
    /// seq order, so positions never depend on the order fills arrived in.
    var refold: Set<String> = []
    var recorded: [String] = []
    var duplicates: [String] = []
    /// The fills this batch inserted, to extend the chain without reading them back.
    var inserted: [Fill] = []
    let storedChain: StoredChain
    var chain: LedgerChain

    init(db: Database, symbols: [String], chainAdvanceLimit: Int) throws {
        self.db = db
        self.symbols = symbols
        state = try GRDBLedgerRepository.loadState(db)
        positions = try GRDBLedgerRepository.loadPositions(db)
        storedChain = try GRDBLedgerRepository.loadChain(db)
        chain = try GRDBLedgerRepository.chain(storedChain, limit: chainAdvanceLimit)
    }

    /// Applies one fill; returns why it was refused (nothing of it written), or nil.
    mutating func apply(_ fill: Fill, atMs: EpochMs) throws -> LedgerRejection? {
        if let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM fills WHERE fill_id = ?"), arguments: [fill.fillId]) {
            let stored = try GRDBLedgerRepository.fill(from: row)
            if stored == fill {
                duplicates.append(fill.fillId)
                return nil
            }
            return .conflictingDuplicate(fillId: fill.fillId, differingFields: stored.differingFields(from: fill), stored: stored, presented: fill)
        }
        if let owner = try String.fetchOne(db.cachedStatement(sql: "SELECT fill_id FROM fills WHERE seq = ?"), arguments: [fill.seq]) {
            return .seqConflict(seq: fill.seq, storedFillId: owner, presentedFillId: fill.fillId)
        }
        state.version += 1
        try db.cachedStatement(sql: """
            INSERT INTO fills (seq, fill_id, symbol, side, price, qty, maker_order_id, taker_order_id, node, fencing_token, ts_ms, applied_version, recorded_at_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [
                fill.seq, fill.fillId, fill.symbol, fill.side.rawValue, fill.price, fill.qty, fill.makerOrderId, fill.takerOrderId,
                fill.node, fill.fencingToken, fill.tsMs, state.version, atMs,
            ])
        recorded.append(fill.fillId)
        inserted.append(fill)
        changed.insert(fill.symbol)
        let current = positions[fill.symbol] ?? .flat(fill.symbol)
        if fill.seq > current.lastFillSeq {
            positions[fill.symbol] = PositionFold.apply(fill, to: current, version: state.version)
        } else {
            refold.insert(fill.symbol)
        }
        return nil
    }

    mutating func finish(cursor: Int64?, atMs: EpochMs) throws {
        for symbol in refold {
            var position = Position.flat(symbol)
            let rows = try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM fills WHERE symbol = ? ORDER BY seq"), arguments: [symbol])
            for row in rows { position = PositionFold.apply(try GRDBLedgerRepository.fill(from: row), to: position, version: state.version) }
            positions[symbol] = position
        }
        for symbol in changed {
            guard let position = positions[symbol] else { continue }
            try db.cachedStatement(sql: """
                INSERT INTO positions (symbol, net_qty, avg_price, open_cost, realized_pnl, fill_count, last_fill_seq, version)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (symbol) DO UPDATE SET net_qty = excluded.net_qty, avg_price = excluded.avg_price,
                    open_cost = excluded.open_cost, realized_pnl = excluded.realized_pnl, fill_count = excluded.fill_count,
                    last_fill_seq = excluded.last_fill_seq, version = excluded.version
                """).execute(arguments: [
                    position.symbol, position.netQty, position.avgPrice, position.openCost, position.realizedPnl,
                    position.fillCount, position.lastFillSeq, position.version,
                ])
        }
        if let cursor { state.cursor = cursor }
        if !recorded.isEmpty || !duplicates.isEmpty { state.lastBatchAtMs = atMs }
        // The chain: first the fills just inserted (in memory, the usual case: they continue
        // it), then whatever the table holds after its new end (fills pushed ahead that this
        // batch joined up, or a remainder), in the same transaction as the fills.
        chain.extend(with: inserted.sorted { $0.seq < $1.seq })
        try GRDBLedgerRepository.advance(&chain, db: db)
        try db.cachedStatement(sql: """
            UPDATE ledger_state SET version = ?, ingest_cursor = ?, last_batch_at_ms = ?, fill_count = ?, chain_through = ?, chain_head = ?
            WHERE id = 1
            """).execute(arguments: [
                state.version, state.cursor, state.lastBatchAtMs, storedChain.fillCount + Int64(recorded.count), chain.through, Data(chain.head),
            ])
    }

    var view: PositionsView {
        PositionsView(version: state.version, positions: symbols.map { positions[$0] ?? .flat($0) })
    }
}
