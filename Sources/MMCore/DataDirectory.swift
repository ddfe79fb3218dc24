import Foundation

/// One directory holds a cluster's state; two clusters in two directories never touch.
///
///     DATA_DIR/
///       tokens/ROLE            role bearer tokens (0600, directory 0700)
///       tokens/grant-signing.key
///       tokens/node-identity.key   the key every node's own token is derived from
///       tokens/nodes/NODE          a node's own token (hosts given no key, `mmctl secrets`)
///       tokens/provisioned.json    secrets made by `mmctl secrets init`/`import`: kept at start
///       exchange.sqlite        journal + fill log
///       state.sqlite           fill ledger + positions
///       coordinator.sqlite     fencing counters + event log
///       etcd/etcdK/            data of local etcd member K (coordinator.backend=etcd)
///       postgres/data/         the local PostgreSQL's cluster (state.backend=postgres, no url)
///       postgres/password      its password (0600), generated at the first start
///       logs/NAME.log          per-process logs (rotated NAME.log.1 …)
///       supervisor.lock        flock held while a supervisor runs
///       supervisor.json        supervisor pid, control address
///       pids/NAME.pid          last known child pids, swept at the next start
///       effective-config.json the resolved config every child was started with
public struct DataDirectory: Sendable, Hashable {
    public let path: String

    public init(_ path: String) {
        let expanded = (path as NSString).expandingTildeInPath
        if expanded.hasPrefix("/") {
            self.path = (expanded as NSString).standardizingPath
        } else {
            let cwd = FileManager.default.currentDirectoryPath
            self.path = ((cwd as NSString).appendingPathComponent(expanded) as NSString).standardizingPath
        }
    }

    /// `--data-dir` wins, then `MMCTL_DATA_DIR`, then `var/` in the working directory.
    public static func resolve(flag: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> DataDirectory {
        DataDirectory(flag ?? environment["MMCTL_DATA_DIR"] ?? "var")
    }

    public var tokensDirectory: String { file("tokens") }
    public func tokenPath(_ role: Role) -> String { file("tokens/\(role.rawValue)") }
    public var grantKeyPath: String { file("tokens/grant-signing.key") }
    /// The key every node's own token is derived from (see `NodeIdentity`).
    public var nodeIdentityKeyPath: String { file("tokens/node-identity.key") }
    /// Single node tokens, on a host given its nodes' tokens but not the key (`mmctl secrets`).
    public var nodeTokensDirectory: String { file("tokens/nodes") }
    public func nodeTokenPath(_ node: String) -> String { file("tokens/nodes/\(node)") }
    /// Present when the secrets were provisioned (`mmctl secrets init` or `import`): `mmctl
    /// start` then uses them instead of making new ones.
    public var secretsMarkerPath: String { file("tokens/provisioned.json") }
    public var logsDirectory: String { file("logs") }
    public func logPath(_ process: String) -> String { file("logs/\(process).log") }
    public var pidsDirectory: String { file("pids") }
    public func pidPath(_ process: String) -> String { file("pids/\(process).pid") }
    public func databasePath(_ service: String) -> String { file("\(service).sqlite") }
    public var lockPath: String { file("supervisor.lock") }
    public var supervisorStatePath: String { file("supervisor.json") }
    public var effectiveConfigPath: String { file("effective-config.json") }
    /// The digest of what the effective config was resolved from (`ConfigInputs`).
    public var effectiveConfigInputsPath: String { file("effective-config.inputs") }
    /// Where the members of a local etcd cluster keep their data, one directory each.
    public var etcdDirectory: String { file("etcd") }
    /// The data directory of local etcd member `member` (`etcd1`…).
    public func etcdDataPath(_ member: String) -> String { file("etcd/\(member)") }

    /// The local PostgreSQL (`state.backend: postgres` without a url): its directory, the
    /// cluster initdb creates in it, its Unix socket directory and its generated password.
    public var postgresDirectory: String { file("postgres") }
    public var postgresDataPath: String { file("postgres/data") }
    public var postgresSocketDirectory: String { file("postgres/run") }
    public var postgresPasswordPath: String { file("postgres/password") }

    public func file(_ relative: String) -> String { (path as NSString).appendingPathComponent(relative) }

    public func ensureExists() throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: logsDirectory, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: pidsDirectory, withIntermediateDirectories: true)
    }

    public func ensureTokensDirectory() throws {
        try ensureExists()
        try FileManager.default.createDirectory(atPath: tokensDirectory, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: tokensDirectory)
    }

    /// Writes a secret so that it is never readable by others, not even for an instant:
    /// the file is created 0600 and renamed into place.
    public func writeSecret(_ secret: String, to filePath: String) throws {
        let temporary = filePath + ".tmp"
        _ = FileManager.default.createFile(atPath: temporary, contents: nil, attributes: [.posixPermissions: 0o600])
        try Data(secret.utf8).write(to: URL(fileURLWithPath: temporary))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: temporary)
        if FileManager.default.fileExists(atPath: filePath) { try FileManager.default.removeItem(atPath: filePath) }
        try FileManager.default.moveItem(atPath: temporary, toPath: filePath)
    }

    public func readSecret(_ filePath: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: filePath) else {
            throw DataDirectoryError.missingSecret(filePath)
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

public enum DataDirectoryError: Error, CustomStringConvertible {
    case missingSecret(String)

    public var description: String {
        switch self {
        case .missingSecret(let path):
            "missing \(path): start the cluster with 'mmctl start' (it writes the role tokens), or point --data-dir at the cluster's data directory"
        }
    }
}
