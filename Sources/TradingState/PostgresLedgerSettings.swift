import Foundation
import PostgresNIO

/// Where the PostgreSQL ledger lives and how to reach it.
///
/// Built from `postgres://USER@HOST:PORT/DATABASE[?sslmode=…&schema=…]` plus a password file.
/// The password is kept out of every description, log line and error: `description` is the
/// URL without it, and a URL that carries one is refused (it would end up in configs and
/// status output).
public struct PostgresLedgerSettings: Sendable, CustomStringConvertible {
    /// libpq's `sslmode` values that make sense for a client that never reads a CA bundle itself.
    public enum TLSMode: String, Sendable, CaseIterable {
        /// Plain TCP.
        case disable
        /// TLS when the server offers it, certificate not verified (libpq's default).
        case prefer
        /// TLS required, certificate not verified (libpq's `require`).
        case require
        /// TLS required, certificate chain and host name verified against the system trust store.
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var database: String
    /// A schema of its own inside `database` (created if missing); nil: the user's default
    /// search path (normally `public`). Lower-case letters, digits and `_` only.
    public private(set) var schema: String?
    public var tls: TLSMode
    /// How long one TCP connect plus authentication may take.
    public var connectTimeout: Duration = .seconds(5)
    /// How long one repository call (lease a connection, run the transaction) may take before
    /// it fails with a typed error saying why (server unreachable, credentials refused, or slow).
    public var operationTimeout: Duration = .seconds(10)
    /// The pool's upper bound; writes are serialized by the advisory lock anyway.
    public var maxConnections: Int = 4
    let password: Password?

    public init(
        host: String, port: Int = 5432, user: String, password: String?, database: String, schema: String? = nil, tls: TLSMode = .prefer
    ) throws(PostgresLedgerError) {
        guard !host.isEmpty else { throw .invalidURL(url: "(no host)", reason: "the host is empty") }
        guard (1...65_535).contains(port) else { throw .invalidURL(url: "\(host):\(port)", reason: "port \(port) is outside 1…65535") }
        guard !user.isEmpty else { throw .invalidURL(url: host, reason: "no user: write postgres://USER@\(host):\(port)/\(database)") }
        guard !database.isEmpty else { throw .invalidURL(url: host, reason: "no database: write postgres://\(user)@\(host):\(port)/DATABASE") }
        if let schema { try Self.validate(schema: schema) }
        self.host = host
        self.port = port
        self.user = user
        self.password = password.map(Password.init)
        self.database = database
        self.schema = schema
        self.tls = tls
    }

