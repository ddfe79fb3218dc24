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
    /// need not be repeated; `--config`/`--set` here take precedence.
    func resolveConfig(extra: [String: String] = [:]) async throws -> ClusterConfig {
        if config == nil, overrides.isEmpty, extra.isEmpty,
           let data = FileManager.default.contents(atPath: dataDirectory.effectiveConfigPath),
           let effective = try? MMJSON.decode(ClusterConfig.self, from: data) {
            return effective
        }
        return try await loadConfig(extra: extra)
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
    func supervisorClient(as role: Role, config: ClusterConfig, timeoutMs: Int64 = 5_000) throws -> SupervisorClient {
        SupervisorClient(ServiceEndpoint(baseURL: config.supervisorURL, token: try token(role), transport: CurlTransport(), timeoutMs: timeoutMs))
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
