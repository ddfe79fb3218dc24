import Foundation
import MMCore

/// Storage of the fill ledger, the positions folded from it and the ingest cursor.
///
/// Every implementation keeps the one invariant the service stands on: a batch is applied
/// in one transaction, so a fill row, its effect on its position, the ledger version and
/// the cursor are either all durable or none of them is. That is what makes a crash at any
/// point plus redelivery from the exchange count each fill exactly once.
///
/// Callers pass fills that already passed `FillValidator`; the repository decides only
/// what needs the stored ledger (new, duplicate, conflicting).
public protocol LedgerRepository: Sendable {
    /// Records `fills` atomically: if any one conflicts with the ledger (same fill_id with
    /// other contents, or a seq owned by another fill_id) nothing changes and the conflict
    /// is thrown as a `LedgerRejection`.
    func record(_ fills: [Fill], atMs: EpochMs) async throws -> LedgerCommit

    /// Applies fills pulled from the exchange's log. They must start at cursor + 1 and be
    /// contiguous (else `LedgerRejection.notContiguous`, nothing changes). Applies them in
    /// order up to the first conflicting one, advances the cursor past what it applied and
    /// reports the conflict in `IngestCommit.stoppedAt` instead of skipping it.
    func ingest(_ fills: [Fill], atMs: EpochMs) async throws -> IngestCommit

    /// Every configured symbol's position (flat ones included) and the ledger version.
    func positions() async throws -> PositionsView

    /// Ledger fills with seq > `after`, in seq order, optionally of one symbol.
    func ledger(symbol: String?, after: Int64, limit: Int) async throws -> LedgerPage

    /// The fill recorded under `seq`, if any.
    func fill(seq: Int64) async throws -> Fill?

    /// The persisted ingest cursor and counters.
    func cursorState() async throws -> LedgerCursorState

    /// The ledger's fill-log chain over its gap-free prefix (`LedgerChain`), the cursor and
    /// the fill count. Every write advances the chain in its own transaction; if a remainder
    /// is left (a ledger migrated from the v1 schema, or a write that reached the per-
    /// transaction limit) this call advances it by up to one more limit before answering,
    /// so `chained_through_seq` may still be below the cursor right after such a migration.
    func digest() async throws -> LedgerDigest

    /// Whether this process may pull the exchange's log now. A store one process owns
    /// (SQLite) always may; a shared one (PostgreSQL) lets one replica at a time.
    func holdsIngestLeadership() async -> Bool
}

extension LedgerRepository {
    public func holdsIngestLeadership() async -> Bool { true }
}

public struct LedgerCommit: Sendable, Hashable {
    /// Fill ids that were new, in the order they were applied (seq order).
    public var recorded: [String]
    /// Fill ids already in the ledger with identical contents (no-ops).
    public var duplicates: [String]
    /// The positions right after this commit.
    public var view: PositionsView
}

public struct IngestCommit: Sendable, Hashable {
    public var recorded: [String]
    public var duplicates: [String]
    /// The cursor after this commit: the seq of the last fill applied or found duplicate.
    public var cursor: Int64
    public var view: PositionsView
    /// The fill the batch stopped at (not applied, cursor not moved past it), and why.
    public var stoppedAt: LedgerRejection?
}

public struct LedgerCursorState: Sendable, Hashable {
    /// Every exchange seq ≤ cursor is in the ledger.
    public var cursor: Int64
    /// Distinct fills applied (pulled and pushed).
    public var version: Int64
    public var lastBatchAtMs: EpochMs?
}

/// Why a fill cannot enter the ledger. Each case says what is wrong and what to check.
public enum LedgerRejection: Error, Sendable, Hashable, CustomStringConvertible {
    /// The fill_id is recorded already with different contents; the first is kept.
    case conflictingDuplicate(fillId: String, differingFields: [String], stored: Fill, presented: Fill)
    /// The seq is recorded already under another fill_id.
    case seqConflict(seq: Int64, storedFillId: String, presentedFillId: String)
    /// The fill itself is invalid (bad value, unknown symbol).
    case invalidFill(index: Int, fillId: String, field: String, reason: String)
    /// An ingest batch that does not continue the cursor.
    case notContiguous(expectedSeq: Int64, gotSeq: Int64)

    public var description: String {
        switch self {
        case .conflictingDuplicate(let fillId, let fields, _, _):
            "fill_id '\(fillId)' is already recorded with different \(fields.joined(separator: ", ")); the first recording is kept and this one is refused"
        case .seqConflict(let seq, let stored, let presented):
            "seq \(seq) is already recorded as fill '\(stored)', not '\(presented)': the exchange's fill log and the ledger disagree (was the exchange's data directory reset?)"
        case .invalidFill(let index, let fillId, let field, let reason):
            "fills[\(index)] (fill_id '\(fillId)'): '\(field)' \(reason)"
        case .notContiguous(let expected, let got):
            "ingest batch starts or continues at seq \(got), expected \(expected): fills must be applied without gaps"
        }
    }

    /// The fill that was refused, for logs and status.
    public var fillId: String? {
        switch self {
        case .conflictingDuplicate(let fillId, _, _, _): fillId
        case .seqConflict(_, _, let presented): presented
        case .invalidFill(_, let fillId, _, _): fillId
        case .notContiguous: nil
        }
    }
}

extension Fill {
    /// The snake_case names of the fields where `self` and `other` differ.
    func differingFields(from other: Fill) -> [String] {
        var fields: [String] = []
        if fillId != other.fillId { fields.append("fill_id") }
        if seq != other.seq { fields.append("seq") }
        if symbol != other.symbol { fields.append("symbol") }
        if side != other.side { fields.append("side") }
        if price != other.price { fields.append("price") }
        if qty != other.qty { fields.append("qty") }
        if makerOrderId != other.makerOrderId { fields.append("maker_order_id") }
        if takerOrderId != other.takerOrderId { fields.append("taker_order_id") }
        if node != other.node { fields.append("node") }
        if fencingToken != other.fencingToken { fields.append("fencing_token") }
        if tsMs != other.tsMs { fields.append("ts_ms") }
        return fields
    }
}
