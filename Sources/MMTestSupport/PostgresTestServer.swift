import Foundation
import MMCore
import MMServiceKit
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

// A real PostgreSQL server for tests: Debian's PostgreSQL 15 binaries (installed by
// Scripts/install-deps) run on a private loopback port with their data, socket and log in a
// fresh temporary directory, so the ledger is tested against the server it will meet.
// As root (CI, the dev containers) the server runs as the `postgres` system user, because
// initdb and postgres refuse to run as root.

/// Runs `body` against a fresh PostgreSQL server and stops it however `body` ends (returns,
/// throws, or is cancelled), removing its directory, so no server outlives the test.
public func withPostgresServer<Result>(
    label: String = "pg", durable: Bool = false, readyTimeout: Duration = .seconds(60), _ body: (PostgresTestServer) async throws -> Result
) async throws -> Result {
    try await withStopping(try await PostgresTestServer.start(label: label, durable: durable, readyTimeout: readyTimeout), stop: { await $0.stop() }, body)
}

/// One PostgreSQL server with a database `database` owned by `user` (password in
/// `passwordFile`), reachable at `host:port` with scram-sha-256. Prefer `withPostgresServer`;
/// whoever calls `start` must call `stop`.
public final class PostgresTestServer: Sendable {
    /// The temporary directory holding the data directory, socket, log and password file.
    public let directory: String
    public let host = "127.0.0.1"
    public let port: Int
    public let user = "mm"
    public let database = "mm"
    /// The user's password (random per server). Tests that need it read `passwordFile`.
    public let password: String
    /// A 0600 file holding only `password`, as an operator's password file would.
    public let passwordFile: String
    /// The directory of the server's unix socket (superuser access without a password).
    public let socketDirectory: String
    public let logPath: String
    let binaries: String
    let runAs: PostgresTestServer.Account?
    private let process: Mutex<Process?>
    private let stopped = Mutex(false)

    /// `postgres://mm@127.0.0.1:PORT/mm`: the URL the ledger is configured with.
    public var url: String { "postgres://\(user)@\(host):\(port)/\(database)" }

    public var pid: Int32 { process.withLock { $0?.processIdentifier ?? 0 } }
    public var isRunning: Bool { process.withLock { $0?.isRunning ?? false } }

    /// initdb into a fresh directory, start the server, create the user and its database.
    /// On any failure whatever was started is killed and the directory removed.
    /// `durable`: fsync and full-page writes on, as a production server runs (benchmarks).
    public static func start(label: String = "pg", durable: Bool = false, readyTimeout: Duration = .seconds(60)) async throws -> PostgresTestServer {
        let binaries = try PostgresBinaries.directory()
        postgresLeftovers.sweepOnce()
        let runAs = try Account.serverAccount()
        let directory = NSTemporaryDirectory() + "\(postgresLeftovers.directoryPrefix)\(getpid())-\(label)-\(UUID().uuidString.prefix(8))"
        let server = try PostgresTestServer(directory: directory, port: PortAllocator.portBase(), binaries: binaries, runAs: runAs)
        do {
            try await server.initialize()
            try server.launch(durable: durable)
            try await server.waitUntilReady(timeout: readyTimeout)
            try await server.createUserAndDatabase()
        } catch {
            await server.stop()
            throw error
        }
        return server
    }

