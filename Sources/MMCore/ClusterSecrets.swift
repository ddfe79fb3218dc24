import Foundation

/// The secrets of a cluster provisioned once and handed out per host (`mmctl secrets`):
/// `init` makes them on one machine, `export --host b` writes the part host b's processes
/// need, `import` installs that on host b. A single-host `mmctl start` without provisioned
/// secrets keeps making fresh ones at every start, as before.
public enum ClusterSecrets {
    /// The sets of secrets a data directory may hold. Outside a rotation only `current`.
    /// `mmctl secrets rotate` stages `next` (accepted everywhere, presented nowhere), `--activate`
    /// makes it current and keeps the old one as `previous` (still accepted), `--finish` drops it.
    public enum TokenSet: String, Sendable, CaseIterable {
        case current, next, previous

        /// DATA_DIR/tokens, DATA_DIR/tokens/next, DATA_DIR/tokens/previous.
        public func directory(in dataDirectory: DataDirectory) -> String {
            self == .current ? dataDirectory.tokensDirectory : dataDirectory.file("tokens/\(rawValue)")
        }

        /// How the set's files are named in an export ("tokens/", "tokens/next/", …).
        var exportPrefix: String { self == .current ? "tokens/" : "tokens/\(rawValue)/" }
    }

    /// What a host needs, from the processes placed on it.
    public struct Needs: Sendable, Hashable {
        /// Shared role tokens, presented by its processes or checked by its services.
        public var sharedRoles: Set<Role>
        /// The node-identity key: only where node tokens are checked (coordinator, state, exchange).
        public var nodeIdentityKey: Bool
        /// The grant-signing key: the coordinator signs, the exchange checks.
        public var grantKey: Bool
        /// The own tokens of the nodes placed on it (every id it may run, for `node add`).
        public var nodes: [String]
        /// The local PostgreSQL's password: its server and the state replicas that log in.
        public var postgresPassword: Bool
    }

    /// The processes that check the tokens of many roles (the nodes', the supervisors', the
    /// observers', each other's): a host running one needs every shared token and the key.
    static func checksEveryRole(_ process: ClusterProcess) -> Bool {
        switch process {
        case .coordinator, .coordinatorReplica, .state, .stateReplica, .exchange: true
        default: false
        }
    }

    public static func needs(config: ClusterConfig, host: String) -> Needs {
        let processes = config.processes(onHost: host, nodeCount: ClusterConfig.maxNodes)
        let verifies = processes.contains(where: checksEveryRole)
        // Every host runs a supervisor (checks supervisor and observer tokens), and its
        // operator's mmctl presents them.
        var roles: Set<Role> = [.supervisor, .observer]
        if verifies { roles = Set(Role.sharedTokenRoles) }
        return Needs(
            sharedRoles: roles,
            nodeIdentityKey: verifies,
            grantKey: processes.contains { $0.coordinatorReplicaIndex != nil || $0 == .exchange },
            nodes: processes.compactMap { if case .node = $0 { $0.name } else { nil } },
            postgresPassword: config.runsLocalPostgres && processes.contains { $0 == .postgres || $0.stateReplicaIndex != nil })
    }

    /// What `provisioned.json` says about where the secrets came from.
    public struct Marker: Codable, Sendable, Hashable {
        /// "init" (made here) or "import" (a host's part, from another machine's export).
        public var source: String
        /// The host an imported part was exported for.
        public var host: String?
        public var createdAtMs: EpochMs
        /// Where a rotation stands: nil, "staged" (next set present) or "active" (previous set present).
        public var rotation: String?
    }

    /// What `mmctl secrets export` writes: one JSON file (mode 0600), every secret as text
    /// under its path relative to the data directory.
    public struct Bundle: Codable, Sendable, Hashable {
        public static let kindName = "mm-cluster-secrets"
        public var schemaVersion = 1
        public var kind = Bundle.kindName
        public var host: String
        public var createdAtMs: EpochMs
        public var files: [String: String]
        /// Where a rotation stood at export ("staged", "active" or absent).
        public var rotation: String?

        public init(host: String, createdAtMs: EpochMs, files: [String: String], rotation: String? = nil) {
            self.host = host
            self.createdAtMs = createdAtMs
            self.files = files
            self.rotation = rotation
        }
    }

