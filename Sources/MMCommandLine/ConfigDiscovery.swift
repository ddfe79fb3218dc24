import ArgumentParser
import Foundation
import MMCore

/// Which configuration file an mmctl command reads when it resolves the configuration itself:
/// `--config FILE`, else `$MMCTL_CONFIG`, else `./etc/mmctl.yaml` when that file exists,
/// else none (the built-in defaults). `mmd` never discovers: it reads only `--config`
/// (`mmctl start` passes the file it chose on to the supervisor and every child).
public enum ConfigDiscovery {
    public static let environmentVariable = "MMCTL_CONFIG"
    public static let conventionalPath = "etc/mmctl.yaml"

    public enum Origin: Sendable, Hashable, CustomStringConvertible {
        case flag
        case environment
        case workingDirectory
        case builtIn

        public var description: String {
            switch self {
            case .flag: "--config"
            case .environment: "$\(ConfigDiscovery.environmentVariable)"
            case .workingDirectory: "./\(ConfigDiscovery.conventionalPath)"
            case .builtIn: "built-in defaults"
            }
        }
    }

    /// The chosen file as an absolute path (nil: built-ins) and why it was chosen. An empty
    /// `MMCTL_CONFIG` counts as unset.
    public static func resolve(
        flag: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        currentDirectory: String = FileManager.default.currentDirectoryPath
    ) -> (path: String?, origin: Origin) {
        func absolute(_ path: String) -> String {
            let expanded = (path as NSString).expandingTildeInPath
            if expanded.hasPrefix("/") { return (expanded as NSString).standardizingPath }
            return ((currentDirectory as NSString).appendingPathComponent(expanded) as NSString).standardizingPath
        }
        if let flag { return (absolute(flag), .flag) }
        if let variable = environment[environmentVariable], !variable.isEmpty { return (absolute(variable), .environment) }
        let conventional = (currentDirectory as NSString).appendingPathComponent(conventionalPath)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: conventional, isDirectory: &isDirectory), !isDirectory.boolValue {
            return (conventional, .workingDirectory)
        }
        return (nil, .builtIn)
    }
}

extension ConfigDiscovery {
    /// A problem with the file itself ("'--config' names 'x', which does not exist") named
    /// after where the file came from: `MMCTL_CONFIG` or `./etc/mmctl.yaml` rather than a flag
    /// the operator never gave.
    public static func attributed(_ error: ConfigError, to origin: Origin) -> ConfigError {
        guard error.key == "--config", origin != .flag else { return error }
        var renamed = error
        renamed.key = origin == .environment ? environmentVariable : conventionalPath
        return renamed
    }
}

extension ClusterOptionGroup {
    /// The file this command would read (see `ConfigDiscovery`).
    public func discoveredConfig(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        currentDirectory: String = FileManager.default.currentDirectoryPath
    ) -> (path: String?, origin: ConfigDiscovery.Origin) {
        ConfigDiscovery.resolve(flag: config, environment: environment, currentDirectory: currentDirectory)
    }

    /// `loadConfig`, but from the discovered file (mmctl) rather than `--config` alone (mmd).
    public func loadDiscoveredConfig(extra: [String: String] = [:]) async throws(ValidationError) -> ClusterConfig {
        let overrides: [String: String]
        do { overrides = try parsedOverrides().merging(extra) { _, new in new } } catch { throw ValidationError(error.description) }
        let (path, origin) = discoveredConfig()
        do { return try await ClusterConfig.load(path: path, overrides: overrides) } catch {
            throw ValidationError(ConfigDiscovery.attributed(error, to: origin).description)
        }
    }
}