    /// Parses `postgres://USER@HOST[:PORT]/DATABASE[?sslmode=disable|prefer|require|verify-full&schema=NAME&connect_timeout=SECONDS]`
    /// (`postgresql://` too) and reads the password from `passwordFile` (nil: connect without
    /// one, for `trust` or `peer` setups). Trailing newlines in the file are ignored.
    public init(url: String, passwordFile: String?) throws(PostgresLedgerError) {
        let shown = Self.redacted(url)
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              scheme == "postgres" || scheme == "postgresql" else {
            throw .invalidURL(url: shown, reason: "expected postgres://USER@HOST:PORT/DATABASE")
        }
        if components.password != nil { throw .passwordInURL(url: shown) }
        guard let host = components.host, !host.isEmpty else {
            throw .invalidURL(url: shown, reason: "no host: write postgres://USER@HOST:PORT/DATABASE (unix sockets are not supported)")
        }
        guard let user = components.user, !user.isEmpty else { throw .invalidURL(url: shown, reason: "no user: write postgres://USER@\(host)/DATABASE") }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else {
            throw .invalidURL(url: shown, reason: "no database: write postgres://\(user)@\(host)/DATABASE")
        }
        var tls = TLSMode.prefer
        var schema: String?
        var connectTimeout: Duration?
        for item in components.queryItems ?? [] {
            let value = item.value ?? ""
            switch item.name {
            case "sslmode":
                guard let mode = TLSMode(rawValue: value) else {
                    throw .invalidURL(url: shown, reason: "sslmode '\(value)' is not one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                tls = mode
            case "schema": schema = value
            case "connect_timeout":
                guard let seconds = Int(value), seconds > 0 else {
                    throw .invalidURL(url: shown, reason: "connect_timeout '\(value)' is not a positive number of seconds")
                }
                connectTimeout = .seconds(seconds)
            default:
                throw .invalidURL(url: shown, reason: "unknown parameter '\(item.name)' (known: sslmode, schema, connect_timeout)")
            }
        }
        let password = try passwordFile.map { path throws(PostgresLedgerError) in try Self.readPassword(file: path) }
        try self.init(
            host: host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host, port: components.port ?? 5432, user: user,
            password: password, database: database, schema: schema, tls: tls)
        if let connectTimeout { self.connectTimeout = connectTimeout }
    }

    /// The connection URL without any password: what logs, errors and status may show.
    public var description: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        var url = "postgres://\(user)@\(shownHost):\(port)/\(database)"
        var parameters: [String] = []
        if let schema { parameters.append("schema=\(schema)") }
        if tls != .prefer { parameters.append("sslmode=\(tls.rawValue)") }
        if !parameters.isEmpty { url += "?" + parameters.joined(separator: "&") }
        return url
    }

    /// "database 'mm'" or "schema 'x' of database 'mm'", for messages.
    var ledgerName: String { schema.map { "schema '\($0)' of database '\(database)'" } ?? "database '\(database)'" }

    static func validate(schema: String) throws(PostgresLedgerError) {
        let allowed = schema.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
        guard !schema.isEmpty, schema.utf8.count <= 63, allowed, let first = schema.utf8.first, !(48...57).contains(first),
              !schema.hasPrefix("pg_") else {
            throw .invalidURL(
                url: "schema=\(schema)",
                reason: "schema '\(schema)' must be 1-63 lower-case letters, digits or '_', not start with a digit or 'pg_'")
        }
    }

    /// The file's contents without trailing line breaks. The error names the file, never its contents.
    static func readPassword(file path: String) throws(PostgresLedgerError) -> String {
        guard FileManager.default.fileExists(atPath: path) else { throw .passwordFileUnreadable(path: path, reason: "no such file") }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw .passwordFileUnreadable(path: path, reason: "not readable by this user (uid \(getuid()))")
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw .passwordFileUnreadable(path: path, reason: "cannot be read") }
        var password = String(decoding: data, as: UTF8.self)
        while let last = password.last, last == "\n" || last == "\r" || last == "\r\n" { password.removeLast() }
        guard !password.isEmpty else { throw .passwordFileUnreadable(path: path, reason: "is empty") }
        return password
    }

    /// `url` with whatever stands between `user:` and `@` replaced, so a URL that (wrongly)
    /// carries a password can be quoted in an error.
    static func redacted(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return url.contains("@") ? "(a URL with credentials)" : url }
        let afterScheme = url[schemeEnd.upperBound...]
        let authorityEnd = afterScheme.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? afterScheme.endIndex
        let authority = afterScheme[..<authorityEnd]
        guard let at = authority.lastIndex(of: "@") else { return url }
        let userInfo = authority[..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at...])
    }

    // MARK: PostgresNIO configurations

    var startupParameters: [(String, String)] {
        var parameters = [("application_name", "mm-state")]
        if let schema { parameters.append(("search_path", schema)) }
        return parameters
    }

    private var tlsConfiguration: TLSConfiguration? {
        switch tls {
        case .disable: return nil
        case .prefer, .require:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            return configuration
        case .verifyFull: return TLSConfiguration.makeClientConfiguration()
        }
    }

    func clientConfiguration() -> PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS = switch (self.tls, tlsConfiguration) {
        case (.disable, _), (_, nil): .disable
        case (.prefer, let configuration?): .prefer(configuration)
        case (_, let configuration?): .require(configuration)
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: user, password: password?.value, database: database, tls: tls)
        configuration.options.connectTimeout = connectTimeout
        configuration.options.additionalStartupParameters = startupParameters
        configuration.options.maximumConnections = max(1, maxConnections)
        configuration.options.minimumConnections = 0
        return configuration
    }

    func connectionConfiguration() throws(PostgresLedgerError) -> PostgresConnection.Configuration {
        var tls = PostgresConnection.Configuration.TLS.disable
        if self.tls != .disable, let configuration = tlsConfiguration {
            let context: NIOSSLContext
            do {
                context = try NIOSSLContext(configuration: configuration)
            } catch {
                throw .tlsFailed(host: host, port: port, reason: "cannot set up TLS: \(error)")
            }
            tls = self.tls == .prefer ? .prefer(context) : .require(context)
        }
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: user, password: password?.value, database: database, tls: tls)
        configuration.options.connectTimeout = .nanoseconds(connectTimeout.nanoseconds)
        configuration.options.additionalStartupParameters = startupParameters
        return configuration
    }
}