    private init(directory: String, port: Int, binaries: String, runAs: Account?) throws {
        self.directory = directory
        self.port = port
        self.binaries = binaries
        self.runAs = runAs
        socketDirectory = directory + "/socket"
        logPath = directory + "/postgres.log"
        passwordFile = directory + "/password"
        password = (0..<3).map { _ in String(UInt64.random(in: 0...UInt64.max), radix: 36) }.joined()
        process = Mutex(nil)
        let files = FileManager.default
        try files.createDirectory(atPath: socketDirectory, withIntermediateDirectories: true)
        _ = files.createFile(atPath: logPath, contents: nil)
        guard files.createFile(atPath: passwordFile, contents: Data((password + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw HarnessError("cannot write \(passwordFile)")
        }
        // The server's account owns its directories (initdb insists on owning the data
        // directory); the password file stays the test's, the server never reads it.
        if let runAs {
            for path in [directory, socketDirectory, logPath] where chown(path, runAs.uid, runAs.gid) != 0 {
                throw HarnessError("cannot chown \(path) to \(runAs.name): \(String(cString: strerror(errno)))")
            }
        }
        chmod(directory, 0o700)
        chmod(socketDirectory, 0o700)
    }

    var dataDirectory: String { directory + "/data" }

    /// `binary arguments…`, through `setpriv` (which execs, so the pid is the server's own)
    /// when running as root.
    private func command(_ binary: String, _ arguments: [String]) -> (executable: String, arguments: [String]) {
        let path = "\(binaries)/\(binary)"
        guard let runAs else { return (path, arguments) }
        return ("/usr/bin/setpriv", ["--reuid=\(runAs.uid)", "--regid=\(runAs.gid)", "--init-groups", "--", path] + arguments)
    }

    private func initialize() async throws {
        // Local (socket) connections are trusted: the socket directory is 0700, so only the
        // server's account and root reach it. TCP needs the password.
        let (executable, arguments) = command("initdb", [
            "-D", dataDirectory, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
            "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions",
        ])
        let result = try await runTool(executable, arguments, logName: "initdb")
        guard result.status == 0 else {
            throw HarnessError("initdb failed (exit \(result.status)) in \(dataDirectory):\n\(result.output)")
        }
    }

    private func launch(durable: Bool = false) throws {
        let (executable, arguments) = command("postgres", [
            "-D", dataDirectory, "-p", "\(port)", "-k", socketDirectory,
            "-c", "listen_addresses=127.0.0.1",
            "-c", "unix_socket_permissions=0700",
            // Test data is thrown away: skip the fsyncs that only protect against power loss.
            // synchronous_commit stays on (cheap without fsync): a commit is in the kernel's
            // page cache before it is acknowledged, so kill -9 of the server loses nothing
            // committed, as on a production server.
            "-c", "fsync=\(durable ? "on" : "off")", "-c", "full_page_writes=\(durable ? "on" : "off")",
            "-c", "max_connections=300", "-c", "shared_buffers=32MB",
            "-c", "logging_collector=off", "-c", "log_min_messages=warning",
        ])
        var environment = ProcessInfo.processInfo.environment
        environment["LC_ALL"] = "C"
        let process = try Process.startLogging(
            executable, arguments, to: logPath, what: "the test PostgreSQL", directory: directory, environment: environment)
        self.process.withLock { $0 = process }
    }

    /// Waits until `postmaster.pid` says the server accepts connections (its status line
    /// reads "ready"). Throws with the log tail if the server exits or stays unready.
    public func waitUntilReady(timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            if !isRunning {
                throw HarnessError("the test PostgreSQL on port \(port) exited before it was ready; its log ends with:\n\(logTail())")
            }
            // Line 1 is the postmaster's pid (a file left by a killed server names another),
            // line 8 its status.
            if let text = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8) {
                let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                if lines.first == "\(pid)" && lines.contains("ready") { return }
            }
            if ContinuousClock.now >= deadline {
                throw HarnessError("the test PostgreSQL on port \(port) was not ready within \(timeout); its log ends with:\n\(logTail())")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    private func createUserAndDatabase() async throws {
        // Through stdin, so the password is on no command line.
        try await psql("CREATE ROLE \(user) LOGIN PASSWORD '\(password)';\nCREATE DATABASE \(database) OWNER \(user);\n")
    }

    /// Runs SQL as the superuser over the unix socket (database `postgres` unless named);
    /// returns psql's unaligned, tuples-only output. Throws with psql's errors.
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres") async throws -> String {
        let result = try await runTool(
            "\(binaries)/psql",
            ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", socketDirectory, "-p", "\(port)", "-U", "postgres", "-d", database],
            stdin: sql, logName: "psql")
        guard result.status == 0 else { throw HarnessError("psql on the test PostgreSQL failed (exit \(result.status)):\n\(result.output)") }
        return result.output
    }

    /// kill -9 the server (its backends exit when they notice) and wait until it is gone.
    public func kill() async {
        guard let process = process.withLock({ $0 }) else { return }
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        await Self.waitForExit(process, timeout: .seconds(10))
    }

    /// Starts the server again on its data directory and port (after `kill`).
    public func restart(readyTimeout: Duration = .seconds(60)) async throws {
        await kill()
        // Backends of the killed server may hold its shared memory for a moment, which makes
        // the new postmaster exit at once: try again until they are gone.
        let deadline = ContinuousClock.now + readyTimeout
        while true {
            try launch()
            do {
                try await waitUntilReady(timeout: deadline - ContinuousClock.now)
                return
            } catch where !isRunning && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Immediate shutdown (SIGQUIT: the data is thrown away), SIGKILL if that takes more than
    /// 5 s, then the directory is removed. Safe to call more than once and from a cancelled task.
    public func stop() async {
        let firstStop = stopped.withLock { stopped in
            defer { stopped = true }
            return !stopped
        }
        guard firstStop else { return }
        if let process = process.withLock({ $0 }), process.isRunning {
            Glibc.kill(process.processIdentifier, SIGQUIT)
            await Self.waitForExit(process, timeout: .seconds(5))
            if process.isRunning {
                Glibc.kill(process.processIdentifier, SIGKILL)
                await Self.waitForExit(process, timeout: .seconds(10))
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The last line of defence for a caller that forgot `stop`.
    deinit {
        if stopped.withLock({ $0 }) { return }
        if let process = process.withLock({ $0 }), process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    public func logTail(lines: Int = 25) -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "(no log at \(logPath))"
        return text.split(separator: "\n").suffix(lines).map { "  \($0)" }.joined(separator: "\n")
    }

    private static func waitForExit(_ process: Process, timeout: Duration) async {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            do {
                try await Task.sleep(for: .milliseconds(10))
            } catch {
                // Cancelled: keep waiting, or the port may still be bound for the next server.
                usleep(10_000)
            }
        }
    }

    /// Runs a tool to completion with its output in a log file of the server's directory.
    private func runTool(_ executable: String, _ arguments: [String], stdin: String? = nil, logName: String) async throws -> (status: Int32, output: String) {
        let outputPath = "\(directory)/\(logName)-\(UUID().uuidString.prefix(8)).out"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        defer { try? output.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        // The server's account may not be able to enter the test's working directory.
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        var environment = ProcessInfo.processInfo.environment
        environment["LC_ALL"] = "C"
        environment["PGPASSWORD"] = nil
        process.environment = environment
        process.standardOutput = output
        process.standardError = output
        let input = Pipe()
        process.standardInput = stdin == nil ? FileHandle.nullDevice : input
        let exited = AsyncStream<Int32>.makeStream()
        process.terminationHandler = { exited.continuation.yield($0.terminationStatus); exited.continuation.finish() }
        do {
            try process.run()
        } catch {
            throw HarnessError("cannot run \(executable): \(error)")
        }
        if let stdin {
            input.fileHandleForWriting.write(Data(stdin.utf8))
            try? input.fileHandleForWriting.close()
        }
        var status: Int32 = -1
        for await code in exited.stream { status = code }
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        return (status, text)
    }

    /// The account the server runs as when the tests run as root.
    struct Account: Sendable {
        let name: String
        let uid: uid_t
        let gid: gid_t

        /// nil when not root (the server runs as the current user); the `postgres` account
        /// (created by Debian's postgresql package) when root.
        static func serverAccount() throws -> Account? {
            guard geteuid() == 0 else { return nil }
            guard let entry = getpwnam("postgres") else {
                throw HarnessError("running as root, the test PostgreSQL must run as the 'postgres' user, which does not exist: run Scripts/install-deps (Debian's postgresql creates it)")
            }
            return Account(name: "postgres", uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid)
        }
    }
}

enum PostgresBinaries {
    /// $POSTGRES_BIN_DIR, else Debian's /usr/lib/postgresql/15/bin, else the newest
    /// /usr/lib/postgresql/N/bin that has initdb, postgres and psql.
    static func directory() throws -> String {
        let files = FileManager.default
        func complete(_ directory: String) -> Bool {
            ["initdb", "postgres", "psql"].allSatisfy { files.isExecutableFile(atPath: "\(directory)/\($0)") }
        }
        if let configured = ProcessInfo.processInfo.environment["POSTGRES_BIN_DIR"] {
            guard complete(configured) else { throw HarnessError("POSTGRES_BIN_DIR=\(configured) lacks initdb, postgres or psql") }
            return configured
        }
        if complete("/usr/lib/postgresql/15/bin") { return "/usr/lib/postgresql/15/bin" }
        let versions = ((try? files.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []).compactMap(Int.init).sorted(by: >)
        for version in versions where complete("/usr/lib/postgresql/\(version)/bin") { return "/usr/lib/postgresql/\(version)/bin" }
        throw HarnessError(
            "PostgreSQL is not installed (no /usr/lib/postgresql/15/bin/initdb): run Scripts/install-deps, which installs Debian's postgresql (PostgreSQL 15), or point POSTGRES_BIN_DIR at a directory with initdb, postgres and psql"
        )
    }
}

/// PostgreSQL servers left by a test process that died without stopping them. The postmaster
/// keeps its command line (`postgres -D /tmp/mm-pgtest-PID-…/data …`); its backends rename
/// themselves and exit on their own once the postmaster is gone.
let postgresLeftovers = TestServerLeftovers(directoryPrefix: "mm-pgtest-", executable: "postgres")
