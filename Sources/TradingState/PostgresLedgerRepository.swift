import Foundation
import Logging
import MMCore
import PostgresNIO
import Synchronization

/// The ledger on PostgreSQL: the same contract and guarantees as `GRDBLedgerRepository`.
///
/// - One transaction per batch: the fills, their positions, the ledger version and the ingest
///   cursor commit together or not at all.
/// - Writers never interleave, across connections and processes: every writing transaction
///   first takes `pg_advisory_xact_lock(writerLockKey)` (released by COMMIT/ROLLBACK, also
///   when the connection or the process dies), which replaces GRDB's single writer.
/// - Exactly once: under that lock one `SELECT … WHERE fill_id = ANY($1) OR seq = ANY($2)`
///   fetches what the ledger already holds for the batch; each fill is classified in seq
///   order (duplicate, conflicting duplicate, seq conflict, new) exactly as GRDB does, and
///   only the new fills of the valid prefix are inserted, in one multi-row INSERT from
///   `unnest` arrays. A conflict therefore never aborts the transaction: an ingest batch
///   commits exactly the prefix before it (a pushed batch is refused whole, as on SQLite).
/// - Schema by versioned migrations recorded in `schema_version`; a ledger whose version is
///   newer than this build's is refused (`PostgresLedgerError.schemaTooNew`).
/// - Every value is bound as a parameter; prices, quantities and cash are BIGINT.
///
/// Open it with `open(settings:symbols:)`, which connects once directly to report an
/// unreachable server or refused credentials as typed errors at once, migrates, and then
/// starts the connection pool (`PostgresClient`) in a task of its own; `close()` stops it.
public final class PostgresLedgerRepository: LedgerRepository {
    /// The schema version this build creates and understands.
    public static let knownSchemaVersion = migrations.last!.version
    /// The advisory lock every writing transaction holds ("mmledger" in ASCII).
    static let writerLockKey: Int64 = 0x6D6D_6C65_6467_6572

    public let settings: PostgresLedgerSettings
    let client: PostgresClient
    private let symbols: [String]
    private let logger: Logger
    private let runTask: Task<Void, Never>
    private let leadership: PostgresIngestLeadership
    /// Most fills one transaction adds to the fill-log chain (`LedgerChain`).
    private let chainAdvanceLimit: Int

    private init(settings: PostgresLedgerSettings, symbols: [String], logger: Logger, chainAdvanceLimit: Int) {
        self.settings = settings
        self.symbols = symbols
        self.chainAdvanceLimit = chainAdvanceLimit
        self.logger = logger
        // The pool logs every failed reconnect at info; during an outage that is one line per
        // backoff step, while the typed errors of the calls already say what is wrong.
        var poolLogger = logger
        poolLogger.logLevel = max(logger.logLevel, .warning)
        let client = PostgresClient(configuration: settings.clientConfiguration(), backgroundLogger: poolLogger)
        self.client = client
        runTask = Task { await client.run() }
        leadership = PostgresIngestLeadership(settings: settings, logger: logger)
    }

    /// Connects, checks credentials, creates or migrates the schema and inserts a flat
    /// position row for every symbol. Throws `PostgresLedgerError` saying what to fix.
    public static func open(
        settings: PostgresLedgerSettings, symbols: [String], logger: Logger = Logger(label: "mm.state.postgres"),
        chainAdvanceLimit: Int = defaultChainAdvanceLimit
    ) async throws -> PostgresLedgerRepository {
        let configuration = try settings.connectionConfiguration()
        let version = try await Deadline.run(settings: settings, operation: "connect and migrate", connecting: true, logger: logger) { slot in
            let connection: PostgresConnection
            do {
                connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
            } catch {
                throw PostgresLedgerError.classify(error, settings: settings, operation: "connect", connecting: true)
            }
            guard slot.attach(connection) else {
                try? await connection.close()
                throw CancellationError()
            }
            do {
                let version = try await Self.migrate(connection, settings: settings, symbols: symbols, slot: slot, logger: logger)
                slot.detach()
                try? await connection.close()
                return version
            } catch {
                slot.detach()
                try? await connection.close()
                throw error
            }
        }
        logger.info("ledger on PostgreSQL \(settings) (schema version \(version))")
        return PostgresLedgerRepository(settings: settings, symbols: symbols, logger: logger, chainAdvanceLimit: chainAdvanceLimit)
    }

    /// One replica at a time pulls the exchange's log (`PostgresIngestLeadership`).
    public func holdsIngestLeadership() async -> Bool { await leadership.check() }

    /// Stops the connection pool and waits until its connections are closed.
    public func close() async {
        await leadership.release()
        runTask.cancel()
        await runTask.value
    }

    deinit { runTask.cancel() }

    // MARK: Schema

    struct Migration: Sendable {
        let version: Int
        let description: String
        let statements: [String]
    }

