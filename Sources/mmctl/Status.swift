import ArgumentParser
import CurlClient
import Foundation
import MMCommandLine
import MMCore
import Rainbow
import ProcessKit

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the whole cluster: processes, members, assignments, authority, quotes, positions, fills, events.",
        discussion: "Exit status: 0 every process running and every service answered; 3 something not running or not answering; 4 supervisor unreachable; 64 usage (e.g. an unknown SYMBOL). Prices are shown as money (ticks × tick size, as the dashboard shows them) unless --ticks. -o json (--json) prints the documented snapshot schema (docs/API.md); --watch redraws in place, or prints one JSON object per frame (NDJSON) when stdout is not a terminal or with -o json.")

    @OptionGroup var cluster: ClusterOptionGroup

    @OptionGroup var output: OutputOptions

    @Argument(help: ArgumentHelp("Only these symbols (their quotes, positions, fills and events; totals over them).", valueName: "symbol"),
              completion: .custom(CompletionValues.symbols))
    var symbols: [String] = []

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
    }

    func run() async throws {
        try await runReportingFailures {
            let config = try await cluster.resolveConfig()
            let unknown = symbols.filter { config.symbol($0) == nil }
            if !unknown.isEmpty {
                throw CLIFailure(ExitStatus.usage, "\(unknown.joined(separator: ", ")): not a symbol of this cluster (\(config.symbolNames.joined(separator: ", ")))")
            }
            let token = try cluster.token(.observer)
            let builder = ClusterSnapshotBuilder(config: config, token: token, transport: CurlTransport(), timeoutMs: try DurationParser.option(timeout, named: "--timeout"))
            let selection = Set(symbols)
            let view: @Sendable () async -> ClusterSnapshot = {
                let snapshot = await builder.snapshot()
                return selection.isEmpty ? snapshot : snapshot.limited(to: selection)
            }
            let stdoutIsTTY = isatty(STDOUT_FILENO) == 1
            let color = stdoutIsTTY && ProcessInfo.processInfo.environment["NO_COLOR"].map(\.isEmpty) ?? true
            let renderer = StatusRenderer(dataDirectory: cluster.dataDirectory.path, color: color, ticks: ticks)
            if watch {
                let intervalMs = try DurationParser.option(interval, named: "--interval", atLeast: 100)
                if stdoutIsTTY && !output.json {
                    return await WatchScreen(snapshot: view, renderer: renderer, intervalMs: intervalMs).run()
                }
                return await watchNDJSON(snapshot: view, intervalMs: intervalMs)
            }
            let snapshot = await view()
            if output.json {
                writeStdout(String(decoding: try MMJSON.encode(snapshot, pretty: true), as: UTF8.self) + "\n")
            } else {
                writeStdout(renderer.render(snapshot, previous: nil).joined(separator: "\n") + "\n")
            }
            return Self.exitCode(snapshot)
        }
    }

    static func exitCode(_ snapshot: ClusterSnapshot) -> Int32 {
        if snapshot.supervisor == nil { return ExitStatus.unreachable }
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
            guard let line = try? MMJSON.encode(snapshot) else { break }
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
