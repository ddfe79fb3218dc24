import Foundation
import Hummingbird
import MMCore
import MMServiceKit

/// Entry point used by `mmd exchange`.
public enum ExchangeService {
    /// Replays the journal (the port opens only once the books are rebuilt, so `/readyz`
    /// answering 200 means "replayed"), then serves.
    public static func run(_ environment: ServiceEnvironment, exitWithParent: Bool) async throws {
        let journal = try GRDBExchangeJournal(path: environment.dataDirectory.databasePath("exchange"))
        let started = ContinuousClock.now
        let core = try makeCore(environment, journal: journal, snapshots: snapshotStore(environment))
        try await core.verifyFillTable()
        let stats = await core.stats()
        let elapsed = ContinuousClock.now - started
        environment.logger.info(
            "exchange recovered in \(elapsed.formatted(.units(allowed: [.milliseconds]))) from \(core.recovery): \(stats.journalSeq) records, \(stats.fillCount) fills, fill log \(stats.fillLogSha256)")
        let router = buildExchangeRouter(environment, core: core)
        let app = buildApplication(environment, router: router, services: core.services())
        try await runService(app, environment: environment, exitWithParent: exitWithParent) { core.endLongPolls() }
        // Every service has stopped and the journal flushed: a snapshot now makes the next
        // start replay nothing.
        if let snapshot = await core.finalSnapshot() { core.writeSnapshot(snapshot) }
    }

    public static func snapshotStore(_ environment: ServiceEnvironment) -> ExchangeSnapshotStore {
        ExchangeSnapshotStore(directory: environment.dataDirectory.file("exchange-snapshots"), keep: Int(environment.config.exchange.snapshotKeep))
    }

    public static func makeCore(_ environment: ServiceEnvironment, journal: any ExchangeJournal, snapshots: ExchangeSnapshotStore? = nil) throws -> ExchangeCore {
        let signer = try environment.secrets.grantSigner()
        return try ExchangeCore(
            config: environment.config, signer: signer, clock: environment.clock, journal: journal, snapshots: snapshots, logger: environment.logger)
    }

    /// The common routes plus every exchange route.
    public static func buildExchangeRouter(_ environment: ServiceEnvironment, core: ExchangeCore) -> AuthorizedRouter {
        let router = buildServiceRouter(environment) { .ready }
        ExchangeController(core: core, symbols: environment.config.symbols).register(on: router)
        return router
    }
}

extension ExchangeService {
    /// `mmd exchange replay`: recomputes the fill log from the journal, read-only (safe
    /// while the exchange runs), and returns `<sha256 hex> <fill count>`.
    public static func replay(_ environment: ServiceEnvironment, throughSeq: Int64?) async throws -> String {
        let journal = try GRDBExchangeJournal(path: environment.dataDirectory.databasePath("exchange"), readOnly: true)
        return try ExchangeRecovery.digestLine(config: environment.config, journal: journal, throughSeq: throughSeq)
    }
}
