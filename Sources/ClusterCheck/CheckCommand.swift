import ArgumentParser
import Foundation
import MMCommandLine
import MMCore

/// The options every mmctl command shares (`--config`, `--data-dir`, `--set`): the one group
/// all executables use. The name stays for check, drill and their callers.
public typealias ClusterSelection = ClusterOptionGroup

/// The shared duration parser, visible to every file of this module (drill's `--duration`).
typealias DurationParser = MMCommandLine.DurationParser

/// `mmctl check`: the cluster's five promises, from the services' inspection endpoints alone.
public struct CheckCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Verify the cluster's invariants (fills exactly once, positions, grants, fencing, quoting).",
        discussion: """
            Prints one line per invariant, 'held' or 'BROKEN' with the evidence.
            Exit status: 0 all held, 1 an invariant is broken, 4 a service is unreachable, 64 usage.
            --json prints one object (schema in docs/API.md).
            """)

    @OptionGroup public var cluster: ClusterSelection

    @Flag(name: .long, help: "Print the report as one JSON object.")
    public var json = false

    @Option(name: .long, help: "How long (ms) the quote invariant may take to settle (failover in flight).")
    public var settleMs: Int64 = 5_000

    @Option(name: .long, help: "Bound (ms) on waiting for the state service's ingest to reach the exchange's head.")
    public var ingestTimeoutMs: Int64 = 10_000

    @Option(name: .long, help: "A holder's quote must have been updated within this many ms.")
    public var maxQuoteAgeMs: Int64 = 5_000

    public init() {}

    public mutating func run() async throws {
        let connection: ClusterConnection
        do {
            connection = try await ClusterConnection.open(options: cluster, needSupervisorToken: false)
        } catch let error as SetupError {
            printError("mmctl check: \(error)")
            throw ExitCode(64)
        }
        let tolerances = CheckTolerances(ingestDrainTimeoutMs: ingestTimeoutMs, quoteSettleMs: settleMs, maxQuoteAgeMs: maxQuoteAgeMs)
        let report = await ClusterChecker(connection: connection, tolerances: tolerances).run()
        if json {
            print(String(decoding: try MMJSON.encode(report), as: UTF8.self))
        } else {
            print(report.renderText())
        }
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
