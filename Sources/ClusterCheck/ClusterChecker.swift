import Foundation
import MMCore

/// `mmctl check --json`: the whole verdict. Schema documented in docs/API.md.
public struct CheckReport: Codable, Sendable, Hashable {
    public static let currentSchemaVersion = 1
    /// 1; fields are only ever added.
    public var schemaVersion: Int = CheckReport.currentSchemaVersion
    /// True when every invariant held and every service answered.
    public var ok: Bool
    /// 0 all held, 1 an invariant is broken, 4 a service was unreachable.
    public var exitCode: Int32
    public var checkedAtMs: EpochMs
    public var elapsedMs: Int64
    /// In the order of `InvariantName.allCases`; empty when a service was unreachable.
    public var invariants: [InvariantResult]
    /// "service: reason" for every service that could not be read.
    public var unreachable: [String]
    /// `incremental` (digests and folds the services keep) or `full` (every fill read).
    public var mode: CheckMode

    public init(ok: Bool, exitCode: Int32, checkedAtMs: EpochMs, elapsedMs: Int64, invariants: [InvariantResult], unreachable: [String], mode: CheckMode = .incremental) {
        self.mode = mode
        self.ok = ok
        self.exitCode = exitCode
        self.checkedAtMs = checkedAtMs
        self.elapsedMs = elapsedMs
        self.invariants = invariants
        self.unreachable = unreachable
    }

    public static func exitCode(invariants: [InvariantResult], unreachable: [String]) -> Int32 {
        if !unreachable.isEmpty { return 4 }
        return invariants.allSatisfy(\.held) ? 0 : 1
    }

    /// One line per invariant, then the evidence of the broken ones, indented.
    public func renderText() -> String {
        var lines: [String] = []
        for result in invariants {
            let verdict = result.held ? "held  " : "BROKEN"
            lines.append("\(verdict)  \(result.name.rawValue): \(result.summary)")
            if !result.held {
                for item in result.offending { lines.append("          - \(item)") }
            }
        }
        for problem in unreachable { lines.append("UNREACHABLE  \(problem)") }
        lines.append(
            ok ? "all \(invariants.count) invariants held (\(mode.rawValue), \(elapsedMs) ms)"
                : unreachable.isEmpty ? "\(invariants.filter { !$0.held }.count) invariant(s) BROKEN" : "check incomplete: a service is unreachable")
        return lines.joined(separator: "\n")
    }
}

/// How long the checker waits for things that legitimately lag.
public struct CheckTolerances: Sendable, Hashable {
    /// Bound on waiting for the state service's ingest cursor to reach the exchange's head.
    public var ingestDrainTimeoutMs: Int64
    /// How long the quote invariant is retried before it is called broken (failover in flight).
    public var quoteSettleMs: Int64
    public var maxQuoteAgeMs: Int64
    /// Position snapshots race live fills; a mismatch is re-read this many times before it counts.
    public var positionAttempts: Int

    public init(ingestDrainTimeoutMs: Int64 = 10_000, quoteSettleMs: Int64 = 5_000, maxQuoteAgeMs: Int64 = 5_000, positionAttempts: Int = 3) {
        self.ingestDrainTimeoutMs = ingestDrainTimeoutMs
        self.quoteSettleMs = quoteSettleMs
        self.maxQuoteAgeMs = maxQuoteAgeMs
        self.positionAttempts = positionAttempts
    }
}

/// Fetches what each invariant needs, in the order that makes races harmless (see each
/// invariant's doc), and runs the pure checks.
public struct ClusterChecker: Sendable {
    public let connection: ClusterConnection
    public let tolerances: CheckTolerances
    public let clock: any EpochClock
    public let mode: CheckMode

    public init(connection: ClusterConnection, tolerances: CheckTolerances = CheckTolerances(), clock: any EpochClock = MonotonicEpochClock(), mode: CheckMode = .incremental) {
        self.connection = connection
        self.tolerances = tolerances
        self.clock = clock
        self.mode = mode
    }

    public func run() async -> CheckReport {
        let started = clock.nowMs()
        do {
            let results = try await checkAll()
            let code = CheckReport.exitCode(invariants: results, unreachable: [])
            return CheckReport(ok: code == 0, exitCode: code, checkedAtMs: started, elapsedMs: clock.nowMs() - started, invariants: results, unreachable: [], mode: mode)
        } catch let error as ServiceUnreachable {
            return CheckReport(ok: false, exitCode: 4, checkedAtMs: started, elapsedMs: clock.nowMs() - started, invariants: [], unreachable: [error.description], mode: mode)
        } catch {
            return CheckReport(ok: false, exitCode: 4, checkedAtMs: started, elapsedMs: clock.nowMs() - started, invariants: [], unreachable: ["\(error)"], mode: mode)
        }
    }

    func checkAll() async throws -> [InvariantResult] {
        let fills = mode == .full ? try await checkFills() : try await checkFillDigests()
        let positions = mode == .full ? try await checkPositions() : try await checkPositionsAgainstFold()
        let grants = Invariants.grantsNeverOverlap(events: try await LogReader.coordinatorEvents(connection.coordinator))
        let stale = try await checkStaleTokens()
        let quoted = try await checkQuotes()
        return [fills, positions, grants, stale, quoted]
    }

