import Foundation
import MMCore
import MMServiceKit

/// `mmd state`: the fill ledger and the only writer of positions.
public enum TradingStateService {
    public static func run(_ environment: ServiceEnvironment, exitWithParent: Bool) async throws {
        let repository = try await openRepository(environment)
        do {
            let parts = try await build(environment, repository: repository)
            let app = buildApplication(environment, router: parts.router, services: [parts.ingest])
            let broadcaster = parts.ledger.broadcaster
            try await runService(app, environment: environment, exitWithParent: exitWithParent) { await broadcaster.shutdown() }
        } catch {
            await (repository as? PostgresLedgerRepository)?.close()
            throw error
        }
        await (repository as? PostgresLedgerRepository)?.close()
    }

    /// The ledger of `state.backend`: `DATA_DIR/state.sqlite`, or PostgreSQL at
    /// `state.postgres.url` (the local server `mmctl start` runs when there is none) with the
    /// password from `state.postgres.password_file` (the local server's generated one). A
    /// server that is unreachable or refuses the credentials stops the start with an error
    /// naming host, port and user, never the password; the supervisor restarts with backoff.
    public static func openRepository(_ environment: ServiceEnvironment) async throws -> any LedgerRepository {
        let config = environment.config
        switch config.state.backend {
        case .sqlite:
            return try GRDBLedgerRepository(path: environment.dataDirectory.databasePath("state"), symbols: config.symbolNames)
        case .postgres:
            let passwordFile = config.state.postgres.passwordFile.isEmpty ? environment.dataDirectory.postgresPasswordPath : config.state.postgres.passwordFile
            let settings = try PostgresLedgerSettings(url: config.statePostgresURL, passwordFile: passwordFile)
            do {
                return try await PostgresLedgerRepository.open(settings: settings, symbols: config.symbolNames, logger: environment.logger)
            } catch {
                environment.logger.error("cannot open the ledger on PostgreSQL \(settings): \(error)")
                throw error
            }
        }
    }

    /// Everything the service runs, wired but not started (tests run the router in-process).
    public struct Parts {
        public let router: AuthorizedRouter
        public let ledger: TradingLedger
        public let monitor: IngestMonitor
        public let ingest: FillIngestService
    }

    /// Opens (and migrates) the ledger, then wires routes and the ingest loop. `repository`
    /// defaults to `DATA_DIR/state.sqlite`; `source` to the exchange's fill log.
    public static func build(
        _ environment: ServiceEnvironment,
        repository: (any LedgerRepository)? = nil,
        source: (any FillLogSource)? = nil,
        settings: IngestSettings = IngestSettings()
    ) async throws -> Parts {
        let repository = try repository ?? GRDBLedgerRepository(
            path: environment.dataDirectory.databasePath("state"), symbols: environment.config.symbolNames)
        let ledger = try await TradingLedger.open(
            repository: repository, validator: FillValidator(config: environment.config), clock: environment.clock, logger: environment.logger)
        let cursor = try await repository.cursorState()
        let monitor = IngestMonitor(cursor: cursor.cursor, lastBatchAtMs: cursor.lastBatchAtMs)
        environment.logger.info("ledger open: version \(cursor.version), ingest cursor \(cursor.cursor)")
        // The ledger is open and migrated before the router exists, so once the server
        // answers at all it can do its job.
        let store = repository is PostgresLedgerRepository ? "PostgreSQL" : "state.sqlite"
        let readinessDetail = "ledger open (\(store) migrated, cursor \(cursor.cursor) at start)"
        let router = buildServiceRouter(environment, readiness: { Readiness(ready: true, detail: readinessDetail) })
        addTradingStateRoutes(to: router, ledger: ledger, monitor: monitor, symbols: environment.config.symbolNames)
        let ingest = FillIngestService(
            source: source ?? ExchangeClient(environment.endpoint(of: .exchange)), ledger: ledger, monitor: monitor,
            settings: settings, clock: environment.clock, logger: environment.logger)
        return Parts(router: router, ledger: ledger, monitor: monitor, ingest: ingest)
    }
}
