import ArgumentParser
import Foundation
import MMCommandLine
import MMCore

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Show the effective configuration with the source of every value, or validate a config file.",
        subcommands: [Show.self, Validate.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every effective configuration value and where it comes from: default, file PATH, env MM_X or --set.",
            discussion: """
                Resolved as 'mmctl start' resolves it: the file from --config, else $MMCTL_CONFIG, else ./etc/mmctl.yaml \
                when present, else none (built-in defaults); over it MM_* environment variables, over those --set. \
                A bad value or an unknown key or MM_* variable is a usage error (exit 64) naming it.
                """)

        @OptionGroup var cluster: ClusterOptionGroup
        @OptionGroup var output: OutputOptions

        struct Value: Encodable {
            var key: String
            var value: String
            /// default, file, env or --set.
            var source: String
            var path: String?
            var variable: String?
        }

        struct Document: Encodable {
            var schemaVersion = outputSchemaVersion
            var configFile: String?
            /// --config, $MMCTL_CONFIG, ./etc/mmctl.yaml or built-in defaults.
            var configFileFrom: String
            var values: [Value]
        }

        func run() async throws {
            try await runReportingFailures {
                let (path, origin) = cluster.discoveredConfig()
                let overrides: [String: String]
                do { overrides = try cluster.parsedOverrides() } catch { throw CLIFailure(ExitStatus.usage, "\(error)") }
                let origins: [ConfigValueOrigin]
                do throws(ConfigError) { origins = try await ClusterConfig.explain(path: path, overrides: overrides).origins } catch {
                    throw CLIFailure(ExitStatus.usage, ConfigDiscovery.attributed(error, to: origin).description)
                }
                if output.json {
                    let values = origins.map { origin -> Value in
                        switch origin.source {
                        case .builtIn: Value(key: origin.key, value: origin.value, source: "default")
                        case .file(let path): Value(key: origin.key, value: origin.value, source: "file", path: path)
                        case .environment(let variable): Value(key: origin.key, value: origin.value, source: "env", variable: variable)
                        case .override: Value(key: origin.key, value: origin.value, source: "--set")
                        }
                    }
                    try writeJSON(Document(configFile: path, configFileFrom: origin.description, values: values))
                    return ExitStatus.ok
                }
                var lines = ["config file: \(path.map { "\($0) (from \(origin))" } ?? "none (built-in defaults)")"]
                let keyWidth = origins.map(\.key.count).max() ?? 0
                let valueWidth = min(40, origins.map { $0.value.count }.max() ?? 0)
                for row in origins {
                    let value = row.value.isEmpty ? "\"\"" : row.value
                    lines.append(row.key.padding(toLength: keyWidth, withPad: " ", startingAt: 0) + "  "
                        + (value.count >= valueWidth ? value : value + String(repeating: " ", count: valueWidth - value.count)) + "  \(row.source)")
                }
                writeStdout(lines.joined(separator: "\n") + "\n")
                return ExitStatus.ok
            }
        }
    }

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a config file on its own (no MM_* variables, no --set): prints 'ok' (exit 0) or the key that is wrong and why (exit 1).")

        @Argument(help: ArgumentHelp("The YAML file to check.", valueName: "file"), completion: .file(extensions: ["yaml", "yml"]))
        var file: String

        @OptionGroup var output: OutputOptions

        struct Verdict: Encodable {
            var schemaVersion = outputSchemaVersion
            var ok: Bool
            var file: String
            var key: String?
            var reason: String?
            var error: String?
        }

        func run() async throws {
            try await runReportingFailures {
                do throws(ConfigError) {
                    _ = try await ClusterConfig.load(path: file, environment: [:])
                } catch {
                    var named = error
                    if named.source == nil { named.source = file }
                    if output.json {
                        try writeJSON(Verdict(ok: false, file: file, key: named.key, reason: named.reason, error: named.description))
                        return ExitStatus.failed
                    }
                    throw CLIFailure(ExitStatus.failed, named.description)
                }
                if output.json {
                    try writeJSON(Verdict(ok: true, file: file))
                } else {
                    writeStdout("ok\n")
                }
                return ExitStatus.ok
            }
        }
    }
}