    /// Append only: a released migration is never edited, the next change is a new version.
    static let migrations: [Migration] = [
        Migration(version: 1, description: "ledger, positions, cursor", statements: [
            // seq is the primary key: paging in the exchange's order is an index range scan.
            """
            CREATE TABLE fills (
                seq BIGINT PRIMARY KEY CHECK (seq > 0),
                fill_id TEXT NOT NULL UNIQUE,
                symbol TEXT NOT NULL,
                side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
                price BIGINT NOT NULL CHECK (price > 0),
                qty BIGINT NOT NULL CHECK (qty > 0),
                maker_order_id TEXT NOT NULL,
                taker_order_id TEXT NOT NULL,
                node TEXT NOT NULL,
                fencing_token BIGINT NOT NULL,
                ts_ms BIGINT NOT NULL,
                applied_version BIGINT NOT NULL UNIQUE,
                recorded_at_ms BIGINT NOT NULL
            )
            """,
            "CREATE INDEX fills_by_symbol ON fills (symbol, seq)",
            """
            CREATE TABLE positions (
                symbol TEXT PRIMARY KEY,
                net_qty BIGINT NOT NULL DEFAULT 0,
                avg_price BIGINT NOT NULL DEFAULT 0,
                open_cost BIGINT NOT NULL DEFAULT 0,
                realized_pnl BIGINT NOT NULL DEFAULT 0,
                fill_count BIGINT NOT NULL DEFAULT 0,
                last_fill_seq BIGINT NOT NULL DEFAULT 0,
                version BIGINT NOT NULL DEFAULT 0
            )
            """,
            """
            CREATE TABLE ledger_state (
                id SMALLINT PRIMARY KEY CHECK (id = 1),
                version BIGINT NOT NULL,
                ingest_cursor BIGINT NOT NULL,
                last_batch_at_ms BIGINT
            )
            """,
            "INSERT INTO ledger_state (id, version, ingest_cursor, last_batch_at_ms) VALUES (1, 0, 0, NULL)",
        ]),
        // The chain starts empty (head = 32 zero bytes, through 0) and catches up with the next
        // writes and digest reads, at most `chainAdvanceLimit` fills per transaction, so opening
        // a big v1 ledger stays quick; the count is one scan, once.
        Migration(version: 2, description: "fill-log chain and fill count", statements: [
            """
            ALTER TABLE ledger_state
                ADD COLUMN fill_count BIGINT NOT NULL DEFAULT 0,
                ADD COLUMN chain_through BIGINT NOT NULL DEFAULT 0 CHECK (chain_through >= 0),
                ADD COLUMN chain_head BYTEA NOT NULL DEFAULT decode(repeat('00', 32), 'hex') CHECK (octet_length(chain_head) = 32)
            """,
            "UPDATE ledger_state SET fill_count = (SELECT count(*) FROM fills)",
        ]),
    ]