/// A password that never prints.
struct Password: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    let value: String
    init(_ value: String) { self.value = value }
    var description: String { "<redacted>" }
    var debugDescription: String { "<redacted>" }
    var customMirror: Mirror { Mirror(self, children: [:]) }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

/// Why the PostgreSQL ledger cannot do its job. Each case names what to fix; none carries
/// the password (errors from the server are reduced to their SQLSTATE and message).
public enum PostgresLedgerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The server may answer later (down, restarting, slow): worth retrying, unlike refused
    /// credentials, a missing database, a newer schema or a malformed setting.
    public var isTransient: Bool {
        switch self {
        case .unreachable, .timedOut, .connectionLost: true
        default: false
        }
    }

    case invalidURL(url: String, reason: String)
    /// The URL has `user:password@`: passwords come from the password file only.
    case passwordInURL(url: String)
    case passwordFileUnreadable(path: String, reason: String)
    /// No TCP connection (refused, no route, DNS, connect timeout).
    case unreachable(host: String, port: Int, reason: String)
    /// The server refused the credentials (wrong password, no pg_hba.conf entry, no such role).
    case authenticationFailed(host: String, port: Int, user: String, reason: String)
    case databaseMissing(host: String, port: Int, database: String)
    case tlsFailed(host: String, port: Int, reason: String)
    /// The ledger was migrated by a newer build: this one refuses to touch it.
    case schemaTooNew(found: Int, known: Int, ledger: String)
    /// The server is reachable but the call did not finish in time.
    case timedOut(host: String, port: Int, operation: String, after: Duration)
    /// The connection broke before the batch was committed: nothing of it was applied.
    case connectionLost(host: String, port: Int, operation: String, reason: String)
    /// The connection broke after COMMIT was sent: the batch is either entirely in the ledger
    /// or not at all; read the cursor back to know which.
    case commitOutcomeUnknown(host: String, port: Int, reason: String)
    /// An error the server reported (SQLSTATE and message).
    case server(operation: String, sqlState: String, message: String)
    case missingStateRow(ledger: String)
    case corruptRow(String)

    public var description: String {
        switch self {
        case .invalidURL(let url, let reason):
            "state.postgres.url '\(url)' is not usable: \(reason)"
        case .passwordInURL(let url):
            "state.postgres.url '\(url)' contains a password: remove it from the URL and put it in the file named by state.postgres.password_file"
        case .passwordFileUnreadable(let path, let reason):
            "the PostgreSQL password file \(path) \(reason): point state.postgres.password_file at a readable file holding only the password"
        case .unreachable(let host, let port, let reason):
            "PostgreSQL at \(host):\(port) is unreachable (\(reason)): check that the server runs, listens on that address (listen_addresses, port) and that nothing blocks the way"
        case .authenticationFailed(let host, let port, let user, let reason):
            "PostgreSQL at \(host):\(port) refused user '\(user)' (\(reason)): check the password file holds that user's password and that pg_hba.conf admits the user from this host"
        case .databaseMissing(let host, let port, let database):
            "database '\(database)' does not exist on PostgreSQL at \(host):\(port): create it (CREATE DATABASE \(database) OWNER <user>) or fix the URL"
        case .tlsFailed(let host, let port, let reason):
            "TLS with PostgreSQL at \(host):\(port) failed (\(reason)): check the server's ssl settings and the URL's sslmode"
        case .schemaTooNew(let found, let known, let ledger):
            "the ledger in \(ledger) has schema version \(found), newer than this build knows (\(known)): a newer mmd migrated it; run that version (or restore a backup taken before the upgrade). Nothing was changed"
        case .timedOut(let host, let port, let operation, let after):
            "PostgreSQL at \(host):\(port) did not finish '\(operation)' within \(after): the server is overloaded, blocked (locks, full disk) or paused; a write that timed out either committed whole or not at all"
        case .connectionLost(let host, let port, let operation, let reason):
            "the connection to PostgreSQL at \(host):\(port) broke during '\(operation)' (\(reason)); nothing of it was committed"
        case .commitOutcomeUnknown(let host, let port, let reason):
            "the connection to PostgreSQL at \(host):\(port) broke while committing (\(reason)): the batch is either entirely in the ledger or not at all; the stored cursor tells which"
        case .server(let operation, let sqlState, let message):
            "PostgreSQL refused '\(operation)': \(message) (SQLSTATE \(sqlState))" + Self.hint(sqlState: sqlState)
        case .missingStateRow(let ledger):
            "the ledger in \(ledger) has no ledger_state row: it was edited by hand or is not this service's ledger"
        case .corruptRow(let what):
            "the PostgreSQL ledger holds an impossible row (\(what)): restore it from a backup or rebuild it by re-ingesting the exchange's log"
        }
    }

    private static func hint(sqlState: String) -> String {
        switch sqlState {
        case "42501": ": grant the user CREATE on the database (or make it the owner) so it can create the ledger's tables"
        case "53100": ": the server's disk is full"
        case "53300": ": the server has no free connection slots (max_connections)"
        default: ""
        }
    }

    /// Maps an error from PostgresNIO to what an operator can act on. `connecting`: the error
    /// came from opening a connection (so a broken socket means unreachable, not lost).
    static func classify(_ error: any Error, settings: PostgresLedgerSettings, operation: String, connecting: Bool) -> any Error {
        if error is PostgresLedgerError || error is LedgerRejection || error is CancellationError { return error }
        let host = settings.host
        let port = settings.port
        guard let psql = error as? PSQLError else {
            return connecting
                ? PostgresLedgerError.unreachable(host: host, port: port, reason: "\(error)")
                : PostgresLedgerError.connectionLost(host: host, port: port, operation: operation, reason: "\(error)")
        }
        let broken = { (reason: String) -> PostgresLedgerError in
            connecting ? .unreachable(host: host, port: port, reason: reason) : .connectionLost(host: host, port: port, operation: operation, reason: reason)
        }
        switch psql.code {
        case .server:
            let sqlState = psql.serverInfo?[.sqlState] ?? "?????"
            let message = psql.serverInfo?[.message] ?? "no message"
            switch sqlState {
            case "28P01", "28000": return PostgresLedgerError.authenticationFailed(host: host, port: port, user: settings.user, reason: message)
            case "3D000": return PostgresLedgerError.databaseMissing(host: host, port: port, database: settings.database)
            case "57P01", "57P02", "57P03": return broken("\(message) (SQLSTATE \(sqlState))")
            case _ where sqlState.hasPrefix("08"): return broken("\(message) (SQLSTATE \(sqlState))")
            default: return PostgresLedgerError.server(operation: operation, sqlState: sqlState, message: message)
            }
        case .connectionError:
            if let underlying = psql.underlying, underlying is NIOSSLError {
                return PostgresLedgerError.tlsFailed(host: host, port: port, reason: "\(underlying)")
            }
            return broken(psql.underlying.map(describe) ?? "connection error")
        case .sslUnsupported:
            return PostgresLedgerError.tlsFailed(host: host, port: port, reason: "the server does not offer TLS, and the URL's sslmode requires it")
        case .failedToAddSSLHandler, .receivedUnencryptedDataAfterSSLRequest:
            return PostgresLedgerError.tlsFailed(host: host, port: port, reason: "\(psql.code)")
        case .authMechanismRequiresPassword:
            return PostgresLedgerError.authenticationFailed(
                host: host, port: port, user: settings.user, reason: "the server asks for a password and none is configured")
        case .unsupportedAuthMechanism:
            return PostgresLedgerError.authenticationFailed(
                host: host, port: port, user: settings.user, reason: "the server asks for an authentication method this client does not support (use scram-sha-256 or md5)")
        case .saslError:
            return PostgresLedgerError.authenticationFailed(host: host, port: port, user: settings.user, reason: "the SCRAM exchange failed")
        case .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed:
            return broken(psql.underlying.map(describe) ?? "\(psql.code)")
        case .queryCancelled:
            return CancellationError()
        default:
            return PostgresLedgerError.server(operation: operation, sqlState: "\(psql.code)", message: psql.underlying.map(describe) ?? "client error")
        }
    }

    /// A socket error without NIO's wrapping noise.
    static func describe(_ error: any Error) -> String {
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        if let connection = error as? NIOConnectionError {
            if !connection.connectionErrors.isEmpty {
                return connection.connectionErrors.map { failure in
                    "\(failure.target.ipAddress ?? "\(failure.target)"):\(failure.target.port ?? connection.port): \(describe(failure.error))"
                }.joined(separator: "; ")
            }
            if let dns = connection.dnsAError ?? connection.dnsAAAAError { return "cannot resolve \(connection.host): \(dns)" }
        }
        if let channel = error as? ChannelError, case .connectTimeout(let amount) = channel {
            return "no answer to the TCP connect within \(amount.nanoseconds / 1_000_000) ms"
        }
        return "\(error)"
    }
}
