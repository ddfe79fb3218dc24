import ArgumentParser
import CurlClient
import Foundation
import MMCommandLine
import MMCore
import ProcessKit

/// mmctl's exit codes, as supervisorctl's where they overlap (documented in mmctl(1)).
enum ExitStatus {
    static let ok: Int32 = 0
    static let failed: Int32 = 1
    static let alreadyRunning: Int32 = 2
    static let notRunning: Int32 = 3
    static let unreachable: Int32 = 4
    static let portInUse: Int32 = 5
    static let usage: Int32 = 64
}

/// What only mmctl does with the shared cluster options (MMCommandLine.ClusterOptionGroup):
/// follow the running cluster's own config, read its role tokens, reach its supervisor.
extension ClusterOptionGroup {
    /// The configuration to use. For a running (or last run) cluster, the resolved config
    /// it was started with (DATA_DIR/effective-config.json), so `--set` given to `start`
    /// need not be repeated; `--config`/`--set` here take precedence. Without either, the
    /// discovered file (`$MMCTL_CONFIG`, `./etc/mmctl.yaml`) or the built-ins.
    /// Every `CurlTransport()` made afterwards trusts this config's `tls.ca` (see
    /// `CurlTransport.useClusterTrust`: one cluster per mmctl run).
    func resolveConfig(extra: [String: String] = [:]) async throws -> ClusterConfig {
        if config == nil, overrides.isEmpty, extra.isEmpty,
           let data = FileManager.default.contents(atPath: dataDirectory.effectiveConfigPath),
           let effective = try? MMJSON.decode(ClusterConfig.self, from: data) {
            CurlTransport.useClusterTrust(effective)
            return effective
        }
        // Given a file or overrides: the running cluster's config still serves when it was
        // resolved from the very same inputs (ConfigInputs).
        if let same = effectiveConfig(ifResolvedFrom: discoveredConfig().path, extra: extra) {
            CurlTransport.useClusterTrust(same)
            return same
        }
        let discovered = try await loadDiscoveredConfig(extra: extra)
        CurlTransport.useClusterTrust(discovered)
        return discovered
    }

    func token(_ role: Role) throws -> String {
        do {
            return try dataDirectory.readSecret(dataDirectory.tokenPath(role))
        } catch {
            throw CLIFailure(ExitStatus.unreachable, "no cluster in \(dataDirectory.path): \(error)")
        }
    }

    /// The supervisor's control API, authenticated as `role` (supervisor for mutations,
    /// observer for reads).
    func supervisorClient(as role: Role, config: ClusterConfig, host: String? = nil, timeoutMs: Int64 = 5_000) throws -> SupervisorClient {
        SupervisorClient(ServiceEndpoint(baseURL: config.supervisorURL(host: host ?? config.hostNames[0]), token: try token(role), transport: CurlTransport(), timeoutMs: timeoutMs))
    }

    /// The supervisor of the host that runs process `name` (on several hosts each supervisor
    /// answers for its own host's processes only).
    func supervisorClient(as role: Role, config: ClusterConfig, forProcess name: String, timeoutMs: Int64 = 5_000) throws -> SupervisorClient {
        try supervisorClient(as: role, config: config, host: ClusterProcess(name: name).map(config.hostName(of:)), timeoutMs: timeoutMs)
    }

    /// The host this machine is (`--host`, else found by address); a usage error otherwise.
    func thisHost(config: ClusterConfig) throws -> String {
        do { return try resolveHost(config: config, isLocalAddress: HostChecks.isLocalAddress) } catch {
            throw CLIFailure(ExitStatus.usage, error.message)
        }
    }
}

/// A failure with the exit code it maps to; the message goes to stderr.
struct CLIFailure: Error, CustomStringConvertible {
    let code: Int32
    let description: String
    init(_ code: Int32, _ description: String) {
        self.code = code
        self.description = description
    }
}

extension ClientError {
    /// Unreachable supervisor ⇒ 4; a refusal (4xx) ⇒ 1 with the service's message.
    func asCLIFailure(_ what: String, dataDirectory: DataDirectory) -> CLIFailure {
        switch self {
        case .unreachable(let error):
            CLIFailure(ExitStatus.unreachable, "\(what): supervisor unreachable (\(error.reason)); is the cluster in \(dataDirectory.path) running? ('mmctl status')")
        case .api(let status, let envelope):
            CLIFailure(status == 404 ? ExitStatus.notRunning : ExitStatus.failed, "\(what): \(envelope.error.message) [\(envelope.error.code)]")
        case .undecodable:
            CLIFailure(ExitStatus.failed, "\(what): \(self)")
        }
    }
}

/// Runs a command body, printing a CLIFailure to stderr and exiting with its code.
func runReportingFailures(_ body: () async throws -> Int32) async throws {
    let code: Int32
    do {
        code = try await body()
    } catch let failure as CLIFailure {
        FileHandle.standardError.write(Data("mmctl: \(failure.description)\n".utf8))
        throw ExitCode(failure.code)
    }
    if code != 0 { throw ExitCode(code) }
}

func writeStdout(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}

func writeStderr(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
}

/// One JSON document on stdout: pretty for a single object, compact for NDJSON lines.
func writeJSON<T: Encodable>(_ value: T, pretty: Bool = true) throws {
    writeStdout(String(decoding: try MMJSON.encode(value, pretty: pretty), as: UTF8.self) + "\n")
}

/// The schema version of every JSON object mmctl prints itself (status has its own,
/// `ClusterSnapshot.currentSchemaVersion`; check and drill theirs). Fields are only ever added.
let outputSchemaVersion = 1

/// What a command that acts on one process prints with `-o json`.
struct ProcessActionOutput: Encodable {
    var schemaVersion = outputSchemaVersion
    /// kill-node, resume-node, restart, node add, node remove.
    var action: String
    var signal: String?
    var process: ProcessStatus
    /// With --wait: how long until the process was running and ready.
    var waitedMs: Int64?
}

/// "What it is waiting for" lines on stderr, only when stderr is a terminal (a script or a
/// pipe sees nothing). Each line replaces the previous one; `finish` clears it.
final class Progress: @unchecked Sendable {
    let enabled: Bool
    private var shown = false
    private var last = ""

    init(enabled: Bool = isatty(STDERR_FILENO) == 1) { self.enabled = enabled }

    func update(_ text: String) {
        guard enabled, text != last else { return }
        last = text
        // One line only, or the next \r would not clear what wrapped.
        var size = winsize()
        let columns = ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 1 ? Int(size.ws_col) - 1 : 79
        writeStderr("\r\u{1b}[K" + (text.count > columns ? String(text.prefix(columns - 1)) + "…" : text))
        shown = true
    }

    func finish() {
        guard enabled, shown else { return }
        writeStderr("\r\u{1b}[K")
        shown = false
        last = ""
    }
}