    /// Under the writer lock (so two processes starting together do not both migrate):
    /// create the schema and `schema_version` if missing, refuse a newer version, apply the
    /// missing migrations, add flat positions for new symbols. Returns the schema version.
    static func migrate(
        _ connection: PostgresConnection, settings: PostgresLedgerSettings, symbols: [String], slot: ConnectionSlot, logger: Logger
    ) async throws -> Int {
        try await inTransaction(connection, slot: slot, logger: logger) { connection in
            try await run("SELECT pg_advisory_xact_lock(\(writerLockKey))", on: connection, logger: logger)
            if let schema = settings.schema {
                // An identifier cannot be a bound parameter; `schema` is validated to [a-z0-9_].
                try await run(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \"\(schema)\""), on: connection, logger: logger)
            }
            try await run(
                """
                CREATE TABLE IF NOT EXISTS schema_version (
                    version INTEGER PRIMARY KEY,
                    description TEXT NOT NULL,
                    applied_at_ms BIGINT NOT NULL
                )
                """, on: connection, logger: logger)
            var current = 0
            for try await found in try await connection.query("SELECT coalesce(max(version), 0)::bigint FROM schema_version", logger: logger)
                .decode(Int64.self) {
                current = Int(found)
            }
            guard current <= knownSchemaVersion else {
                throw PostgresLedgerError.schemaTooNew(found: current, known: knownSchemaVersion, ledger: settings.ledgerName)
            }
            let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
            for migration in migrations where migration.version > current {
                for statement in migration.statements {
                    try await run(PostgresQuery(unsafeSQL: statement), on: connection, logger: logger)
                }
                try await run(
                    "INSERT INTO schema_version (version, description, applied_at_ms) VALUES (\(migration.version), \(migration.description), \(nowMs))",
                    on: connection, logger: logger)
                logger.info("PostgreSQL ledger in \(settings.ledgerName): applied schema migration v\(migration.version) (\(migration.description))")
                current = migration.version
            }
            try await run(
                "INSERT INTO positions (symbol) SELECT unnest(\(symbols)::text[]) ON CONFLICT (symbol) DO NOTHING", on: connection, logger: logger)
            return current
        }
    }

    // MARK: Writes

    public func record(_ fills: [Fill], atMs: EpochMs) async throws -> LedgerCommit {
        let symbols = self.symbols, limit = chainAdvanceLimit
        let outcome = try await write("record \(fills.count) fills") { connection, logger in
            var batch = try await Self.beginBatch(fills, on: connection, symbols: symbols, chainAdvanceLimit: limit, logger: logger)
            // Seq order, so positions fold in the exchange's order whatever order the pusher used.
            for fill in fills.sorted(by: { $0.seq < $1.seq }) {
                if let rejection = batch.apply(fill) { throw rejection }
            }
            try await Self.finishBatch(&batch, cursor: nil, atMs: atMs, on: connection, logger: logger)
            return batch
        }
        return LedgerCommit(recorded: outcome.recorded, duplicates: outcome.duplicates, view: outcome.view)
    }

    public func ingest(_ fills: [Fill], atMs: EpochMs) async throws -> IngestCommit {
        let symbols = self.symbols, limit = chainAdvanceLimit
        let (outcome, cursor, stoppedAt) = try await write("ingest \(fills.count) fills") { connection, logger in
            var batch = try await Self.beginBatch(fills, on: connection, symbols: symbols, chainAdvanceLimit: limit, logger: logger)
            var cursor = batch.state.cursor
            var stoppedAt: LedgerRejection?
            for fill in fills {
                guard fill.seq == cursor + 1 else { throw LedgerRejection.notContiguous(expectedSeq: cursor + 1, gotSeq: fill.seq) }
                if let rejection = batch.apply(fill) {
                    stoppedAt = rejection
                    break
                }
                cursor = fill.seq
            }
            try await Self.finishBatch(&batch, cursor: cursor, atMs: atMs, on: connection, logger: logger)
            return (batch, cursor, stoppedAt)
        }
        return IngestCommit(recorded: outcome.recorded, duplicates: outcome.duplicates, cursor: cursor, view: outcome.view, stoppedAt: stoppedAt)
    }

    /// One writing transaction holding the writer lock, with a deadline and typed errors.
    private func write<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T
    ) async throws -> T {
        let client = self.client
        return try await Deadline.run(settings: settings, operation: operation, connecting: false, logger: logger) { slot in
            try await client.withConnection { connection in
                guard slot.attach(connection) else { throw CancellationError() }
                defer { slot.detach() }
                return try await Self.inTransaction(connection, slot: slot, logger: slot.logger) { connection in
                    try await Self.run("SELECT pg_advisory_xact_lock(\(Self.writerLockKey))", on: connection, logger: slot.logger)
                    return try await body(connection, slot.logger)
                }
            }
        }
    }

    /// Loads the state, the positions and every stored fill sharing an id or a seq with the
    /// batch. Runs under the writer lock, so nothing changes them until COMMIT.
    private static func beginBatch(
        _ fills: [Fill], on connection: PostgresConnection, symbols: [String], chainAdvanceLimit: Int, logger: Logger
    ) async throws -> PostgresBatch {
        guard let loaded = try await loadBatchState(connection, logger: logger) else {
            throw PostgresLedgerError.missingStateRow(ledger: "this database")
        }
        let (state, stored, maxSeq) = loaded
        let chain = try Self.chain(stored, limit: chainAdvanceLimit)
        let positions = try await loadPositions(connection, logger: logger)
        let ids = fills.map(\.fillId)
        let seqs = fills.map(\.seq)
        let existing = try await fetchFills(
            "SELECT \(unescaped: fillColumns) FROM fills WHERE fill_id = ANY(\(ids)::text[]) OR seq = ANY(\(seqs)::bigint[])",
            on: connection, logger: logger)
        return PostgresBatch(symbols: symbols, state: state, positions: positions, existing: existing, storedChain: stored, chain: chain, maxSeq: maxSeq)
    }

    /// Inserts the batch's new fills, refolds late symbols, writes positions and the state row.
    private static func finishBatch(_ batch: inout PostgresBatch, cursor: Int64?, atMs: EpochMs, on connection: PostgresConnection, logger: Logger) async throws {
        if !batch.inserts.isEmpty {
            let rows = batch.inserts
            let seqs = rows.map(\.fill.seq), ids = rows.map(\.fill.fillId), symbols = rows.map(\.fill.symbol)
            let sides = rows.map(\.fill.side.rawValue), prices = rows.map(\.fill.price), qtys = rows.map(\.fill.qty)
            let makers = rows.map(\.fill.makerOrderId), takers = rows.map(\.fill.takerOrderId), nodes = rows.map(\.fill.node)
            let tokens = rows.map(\.fill.fencingToken), timestamps = rows.map(\.fill.tsMs), versions = rows.map(\.version)
            // ON CONFLICT DO NOTHING + the count: a row another writer slipped in without the
            // lock fails this batch cleanly (rolled back) instead of half-applying it.
            let query: PostgresQuery = """
                WITH inserted AS (
                    INSERT INTO fills (seq, fill_id, symbol, side, price, qty, maker_order_id, taker_order_id, node, fencing_token, ts_ms, applied_version, recorded_at_ms)
                    SELECT f.seq, f.fill_id, f.symbol, f.side, f.price, f.qty, f.maker_order_id, f.taker_order_id, f.node, f.fencing_token, f.ts_ms, f.applied_version, \(atMs)::bigint
                    FROM unnest(\(seqs)::bigint[], \(ids)::text[], \(symbols)::text[], \(sides)::text[], \(prices)::bigint[], \(qtys)::bigint[],
                                \(makers)::text[], \(takers)::text[], \(nodes)::text[], \(tokens)::bigint[], \(timestamps)::bigint[], \(versions)::bigint[])
                        AS f(seq, fill_id, symbol, side, price, qty, maker_order_id, taker_order_id, node, fencing_token, ts_ms, applied_version)
                    ON CONFLICT DO NOTHING
                    RETURNING 1
                )
                SELECT count(*)::bigint FROM inserted
                """
            var inserted: Int64 = 0
            for try await count in try await connection.query(query, logger: logger).decode(Int64.self) { inserted = count }
            guard inserted == Int64(rows.count) else {
                throw PostgresLedgerError.server(
                    operation: "insert fills", sqlState: "23505",
                    message: "\(Int64(rows.count) - inserted) of \(rows.count) fills were already there although the writer lock was held: another writer changes the ledger without the lock; the batch was rolled back")
            }
        }
        for symbol in batch.refold.sorted() {
            let fills = try await fetchFills(
                "SELECT \(unescaped: fillColumns) FROM fills WHERE symbol = \(symbol) ORDER BY seq", on: connection, logger: logger)
            batch.refold(symbol, from: fills)
        }
        let changed = batch.changed.sorted().compactMap { batch.positions[$0] }
        if !changed.isEmpty {
            try await run(
                """
                INSERT INTO positions (symbol, net_qty, avg_price, open_cost, realized_pnl, fill_count, last_fill_seq, version)
                SELECT * FROM unnest(\(changed.map(\.symbol))::text[], \(changed.map(\.netQty))::bigint[], \(changed.map(\.avgPrice))::bigint[],
                                     \(changed.map(\.openCost))::bigint[], \(changed.map(\.realizedPnl))::bigint[], \(changed.map(\.fillCount))::bigint[],
                                     \(changed.map(\.lastFillSeq))::bigint[], \(changed.map(\.version))::bigint[])
                ON CONFLICT (symbol) DO UPDATE SET net_qty = EXCLUDED.net_qty, avg_price = EXCLUDED.avg_price,
                    open_cost = EXCLUDED.open_cost, realized_pnl = EXCLUDED.realized_pnl, fill_count = EXCLUDED.fill_count,
                    last_fill_seq = EXCLUDED.last_fill_seq, version = EXCLUDED.version
                """, on: connection, logger: logger)
        }
        if let cursor { batch.state.cursor = cursor }
        if !batch.recorded.isEmpty || !batch.duplicates.isEmpty { batch.state.lastBatchAtMs = atMs }
        // The chain: first the fills just inserted (in memory, the usual case: they continue
        // it); the table is read only if it holds fills beyond the chain's new end (pushed
        // ahead and now joined up, or a remainder), so the usual batch costs no round trip.
        var chain = batch.chain
        chain.extend(with: batch.inserts.map(\.fill).sorted { $0.seq < $1.seq })
        let maxSeq = max(batch.maxSeq, batch.inserts.map(\.fill.seq).max() ?? 0)
        if chain.through < maxSeq { try await advance(&chain, on: connection, logger: logger) }
        let fillCount = batch.storedChain.fillCount + Int64(batch.recorded.count)
        try await run(
            """
            UPDATE ledger_state SET version = \(batch.state.version), ingest_cursor = \(batch.state.cursor),
                last_batch_at_ms = \(batch.state.lastBatchAtMs), fill_count = \(fillCount),
                chain_through = \(chain.through), chain_head = \(Data(chain.head)) WHERE id = 1
            """, on: connection, logger: logger)
    }

    // MARK: Fill-log chain

    static func chain(_ stored: StoredChain, limit: Int) throws -> LedgerChain {
        guard let chain = LedgerChain(through: stored.through, head: stored.head, limit: limit) else {
            throw PostgresLedgerError.corruptRow("ledger_state has chain_through \(stored.through) and a chain_head of \(stored.head.count) bytes, not 32")
        }
        return chain
    }

    /// Extends `chain` from the table: runs of consecutive seqs after its end, a page per
    /// statement, until a gap, the table's end or the per-transaction limit. The window keeps
    /// only the gap-free run (seq = after + row number), so a gap sends no rows.
    static func advance(_ chain: inout LedgerChain, on connection: PostgresConnection, logger: Logger) async throws {
        while chain.nextReadCount > 0 {
            let count = Int64(chain.nextReadCount)
            let after = chain.through
            let upper = after + count
            let run = try await fetchFills(
                """
                SELECT \(unescaped: fillColumns) FROM (
                    SELECT \(unescaped: fillColumns), row_number() OVER (ORDER BY seq) AS rn FROM fills WHERE seq > \(after) AND seq <= \(upper)
                ) AS r WHERE seq = \(after)::bigint + rn ORDER BY seq
                """, on: connection, logger: logger)
            chain.extend(with: run)
            if chain.through < upper { return }
        }
    }

    /// The state row with the chain and the ledger's highest seq, in one statement.
    static func loadBatchState(_ connection: PostgresConnection, logger: Logger) async throws -> (LedgerCursorState, StoredChain, Int64)? {
        var found: (LedgerCursorState, StoredChain, Int64)?
        let rows = try await connection.query(
            """
            SELECT version, ingest_cursor, last_batch_at_ms, chain_through, chain_head, fill_count,
                   (SELECT coalesce(max(seq), 0) FROM fills)::bigint
            FROM ledger_state WHERE id = 1
            """, logger: logger
        ).decode((Int64, Int64, Int64?, Int64, Data, Int64, Int64).self)
        for try await (version, cursor, lastBatchAtMs, through, head, fillCount, maxSeq) in rows {
            found = (
                LedgerCursorState(cursor: cursor, version: version, lastBatchAtMs: lastBatchAtMs),
                StoredChain(through: through, head: [UInt8](head), fillCount: fillCount), maxSeq
            )
        }
        return found
    }

    /// The digest as stored, and whether the fill after the chain's end is in the ledger.
    static func loadDigest(_ connection: PostgresConnection, logger: Logger) async throws -> (LedgerDigest, behind: Bool) {
        var found: (LedgerDigest, behind: Bool)?
        let rows = try await connection.query(
            """
            SELECT ingest_cursor, chain_through, chain_head, fill_count, EXISTS (SELECT 1 FROM fills WHERE seq = s.chain_through + 1)
            FROM ledger_state s WHERE id = 1
            """, logger: logger
        ).decode((Int64, Int64, Data, Int64, Bool).self)
        for try await (cursor, through, head, fillCount, behind) in rows {
            let resumed = try chain(StoredChain(through: through, head: [UInt8](head), fillCount: fillCount), limit: 1)
            found = (LedgerDigest(cursor: cursor, chainedThroughSeq: through, fillLogSha256: resumed.digest.hexDigest(), fillCount: fillCount), behind)
        }
        guard let found else { throw PostgresLedgerError.missingStateRow(ledger: "this database") }
        return found
    }

    // MARK: Reads

    public func positions() async throws -> PositionsView {
        let symbols = self.symbols
        return try await read("read positions") { connection, logger in
            // One statement, one snapshot: the version and the positions belong together.
            let rows = try await connection.query(
                """
                SELECT s.version, p.symbol, p.net_qty, p.avg_price, p.open_cost, p.realized_pnl, p.fill_count, p.last_fill_seq, p.version
                FROM ledger_state s LEFT JOIN positions p ON true WHERE s.id = 1
                """, logger: logger
            ).decode((Int64, String?, Int64?, Int64?, Int64?, Int64?, Int64?, Int64?, Int64?).self)
            var version: Int64?
            var positions: [String: Position] = [:]
            for try await (ledgerVersion, symbol, netQty, avgPrice, openCost, realizedPnl, fillCount, lastFillSeq, positionVersion) in rows {
                version = ledgerVersion
                guard let symbol else { continue }
                positions[symbol] = Position(
                    symbol: symbol, netQty: netQty ?? 0, avgPrice: avgPrice ?? 0, openCost: openCost ?? 0, realizedPnl: realizedPnl ?? 0,
                    fillCount: fillCount ?? 0, lastFillSeq: lastFillSeq ?? 0, version: positionVersion ?? 0)
            }
            guard let version else { throw PostgresLedgerError.missingStateRow(ledger: "this database") }
            return PositionsView(version: version, positions: symbols.map { positions[$0] ?? .flat($0) })
        }
    }

    public func ledger(symbol: String?, after: Int64, limit: Int) async throws -> LedgerPage {
        try await read("read ledger page") { connection, logger in
            // One row more than asked tells whether another page exists.
            let fetch = Int64(max(0, limit)) + 1
            let rows: [Fill]
            if let symbol {
                rows = try await Self.fetchFills(
                    "SELECT \(unescaped: Self.fillColumns) FROM fills WHERE symbol = \(symbol) AND seq > \(after) ORDER BY seq LIMIT \(fetch)",
                    on: connection, logger: logger)
            } else {
                rows = try await Self.fetchFills(
                    "SELECT \(unescaped: Self.fillColumns) FROM fills WHERE seq > \(after) ORDER BY seq LIMIT \(fetch)", on: connection, logger: logger)
            }
            let fills = Array(rows.prefix(limit))
            return LedgerPage(fills: fills, nextAfter: rows.count > limit ? fills.last?.seq : nil)
        }
    }

    public func fill(seq: Int64) async throws -> Fill? {
        try await read("read fill \(seq)") { connection, logger in
            try await Self.fetchFills("SELECT \(unescaped: Self.fillColumns) FROM fills WHERE seq = \(seq)", on: connection, logger: logger).first
        }
    }

    public func cursorState() async throws -> LedgerCursorState {
        try await read("read cursor") { connection, logger in
            guard let state = try await Self.loadState(connection, logger: logger) else {
                throw PostgresLedgerError.missingStateRow(ledger: "this database")
            }
            return state
        }
    }

    public func digest() async throws -> LedgerDigest {
        let (current, behind) = try await read("read fill-log digest") { connection, logger in try await Self.loadDigest(connection, logger: logger) }
        // The fill after the chain's end is there: a remainder the writes left (migration from
        // v1, or the per-transaction limit). Advance it by up to one limit, under the writer lock.
        guard behind else { return current }
        let limit = chainAdvanceLimit
        return try await write("advance fill-log chain") { connection, logger in
            guard let stored = try await Self.loadBatchState(connection, logger: logger)?.1 else {
                throw PostgresLedgerError.missingStateRow(ledger: "this database")
            }
            var chain = try Self.chain(stored, limit: limit)
            try await Self.advance(&chain, on: connection, logger: logger)
            if chain.advanced > 0 {
                try await Self.run(
                    "UPDATE ledger_state SET chain_through = \(chain.through), chain_head = \(Data(chain.head)) WHERE id = 1", on: connection, logger: logger)
            }
            return try await Self.loadDigest(connection, logger: logger).0
        }
    }

    /// The current schema version (0 before the first migration).
    public func schemaVersion() async throws -> Int {
        try await read("read schema version") { connection, logger in
            var version = 0
            for try await found in try await connection.query("SELECT coalesce(max(version), 0)::bigint FROM schema_version", logger: logger)
                .decode(Int64.self) {
                version = Int(found)
            }
            return version
        }
    }

    private func read<T: Sendable>(_ operation: String, _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T) async throws -> T {
        let client = self.client
        return try await Deadline.run(settings: settings, operation: operation, connecting: false, logger: logger) { slot in
            try await client.withConnection { connection in
                guard slot.attach(connection) else { throw CancellationError() }
                defer { slot.detach() }
                return try await body(connection, slot.logger)
            }
        }
    }

    // MARK: Statements and row mapping

    static let fillColumns = "fill_id, seq, symbol, side, price, qty, maker_order_id, taker_order_id, node, fencing_token, ts_ms"

    static func fetchFills(_ query: PostgresQuery, on connection: PostgresConnection, logger: Logger) async throws -> [Fill] {
        var fills: [Fill] = []
        let rows = try await connection.query(query, logger: logger)
            .decode((String, Int64, String, String, Int64, Int64, String, String, String, Int64, Int64).self)
        for try await (fillId, seq, symbol, sideName, price, qty, maker, taker, node, token, tsMs) in rows {
            guard let side = Side(rawValue: sideName) else { throw PostgresLedgerError.corruptRow("fill seq \(seq) has side '\(sideName)'") }
            fills.append(Fill(
                fillId: fillId, seq: seq, symbol: symbol, side: side, price: price, qty: qty, makerOrderId: maker, takerOrderId: taker,
                node: node, fencingToken: token, tsMs: tsMs))
        }
        return fills
    }

    static func loadState(_ connection: PostgresConnection, logger: Logger) async throws -> LedgerCursorState? {
        var state: LedgerCursorState?
        let rows = try await connection.query("SELECT version, ingest_cursor, last_batch_at_ms FROM ledger_state WHERE id = 1", logger: logger)
            .decode((Int64, Int64, Int64?).self)
        for try await (version, cursor, lastBatchAtMs) in rows {
            state = LedgerCursorState(cursor: cursor, version: version, lastBatchAtMs: lastBatchAtMs)
        }
        return state
    }

    static func loadPositions(_ connection: PostgresConnection, logger: Logger) async throws -> [String: Position] {
        var positions: [String: Position] = [:]
        let rows = try await connection.query(
            "SELECT symbol, net_qty, avg_price, open_cost, realized_pnl, fill_count, last_fill_seq, version FROM positions", logger: logger
        ).decode((String, Int64, Int64, Int64, Int64, Int64, Int64, Int64).self)
        for try await (symbol, netQty, avgPrice, openCost, realizedPnl, fillCount, lastFillSeq, version) in rows {
            positions[symbol] = Position(
                symbol: symbol, netQty: netQty, avgPrice: avgPrice, openCost: openCost, realizedPnl: realizedPnl,
                fillCount: fillCount, lastFillSeq: lastFillSeq, version: version)
        }
        return positions
    }

    /// Runs a statement and drains its result, so its errors surface here and not in the next one.
    static func run(_ query: PostgresQuery, on connection: PostgresConnection, logger: Logger) async throws {
        for try await _ in try await connection.query(query, logger: logger) {}
    }

    /// BEGIN … COMMIT on one connection. On an error the transaction is rolled back (or, if
    /// even that fails, the connection closed, which rolls it back on the server).
    static func inTransaction<T>(
        _ connection: PostgresConnection, slot: ConnectionSlot, logger: Logger, _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await run("BEGIN", on: connection, logger: logger)
        let value: T
        do {
            value = try await body(connection)
        } catch {
            do {
                try await run("ROLLBACK", on: connection, logger: logger)
            } catch {
                let _: EventLoopFuture<Void> = connection.close()
            }
            throw error
        }
        slot.markCommitSent()
        try await run("COMMIT", on: connection, logger: logger)
        return value
    }
}

