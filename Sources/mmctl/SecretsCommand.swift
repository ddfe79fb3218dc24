import ArgumentParser
import Foundation
import MMCommandLine
import MMCore
import ProcessKit

/// `mmctl secrets init|export|import|rotate|status`: a cluster's role tokens, node tokens and
/// grant-signing key, made once, handed to each host as only what its processes need, and
/// rotated in three steps while the cluster runs.
struct SecretsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secrets",
        abstract: "Provision the cluster's secrets once and give each host its part (needed when the config has hosts).",
        discussion: """
            On one machine: 'mmctl secrets init', then 'mmctl secrets export --host b -o b.secrets' for every host (its own too).
            Copy each file to its host over a channel you trust, then there: 'mmctl secrets import b.secrets'. A single-host
            'mmctl start' without provisioned secrets keeps making fresh ones at every start.
            """,
        subcommands: [Init.self, Export.self, Import.self, Rotate.self, Show.self])

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make every secret of the cluster in the data directory: role tokens, the node-identity key (one token per node id), the grant-signing key, the local PostgreSQL's password.")

        @OptionGroup var cluster: ClusterOptionGroup
        @Flag(help: "Replace secrets provisioned earlier (every host must then import its new export).")
        var replace = false
        @OptionGroup var output: OutputOptions

        struct Output: Encodable {
            var schemaVersion = outputSchemaVersion
            var dataDir: String
            var tokensDir: String
        }

        func run() async throws {
            try await runReportingFailures {
                let dataDirectory = cluster.dataDirectory
                if DataDirectoryLock.isHeld(dataDirectory) {
                    throw CLIFailure(ExitStatus.alreadyRunning, "a cluster is running in \(dataDirectory.path): stop it first ('mmctl stop'); its processes hold the current secrets")
                }
                do {
                    try ClusterSecrets.initialize(in: dataDirectory, replace: replace, nowMs: wallClockMs())
                } catch {
                    throw CLIFailure(ExitStatus.failed, "\(error)")
                }
                if output.json {
                    try writeJSON(Output(dataDir: dataDirectory.path, tokensDir: dataDirectory.tokensDirectory))
                } else {
                    writeStdout("secrets made in \(dataDirectory.tokensDirectory) (mode 0600)\n")
                    writeStdout("next, for each host H of the config: mmctl secrets export --host H -o H.secrets\n")
                }
                return ExitStatus.ok
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write host H's part of the secrets: only what the processes placed on H need (a node host gets its nodes' own tokens, not the key that makes them; only coordinator and exchange hosts get the grant-signing key).")

        @OptionGroup var cluster: ClusterOptionGroup
        @Option(name: [.customShort("o"), .long], help: ArgumentHelp("Where to write it (mode 0600); '-' for stdout.", valueName: "file"))
        var outputFile: String

        func validate() throws {
            guard cluster.host != nil else { throw ValidationError("--host names the host whose part to export") }
        }

        func run() async throws {
            try await runReportingFailures {
                let config = try await cluster.loadDiscoveredConfig()
                let host = try cluster.thisHost(config: config)
                let bundle: ClusterSecrets.Bundle
                do { bundle = try ClusterSecrets.export(from: cluster.dataDirectory, config: config, host: host, nowMs: wallClockMs()) } catch {
                    throw CLIFailure(ExitStatus.failed, "\(error)")
                }
                let text = String(decoding: try MMJSON.encode(bundle, pretty: true), as: UTF8.self) + "\n"
                if outputFile == "-" {
                    writeStdout(text)
                } else {
                    do { try cluster.dataDirectory.writeSecret(text, to: DataDirectory(outputFile).path) } catch {
                        throw CLIFailure(ExitStatus.failed, "cannot write \(outputFile): \(error)")
                    }
                    writeStderr("host \(host)'s secrets (\(bundle.files.count) files) written to \(outputFile); import them there with 'mmctl secrets import \(outputFile)'\n")
                }
                return ExitStatus.ok
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Install a host's part of the secrets (from 'mmctl secrets export') in this data directory, replacing what its tokens directory held.",
            discussion: "On a running host only a step of a rotation of the same secrets is taken (its processes reload it within a second); anything else needs the host stopped first.")

        @OptionGroup var cluster: ClusterOptionGroup
        @Argument(help: ArgumentHelp("The exported file.", valueName: "file"), completion: .file())
        var file: String

        func run() async throws {
            try await runReportingFailures {
                let dataDirectory = cluster.dataDirectory
                guard let data = FileManager.default.contents(atPath: file) else { throw CLIFailure(ExitStatus.failed, "cannot read \(file)") }
                let bundle: ClusterSecrets.Bundle
                do { bundle = try MMJSON.decode(ClusterSecrets.Bundle.self, from: data) } catch {
                    throw CLIFailure(ExitStatus.failed, "refusing \(file): not an 'mmctl secrets export' file (\(error))")
                }
                // A running host takes a rotation step of its own secrets (the bundle still
                // holds the token it presents now), never another cluster's.
                if DataDirectoryLock.isHeld(dataDirectory) {
                    let presented = try? dataDirectory.readSecret(dataDirectory.tokenPath(.supervisor))
                    guard let presented, ClusterSecrets.TokenSet.allCases.contains(where: { bundle.files[$0 == .current ? "tokens/supervisor" : "tokens/\($0.rawValue)/supervisor"] == presented }) else {
                        throw CLIFailure(ExitStatus.alreadyRunning, "a cluster is running in \(dataDirectory.path) and \(file) is not a rotation step of its secrets: stop it first ('mmctl stop'), import, then start")
                    }
                }
                do { try ClusterSecrets.importBundle(bundle, into: dataDirectory, nowMs: wallClockMs()) } catch {
                    throw CLIFailure(ExitStatus.failed, "\(error)")
                }
                writeStdout("host \(bundle.host)'s secrets installed in \(dataDirectory.tokensDirectory); start it with 'mmctl start --host \(bundle.host)'\n")
                return ExitStatus.ok
            }
        }
    }
}

