import ArgumentParser
import Foundation
import MMCore

/// One shell-style glob over symbol names: `*` matches any run of characters (also none),
/// `?` exactly one; everything else matches itself, case-sensitively (symbols are A–Z and
/// 0–9, so `a*` matches nothing, and says so). A pattern without `*` or `?` is an exact name,
/// which is how `mmctl status ACME` and `mmctl status --symbols 'A*'` share one filter.
public struct SymbolPattern: Sendable, Hashable, CustomStringConvertible {
    public let text: String
    private let characters: [Character]

    public init(_ text: String) throws(SymbolSelectionError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw .emptyPattern(text) }
        self.text = trimmed
        characters = Array(trimmed)
    }

    public var description: String { text }

    /// Whether the pattern names exactly one symbol (no wildcard).
    public var isLiteral: Bool { !characters.contains("*") && !characters.contains("?") }

    /// Iterative matching with one backtrack point (the last `*`): linear in practice and never
    /// exponential, whatever the pattern.
    public func matches(_ name: String) -> Bool {
        let subject = Array(name)
        var p = 0, s = 0
        var star: Int?
        var resume = 0
        while s < subject.count {
            if p < characters.count, characters[p] == "?" || (characters[p] != "*" && characters[p] == subject[s]) {
                p += 1
                s += 1
            } else if p < characters.count, characters[p] == "*" {
                star = p
                resume = s
                p += 1
            } else if let star {
                p = star + 1
                resume += 1
                s = resume
            } else {
                return false
            }
        }
        while p < characters.count, characters[p] == "*" { p += 1 }
        return p == characters.count
    }
}

/// Which symbols a `mmctl status` shows: the union of its patterns (positional names and every
/// `--symbols` value, each a comma-separated list). No pattern at all selects every symbol.
public struct SymbolSelection: Sendable, Hashable {
    public var patterns: [SymbolPattern]

    public init(patterns: [SymbolPattern] = []) {
        self.patterns = patterns
    }

    /// `["ACME", "A*,B?"]` → ACME, A*, B?. Empty items (`"A*,"`) are a usage error rather than
    /// silently meaning "everything".
    public init(parsing arguments: [String]) throws(SymbolSelectionError) {
        var patterns: [SymbolPattern] = []
        for argument in arguments {
            for item in argument.split(separator: ",", omittingEmptySubsequences: false) {
                // The error names the whole argument: an empty item has nothing to quote.
                do { patterns.append(try SymbolPattern(String(item))) } catch { throw .emptyPattern(argument) }
            }
        }
        self.init(patterns: patterns)
    }

    /// Selects everything.
    public var isEverything: Bool { patterns.isEmpty }

    public func matches(_ symbol: String) -> Bool {
        patterns.isEmpty || patterns.contains { $0.matches(symbol) }
    }

    /// The names (of `names`, in their order) the selection keeps, and the patterns that keep
    /// none of them: a typo must not silently show an empty table.
    public func resolve(against names: [String]) -> (selected: [String], unmatched: [SymbolPattern]) {
        let selected = names.filter(matches)
        let unmatched = patterns.filter { pattern in !names.contains(where: pattern.matches) }
        return (selected, unmatched)
    }
}

public enum SymbolSelectionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// An empty pattern, e.g. from `--symbols 'A*,'`.
    case emptyPattern(String)

    public var description: String {
        switch self {
        case .emptyPattern(let text):
            "empty symbol pattern in '\(text)': give names or globs (* any run, ? one character), separated by commas"
        }
    }
}

/// The order of the symbol rows when they do not all fit (`mmctl status`, the dashboard).
public enum SymbolOrder: String, Sendable, Hashable, CaseIterable {
    /// Busiest first when rows are cut (more matching symbols than the limit), otherwise the
    /// configured order, so a small cluster reads as it always did.
    case auto
    /// Symbols needing attention first (no authority holder, or no quote on the book), so a
    /// problem is never paged away; then the busiest: most fills (the ledger's
    /// `position.fill_count`, which every snapshot already carries); ties keep the
    /// configured order.
    case busiest
    /// The order of the cluster config (`symbols.names`).
    case config

    /// Whether a row needs an operator's attention (the dashboard's amber rows).
    public static func needsAttention(_ symbol: ClusterSnapshot.SymbolView) -> Bool {
        symbol.authority == nil || symbol.quote == nil
    }

