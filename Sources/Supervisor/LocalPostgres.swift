import Foundation
import MMCore

#if canImport(Glibc)
import Glibc
#endif

/// The local PostgreSQL 15 that `mmctl start` runs for `state.backend: postgres` without a url:
/// Debian's binaries, the cluster in DATA_DIR/postgres/data (initdb on the first start), a
/// generated password in DATA_DIR/postgres/password, listening on its host's address at
/// `port_base + 9` and on a Unix socket in DATA_DIR/postgres/run. initdb and the server refuse to
/// run as root, so when the supervisor is root both run as the `postgres` system user (which
/// Debian's package creates); the directory is handed to that user.
public struct LocalPostgres: Sendable {
    public let config: ClusterConfig
    public let dataDirectory: DataDirectory

    public init(config: ClusterConfig, dataDirectory: DataDirectory) {
        self.config = config
        self.dataDirectory = dataDirectory
    }

    /// Debian installs each major version's server programs here.
    public static let binDirectory = "/usr/lib/postgresql/15/bin"

    public enum Failure: Error, CustomStringConvertible {
        case notInstalled(String)
        case noPostgresUser
        case setup(String)

        public var description: String {
            switch self {
            case .notInstalled(let path):
                "PostgreSQL 15 is not installed (\(path) is missing): run Scripts/install-deps (Debian package postgresql)"
            case .noPostgresUser:
                "running as root, but there is no 'postgres' user to run PostgreSQL as (it refuses root): install Debian's postgresql package (Scripts/install-deps)"
            case .setup(let why):
                "cannot prepare the local PostgreSQL: \(why)"
            }
        }
    }

    /// The user the server runs as: `postgres` when we are root, else ourselves (nil).
    func serverAccount() throws(Failure) -> (uid: uid_t, gid: gid_t)? {
        guard getuid() == 0 else { return nil }
        guard let entry = getpwnam("postgres") else { throw .noPostgresUser }
        return (entry.pointee.pw_uid, entry.pointee.pw_gid)
    }

    /// Creates the directory, the password and (first start only) the cluster. Idempotent.
    public func prepare() throws(Failure) {
        for program in ["initdb", "postgres"] where !FileManager.default.isExecutableFile(atPath: "\(Self.binDirectory)/\(program)") {
            throw .notInstalled("\(Self.binDirectory)/\(program)")
        }
        let account = try serverAccount()
        do {
            for directory in [dataDirectory.postgresDirectory, dataDirectory.postgresSocketDirectory] {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            }
            if !FileManager.default.fileExists(atPath: dataDirectory.postgresPasswordPath) {
                let password = (0..<24).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
                try Data(password.utf8).write(to: URL(fileURLWithPath: dataDirectory.postgresPasswordPath), options: .atomic)
            }
            chmod(dataDirectory.postgresPasswordPath, 0o600)
            if account != nil {
                // The server runs as `postgres`, which must be able to pass through the data
                // directory (often 0700 root, e.g. from mktemp -d) to reach DATA_DIR/postgres:
                // add search permission for others on it and its parents, nothing else (no
                // listing; tokens/ stays 0700).
                var path = dataDirectory.path
                while path != "/" && !path.isEmpty {
                    var info = stat()
                    if stat(path, &info) == 0, info.st_mode & S_IXOTH == 0 { chmod(path, (info.st_mode & 0o7777) | S_IXOTH) }
                    path = (path as NSString).deletingLastPathComponent
                }
            }
            if let account {
                for path in [dataDirectory.postgresDirectory, dataDirectory.postgresSocketDirectory, dataDirectory.postgresPasswordPath] {
                    chown(path, account.uid, account.gid)
                }
            }
        } catch {
            throw .setup("\(dataDirectory.postgresDirectory): \(error)")
        }
        guard !FileManager.default.fileExists(atPath: dataDirectory.postgresDataPath + "/PG_VERSION") else { return try allowClusterHosts() }
        defer { try? allowClusterHosts() }
        // A half-made cluster from an interrupted initdb is started over.
        try? FileManager.default.removeItem(atPath: dataDirectory.postgresDataPath)
        let status = run(
            "\(Self.binDirectory)/initdb",
            ["-D", dataDirectory.postgresDataPath, "-U", "postgres", "--pwfile", dataDirectory.postgresPasswordPath,
             "--auth", "scram-sha-256", "-E", "UTF8", "--locale", "C.UTF-8", "--no-instructions"],
            as: account)
        guard status == 0 else { throw .setup("initdb exited with status \(status) (its output is in this process's log)") }
    }

