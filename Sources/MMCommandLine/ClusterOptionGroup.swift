import ArgumentParser
import Foundation
import MMCore

/// `--config`, `--data-dir` and `--set`: which cluster a command is about. Every executable
/// takes them (mmd's services and supervisor, every mmctl command, check and drill) with the
/// same names, meaning and validation.
public struct ClusterOptionGroup: ParsableArguments, Sendable {
    @Option(help: ArgumentHelp(
        "Cluster config (YAML). mmctl: default $MMCTL_CONFIG, else ./etc/mmctl.yaml when present, else the built-in defaults; commands other than start and config use the one the running cluster was started with unless --config or --set give other inputs than it was started from. mmd: only this flag.",
        valueName: "file"), completion: .file(extensions: ["yaml", "yml"]))
    public var config: String?

    @Option(name: .customLong("data-dir"), help: ArgumentHelp("Cluster data directory (default: $MMCTL_DATA_DIR or ./var).", valueName: "dir"), completion: .directory)
    public var dataDir: String?

    @Option(
        name: .customLong("set"),
        help: ArgumentHelp("Override one config key, e.g. --set listen.port_base=7500 (repeatable; mmd supervise passes it on to every child).", valueName: "key=value"))
    public var overrides: [String] = []

    @Option(help: ArgumentHelp(
        "With hosts in the config: which host this machine is (its supervisor starts, stops and adds nodes for that host's processes only). Default: the one configured host whose address this machine has.",
        valueName: "name"))
    public var host: String?

    public init() {}

    /// Malformed `--set` items are usage errors, reported before any command runs.
    public mutating func validate() throws {
        do {
            _ = try ConfigOverrides.parse(overrides)
        } catch {
            throw ValidationError(error.description)
        }
        if let host, host != ClusterConfig.localHostName, !isValidHostName(host) {
            throw ValidationError("--host takes a host name of the config's hosts (a–z, 0–9, '-'; got '\(host)')")
        }
    }

    /// The host this machine runs: `--host`, else the configured host whose address is
    /// assigned here (`isLocalAddress`), else a usage error listing the hosts.
    public func resolveHost(config: ClusterConfig, isLocalAddress: (String) -> Bool) throws(ValidationError) -> String {
        if let host {
            guard config.hostNames.contains(host) else {
                throw ValidationError("--host \(host) is not a host of the config (\(config.hostNames.joined(separator: ", ")))")
            }
            return host
        }
        guard config.isMultiHost else { return ClusterConfig.localHostName }
        let local = config.hosts.filter { isLocalAddress($0.address) }.map(\.name)
        if local.count == 1 { return local[0] }
        throw ValidationError(local.isEmpty
            ? "none of the configured hosts' addresses (\(config.hosts.map { "\($0.name)=\($0.address)" }.joined(separator: ", "))) is on this machine: pass --host NAME"
            : "several configured hosts' addresses are on this machine (\(local.joined(separator: ", "))): pass --host NAME")
    }

    public var dataDirectory: DataDirectory { DataDirectory.resolve(flag: dataDir) }

    /// `--set` items as key → value (a later item for the same key wins).
    public func parsedOverrides() throws(ConfigOverrideError) -> [String: String] {
        try ConfigOverrides.parse(overrides)
    }

    /// The digest of what `loadConfig` reads (`ConfigInputs`): `--config`'s bytes, `MM_*`, `--set`.
    public func configInputsDigest(
        path: String? = nil, extra: [String: String] = [:], environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ValidationError) -> String? {
        let overrides: [String: String]
        do { overrides = try parsedOverrides().merging(extra) { _, new in new } } catch { throw ValidationError(error.description) }
        return ConfigInputs.digest(path: path ?? config, environment: environment, overrides: overrides)
    }

    /// The running cluster's effective config when it was resolved from exactly these inputs
    /// (file bytes, `MM_*`, `--set`): the same config `loadConfig` would resolve, without
    /// parsing the file again. nil when there is none, or anything differs.
    public func effectiveConfig(ifResolvedFrom path: String?, extra: [String: String] = [:]) -> ClusterConfig? {
        let directory = dataDirectory
        guard let stored = FileManager.default.contents(atPath: directory.effectiveConfigInputsPath),
              let digest = try? configInputsDigest(path: path, extra: extra),
              String(decoding: stored, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) == digest,
              let data = FileManager.default.contents(atPath: directory.effectiveConfigPath)
        else { return nil }
        return try? MMJSON.decode(ClusterConfig.self, from: data)
    }

    /// The config from `--config`, `MM_*` and `--set` (plus `extra`, which wins) over the
    /// embedded defaults. Any problem is a usage error naming the key (exit 64).
    public func loadConfig(extra: [String: String] = [:]) async throws(ValidationError) -> ClusterConfig {
        let overrides: [String: String]
        do { overrides = try parsedOverrides().merging(extra) { _, new in new } } catch { throw ValidationError(error.description) }
        do { return try await ClusterConfig.load(path: config, overrides: overrides) } catch { throw ValidationError(error.description) }
    }
}

/// A `--set` item that is not `key=value` with a non-empty key.
public struct ConfigOverrideError: Error, Sendable, Equatable, CustomStringConvertible {
    public var item: String

    public init(item: String) { self.item = item }

    public var description: String {
        "--set takes key=value with a non-empty key, e.g. --set listen.port_base=7500 (got '\(item)')"
    }
}

public enum ConfigOverrides {
    /// Splits each item at its first `=`: the value may itself contain `=` and may be empty.
    public static func parse(_ items: [String]) throws(ConfigOverrideError) -> [String: String] {
        var parsed: [String: String] = [:]
        for item in items {
            guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
                throw ConfigOverrideError(item: item)
            }
            parsed[String(item[..<equals])] = String(item[item.index(after: equals)...])
        }
        return parsed
    }
}