/// One writing transaction's work, pure: classify each fill against what the ledger holds
/// (and what this batch added), fold the new ones, collect the rows to write.
struct PostgresBatch: Sendable {
    let symbols: [String]
    var state: LedgerCursorState
    var positions: [String: Position]
    private var byId: [String: Fill] = [:]
    private var bySeq: [Int64: String] = [:]
    /// New fills with their applied_version, in the order applied.
    private(set) var inserts: [(fill: Fill, version: Int64)] = []
    private(set) var recorded: [String] = []
    private(set) var duplicates: [String] = []
    private(set) var changed: Set<String> = []
    /// Symbols that received a fill older than their last one: refolded from the ledger in
    /// seq order after the insert, so positions never depend on arrival order.
    private(set) var refold: Set<String> = []
    /// The chain as stored when the batch began, and the ledger's highest seq then.
    let storedChain: StoredChain
    let chain: LedgerChain
    let maxSeq: Int64

    init(
        symbols: [String], state: LedgerCursorState, positions: [String: Position], existing: [Fill], storedChain: StoredChain, chain: LedgerChain,
        maxSeq: Int64
    ) {
        self.symbols = symbols
        self.state = state
        self.positions = positions
        self.storedChain = storedChain
        self.chain = chain
        self.maxSeq = maxSeq
        for fill in existing {
            byId[fill.fillId] = fill
            bySeq[fill.seq] = fill.fillId
        }
    }

