import Foundation
import MMCore

/// `mmctl events`: which coordinator events to show, and how each is printed.
public struct EventFilter: Sendable, Hashable {
    /// Only events at or after this time (`--since`).
    public var sinceMs: EpochMs?
    /// Only events about one of these symbols (`--symbol`, repeatable); empty: any.
    public var symbols: Set<String>
    /// Only events about one of these nodes (`--node`, repeatable); empty: any.
    public var nodes: Set<String>

    public init(sinceMs: EpochMs? = nil, symbols: Set<String> = [], nodes: Set<String> = []) {
        self.sinceMs = sinceMs
        self.symbols = symbols
        self.nodes = nodes
    }

    public func matches(_ event: ClusterEvent) -> Bool {
        if let sinceMs, event.tsMs < sinceMs { return false }
        if !symbols.isEmpty, !(event.symbol.map({ symbols.contains($0) }) ?? false) { return false }
        if !nodes.isEmpty, !(event.node.map({ nodes.contains($0) }) ?? false) { return false }
        return true
    }
}

public enum EventFormat {
    /// One line per event: `#SEQ HH:MM:SS.mmm KIND SYMBOL NODE token=N detail` (local time;
    /// `-` for an absent symbol or node).
    public static func text(_ event: ClusterEvent) -> String {
        var line = "#\(event.seq) \(clock(event.tsMs)) \(pad(event.kind, 14)) \(pad(event.symbol ?? "-", 6)) \(pad(event.node ?? "-", 4))"
        if let token = event.fencingToken { line += " token=\(token)" }
        if !event.detail.isEmpty { line += " \(event.detail)" }
        return line
    }

    /// One compact JSON object per event (NDJSON), the fields of `GET /v1/events`.
    public static func json(_ event: ClusterEvent) throws -> String {
        String(decoding: try MMJSON.encode(event), as: UTF8.self)
    }

    /// `HH:MM:SS.mmm` in local time.
    public static func clock(_ ms: EpochMs) -> String {
        var seconds = time_t(ms / 1_000)
        var parts = tm()
        localtime_r(&seconds, &parts)
        return String(format: "%02d:%02d:%02d.%03d", parts.tm_hour, parts.tm_min, parts.tm_sec, Int(ms % 1_000))
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}

extension ClusterSnapshot {
    /// The view of `mmctl status SYMBOL...`: only those symbols, their fills and events (events
    /// about no symbol, such as joins, stay), the assignment table cut to them and the totals
    /// recomputed over them. Processes, members and errors are unchanged.
    public func limited(to selected: Set<String>) -> ClusterSnapshot {
        var view = self
        view.symbols = symbols.filter { selected.contains($0.symbol) }
        view.assignments = assignments.map { Assignments(version: $0.version, symbols: $0.symbols.filter { selected.contains($0.key) }) }
        view.recentFills = recentFills.filter { selected.contains($0.symbol) }
        view.recentEvents = recentEvents.filter { $0.symbol.map { selected.contains($0) } ?? true }
        var totals = Totals(realizedPnl: 0, unrealizedPnl: 0, fillCount: 0)
        for symbol in view.symbols {
            guard let position = symbol.position else { continue }
            totals.realizedPnl += position.realizedPnl
            totals.unrealizedPnl += position.unrealizedPnl ?? 0
            totals.fillCount += position.fillCount
        }
        view.totals = totals
        return view
    }
}
