import MMCore

/// The coordinator's whole decision state, as a store that keeps all of it (etcd) holds it:
/// live members with their expiries, live grants, fencing counters, the assignment table and
/// the event head. `CoordinatorState(policy:snapshot:)` continues from it exactly, which is
/// what lets any replica take over from any other without a quiet period.
public struct CoordinatorSnapshot: Codable, Sendable, Hashable {
    /// The state that is not per member or per symbol.
    public struct Head: Codable, Sendable, Hashable {
        /// Layout of the stored values; a store refuses a head it does not know.
        public var format: Int = Head.currentFormat
        public var headSeq: Int64
        public var assignments: AssignmentTable
        public var quietUntilMs: EpochMs
        public var unresolvedSymbols: [String]

        public static let currentFormat = 1

        public init(headSeq: Int64, assignments: AssignmentTable, quietUntilMs: EpochMs, unresolvedSymbols: [String]) {
            self.headSeq = headSeq
            self.assignments = assignments
            self.quietUntilMs = quietUntilMs
            self.unresolvedSymbols = unresolvedSymbols
        }
    }

    public var head: Head
    /// Sorted by node.
    public var members: [MemberRecord]
    /// Sorted by symbol.
    public var grants: [GrantRecord]
    public var fencingTokens: [String: Int64]

    public init(head: Head, members: [MemberRecord], grants: [GrantRecord], fencingTokens: [String: Int64]) {
        self.head = head
        self.members = members
        self.grants = grants
        self.fencingTokens = fencingTokens
    }
}