    /// Applies one fill; returns why it was refused (nothing of it kept), or nil.
    mutating func apply(_ fill: Fill) -> LedgerRejection? {
        if let stored = byId[fill.fillId] {
            if stored == fill {
                duplicates.append(fill.fillId)
                return nil
            }
            return .conflictingDuplicate(fillId: fill.fillId, differingFields: stored.differingFields(from: fill), stored: stored, presented: fill)
        }
        if let owner = bySeq[fill.seq] {
            return .seqConflict(seq: fill.seq, storedFillId: owner, presentedFillId: fill.fillId)
        }
        state.version += 1
        inserts.append((fill, state.version))
        byId[fill.fillId] = fill
        bySeq[fill.seq] = fill.fillId
        recorded.append(fill.fillId)
        changed.insert(fill.symbol)
        let current = positions[fill.symbol] ?? .flat(fill.symbol)
        if fill.seq > current.lastFillSeq {
            positions[fill.symbol] = PositionFold.apply(fill, to: current, version: state.version)
        } else {
            refold.insert(fill.symbol)
        }
        return nil
    }

    /// Replaces `symbol`'s position by the fold of all its fills in seq order.
    mutating func refold(_ symbol: String, from fills: [Fill]) {
        var position = Position.flat(symbol)
        for fill in fills { position = PositionFold.apply(fill, to: position, version: state.version) }
        positions[symbol] = position
    }

