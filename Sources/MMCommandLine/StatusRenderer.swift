import Foundation
import MMCore

/// Renders a ClusterSnapshot as the text view of `mmctl status`. Pure: the same snapshot
/// (and previous snapshot) gives the same lines. Rows that changed since `previous` are
/// marked with `*` in the first column (and highlighted when colour is on).
///
/// Lives here rather than in mmctl so it can be tested (mmctl is an executable). Colour is
/// plain ANSI SGR, written only when `color` is on.
public struct StatusRenderer: Sendable {
    /// The default number of symbol rows of the text view: a 1,000-symbol cluster stays one
    /// readable screenful; `--limit 0` shows every row.
    public static let defaultSymbolLimit = 40
    /// A member's held symbols are listed up to this many, then counted.
    public static let heldListLimit = 8

    public var dataDirectory: String
    public var color: Bool
    /// Raw integer ticks (`--ticks`) instead of money (ticks × tick size, integer arithmetic).
    public var ticks = false
    /// At most this many symbol rows (nil or ≤ 0: all); the rest are counted in one line.
    public var symbolLimit: Int?
    /// The rows' order (`--sort`); `auto` is busiest first only when rows are cut.
    public var order: SymbolOrder

    public init(dataDirectory: String, color: Bool, ticks: Bool = false, symbolLimit: Int? = StatusRenderer.defaultSymbolLimit, order: SymbolOrder = .auto) {
        self.dataDirectory = dataDirectory
        self.color = color
        self.ticks = ticks
        self.symbolLimit = symbolLimit
        self.order = order
    }