extension SecretsCommand {
    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace the secrets with no moment at which a host refuses another: stage a new set, activate it, finish.",
            discussion: """
                Run where 'secrets init' ran. After each step export every host's part and import it there; running
                processes pick it up within a second, without a restart.
                  mmctl secrets rotate              stage a new set: accepted everywhere once imported, presented nowhere
                  mmctl secrets rotate --activate   present the new set; the old one stays accepted (the overlap window)
                  mmctl secrets rotate --finish     stop accepting the old set
                Take the next step only once every host has imported the previous one. The local PostgreSQL's password is not rotated.
                """)

        @OptionGroup var cluster: ClusterOptionGroup
        @Flag(help: "Make the staged set current; the old one stays accepted.")
        var activate = false
        @Flag(help: "Stop accepting the previous set.")
        var finish = false

        func validate() throws {
            if activate && finish { throw ValidationError("--activate and --finish are two steps: give one") }
        }

        func run() async throws {
            try await runReportingFailures {
                let step: ClusterSecrets.RotationStep = activate ? .activate : finish ? .finish : .stage
                do { try ClusterSecrets.rotate(step, in: cluster.dataDirectory, nowMs: wallClockMs()) } catch {
                    throw CLIFailure(ExitStatus.failed, "\(error)")
                }
                let next = switch step {
                case .stage: "staged a new set. Export and import every host's part, then: mmctl secrets rotate --activate"
                case .activate: "the new set is current; the old one is still accepted. Export and import every host's part, then: mmctl secrets rotate --finish"
                case .finish: "the old set is dropped. Export and import every host's part: then only the new set is accepted"
                }
                writeStdout(next + "\n")
                return ExitStatus.ok
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status", abstract: "Where this data directory's secrets came from and where a rotation stands (never the secrets themselves).")

        @OptionGroup var cluster: ClusterOptionGroup
        @OptionGroup var output: OutputOptions

        struct Output: Encodable {
            var schemaVersion = outputSchemaVersion
            var provisioned: Bool
            var source: String?
            var host: String?
            var rotation: String?
            var sets: [String]
        }

        func run() async throws {
            try await runReportingFailures {
                let dataDirectory = cluster.dataDirectory
                let marker = ClusterSecrets.marker(dataDirectory)
                let sets = ClusterSecrets.TokenSet.allCases.filter {
                    $0 == .current ? FileManager.default.fileExists(atPath: dataDirectory.tokenPath(.supervisor)) : FileManager.default.fileExists(atPath: $0.directory(in: dataDirectory))
                }.map(\.rawValue)
                let result = Output(provisioned: marker != nil, source: marker?.source, host: marker?.host, rotation: marker?.rotation, sets: sets)
                if output.json { try writeJSON(result); return ExitStatus.ok }
                guard let marker else {
                    writeStdout(sets.isEmpty ? "no secrets in \(dataDirectory.tokensDirectory)\n" : "secrets made by the last single-host start (not provisioned: the next start makes new ones)\n")
                    return ExitStatus.ok
                }
                writeStdout(marker.source == "init" ? "provisioned here ('secrets init'): every host's part can be exported\n" : "host \(marker.host ?? "?")'s part, imported\n")
                writeStdout("sets: \(sets.joined(separator: ", "))\(marker.rotation.map { "; rotation \($0)" } ?? "")\n")
                return ExitStatus.ok
            }
        }
    }
}

/// Wall-clock milliseconds, for the record of when secrets were made (not for any decision).
func wallClockMs() -> EpochMs { EpochMs(Date().timeIntervalSince1970 * 1_000) }