    public static func isProvisioned(_ dataDirectory: DataDirectory) -> Bool {
        FileManager.default.fileExists(atPath: dataDirectory.secretsMarkerPath)
    }

    public static func marker(_ dataDirectory: DataDirectory) -> Marker? {
        FileManager.default.contents(atPath: dataDirectory.secretsMarkerPath).flatMap { try? MMJSON.decode(Marker.self, from: $0) }
    }

    /// Makes every secret of the cluster here (`mmctl secrets init`). Refuses to replace
    /// provisioned ones unless `replace`: every host would have to import again.
    @discardableResult
    public static func initialize(in dataDirectory: DataDirectory, replace: Bool, nowMs: EpochMs) throws(SecretsError) -> RoleTokens {
        if isProvisioned(dataDirectory) && !replace { throw .alreadyProvisioned(dataDirectory.path) }
        do {
            try? FileManager.default.removeItem(atPath: dataDirectory.nodeTokensDirectory)
            let tokens = try RoleTokens.generate(in: dataDirectory)
            try FileManager.default.createDirectory(atPath: dataDirectory.postgresDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            if !FileManager.default.fileExists(atPath: dataDirectory.postgresPasswordPath) {
                try dataDirectory.writeSecret(randomHex(bytes: 24), to: dataDirectory.postgresPasswordPath)
            }
            try? FileManager.default.removeItem(atPath: TokenSet.next.directory(in: dataDirectory))
            try? FileManager.default.removeItem(atPath: TokenSet.previous.directory(in: dataDirectory))
            try writeMarker(Marker(source: "init", host: nil, createdAtMs: nowMs), in: dataDirectory)
            return tokens
        } catch {
            throw .io(dataDirectory.tokensDirectory, "\(error)")
        }
    }

    /// Host `host`'s part of the secrets held here, of every set present (a rotation's too).
    /// Needs the full sets (`init` ran here).
    public static func export(from dataDirectory: DataDirectory, config: ClusterConfig, host: String, nowMs: EpochMs) throws(SecretsError) -> Bundle {
        guard config.hostNames.contains(host) else { throw .unknownHost(host, config.hostNames) }
        guard let marker = marker(dataDirectory), marker.source == "init" else { throw .notInitialized(dataDirectory.path) }
        let needs = needs(config: config, host: host)
        var files: [String: String] = [:]
        func read(_ path: String) throws(SecretsError) -> String {
            do { return try dataDirectory.readSecret(path) } catch { throw .io(path, "\(error)") }
        }
        for set in TokenSet.allCases where FileManager.default.fileExists(atPath: set.directory(in: dataDirectory)) {
            let directory = set.directory(in: dataDirectory)
            func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
            for role in needs.sharedRoles.sorted(by: { $0.rawValue < $1.rawValue }) {
                files[set.exportPrefix + role.rawValue] = try read(path(role.rawValue))
            }
            if needs.nodeIdentityKey { files[set.exportPrefix + "node-identity.key"] = try read(path("node-identity.key")) }
            if needs.grantKey { files[set.exportPrefix + "grant-signing.key"] = try read(path("grant-signing.key")) }
            if !needs.nodes.isEmpty && !needs.nodeIdentityKey {
                let identity = NodeIdentity(keyHex: try read(path("node-identity.key")))
                for node in needs.nodes { files[set.exportPrefix + "nodes/\(node)"] = identity.token(for: node) }
            }
        }
        if needs.postgresPassword { files["postgres/password"] = try read(dataDirectory.postgresPasswordPath) }
        return Bundle(host: host, createdAtMs: nowMs, files: files, rotation: marker.rotation)
    }

    /// The only paths a bundle may write: a bundle from elsewhere is input, and a crafted
    /// one must not reach outside tokens/ and postgres/password.
    static func isAllowedPath(_ path: String) -> Bool {
        if path == "postgres/password" { return true }
        for set in TokenSet.allCases where path.hasPrefix(set.exportPrefix) {
            let name = String(path.dropFirst(set.exportPrefix.count))
            if Role.sharedTokenRoles.map(\.rawValue).contains(name) || name == "node-identity.key" || name == "grant-signing.key" { return true }
            if name.hasPrefix("nodes/"), NodeID.isValid(String(name.dropFirst("nodes/".count))) { return true }
        }
        return false
    }

    /// One step of a rotation, run where `init` ran; each is followed by exporting every
    /// host's part and importing it there (running processes pick it up within a second).
    public enum RotationStep: String, Sendable {
        /// Make a new set as `next`: accepted everywhere once imported, presented nowhere yet.
        case stage
        /// The next set becomes current (presented from now on); the old one stays accepted as `previous`.
        case activate
        /// Drop the previous set: only the current one is accepted.
        case finish
    }

    public static func rotate(_ step: RotationStep, in dataDirectory: DataDirectory, nowMs: EpochMs) throws(SecretsError) {
        guard var marker = marker(dataDirectory), marker.source == "init" else { throw .notInitialized(dataDirectory.path) }
        let next = TokenSet.next.directory(in: dataDirectory), previous = TokenSet.previous.directory(in: dataDirectory)
        let manager = FileManager.default
        do {
            switch step {
            case .stage:
                guard !manager.fileExists(atPath: next) else { throw SecretsError.rotation("a new set is already staged: activate it ('mmctl secrets rotate --activate')") }
                guard !manager.fileExists(atPath: previous) else { throw SecretsError.rotation("the previous rotation is not finished: 'mmctl secrets rotate --finish' once every host runs the current set") }
                try manager.createDirectory(atPath: next, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                for role in Role.sharedTokenRoles { try dataDirectory.writeSecret(randomHex(bytes: 32), to: next + "/" + role.rawValue) }
                try dataDirectory.writeSecret(randomHex(bytes: 32), to: next + "/node-identity.key")
                try dataDirectory.writeSecret(randomHex(bytes: 32), to: next + "/grant-signing.key")
                marker.rotation = "staged"
            case .activate:
                guard manager.fileExists(atPath: next) else { throw SecretsError.rotation("no new set is staged: 'mmctl secrets rotate' stages one") }
                try manager.createDirectory(atPath: previous, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                let names = Role.sharedTokenRoles.map(\.rawValue) + ["node-identity.key", "grant-signing.key"]
                for name in names where manager.fileExists(atPath: dataDirectory.file("tokens/\(name)")) {
                    try manager.moveItem(atPath: dataDirectory.file("tokens/\(name)"), toPath: previous + "/" + name)
                }
                for name in names where manager.fileExists(atPath: next + "/" + name) {
                    try manager.moveItem(atPath: next + "/" + name, toPath: dataDirectory.file("tokens/\(name)"))
                }
                try manager.removeItem(atPath: next)
                marker.rotation = "active"
            case .finish:
                guard manager.fileExists(atPath: previous) else { throw SecretsError.rotation("no previous set to drop: 'mmctl secrets rotate --activate' first") }
                try manager.removeItem(atPath: previous)
                marker.rotation = nil
            }
            marker.createdAtMs = nowMs
            try writeMarker(marker, in: dataDirectory)
        } catch let error as SecretsError {
            throw error
        } catch {
            throw .io(dataDirectory.tokensDirectory, "\(error)")
        }
    }

    /// Installs host `bundle.host`'s part (`mmctl secrets import`): the tokens directory then
    /// holds exactly the bundle's secrets.
    public static func importBundle(_ bundle: Bundle, into dataDirectory: DataDirectory, nowMs: EpochMs) throws(SecretsError) {
        guard bundle.kind == Bundle.kindName, bundle.schemaVersion == 1 else { throw .badBundle("not an mmctl secrets export (kind \(bundle.kind), schema \(bundle.schemaVersion))") }
        guard isValidHostName(bundle.host) else { throw .badBundle("host '\(bundle.host)' is not a host name") }
        for (path, secret) in bundle.files {
            guard isAllowedPath(path) else { throw .badBundle("it names '\(path)', which is not a secret's path") }
            guard !secret.isEmpty, secret.count <= 512, secret.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
                throw .badBundle("the secret for '\(path)' is empty, too long or not plain text")
            }
        }
        if let password = bundle.files["postgres/password"],
           FileManager.default.fileExists(atPath: dataDirectory.postgresDataPath + "/PG_VERSION"),
           let current = try? dataDirectory.readSecret(dataDirectory.postgresPasswordPath), current != password {
            throw .badBundle("it carries a PostgreSQL password other than the one the local server in \(dataDirectory.postgresDataPath) was made with")
        }
        do {
            try dataDirectory.ensureTokensDirectory()
            for name in try FileManager.default.contentsOfDirectory(atPath: dataDirectory.tokensDirectory) {
                try FileManager.default.removeItem(atPath: dataDirectory.file("tokens/\(name)"))
            }
            for (path, secret) in bundle.files.sorted(by: { $0.key < $1.key }) {
                let file = dataDirectory.file(path)
                try FileManager.default.createDirectory(
                    atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                try dataDirectory.writeSecret(secret, to: file)
            }
            // Last: running processes reload when the marker changes (`SecretsReload`).
            try writeMarker(Marker(source: "import", host: bundle.host, createdAtMs: nowMs, rotation: bundle.rotation), in: dataDirectory)
        } catch {
            throw .io(dataDirectory.tokensDirectory, "\(error)")
        }
    }

    /// The tokens a supervisor starts host `host` with: the provisioned ones (checked to be
    /// this host's and complete), or on a single host without provisioning, fresh ones.
    public static func tokensForStart(config: ClusterConfig, host: String, dataDirectory: DataDirectory) throws -> RoleTokens {
        guard let marker = marker(dataDirectory) else {
            if config.isMultiHost { throw SecretsError.notProvisioned(host: host, dataDirectory.path) }
            return try RoleTokens.generate(in: dataDirectory)
        }
        if let exportedFor = marker.host, exportedFor != host { throw SecretsError.otherHost(exportedFor: exportedFor, starting: host) }
        let needs = needs(config: config, host: host)
        var required = needs.sharedRoles.map { dataDirectory.tokenPath($0) }
        if needs.nodeIdentityKey { required.append(dataDirectory.nodeIdentityKeyPath) }
        if needs.grantKey { required.append(dataDirectory.grantKeyPath) }
        if !needs.nodeIdentityKey { required += needs.nodes.map { dataDirectory.nodeTokenPath($0) } }
        if let missing = required.sorted().first(where: { !FileManager.default.fileExists(atPath: $0) }) {
            throw SecretsError.incomplete(host: host, missing: missing)
        }
        return try RoleTokens.loadProvisioned(from: dataDirectory)
    }

    static func writeMarker(_ marker: Marker, in dataDirectory: DataDirectory) throws {
        try dataDirectory.writeSecret(String(decoding: try MMJSON.encode(marker), as: UTF8.self), to: dataDirectory.secretsMarkerPath)
    }
}

public enum SecretsError: Error, Sendable, CustomStringConvertible {
    case alreadyProvisioned(String)
    case notInitialized(String)
    case notProvisioned(host: String, String)
    case otherHost(exportedFor: String, starting: String)
    case incomplete(host: String, missing: String)
    case unknownHost(String, [String])
    case badBundle(String)
    case rotation(String)
    case io(String, String)

    public var description: String {
        switch self {
        case .alreadyProvisioned(let path):
            "\(path) already holds provisioned secrets; --replace makes new ones (then every host must import its new export)"
        case .notInitialized(let path):
            "\(path) holds no secrets made by 'mmctl secrets init' (an imported host's part cannot be exported again): run 'mmctl secrets init' first"
        case .notProvisioned(let host, let path):
            "a cluster on several hosts needs its secrets provisioned once, not made at each start: run 'mmctl secrets init' on one machine, then 'mmctl secrets export --host \(host) -o FILE' there and 'mmctl secrets import FILE --data-dir \(path)' here"
        case .otherHost(let exportedFor, let starting):
            "the secrets in this data directory were exported for host '\(exportedFor)', but this is host '\(starting)': import host '\(starting)''s export ('mmctl secrets export --host \(starting)')"
        case .incomplete(let host, let missing):
            "host '\(host)' lacks \(missing), which its processes need (was the placement changed after the export?): export and import its secrets again"
        case .unknownHost(let host, let known):
            "host '\(host)' is not in the configuration's hosts (\(known.joined(separator: ", ")))"
        case .rotation(let why):
            "cannot take that rotation step: \(why)"
        case .badBundle(let why):
            "refusing the secrets file: \(why)"
        case .io(let path, let why):
            "cannot write or read secrets in \(path): \(why)"
        }
    }
}
