import Foundation
import MMCore
import MMServiceKit
import ServiceLifecycle
import AsyncPrimitives

/// `mmd state`: the fill ledger and the only writer of positions.
public enum TradingStateService {
    public static func run(_ environment: ServiceEnvironment, exitWithParent: Bool) async throws {
        let repository = try await openRepositoryWhileNotReady(environment)
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

    /// Opens the ledger; while a PostgreSQL ledger's server cannot be reached (down, restarting,
    /// not yet started), serves `/readyz` as 503 with the reason (host and why, never the
    /// password) and retries every second, instead of exiting into a restart loop. Errors that
    /// retrying cannot fix (credentials refused, a newer schema, a bad URL) end the start.
    static func openRepositoryWhileNotReady(_ environment: ServiceEnvironment) async throws -> any LedgerRepository {
        do {
            return try await openRepository(environment)
        } catch let error as PostgresLedgerError where error.isTransient {
            let reason = LockedBox("\(error)")
            let router = buildServiceRouter(environment) { Readiness(ready: false, detail: "not ready: the ledger's PostgreSQL cannot be reached: \(reason.value)") }
            let waiting = buildApplication(environment, router: router)
            let group = ServiceGroup(configuration: .init(services: [waiting], logger: environment.logger))
            let serving = Task { try await group.run() }
            defer { serving.cancel() }
            var loggedAt = ContinuousClock.now
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(1))
                do {
                    let repository = try await openRepository(environment, logFailure: false)
                    environment.logger.notice("the ledger's PostgreSQL answers again")
                    await group.triggerGracefulShutdown()
                    _ = try? await serving.value
                    return repository
                } catch let error as PostgresLedgerError where error.isTransient {
                    // Logged when the reason changes and every 10 s, not every attempt.
                    if "\(error)" != reason.value || ContinuousClock.now - loggedAt >= .seconds(10) {
                        environment.logger.error("still waiting for the ledger's PostgreSQL: \(error)")
                        loggedAt = ContinuousClock.now
                    }
                    reason.value = "\(error)"
                }
            }
            throw CancellationError()
        }
    }

    /// The ledger of `state.backend`: `DATA_DIR/state.sqlite`, or PostgreSQL at
    /// `state.postgres.url` (the local server `mmctl start` runs when there is none) with the
    /// password from `state.postgres.password_file` (the local server's generated one). A
    /// server that is unreachable or refuses the credentials stops the start with an error
    /// naming host, port and user, never the password; the supervisor restarts with backoff.
    public static func openRepository(_ environment: ServiceEnvironment, logFailure: Bool = true) async throws -> any LedgerRepository {
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
                if logFailure { environment.logger.error("cannot open the ledger on PostgreSQL \(settings): \(error)") }
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
