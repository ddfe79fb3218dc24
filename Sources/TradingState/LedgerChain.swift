import MMCore

/// Most fills one ledger transaction adds to the fill-log chain (`LedgerChain`): bounds the
/// writer time a ledger migrated from the v1 schema spends catching up per transaction.
/// Measured (debug build, SQLite): catching up 50,000 fills from the table took 2.0 s, 1.35 s
/// of it canonical JSON + SHA-256, so 10,000 holds the writer about 0.4 s at most (the total
/// catch-up time does not depend on the limit); ordinary batches hash only their own new fills.
public let defaultChainAdvanceLimit = 10_000

/// The ledger's running fill-log chain (`FillLogDigest`) over its gap-free prefix: fills
/// 1…`through`, all present. Both repositories keep `chain_through`, `chain_head` and
/// `fill_count` in `ledger_state` and advance them in the same transaction as the fills, so
/// `GET /v1/fills/digest` answers in O(1) and `mmctl check` compares it with the exchange's
/// head at the same seq instead of walking every fill.
///
/// Pure: the repositories feed it fills in seq order (first the batch they just inserted,
/// from memory, then runs read back from the table when the chain can go further); it takes
/// only what continues the chain and stops at the first gap or at `limit` fills per
/// transaction, so a big ledger migrating from the v1 schema catches up over several
/// transactions instead of one long one holding the writer.
struct LedgerChain: Sendable, Hashable {
    /// Rows read back per statement while catching up from the table.
    static let readPage = 1_000

    private(set) var digest: FillLogDigest
    let limit: Int
    /// Fills appended by this transaction.
    private(set) var advanced = 0

    /// Resumes from the stored state; nil when the stored head is not 32 bytes or `through`
    /// is negative (a corrupt row).
    init?(through: Int64, head: [UInt8], limit: Int) {
        guard head.count == 32, let digest = FillLogDigest(headHex: head.lowercaseHex, count: through) else { return nil }
        self.digest = digest
        self.limit = max(1, limit)
    }

    var through: Int64 { digest.count }
    var head: [UInt8] { digest.head }
    var remaining: Int { max(0, limit - advanced) }

    /// Appends the fills of `fills` (ascending seq) that continue the chain; skips those it
    /// already covers, stops at the first gap or when the limit is reached.
    mutating func extend(with fills: some Sequence<Fill>) {
        for fill in fills {
            if fill.seq <= through { continue }
            guard fill.seq == through + 1, advanced < limit else { return }
            digest.append(fill)
            advanced += 1
        }
    }

    /// How many rows to ask the table for next (0: stop).
    var nextReadCount: Int { min(remaining, Self.readPage) }
}

/// What `ledger_state` holds about the chain, read with the state row.
struct StoredChain: Sendable, Hashable {
    var through: Int64
    var head: [UInt8]
    var fillCount: Int64
}
