import Foundation
import MMCore

/// Copies a ledger from one store to another (SQLite → PostgreSQL: `mmd state migrate`) and
/// proves the copy: the same fill count and the same fill-log digest (SHA-256 over the fills
/// in seq order, canonical JSON lines: the exchange's `fill_log_sha256` rule) on both sides,
/// the same positions, the same ingest cursor. Fills are applied through the destination's
/// own `ingest`/`record`, so its positions are folded by its own code, not copied.
public enum LedgerMigration {
    public struct Report: Sendable, Hashable, CustomStringConvertible {
        public var fills: Int64
        public var digest: String
        public var cursor: Int64

        public var description: String { "\(fills) fills, fill-log sha256 \(digest), ingest cursor \(cursor): identical on both sides" }
    }

    public enum Failure: Error, Sendable, Hashable, CustomStringConvertible {
        case destinationNotEmpty(fills: Int64)
        case refused(seq: Int64, reason: String)
        case mismatch(what: String, source: String, destination: String)

        public var description: String {
            switch self {
            case .destinationNotEmpty(let fills):
                "the destination ledger already holds \(fills) fill(s): migrate into an empty database (or a new schema, ?schema=NAME)"
            case .refused(let seq, let reason):
                "the destination refused fill seq \(seq): \(reason); nothing after it was copied"
            case .mismatch(let what, let source, let destination):
                "after copying, the \(what) differs: source \(source), destination \(destination); the destination must not be used"
            }
        }
    }

    public static let pageSize = 2_000

    /// The fill count and fill-log digest of `repository`, walking the whole ledger.
    public static func digest(of repository: any LedgerRepository) async throws -> (count: Int64, digest: String) {
        var digest = FillLogDigest()
        var after: Int64 = 0
        while true {
            let page = try await repository.ledger(symbol: nil, after: after, limit: pageSize)
            for fill in page.fills { digest.append(fill) }
            guard let next = page.nextAfter, !page.fills.isEmpty else { break }
            after = next
        }
        return (digest.count, digest.hexDigest())
    }

    /// Copies every fill of `source` into the empty `destination`, then verifies both.
    public static func copy(from source: any LedgerRepository, to destination: any LedgerRepository, atMs: EpochMs) async throws -> Report {
        let existing = try await destination.cursorState()
        guard existing.version == 0 else { throw Failure.destinationNotEmpty(fills: existing.version) }
        let sourceCursor = try await source.cursorState().cursor
        var after: Int64 = 0
        while true {
            let page = try await source.ledger(symbol: nil, after: after, limit: pageSize)
            // Fills up to the source's cursor continue the destination's cursor (ingest); any
            // beyond it were pushed ahead of the pull loop and are recorded as pushed.
            let pulled = page.fills.filter { $0.seq <= sourceCursor }
            let pushed = page.fills.filter { $0.seq > sourceCursor }
            if !pulled.isEmpty {
                let commit = try await destination.ingest(pulled, atMs: atMs)
                if let stopped = commit.stoppedAt { throw Failure.refused(seq: stopped.fillId.flatMap { id in pulled.first { $0.fillId == id }?.seq } ?? 0, reason: "\(stopped)") }
            }
            if !pushed.isEmpty {
                do { _ = try await destination.record(pushed, atMs: atMs) } catch let rejection as LedgerRejection {
                    throw Failure.refused(seq: pushed.first?.seq ?? 0, reason: "\(rejection)")
                }
            }
            guard let next = page.nextAfter, !page.fills.isEmpty else { break }
            after = next
        }
        return try await verify(source: source, destination: destination)
    }

    /// Both ledgers hold the same fills (count and fill-log digest), fold to the same
    /// positions and have the same ingest cursor; throws `Failure.mismatch` naming what differs.
    public static func verify(source: any LedgerRepository, destination: any LedgerRepository) async throws -> Report {
        let sourceCursor = try await source.cursorState().cursor
        let (sourceCount, sourceDigest) = try await digest(of: source)
        let (destinationCount, destinationDigest) = try await digest(of: destination)
        guard sourceCount == destinationCount else { throw Failure.mismatch(what: "fill count", source: "\(sourceCount)", destination: "\(destinationCount)") }
        guard sourceDigest == destinationDigest else { throw Failure.mismatch(what: "fill-log digest", source: sourceDigest, destination: destinationDigest) }
        let sourcePositions = try await source.positions().positions.sorted { $0.symbol < $1.symbol }
        let destinationPositions = try await destination.positions().positions.sorted { $0.symbol < $1.symbol }
        func folded(_ positions: [Position]) -> [[Int64]] {
            positions.map { [$0.netQty, $0.avgPrice, $0.openCost, $0.realizedPnl, $0.fillCount, $0.lastFillSeq] }
        }
        guard sourcePositions.map(\.symbol) == destinationPositions.map(\.symbol), folded(sourcePositions) == folded(destinationPositions) else {
            throw Failure.mismatch(what: "positions", source: "\(sourcePositions.map { "\($0.symbol) \($0.netQty)" })", destination: "\(destinationPositions.map { "\($0.symbol) \($0.netQty)" })")
        }
        let destinationCursor = try await destination.cursorState().cursor
        guard destinationCursor == sourceCursor else { throw Failure.mismatch(what: "ingest cursor", source: "\(sourceCursor)", destination: "\(destinationCursor)") }
        return Report(fills: sourceCount, digest: sourceDigest, cursor: sourceCursor)
    }
}
