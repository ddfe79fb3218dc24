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
            Fills and positions are checked incrementally by default: the ledger's running fill-log \
            digest against the exchange's, and each position against the exchange's own fold, so the \
            check costs the same at any history. --full reads every fill from both sides and names \
            the fill that differs.
            -o json (--json) prints one object (schema in docs/API.md). Durations take 250ms, 2s, 1m; \
            the older --settle-ms, --ingest-timeout-ms and --max-quote-age-ms (whole milliseconds) still work.
            """)

    @OptionGroup public var cluster: ClusterSelection

    @OptionGroup public var output: OutputOptions

    @Option(name: .long, help: ArgumentHelp("How long the quote invariant may take to settle (failover in flight).", valueName: "duration"))
    public var settle: String = "5s"

    @Option(name: .long, help: ArgumentHelp("Bound on waiting for the state service's ingest to reach the exchange's head.", valueName: "duration"))
    public var ingestTimeout: String = "10s"

    @Option(name: .long, help: ArgumentHelp("A holder's quote must have been updated within this long.", valueName: "duration"))
    public var maxQuoteAge: String = "5s"

    @Flag(name: .long, help: "Read every fill from the exchange and the ledger and fold the whole ledger (slower; names the offending fill).")
    public var full = false

    // The older spellings in whole milliseconds, kept for scripts.
    @Option(name: .customLong("settle-ms"), help: .hidden) public var settleMs: Int64?
    @Option(name: .customLong("ingest-timeout-ms"), help: .hidden) public var ingestTimeoutMs: Int64?
    @Option(name: .customLong("max-quote-age-ms"), help: .hidden) public var maxQuoteAgeMs: Int64?

    public var json: Bool { output.json }

    public init() {}

    public func validate() throws {
        _ = try durations()
    }

    /// settle, ingest timeout, max quote age in ms; a `-ms` spelling wins over the default.
    func durations() throws -> (settle: Int64, ingest: Int64, quoteAge: Int64) {
        (try legacyOrDuration(settleMs, settle, "--settle"), try legacyOrDuration(ingestTimeoutMs, ingestTimeout, "--ingest-timeout"),
         try legacyOrDuration(maxQuoteAgeMs, maxQuoteAge, "--max-quote-age"))
    }

    public mutating func run() async throws {
        let connection: ClusterConnection
        do {
            connection = try await ClusterConnection.open(options: cluster, needSupervisorToken: false)
        } catch let error as SetupError {
            printError("mmctl check: \(error)")
            throw ExitCode(64)
        }
        let limits = try durations()
        let tolerances = CheckTolerances(ingestDrainTimeoutMs: limits.ingest, quoteSettleMs: limits.settle, maxQuoteAgeMs: limits.quoteAge)
        let report = await ClusterChecker(connection: connection, tolerances: tolerances, mode: full ? .full : .incremental).run()
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

/// A duration option with its older whole-milliseconds spelling (`--settle` / `--settle-ms`):
/// the `-ms` one, when given, is taken as it always was; both at once is a usage error.
func legacyOrDuration(_ legacyMs: Int64?, _ duration: String, _ option: String) throws -> Int64 {
    if let legacyMs {
        guard legacyMs >= 0 else { throw ValidationError("\(option)-ms cannot be negative (got \(legacyMs))") }
        return legacyMs
    }
    return try DurationParser.option(duration, named: option)
}
