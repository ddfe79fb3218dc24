import MMCore

/// The latest positions, indexed by symbol, and what each commit changed. Pure (no actor, no
/// I/O) so the wake-up rule is tested on its own; `PositionsBroadcaster` owns one.
///
/// A position's `version` is the ledger version of its last change, so the symbols a commit
/// changed are exactly those whose version exceeds the previous ledger version: finding them is
/// a scan of integers, and only their entries are rewritten.
public struct PositionIndex: Sendable, Hashable {
    public private(set) var version: Int64
    public private(set) var bySymbol: [String: Position]

    public init(_ view: PositionsView) {
        version = view.version
        bySymbol = Dictionary(view.positions.map { ($0.symbol, $0) }, uniquingKeysWith: { first, second in first.version >= second.version ? first : second })
    }

    /// Moves the index to `view` (a newer commit) and says what changed. A view that is not
    /// newer changes nothing: commits finishing out of order never move readers backwards.
    public mutating func apply(_ view: PositionsView) -> PositionChanges {
        guard view.version > version else { return PositionChanges(version: version, changed: [:]) }
        var changed: [String: Int64] = [:]
        for position in view.positions where position.version > version {
            changed[position.symbol] = position.version
            bySymbol[position.symbol] = position
        }
        version = view.version
        return PositionChanges(version: view.version, changed: changed)
    }

    /// The position of `symbol`, flat when it never traded.
    public func position(_ symbol: String) -> Position { bySymbol[symbol] ?? .flat(symbol) }

    /// The answer for a reader of `symbols` (in that order): the ledger version this index is
    /// at, and just those positions.
    public func view(of symbols: [String]) -> PositionsView {
        PositionsView(version: version, positions: symbols.map(position))
    }
}

/// One commit as readers see it: the ledger version it reached, and the new position version
/// of each symbol it changed.
public struct PositionChanges: Sendable, Hashable {
    public var version: Int64
    public var changed: [String: Int64]

    public init(version: Int64, changed: [String: Int64]) {
        self.version = version
        self.changed = changed
    }
}

/// What one positions long-poll waits for. Unfiltered readers (GUI, `mmctl`) wait for the
/// ledger version; a node waits only for its own symbols, so at 1,000 symbols × 20 nodes a fill
/// on ACME wakes ACME's holder and not the other 19 (each of which would otherwise be answered,
/// and encode an answer, for every fill in the cluster).
public struct PositionsInterest: Sendable, Hashable {
    /// nil: every symbol. Otherwise the symbols in answer order, each once.
    public let symbols: [String]?
    private let lookup: Set<String>
    /// Wake once a position of interest (or, unfiltered, the ledger) is newer than this version.
    public let afterVersion: Int64

    public static func all(afterVersion: Int64) -> PositionsInterest {
        PositionsInterest(symbols: nil, afterVersion: afterVersion)
    }

    /// Repeated names are kept once, at their first place.
    public static func symbols(_ symbols: [String], afterVersion: Int64) -> PositionsInterest {
        var seen = Set<String>()
        return PositionsInterest(symbols: symbols.filter { seen.insert($0).inserted }, afterVersion: afterVersion)
    }

    private init(symbols: [String]?, afterVersion: Int64) {
        self.symbols = symbols
        self.lookup = Set(symbols ?? [])
        self.afterVersion = afterVersion
    }

    /// Whether the index already holds something this reader has not seen (checked before it
    /// parks, so a reader that is behind is answered at once).
    public func isSatisfied(by index: PositionIndex) -> Bool {
        guard let symbols else { return index.version > afterVersion }
        return symbols.contains { (index.bySymbol[$0]?.version ?? 0) > afterVersion }
    }

    /// Whether a commit wakes this (parked) reader: unfiltered, any newer ledger version; filtered,
    /// only a change to one of its own symbols to a version past `afterVersion`. Walks the smaller
    /// side: a commit usually changes a handful of symbols, a node holds ~50.
    public func isWoken(by changes: PositionChanges) -> Bool {
        guard symbols != nil else { return changes.version > afterVersion }
        if changes.changed.count <= lookup.count {
            return changes.changed.contains { lookup.contains($0.key) && $0.value > afterVersion }
        }
        return lookup.contains { (changes.changed[$0] ?? 0) > afterVersion }
    }

    /// What this reader is answered from `index`: the whole view, or its symbols only.
    public func answer(from index: PositionIndex, full: PositionsView) -> PositionsView {
        guard let symbols else { return full }
        return index.view(of: symbols)
    }
}

/// Why a `symbols=` list was refused (the route turns it into a 400).
public enum PositionsFilterError: Error, Sendable, Hashable, CustomStringConvertible {
    case emptyName(position: Int)
    case tooMany(count: Int, limit: Int)
    case unknown([String])

    public var description: String {
        switch self {
        case .emptyName(let position):
            "'symbols' has an empty name at position \(position + 1): send a comma-separated list of configured symbols (e.g. ACME,BOLT), no empty entries"
        case .tooMany(let count, let limit):
            "'symbols' names \(count) symbols; this cluster has \(limit), so send at most \(limit)"
        case .unknown(let names):
            "'symbols' names \(names.count == 1 ? "a symbol" : "symbols") not in this cluster's config: \(names.joined(separator: ","))"
        }
    }

    public var apiError: APIError {
        switch self {
        case .emptyName, .tooMany:
            return APIError(status: 400, code: "invalid_field", message: description, details: ["field": "symbols"])
        case .unknown(let names):
            return APIError(status: 400, code: "unknown_symbol", message: description, details: ["field": "symbols", "symbols": names.joined(separator: ",")])
        }
    }

    /// Parses `symbols=` (comma-separated). An empty value is an empty list: a node with no
    /// symbols yet asks for nothing. Every name must be configured; all unknown ones are named.
    public static func parse(_ list: String, known: Set<String>) throws(PositionsFilterError) -> [String] {
        if list.isEmpty { return [] }
        let names = list.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard names.count <= known.count else { throw .tooMany(count: names.count, limit: known.count) }
        if let empty = names.firstIndex(where: \.isEmpty) { throw .emptyName(position: empty) }
        var seen = Set<String>()
        let unknown = names.filter { !known.contains($0) && seen.insert($0).inserted }
        guard unknown.isEmpty else { throw .unknown(unknown) }
        return names
    }
}
