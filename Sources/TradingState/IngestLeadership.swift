import AsyncPrimitives
import Logging
import MMCore
import PostgresNIO

/// Which state replica pulls the exchange's fill log: the one holding PostgreSQL's session
/// advisory lock `ingestLeaderKey` on a connection of its own. The server releases the lock
/// the moment that connection or its process dies, so another replica's next attempt (every
/// `FillIngestService` round, at most 200 ms apart while it follows) takes over.
///
/// Leadership is an efficiency rule, not what keeps the ledger exact: every write still takes
/// the per-transaction writer lock and `ingest` only continues the stored cursor, so two
/// replicas that both believed they led (a paused leader, say) would see each other's fills as
/// duplicates or a non-contiguous batch, never count one twice.
actor PostgresIngestLeadership {
    static let ingestLeaderKey: Int64 = 0x6D6D_696E_6765_7374  // "mmingest"

    private let settings: PostgresLedgerSettings
    private let logger: Logger
    private var connection: PostgresConnection?
    private var held = false

    init(settings: PostgresLedgerSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    /// True while this process holds the lock; tries to take it when it does not. Each call
    /// proves the lock's connection still works (one round trip), so a leader cut off from
    /// the server stops pulling within one round.
    func check() async -> Bool {
        let outcome = await withTimeLimit(.seconds(1)) { [self] in await attempt() }
        guard let outcome else {
            await drop("no answer within 1 s")
            return false
        }
        return outcome
    }

    private func attempt() async -> Bool {
        do {
            if connection == nil || connection?.isClosed == true {
                held = false
                connection = try await PostgresConnection.connect(configuration: try settings.connectionConfiguration(), id: 1, logger: logger)
            }
            guard let connection else { return false }
            if held {
                _ = try await connection.query("SELECT 1", logger: logger).collect()
                return true
            }
            let rows = try await connection.query("SELECT pg_try_advisory_lock(\(Self.ingestLeaderKey))", logger: logger)
            for try await acquired in rows.decode(Bool.self) where acquired {
                held = true
                logger.notice("this replica now ingests the exchange's fill log (ingest lock taken)")
            }
            return held
        } catch {
            await drop("\(error)")
            return false
        }
    }

    private func drop(_ why: String) async {
        if held { logger.warning("ingest lock lost (\(why)): another replica may take over") }
        held = false
        try? await connection?.close()
        connection = nil
    }

    func release() async {
        held = false
        try? await connection?.close()
        connection = nil
    }
}