    var view: PositionsView {
        PositionsView(version: state.version, positions: symbols.map { positions[$0] ?? .flat($0) })
    }
}

/// The connection a call is using, so a deadline can close it (a query on a hung server does
/// not end on task cancellation alone), plus whether COMMIT was already sent.
final class ConnectionSlot: Sendable {
    private struct State {
        var connection: PostgresConnection?
        var expired = false
        var commitSent = false
    }

    private let state = Mutex(State())
    let logger: Logger

    init(logger: Logger) { self.logger = logger }

    /// False when the deadline already passed: the caller must not start.
    func attach(_ connection: PostgresConnection) -> Bool {
        state.withLock { state in
            guard !state.expired else { return false }
            state.connection = connection
            return true
        }
    }

    func detach() { state.withLock { $0.connection = nil } }
    func markCommitSent() { state.withLock { $0.commitSent = true } }
    var commitSent: Bool { state.withLock { $0.commitSent } }
    var expired: Bool { state.withLock { $0.expired } }
    var hadConnection: Bool { state.withLock { $0.connection != nil } }

    /// Marks the deadline as passed and closes the connection in use, if any.
    func expire() -> Bool {
        let connection = state.withLock { state -> PostgresConnection? in
            state.expired = true
            return state.connection
        }
        if let connection { let _: EventLoopFuture<Void> = connection.close() }
        return connection != nil
    }
}

