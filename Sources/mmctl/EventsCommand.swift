import ArgumentParser
import CurlClient
import Foundation
import MMCommandLine
import MMCore

/// `mmctl events`: the coordinator's durable event log (`GET /v1/events`), filtered, as text
/// lines or NDJSON, optionally followed with the long-poll.
struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the coordinator's event log (joins, grants, revokes, failovers): text lines, or NDJSON with -o json; -f follows it.",
        discussion: """
            Without --since, the last -n matching events (20); with --since, every matching event of that window. \
            --symbol and --node may be repeated (any of them matches). -f keeps printing new events as they happen \
            (long-poll; Ctrl-C ends it), across coordinator replicas. \
            Exit status: 0, 4 the coordinator is unreachable, 64 usage.
            """)

    @OptionGroup var cluster: ClusterOptionGroup
    @OptionGroup var output: OutputOptions

    @Flag(name: .shortAndLong, help: "Keep printing events as they happen.")
    var follow = false

    @Option(help: ArgumentHelp("Only events of the last DURATION (e.g. 5m, 90s, 1h).", valueName: "duration"))
    var since: String?

    @Option(name: .customLong("symbol"), help: ArgumentHelp("Only events about this symbol (repeatable).", valueName: "symbol"),
            completion: .custom(CompletionValues.symbols))
    var symbols: [String] = []

    @Option(name: .customLong("node"), help: ArgumentHelp("Only events about this node (repeatable).", valueName: "node"),
            completion: .custom(CompletionValues.nodes))
    var nodes: [String] = []

    @Option(name: [.customShort("n"), .long], help: "Without --since: how many of the latest matching events to print first.")
    var lines: Int = 20

    func validate() throws {
        if let since { _ = try DurationParser.option(since, named: "--since") }
        for node in nodes { try validateNodeId(node) }
        guard (0...100_000).contains(lines) else { throw ValidationError("-n must be in 0...100000") }
    }

    func run() async throws {
        try await runReportingFailures {
            let config = try await cluster.resolveConfig()
            let unknown = symbols.filter { config.symbol($0) == nil }
            if !unknown.isEmpty {
                throw CLIFailure(ExitStatus.usage, "--symbol \(unknown.joined(separator: ", ")): not a symbol of this cluster (\(config.symbolNames.joined(separator: ", ")))")
            }
            let token = try cluster.token(.observer)
            let client = CoordinatorClient(.coordinator(config, token: token, transport: CurlTransport(), timeoutMs: 5_000))
            let sinceMs = try since.map { Int64(Date().timeIntervalSince1970 * 1_000) - (try DurationParser.option($0, named: "--since")) }
            let filter = EventFilter(sinceMs: sinceMs, symbols: Set(symbols), nodes: Set(nodes))
            signal(SIGPIPE, SIG_IGN)

            func failure(_ error: ClientError) -> CLIFailure {
                switch error {
                case .unreachable(let reason):
                    CLIFailure(ExitStatus.unreachable, "events: coordinator unreachable (\(reason.reason)); is the cluster in \(cluster.dataDirectory.path) running? ('mmctl status')")
                default:
                    CLIFailure(ExitStatus.failed, "events: \(error)")
                }
            }

            // The backlog: with no filter and no window only the tail is read (one request
            // when it fits a page); otherwise the whole log, a page at a time (seq numbers
            // are contiguous from 1).
            var after: Int64 = 0
            var backlog: [ClusterEvent] = []
            do throws(ClientError) {
                let tailOnly = sinceMs == nil && symbols.isEmpty && nodes.isEmpty
                if tailOnly, (1...1_000).contains(lines) {
                    let page = try await client.events(tail: lines)
                    noteGap(after: LogCursor.tailStart(count: lines, headSeq: page.headSeq), page: page)
                    backlog = page.events
                    after = page.events.last?.seq ?? page.headSeq
                } else {
                    if tailOnly {
                        let head = try await client.events(after: Int64.max, limit: 1, waitMs: 0).headSeq
                        after = LogCursor.tailStart(count: lines, headSeq: head)
                    }
                    while true {
                        let page = try await client.events(after: after, limit: 1_000, waitMs: 0)
                        noteGap(after: after, page: page)
                        backlog += page.events.filter(filter.matches)
                        if sinceMs == nil, backlog.count > lines { backlog.removeFirst(backlog.count - lines) }
                        guard let last = page.events.last else { break }
                        after = last.seq
                        if page.events.count < 1_000 { break }
                    }
                }
            } catch {
                throw failure(error)
            }
            for event in backlog {
                guard try emit(event) else { return ExitStatus.ok }
            }
            guard follow else { return ExitStatus.ok }

            var reportedOutage = false
            while !Task.isCancelled {
                do {
                    let page = try await client.events(after: after, limit: 1_000, waitMs: 25_000)
                    noteGap(after: after, page: page)
                    if reportedOutage {
                        writeStderr("mmctl: events: coordinator answering again\n")
                        reportedOutage = false
                    }
                    for event in page.events {
                        after = event.seq
                        if filter.matches(event) {
                            guard try emit(event) else { return ExitStatus.ok }
                        }
                    }
                } catch {
                    // A coordinator restart must not end a follow: say so once, keep trying.
                    if !reportedOutage {
                        writeStderr("mmctl: events: \(error); retrying\n")
                        reportedOutage = true
                    }
                    try? await Task.sleep(for: .milliseconds(500))
                }
            }
            return ExitStatus.ok
        }
    }

    /// A page read from below the coordinator's compaction point starts at the first retained
    /// event: the events in between were pruned by retention (`coordinator.events.retain`)
    /// before they were read. Said on stderr, so `-o json` stays one event per line.
    private func noteGap(after: Int64, page: EventPage) {
        guard page.skipsPrunedEvents(after: after), let through = page.compactedThroughSeq else { return }
        let range = through == after + 1 ? "event \(through) was" : "events \(after + 1)–\(through) were"
        writeStderr("mmctl: events: \(range) pruned by retention (coordinator.events.retain); what they established is in GET /v1/events/base\n")
    }

    /// Prints one event; false when stdout is gone (e.g. `| head`).
    private func emit(_ event: ClusterEvent) throws -> Bool {
        let line = (output.json ? try EventFormat.json(event) : EventFormat.text(event)) + "\n"
        return writeAll(line)
    }
}

/// write(2) until done; false on EPIPE or another error (SIGPIPE is ignored by the caller).
func writeAll(_ text: String) -> Bool {
    let bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeBytes { Glibc.write(STDOUT_FILENO, $0.baseAddress! + offset, $0.count - offset) }
        if written < 0 {
            if errno == EINTR { continue }
            return false
        }
        offset += written
    }
    return true
}