    /// initdb's pg_hba.conf admits loopback only. On several hosts the state replicas connect
    /// from their own hosts' addresses: each configured host gets a password (scram) line, in
    /// a block rewritten at every start so a changed `hosts` never leaves a stale address.
    func allowClusterHosts() throws(Failure) {
        let path = dataDirectory.postgresDataPath + "/pg_hba.conf"
        guard let data = FileManager.default.contents(atPath: path) else { return }
        let begin = "# mm cluster hosts (written by mmd; edits inside are replaced)", end = "# end of mm cluster hosts"
        var lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if let first = lines.firstIndex(of: begin), let last = lines.firstIndex(of: end), first <= last { lines.removeSubrange(first...last) }
        while lines.last == "" { lines.removeLast() }
        if config.isMultiHost {
            lines.append(begin)
            for host in config.hosts {
                let mask = host.address.contains(":") ? "128" : "32"
                lines.append("host all all \(host.address)/\(mask) scram-sha-256")
            }
            lines.append(end)
        }
        do { try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path)) } catch {
            throw .setup("\(path): \(error)")
        }
    }

    /// The server's arguments: durable (fsync on) since it holds the ledger of record; loopback
    /// and a private socket directory only.
    public var serverArguments: [String] {
        [
            "\(Self.binDirectory)/postgres", "-D", dataDirectory.postgresDataPath,
            "-p", "\(config.port(of: .postgres))", "-k", dataDirectory.postgresSocketDirectory,
            "-c", "listen_addresses=\(config.address(of: .postgres))", "-c", "max_connections=100",
            "-c", "logging_collector=off", "-c", "log_min_messages=warning",
        ]
    }

    /// Drops to the server's account (when root), then the caller arms its parent-death signal
    /// (a credential change clears it, so it must come after) and execs `serverArguments`.
    public func dropPrivileges() throws(Failure) {
        guard let account = try serverAccount() else { return }
        guard setgroups(0, nil) == 0, setgid(account.gid) == 0, setuid(account.uid) == 0 else {
            throw .setup("cannot switch to the postgres user: \(String(cString: strerror(errno)))")
        }
        setenv("HOME", dataDirectory.postgresDirectory, 1)
    }

    /// Runs a program to completion (as `account` when given), its output to ours (the log).
    private func run(_ program: String, _ arguments: [String], as account: (uid: uid_t, gid: gid_t)?) -> Int32 {
        let process = Process()
        if let account {
            // runuser drops to the account without PAM prompts; it is in util-linux, always there.
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
            process.arguments = ["-u", "postgres", "--", program] + arguments
            _ = account
        } else {
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = arguments
        }
        process.currentDirectoryURL = URL(fileURLWithPath: dataDirectory.postgresDirectory)
        do { try process.run() } catch { return 127 }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Whether the server accepts connections (`pg_isready`), for the supervisor's probe.
    public static func isAccepting(host: String, port: Int) async -> Bool {
        await withCheckedContinuation { continuation in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "\(binDirectory)/pg_isready")
            process.arguments = ["-q", "-h", host, "-p", "\(port)", "-t", "1"]
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus == 0) }
            do { try process.run() } catch { continuation.resume(returning: false) }
        }
    }
}