/// Runs one repository call with `settings.operationTimeout` and turns whatever went wrong
/// into a `PostgresLedgerError` (or the `LedgerRejection` the batch was refused with).
enum Deadline {
    private enum Race<T: Sendable>: Sendable {
        case finished(Result<T, any Error>)
        case deadline
        case cancelled
    }

    static func run<T: Sendable>(
        settings: PostgresLedgerSettings, operation: String, connecting: Bool, logger: Logger,
        _ body: @escaping @Sendable (ConnectionSlot) async throws -> T
    ) async throws -> T {
        let slot = ConnectionSlot(logger: logger)
        let timeout = settings.operationTimeout
        var closedInUse = false
        let result: Result<T, any Error> = await withTaskGroup(of: Race<T>.self) { group in
            group.addTask {
                do { return .finished(.success(try await body(slot))) } catch { return .finished(.failure(error)) }
            }
            group.addTask {
                do { try await Task.sleep(for: timeout) } catch { return .cancelled }
                return .deadline
            }
            while let next = await group.next() {
                switch next {
                case .finished(let result):
                    group.cancelAll()
                    return result
                case .deadline:
                    // Stop waiting for a connection, and close one in use: the body ends soon
                    // and its outcome (possibly a late success) is what counts.
                    closedInUse = slot.expire()
                    group.cancelAll()
                case .cancelled:
                    continue
                }
            }
            return .failure(CancellationError())
        }
        switch result {
        case .success(let value):
            return value
        case .failure(let error):
            if error is LedgerRejection || error is PostgresLedgerError { throw error }
            if slot.commitSent {
                // A server-side refusal of COMMIT is definite; a broken connection is not.
                if let psql = error as? PSQLError, psql.code == .server {
                    throw PostgresLedgerError.classify(error, settings: settings, operation: operation, connecting: false)
                }
                throw PostgresLedgerError.commitOutcomeUnknown(host: settings.host, port: settings.port, reason: reasonText(error, settings: settings))
            }
            if slot.expired {
                if closedInUse || connecting {
                    throw PostgresLedgerError.timedOut(host: settings.host, port: settings.port, operation: operation, after: timeout)
                }
                // Still waiting for a pooled connection: find out why the pool has none.
                throw await diagnose(settings: settings, operation: operation, timeout: timeout, logger: logger)
            }
            if Task.isCancelled { throw CancellationError() }
            throw PostgresLedgerError.classify(error, settings: settings, operation: operation, connecting: connecting)
        }
    }

    private static func reasonText(_ error: any Error, settings: PostgresLedgerSettings) -> String {
        let classified = PostgresLedgerError.classify(error, settings: settings, operation: "commit", connecting: false)
        if case .connectionLost(_, _, _, let reason) = classified as? PostgresLedgerError { return reason }
        return "\(classified)"
    }

    /// One direct connection attempt: the server's own answer (refused, wrong password, …)
    /// is the most useful error; if it connects fine the call was merely slow.
    static func diagnose(settings: PostgresLedgerSettings, operation: String, timeout: Duration, logger: Logger) async -> PostgresLedgerError {
        do {
            let connection = try await PostgresConnection.connect(configuration: try settings.connectionConfiguration(), id: 0, logger: logger)
            try? await connection.close()
            return .timedOut(host: settings.host, port: settings.port, operation: operation, after: timeout)
        } catch let error as PostgresLedgerError {
            return error
        } catch {
            let classified = PostgresLedgerError.classify(error, settings: settings, operation: operation, connecting: true)
            return classified as? PostgresLedgerError ?? .timedOut(host: settings.host, port: settings.port, operation: operation, after: timeout)
        }
    }
}