    /// Whether `count` rows under `limit` are shown busiest first.
    public func sorts(count: Int, limit: Int?) -> Bool {
        switch self {
        case .auto: limit.map { count > $0 } ?? false
        case .busiest: true
        case .config: false
        }
    }

    /// `symbols` (in configured order) in this order; `auto` sorts only when `limit` cuts.
    public func arrange(_ symbols: [ClusterSnapshot.SymbolView], limit: Int?) -> [ClusterSnapshot.SymbolView] {
        guard sorts(count: symbols.count, limit: limit) else { return symbols }
        // Keyed once (not per comparison), with the configured index as the last key: a
        // total order, so equal rows never swap between frames.
        return symbols.enumerated()
            .map { (index: $0.offset, attention: Self.needsAttention($0.element), fills: $0.element.position?.fillCount ?? 0, symbol: $0.element) }
            .sorted { lhs, rhs in
                if lhs.attention != rhs.attention { return lhs.attention }
                if lhs.fills != rhs.fills { return lhs.fills > rhs.fills }
                return lhs.index < rhs.index
            }
            .map(\.symbol)
    }
}

extension SymbolOrder: ExpressibleByArgument {}

/// The symbol rows a view shows: those first `limit` in `order`, and how many more matched.
public struct SymbolPage: Sendable, Hashable {
    public var shown: [ClusterSnapshot.SymbolView]
    /// Matching symbols not shown because of the limit.
    public var omitted: Int
    /// Whether `shown` is in busiest order (not the configured one).
    public var sorted: Bool

    /// `limit` nil or ≤ 0: every row.
    public init(_ symbols: [ClusterSnapshot.SymbolView], order: SymbolOrder, limit: Int?) {
        let limit = limit.flatMap { $0 > 0 ? $0 : nil }
        let arranged = order.arrange(symbols, limit: limit)
        sorted = order.sorts(count: symbols.count, limit: limit)
        shown = limit.map { Array(arranged.prefix($0)) } ?? arranged
        omitted = symbols.count - shown.count
    }
}

extension ClusterSnapshot {
    /// The view of `mmctl status [SYMBOL…] [--symbols PATTERN]`: `limited(to:)` over the names
    /// the selection keeps. Everything selected: the snapshot unchanged.
    public func selecting(_ selection: SymbolSelection) -> ClusterSnapshot {
        guard !selection.isEverything else { return self }
        return limited(to: Set(symbols.map(\.symbol).filter(selection.matches)))
    }
}

/// What `status -o json` prints: the snapshot schema (docs/API.md), plus how many symbols
/// matched the selection and how many of them `--limit` left out. Only added fields: the
/// snapshot's own keys are unchanged, so `schema_version` stays.
public struct StatusDocument: Encodable, Sendable {
    public var snapshot: ClusterSnapshot
    public var symbolsMatched: Int
    public var symbolsOmitted: Int

    /// Without `limit` every matching symbol, in configured order (`--sort busiest`: that order).
    public init(_ snapshot: ClusterSnapshot, order: SymbolOrder, limit: Int?) {
        let page = SymbolPage(snapshot.symbols, order: order, limit: limit)
        var cut = snapshot
        cut.symbols = page.shown
        self.snapshot = cut
        symbolsMatched = snapshot.symbols.count
        symbolsOmitted = page.omitted
    }

    enum CodingKeys: String, CodingKey {
        case symbolsMatched, symbolsOmitted
    }

    /// The document's JSON, the per-symbol parts written by hand (`SnapshotJSON`): the same
    /// bytes as `MMJSON.encode(self, pretty:)` in a fraction of the time at 1,000 symbols.
    public func json(pretty: Bool) throws -> [UInt8] {
        try SnapshotJSON.encode(self, snapshot: snapshot, pretty: pretty) { skeleton in
            var document = self
            document.snapshot = skeleton
            return document
        }
    }

    /// The snapshot's keys and ours in one object (a keyed container requested twice from
    /// one encoder is the same object).
    public func encode(to encoder: any Encoder) throws {
        try snapshot.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(symbolsMatched, forKey: .symbolsMatched)
        try container.encode(symbolsOmitted, forKey: .symbolsOmitted)
    }
}

