import ArgumentParser
import CurlClient
import Foundation
import MMCommandLine
import MMCore
import ProcessKit

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the whole cluster: processes, members, assignments, authority, quotes, positions, fills, events.",
        discussion: "Exit status: 0 every process running and every service answered; 3 something not running or not answering (on several hosts: a host whose supervisor does not answer, its processes shown as unreachable); 4 no supervisor reachable; 64 usage (e.g. an unknown SYMBOL, or a --symbols pattern that matches none). Prices are shown as money (ticks × tick size, as the dashboard shows them) unless --ticks. SYMBOL and --symbols take names or globs (* any run, ? one character; case-sensitive; comma-separated). The text view shows at most --limit symbol rows (default \(StatusRenderer.defaultSymbolLimit); with --watch, as many as fit the terminal) and counts the rest; when rows are cut they are ordered symbols without holder or quote first, then most fills (--sort). -o json (--json) prints the documented snapshot schema (docs/API.md) with every matching symbol unless --limit; --watch redraws in place, or prints one JSON object per frame (NDJSON) when stdout is not a terminal or with -o json.")

    @OptionGroup var cluster: ClusterOptionGroup

    @OptionGroup var output: OutputOptions

    @Argument(help: ArgumentHelp("Only these symbols (their quotes, positions, fills and events; totals over them). A name or a glob.", valueName: "symbol"),
              completion: .custom(CompletionValues.symbols))
    var symbols: [String] = []

    @Option(name: .customLong("symbols"),
            help: ArgumentHelp("Only symbols matching PATTERN: * any run, ? one character, case-sensitive; a comma-separated list; repeatable. Same filter as SYMBOL.", valueName: "pattern"),
            completion: .custom(CompletionValues.symbols))
    var symbolPatterns: [String] = []

    @Option(help: ArgumentHelp("At most N symbol rows (text: default \(StatusRenderer.defaultSymbolLimit), or what fits the terminal with --watch; JSON: all); 0 shows all.", valueName: "n"))
    var limit: Int?

    @Option(help: ArgumentHelp("Symbol row order: auto (busiest first only when rows are cut), busiest (without holder or quote first, then most fills), config (as configured).", valueName: "order"))
    var sort: SymbolOrder = .auto

    @Flag(help: "Keep redrawing (q or Ctrl-C to quit).")
    var watch = false

    @Option(help: ArgumentHelp("Redraw interval for --watch (e.g. 1s, 500ms).", valueName: "duration"))
    var interval: String = "1s"

    @Option(name: .customLong("timeout"), help: ArgumentHelp("Per-service request timeout (e.g. 1s).", valueName: "duration"))
    var timeout: String = "1s"

    @Flag(help: "Show prices and PnL in raw integer ticks instead of money (ticks × tick size).")
    var ticks = false

    func validate() throws {
        _ = try DurationParser.option(interval, named: "--interval", atLeast: 100)
        _ = try DurationParser.option(timeout, named: "--timeout")
        if let limit, limit < 0 { throw ValidationError("--limit must be 0 (all) or more, not \(limit)") }
        _ = try selection()
    }

    /// Positional names and `--symbols` patterns: one selection, one filter.
    func selection() throws -> SymbolSelection {
        do {
            return try SymbolSelection(parsing: symbols + symbolPatterns)
        } catch {
            throw ValidationError(error.description)
        }
    }

    func run() async throws {
        try await runReportingFailures {
            let config = try await cluster.resolveConfig()
            let selection = try selection()
            let unmatched = selection.resolve(against: config.symbolNames).unmatched
            if !unmatched.isEmpty { throw CLIFailure(ExitStatus.usage, Self.unmatchedMessage(unmatched, names: config.symbolNames)) }
            let token = try cluster.token(.observer)
            let builder = ClusterSnapshotBuilder(config: config, token: token, transport: CurlTransport(), timeoutMs: try DurationParser.option(timeout, named: "--timeout"))
            let view: @Sendable () async -> ClusterSnapshot = {
                await builder.snapshot().selecting(selection)
            }
            let stdoutIsTTY = isatty(STDOUT_FILENO) == 1
            let color = stdoutIsTTY && ProcessInfo.processInfo.environment["NO_COLOR"].map(\.isEmpty) ?? true
            let renderer = StatusRenderer(dataDirectory: cluster.dataDirectory.path, color: color, ticks: ticks,
                                          symbolLimit: limit ?? StatusRenderer.defaultSymbolLimit, order: sort)
            if watch {
                let intervalMs = try DurationParser.option(interval, named: "--interval", atLeast: 100)
                if stdoutIsTTY && !output.json {
                    return await WatchScreen(snapshot: view, renderer: renderer, intervalMs: intervalMs, fitSymbolsToScreen: limit == nil).run()
                }
                return await watchNDJSON(snapshot: view, intervalMs: intervalMs)
            }
            let snapshot = await view()
            if output.json {
                var bytes = try StatusDocument(snapshot, order: sort, limit: limit).json(pretty: true)
                bytes.append(0x0a)
                FileHandle.standardOutput.write(Data(bytes))
            } else {
                writeStdout(renderer.render(snapshot, previous: nil).joined(separator: "\n") + "\n")
            }
            return Self.exitCode(snapshot)
        }
    }

    /// Names the patterns that select nothing. A cluster may have 1,000 symbols: a few are
    /// listed as a hint, not all of them.
    static func unmatchedMessage(_ unmatched: [SymbolPattern], names: [String]) -> String {
        let shown = names.prefix(12).joined(separator: ", ") + (names.count > 12 ? ", … (\(names.count) symbols; 'mmctl config show' lists them)" : "")
        let literal = unmatched.filter(\.isLiteral).map(\.text)
        let globs = unmatched.filter { !$0.isLiteral }.map { "'\($0.text)'" }
        var parts: [String] = []
        if !literal.isEmpty { parts.append("\(literal.joined(separator: ", ")): not a symbol of this cluster") }
        if !globs.isEmpty { parts.append("\(globs.joined(separator: ", ")) \(globs.count == 1 ? "matches" : "match") no symbol of this cluster (patterns are case-sensitive)") }
        return parts.joined(separator: "; ") + "; its symbols: \(shown)"
    }

    /// 4 only when no supervisor answered at all: on a multi-host cluster one host down is
    /// "something not running or not answering" (3), its processes listed as unreachable.
    static func exitCode(_ snapshot: ClusterSnapshot) -> Int32 {
        let anySupervisor = snapshot.hosts.isEmpty ? snapshot.supervisor != nil : snapshot.hosts.contains(where: \.reachable)
        if !anySupervisor { return ExitStatus.unreachable }
        if !snapshot.errors.isEmpty || snapshot.processes.contains(where: { $0.state != .running }) { return ExitStatus.notRunning }
        return ExitStatus.ok
    }

    /// One compact JSON object per line per frame, until SIGINT/SIGTERM or a closed pipe.
    func watchNDJSON(snapshot view: @Sendable () async -> ClusterSnapshot, intervalMs: Int64) async -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        let stop = StopSignals()
        var last = ExitStatus.ok
        while !stop.requested {
            let snapshot = await view()
            last = Self.exitCode(snapshot)
            guard let line = try? StatusDocument(snapshot, order: sort, limit: limit).json(pretty: false) else { break }
            var data = line
            data.append(0x0a)
            let written = data.withUnsafeBytes { Glibc.write(STDOUT_FILENO, $0.baseAddress, $0.count) }
            if written < 0 { break } // reader went away (e.g. `| head`)
            await stop.sleep(ms: intervalMs)
        }
        return last
    }
}

/// SIGINT/SIGTERM as a flag plus an interruptible sleep, without a signal handler doing
/// anything unsafe: dispatch sources deliver the signals on a queue.
final class StopSignals {
    private let state = LockedFlag()
    private let sources: [any DispatchSourceSignal]

    init(signals: [Int32] = [SIGINT, SIGTERM]) {
        var sources: [any DispatchSourceSignal] = []
        let flag = state
        for number in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { flag.set() }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    var requested: Bool { state.isSet }

    func sleep(ms: Int64) async {
        let deadline = ContinuousClock.now + .milliseconds(ms)
        while !requested && ContinuousClock.now < deadline {
            try? await Task.sleep(for: min(.milliseconds(50), deadline - ContinuousClock.now))
        }
    }
}

import Synchronization

final class LockedFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
