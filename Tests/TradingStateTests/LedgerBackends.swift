import Foundation
import MMCore
import MMServiceKit
import MMTestSupport
import Synchronization
import Testing
@testable import TradingState

/// The ledger's storage backends; repository tests take one as their argument.
enum LedgerBackend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres

    var testDescription: String { rawValue }
}

/// One ledger's storage for a test: a SQLite file, or a PostgreSQL schema of its own on the
/// suite's server (so tests stay independent while sharing one server). `open()` may be
/// called again to reopen the same ledger; `withLedgerStore` closes everything at the end.
final class LedgerStore: Sendable {
    let backend: LedgerBackend
    let file: TemporaryLedgerFile
    /// The PostgreSQL server and this store's settings (its own schema), for `.postgres`.
    let server: PostgresTestServer?
    let settings: PostgresLedgerSettings?
    private let repositories = Mutex<[PostgresLedgerRepository]>([])

    init(backend: LedgerBackend, label: String, server: PostgresTestServer?) throws {
        self.backend = backend
        file = TemporaryLedgerFile(label)
        self.server = server
        settings = try server.map { server in
            try PostgresLedgerSettings(
                host: server.host, port: server.port, user: server.user, password: server.password, database: server.database,
                schema: "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16), tls: .disable)
        }
    }

    /// A repository on this store's ledger (a new PostgreSQL client each time, as another
    /// process would have). `chainAdvanceLimit`: most fills one transaction adds to the
    /// fill-log chain (small in tests of the catch-up).
    func repository(chainAdvanceLimit: Int = defaultChainAdvanceLimit) async throws -> any LedgerRepository {
        switch backend {
        case .sqlite:
            return try GRDBLedgerRepository(path: file.path, symbols: testSymbols, chainAdvanceLimit: chainAdvanceLimit)
        case .postgres:
            return try await postgresRepository(chainAdvanceLimit: chainAdvanceLimit)
        }
    }

    func postgresRepository(
        settings override: PostgresLedgerSettings? = nil, chainAdvanceLimit: Int = defaultChainAdvanceLimit
    ) async throws -> PostgresLedgerRepository {
        guard let settings = override ?? settings else { throw HarnessError("not a PostgreSQL store") }
        let repository = try await PostgresLedgerRepository.open(settings: settings, symbols: testSymbols, chainAdvanceLimit: chainAdvanceLimit)
        repositories.withLock { $0.append(repository) }
        return repository
    }

    func open(clock: any EpochClock = ManualClock()) async throws -> TradingLedger {
        try await TradingLedger.open(repository: try await repository(), validator: FillValidator(config: .defaults), clock: clock)
    }

    /// `sql` run as the superuser in this store's database with its schema first on the path.
    @discardableResult
    func sql(_ sql: String) async throws -> String {
        guard let server, let schema = settings?.schema else { throw HarnessError("not a PostgreSQL store") }
        return try await server.psql("SET search_path TO \(schema);\n" + sql, database: server.database)
    }

    func close() async {
        for repository in repositories.withLock({ $0 }) { await repository.close() }
        file.cleanup()
    }
}

/// Runs `body` with a fresh ledger store on `backend`, closed afterwards however `body` ends.
/// PostgreSQL stores use the suite's shared server (`.postgresServer`), else a server of their own.
func withLedgerStore<T>(_ backend: LedgerBackend, label: String = "ledger", _ body: (LedgerStore) async throws -> T) async throws -> T {
    switch backend {
    case .sqlite:
        return try await run(LedgerStore(backend: .sqlite, label: label, server: nil), body)
    case .postgres:
        return try await withPostgres { server in try await run(LedgerStore(backend: .postgres, label: label, server: server), body) }
    }

    func run(_ store: LedgerStore, _ body: (LedgerStore) async throws -> T) async throws -> T {
        do {
            let result = try await body(store)
            await store.close()
            return result
        } catch {
            await store.close()
            throw error
        }
    }
}

/// The suite's shared server if the test runs inside `.postgresServer`, else a fresh one.
func withPostgres<T>(_ body: (PostgresTestServer) async throws -> T) async throws -> T {
    if let shared = SharedPostgresServer.current { return try await body(try await shared.server()) }
    return try await withPostgresServer(label: "ledger") { try await body($0) }
}

/// One PostgreSQL server for a whole suite, started when a test first needs it and stopped
/// when the suite ends.
actor SharedPostgresServer {
    @TaskLocal static var current: SharedPostgresServer?

    private var starting: Task<PostgresTestServer, any Error>?

    func server() async throws -> PostgresTestServer {
        if let starting { return try await starting.value }
        let task = Task { try await PostgresTestServer.start(label: "ledger") }
        starting = task
        return try await task.value
    }

    func stop() async {
        guard let starting else { return }
        if let server = try? await starting.value { await server.stop() }
    }
}

/// `@Suite(.postgresServer)`: the suite's tests share one PostgreSQL server (each test still
/// gets a schema of its own), stopped and removed when the suite has run.
struct PostgresServerTrait: SuiteTrait, TestScoping {
    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let shared = SharedPostgresServer()
        do {
            try await SharedPostgresServer.$current.withValue(shared) { try await function() }
        } catch {
            await shared.stop()
            throw error
        }
        await shared.stop()
    }
}

extension Trait where Self == PostgresServerTrait {
    static var postgresServer: Self { Self() }
}

/// The ledger's storage tests, on both backends, under one PostgreSQL server.
@Suite("Ledger storage (SQLite and PostgreSQL)", .postgresServer)
struct LedgerStorageTests {}