    func checkFills() async throws -> InvariantResult {
        let head = try await LogReader.exchangeHead(connection.exchange)
        let drained = try await waitForIngest(through: head)
        let ledger = try await LogReader.ledger(connection.state)
        let exchange = try await LogReader.exchangeFills(connection.exchange)
        var result = Invariants.fillsExactlyOnce(exchangeFills: exchange.fills, ledgerFills: ledger, drainedThroughSeq: head)
        if let cursor = drained {
            result.offending.insert("ingest cursor still at \(cursor), exchange head \(head), after \(tolerances.ingestDrainTimeoutMs) ms", at: 0)
            result.counts["ingest_lag"] = head - cursor
        }
        return result
    }

    /// nil once the ingest cursor reached `head`; otherwise the cursor when the wait ran out.
    func waitForIngest(through head: Int64) async throws -> Int64? {
        let deadline = clock.nowMs() + tolerances.ingestDrainTimeoutMs
        var cursor: Int64 = -1
        while true {
            cursor = try await fetch("state") { () async throws(ClientError) in try await connection.state.ingest() }.cursor
            if cursor >= head { return nil }
            if clock.nowMs() >= deadline { return cursor }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Incremental: the ledger's and the exchange's chain heads at the end of the ledger's
    /// gap-free prefix. Re-read a few times while a fill is in flight between the two.
    func checkFillDigests() async throws -> InvariantResult {
        let head = try await LogReader.exchangeHead(connection.exchange)
        let drained = try await waitForIngest(through: head)
        var result: InvariantResult?
        for attempt in 0..<max(1, tolerances.positionAttempts) {
            if attempt > 0 { try? await Task.sleep(for: .milliseconds(200)) }
            let ledger = try await fetch("state") { () async throws(ClientError) in try await connection.state.ledgerDigest() }
            let exchangeHead: String? = try await fetch("exchange") { () async throws(ClientError) -> String? in
                do throws(ClientError) {
                    return try await connection.exchange.fillDigest(through: ledger.chainedThroughSeq).fillLogSha256
                } catch {
                    if case .api(404, _) = error { return nil }
                    throw error
                }
            }
            result = Invariants.fillChainsAgree(exchangeHeadSeq: head, ledger: ledger, exchangeHeadAtLedgerEnd: exchangeHead)
            if result!.held { break }
        }
        var final = result!
        if let cursor = drained {
            final.offending.insert("ingest cursor still at \(cursor), exchange head \(head), after \(tolerances.ingestDrainTimeoutMs) ms", at: 0)
            final.counts["ingest_lag"] = head - cursor
        }
        return final
    }

    /// Incremental: each position against the exchange's fold at the position's last fill;
    /// a symbol the fold's short history no longer covers is folded from the ledger's own
    /// fills of that symbol (as `--full` does for every symbol).
    func checkPositionsAgainstFold() async throws -> InvariantResult {
        var outcome: (result: InvariantResult, uncomparable: [String])?
        var positions: [Position] = []
        for attempt in 0..<max(1, tolerances.positionAttempts) {
            if attempt > 0 { try? await Task.sleep(for: .milliseconds(200)) }
            positions = try await fetch("state") { () async throws(ClientError) in try await connection.state.positions() }.positions
            let fold = try await fetch("exchange") { () async throws(ClientError) in try await connection.exchange.fillFold() }
            outcome = Invariants.positionsMatchExchangeFold(positions: positions, fold: fold)
            if outcome!.result.held && outcome!.uncomparable.isEmpty { break }
        }
        // The loop runs at least once.
        var result = outcome!.result
        let uncomparable = outcome!.uncomparable
        if !uncomparable.isEmpty {
            let selected = Set(uncomparable)
            var fills: [Fill] = []
            for symbol in uncomparable { fills += try await LogReader.ledger(connection.state, symbol: symbol) }
            let folded = Invariants.positionsMatchFold(positions: positions.filter { selected.contains($0.symbol) }, ledgerFills: fills)
            if !folded.held {
                result.held = false
                result.summary += "; " + folded.summary + " (folded from the ledger)"
                result.offending += folded.offending
            }
            result.counts["folded_from_ledger"] = Int64(uncomparable.count)
        }
        return result
    }

    func checkPositions() async throws -> InvariantResult {
        var result: InvariantResult?
        for _ in 0..<max(1, tolerances.positionAttempts) {
            let positions = try await fetch("state") { () async throws(ClientError) in try await connection.state.positions() }.positions
            let ledger = try await LogReader.ledger(connection.state)
            let attempt = Invariants.positionsMatchFold(positions: positions, ledgerFills: ledger)
            result = attempt
            if attempt.held { break }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return result!
    }

    func checkStaleTokens() async throws -> InvariantResult {
        let stats = try await fetch("exchange") { () async throws(ClientError) in try await connection.exchange.stats() }
        let authority = try await fetch("coordinator") { () async throws(ClientError) in try await connection.coordinator.authority() }
        let tokens = Dictionary(authority.authority.map { ($0.symbol, $0.fencingToken) }, uniquingKeysWith: max)
        return Invariants.noStaleTokenAccepted(stats: stats, coordinatorTokens: tokens)
    }

    func checkQuotes() async throws -> InvariantResult {
        let deadline = clock.nowMs() + tolerances.quoteSettleMs
        while true {
            let authority = try await fetch("coordinator") { () async throws(ClientError) in try await connection.coordinator.authority() }
            let members = try await fetch("coordinator") { () async throws(ClientError) in try await connection.coordinator.members() }
            let quotes = try await fetch("exchange") { () async throws(ClientError) in try await connection.exchange.quotes() }
            let result = Invariants.assignedSymbolsQuoted(
                authority: authority, members: members, quotes: quotes, nowMs: clock.nowMs(), maxQuoteAgeMs: tolerances.maxQuoteAgeMs)
            if result.held || clock.nowMs() >= deadline { return result }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
}