    public func render(_ snapshot: ClusterSnapshot, previous: ClusterSnapshot?) -> [String] {
        var lines: [String] = []
        // The host column, the hosts section and per-host supervisors appear only when the
        // cluster spans configured hosts: a single-host view reads exactly as it always has.
        let multiHost = snapshot.isMultiHost
        let supervisorText: String
        if multiHost {
            let answered = snapshot.hosts.count(where: \.reachable)
            let text = "supervisors \(answered) of \(snapshot.hosts.count) hosts answer"
            supervisorText = answered == snapshot.hosts.count ? text : paint(text, \.red)
        } else {
            supervisorText = snapshot.supervisor.map { "supervisor pid \($0.pid), up \(duration($0.uptimeMs))" } ?? paint("supervisor DOWN", \.red)
        }
        lines.append(bold("mmctl status") + "  \(dataDirectory)  \(supervisorText)  at \(clock(snapshot.takenAtMs))")

        if !snapshot.errors.isEmpty {
            lines.append("")
            lines.append(bold("UNREACHABLE"))
            for error in snapshot.errors {
                lines.append("  " + paint("\(error.service): \(error.error)", \.red))
            }
        }

        if !snapshot.warnings.isEmpty {
            lines.append("")
            lines.append(bold("WARNINGS"))
            for warning in snapshot.warnings {
                lines.append("  " + paint("\(warning.kind == ClusterSnapshot.Warning.clockSkew || warning.kind == ClusterSnapshot.Warning.clockSkewBetweenHosts ? "CLOCK SKEW" : warning.kind): \(warning.message)", \.red))
            }
        }

        if multiHost {
            lines.append("")
            lines.append(bold("HOSTS") + "  (clock: host − this machine, ± half the round trip)")
            lines.append(header(["HOST", "ADDRESS", "SUPERVISOR", "CLOCK"], widths: hostWidths))
            for host in snapshot.hosts {
                let supervisor = host.reachable
                    ? host.supervisor.map { "pid \($0.pid), up \(duration($0.uptimeMs))" } ?? "answers"
                    : paint("UNREACHABLE", \.red)
                lines.append(row(false, [host.name, host.address, supervisor, clockText(host)], widths: hostWidths))
            }
        }

        lines.append("")
        lines.append(bold("PROCESSES"))
        var processWidths = self.processWidths
        // Room for "UNREACHABLE" in the state column, only when a row says it.
        if snapshot.processes.contains(where: { $0.state == .unreachable }) { processWidths[3] = 11 }
        if multiHost { processWidths.insert(hostColumnWidth(snapshot), at: 1) }
        let hostColumn: [String] = multiHost ? ["HOST"] : []
        lines.append(header(["NAME"] + hostColumn + ["ROLE", "PID", "STATE", "RESTARTS", "UPTIME", "PORT", "LAST EXIT"], widths: processWidths))
        let previousProcesses = Dictionary((previous?.processes ?? []).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for process in snapshot.processes {
            let old = previousProcesses[process.name]
            let changed = previous != nil && (old == nil || old?.pid != process.pid || old?.state != process.state || old?.restarts != process.restarts)
            let unreachable = process.state == .unreachable
            // Unreachable: the state is upper-case and red, and nothing unknown is shown as a figure.
            let stateText = unreachable
                ? paint("UNREACHABLE", \.red)
                : paint(process.state.rawValue, process.state == .running ? \.green : (process.state == .fatal ? \.red : \.yellow))
            let hostValue: [String] = multiHost ? [process.host ?? "?"] : []
            lines.append(row(changed, [process.name] + hostValue + [
                process.role, process.pid.map(String.init) ?? (unreachable ? "?" : "-"), stateText, unreachable ? "?" : "\(process.restarts)",
                process.uptimeMs.map(duration) ?? (unreachable ? "?" : "-"), "\(process.port)", process.lastExit.map(exitText) ?? (unreachable ? "?" : "-"),
            ], widths: processWidths))
            if process.state == .fatal, let reason = process.fatalReason {
                lines.append("    " + paint("\(process.name) is fatal: \(reason); 'mmctl restart \(process.name)' after fixing the cause", \.red))
            }
        }

        lines.append("")
        let version = snapshot.assignments.map { "assignments v\($0.version)" } ?? "assignments unknown"
        lines.append(bold("MEMBERS") + "  (\(version))")
        if snapshot.members.isEmpty { lines.append("  (none)") }
        // One pass over the table, not one per member: it has a row per symbol.
        var heldByNode: [String: [String]] = [:]
        for (symbol, node) in snapshot.assignments?.symbols ?? [:] { heldByNode[node, default: []].append(symbol) }
        let previousMembers = Dictionary((previous?.members ?? []).map { ($0.node, $0.status) }, uniquingKeysWith: { a, _ in a })
        for member in snapshot.members {
            let held = heldByNode[member.node]?.sorted() ?? []
            let changed = previous != nil && previousMembers[member.node] != member.status
            let status = paint(member.status.rawValue, member.status == .alive ? \.green : \.red)
            lines.append(row(changed, [member.node, status, "ttl \(duration(member.expiresInMs))", heldText(held)], widths: [8, 8, 12, 40]))
        }

        lines.append("")
        lines.append(bold("SYMBOLS") + (ticks ? "  (prices in ticks, qty in lots, PnL in ticks×lots)" : "  (prices as money: ticks × tick size; qty in lots; PnL in price units × lots)"))
        let page = SymbolPage(snapshot.symbols, order: order, limit: symbolLimit)
        var symbolWidths = self.symbolWidths
        symbolWidths[0] = max(symbolWidths[0], page.shown.map(\.symbol.count).max() ?? 0)
        lines.append(header(["SYMBOL", "REF", "ASSIGNED", "AUTHORITY", "TOKEN", "LEFT", "BID", "ASK", "NET", "AVG", "REALIZED", "UNREAL", "FILLS"], widths: symbolWidths))
        let previousSymbols = Dictionary((previous?.symbols ?? []).map { ($0.symbol, $0) }, uniquingKeysWith: { a, _ in a })
        if snapshot.symbols.isEmpty { lines.append("  (none)") }
        for symbol in page.shown {
            let old = previousSymbols[symbol.symbol]
            let changed = previous != nil && (old?.authority?.node != symbol.authority?.node || old?.authority?.fencingToken != symbol.authority?.fencingToken
                || old?.quote?.bid != symbol.quote?.bid || old?.quote?.ask != symbol.quote?.ask || old?.position?.netQty != symbol.position?.netQty
                || old?.position?.fillCount != symbol.position?.fillCount)
            let holder = symbol.authority.map { $0.node } ?? paint("none", \.yellow)
            let tick = symbol.tickSize
            lines.append(row(changed, [
                symbol.symbol, symbol.referencePrice.map { price($0, tick) } ?? "?", symbol.assignedTo ?? "-", holder,
                symbol.authority.map { "\($0.fencingToken)" } ?? "-", symbol.authority.map { duration($0.expiresInMs) } ?? "-",
                symbol.quote.map { side($0.bid, $0.bidQty, tick) } ?? "-", symbol.quote.map { side($0.ask, $0.askQty, tick) } ?? "-",
                symbol.position.map { "\($0.netQty)" } ?? "?", symbol.position.map { $0.netQty == 0 && !ticks ? "-" : price($0.avgPrice, tick) } ?? "?",
                symbol.position.map { pnl($0.realizedPnl, tick) } ?? "?", symbol.position.flatMap { position in position.unrealizedPnl.map { pnl($0, tick) } } ?? "?",
                symbol.position.map { "\($0.fillCount)" } ?? "?",
            ], widths: symbolWidths))
        }
        if page.omitted > 0 {
            // Only with --sort config can a symbol without holder or quote be among the hidden.
            let hiddenAttention = snapshot.symbols.count(where: SymbolOrder.needsAttention) - page.shown.count(where: SymbolOrder.needsAttention)
            let warning = hiddenAttention > 0 ? paint(" (\(hiddenAttention) of them without holder or quote)", \.red) : ""
            lines.append("  … \(page.omitted) more \(page.omitted == 1 ? "symbol" : "symbols")\(warning); use --symbols PATTERN or --limit N (0: all)")
        }
        if page.sorted && !page.shown.isEmpty {
            lines.append("  (\(page.shown.count) of \(snapshot.symbols.count) shown: without holder or quote first, then most fills)")
        }
        let totals = snapshot.totals
        let totalLabel = page.omitted > 0 ? "TOTAL of all \(snapshot.symbols.count)" : "TOTAL"
        if ticks {
            lines.append("  \(totalLabel) realized \(pnl(totals.realizedPnl, nil))  unrealized \(pnl(totals.unrealizedPnl, nil))  fills \(totals.fillCount)")
        } else {
            // Summed at the finest tick scale, as the dashboard sums them.
            let positions = snapshot.symbols.compactMap { symbol in symbol.position.map { (position: $0, tickSize: symbol.tickSize) } }
            let realized = PriceFormat.sum(positions.map { ($0.position.realizedPnl, $0.tickSize) })
            let unrealized = PriceFormat.sum(positions.compactMap { item in item.position.unrealizedPnl.map { ($0, item.tickSize) } })
            lines.append("  \(totalLabel) realized \(signedMoney(realized))  unrealized \(signedMoney(unrealized))  fills \(totals.fillCount)")
        }

        lines.append("")
        lines.append(bold("RECENT FILLS") + "  (newest first)")
        if snapshot.recentFills.isEmpty { lines.append("  (none)") }
        let previousHead = previous?.recentFills.first?.seq ?? Int64.max
        let tickSizes = Dictionary(snapshot.symbols.map { ($0.symbol, $0.tickSize) }, uniquingKeysWith: { a, _ in a })
        for fill in snapshot.recentFills.prefix(8) {
            lines.append(row(previous != nil && fill.seq > previousHead, [
                "#\(fill.seq)", clock(fill.tsMs), fill.symbol, fill.side.rawValue, "\(fill.qty) @ \(price(fill.price, tickSizes[fill.symbol]))", fill.node, "token \(fill.fencingToken)",
            ], widths: [8, 12, 6, 5, 16, 5, 12]))
        }

        lines.append("")
        lines.append(bold("RECENT EVENTS") + "  (newest first)")
        if snapshot.recentEvents.isEmpty { lines.append("  (none)") }
        let previousEventTime = previous?.recentEvents.first?.tsMs ?? Int64.max
        for event in snapshot.recentEvents.prefix(10) {
            lines.append(row(previous != nil && event.tsMs > previousEventTime, [clock(event.tsMs), event.kind, event.symbol ?? "", event.node ?? "", event.detail], widths: [12, 14, 6, 4, 80]))
        }
        return lines
    }

    /// Up to `heldListLimit` names, then a count: at 1,000 symbols a node holds hundreds.
    private func heldText(_ held: [String]) -> String {
        guard held.count > Self.heldListLimit else { return held.joined(separator: " ") }
        return held.prefix(Self.heldListLimit).joined(separator: " ") + " … (\(held.count) symbols)"
    }

    let processWidths = [12, 11, 8, 9, 8, 9, 6, 22]
    let hostWidths = [10, 24, 24, 30]

    /// As wide as the longest host name (at least "HOST").
    private func hostColumnWidth(_ snapshot: ClusterSnapshot) -> Int {
        max(6, (snapshot.processes.compactMap(\.host) + snapshot.hosts.map(\.name)).map(\.count).max() ?? 0)
    }

    /// "+12ms ±3ms", "SKEWED +812ms ±4ms", or why there is no figure.
    private func clockText(_ host: ClusterSnapshot.HostView) -> String {
        guard let estimate = host.clock else {
            // An unreachable host's error is already under UNREACHABLE.
            guard host.reachable else { return "-" }
            return host.clockError.map { paint("? (\($0))", \.yellow) } ?? "-"
        }
        let text = "\(estimate.offsetMs >= 0 ? "+" : "-")\(duration(abs(estimate.offsetMs))) ±\(duration(estimate.uncertaintyMs))"
        return host.clockSkewed ? paint("SKEWED " + text, \.red) : text
    }
    let symbolWidths = [6, 9, 8, 9, 6, 6, 12, 12, 6, 9, 11, 11, 6]

    private func header(_ columns: [String], widths: [Int]) -> String {
        var text = "  " + zip(columns, widths).map { pad($0, $1) }.joined(separator: " ")
        while text.hasSuffix(" ") { text.removeLast() }
        return text
    }

    private func row(_ changed: Bool, _ columns: [String], widths: [Int]) -> String {
        var text = zip(columns, widths).map { pad($0, $1) }.joined(separator: " ")
        while text.hasSuffix(" ") { text.removeLast() }
        return changed ? (color ? "*".yellow.bold : "*") + " " + (color ? text.onLightBlack : text) : "  " + text
    }

    /// Pads by visible width: colour escapes take no columns.
    private func pad(_ text: String, _ width: Int) -> String {
        let visible = visibleCount(text)
        return visible >= width ? text : text + String(repeating: " ", count: width - visible)
    }

    private func bold(_ text: String) -> String { color ? text.bold : text }

    private func paint(_ text: String, _ style: KeyPath<String, String>) -> String {
        color ? text[keyPath: style] : text
    }

    private func side(_ value: Ticks?, _ qty: Lots, _ tickSize: String) -> String {
        guard let value else { return "-" }
        return "\(qty)@\(price(value, tickSize))"
    }

    /// A price in ticks, or as money when `ticks` is off and the tick size is known.
    func price(_ value: Ticks, _ tickSize: String?) -> String {
        guard !ticks, let tickSize else { return "\(value)" }
        return PriceFormat.money(value, tickSize: tickSize)
    }

    private func pnl(_ value: Int64, _ tickSize: String?) -> String {
        let shown = price(value, tickSize)
        return signed(value > 0 ? "+" + shown : shown, value)
    }

    /// A money total: its sign is read from the text (a tick total could differ in sign when
    /// tick sizes differ).
    private func signedMoney(_ text: String?) -> String {
        guard let text else { return "?" }
        let sign: Int64 = text.hasPrefix("-") ? -1 : (text.contains(where: { ("1"..."9").contains($0) }) ? 1 : 0)
        return signed(sign > 0 ? "+" + text : text, sign)
    }

    private func signed(_ text: String, _ value: Int64) -> String {
        guard color, value != 0 else { return text }
        return value > 0 ? text.green : text.red
    }

    private func exitText(_ exit: ProcessExit) -> String {
        let what = exit.code.map { "code \($0)" } ?? exit.signal.map { "signal \($0)" } ?? "exit"
        return "\(what) at \(clock(exit.atMs))"
    }

    func clock(_ ms: EpochMs) -> String {
        var seconds = time_t(ms / 1_000)
        var parts = tm()
        localtime_r(&seconds, &parts)
        return String(format: "%02d:%02d:%02d.%03d", parts.tm_hour, parts.tm_min, parts.tm_sec, Int(ms % 1_000))
    }
}

/// The terminal text helpers mmctl shares with the renderer.
public enum TerminalText {
    /// 1h02m, 3m05s, 4.2s, 850ms.
    public static func duration(_ ms: Int64) -> String { MMCommandLine.duration(ms) }
    /// Printable width of a string that may contain ANSI escape sequences.
    public static func visibleCount(_ text: String) -> Int { MMCommandLine.visibleCount(text) }
    /// Cuts a line to `width` printable columns, keeping escape sequences intact.
    public static func truncate(_ text: String, to width: Int) -> String { truncateVisible(text, to: width) }
}

/// ANSI SGR styling (what mmctl used Rainbow for), applied only where the renderer's `color`
/// is on. Each style resets at its end, so a style inside a highlighted row re-opens the
/// row's background after itself (`onLightBlack`).
extension String {
    fileprivate func sgr(_ code: String) -> String { "\u{1b}[\(code)m" + self + "\u{1b}[0m" }
    fileprivate var bold: String { sgr("1") }
    fileprivate var red: String { sgr("31") }
    fileprivate var green: String { sgr("32") }
    fileprivate var yellow: String { sgr("33") }
    fileprivate var onLightBlack: String {
        "\u{1b}[100m" + replacingOccurrences(of: "\u{1b}[0m", with: "\u{1b}[0m\u{1b}[100m") + "\u{1b}[0m"
    }
}

/// 1h02m, 3m05s, 4.2s, 850ms.
func duration(_ ms: Int64) -> String {
    if ms < 0 { return "-" + duration(-ms) }
    if ms < 1_000 { return "\(ms)ms" }
    if ms < 60_000 { return "\(ms / 1_000).\(ms % 1_000 / 100)s" }
    if ms < 3_600_000 { return String(format: "%dm%02ds", ms / 60_000, ms % 60_000 / 1_000) }
    return String(format: "%dh%02dm", ms / 3_600_000, ms % 3_600_000 / 60_000)
}

/// Printable width of a string that may contain ANSI escape sequences.
func visibleCount(_ text: String) -> Int {
    var count = 0
    var inEscape = false
    for scalar in text.unicodeScalars {
        if inEscape {
            if (0x40...0x7e).contains(scalar.value) && scalar != "[" { inEscape = false }
            continue
        }
        if scalar == "\u{1b}" { inEscape = true; continue }
        count += 1
    }
    return count
}

/// Cuts a line to `width` printable columns, keeping escape sequences intact.
func truncateVisible(_ text: String, to width: Int) -> String {
    guard visibleCount(text) > width else { return text }
    var out = ""
    var count = 0
    var inEscape = false
    for scalar in text.unicodeScalars {
        if inEscape {
            out.unicodeScalars.append(scalar)
            if (0x40...0x7e).contains(scalar.value) && scalar != "[" { inEscape = false }
            continue
        }
        if scalar == "\u{1b}" { inEscape = true; out.unicodeScalars.append(scalar); continue }
        if count >= width { continue }
        out.unicodeScalars.append(scalar)
        count += 1
    }
    return text.contains("\u{1b}") ? out + "\u{1b}[0m" : out
}
