/// Where a page of a seq-cursored log starts (`GET /v1/events` on the coordinator and the
/// supervisors, `GET /v1/fills` on the exchange).
public enum LogCursor: Sendable, Hashable {
    /// Entries with seq > `after`, oldest first, at most `limit`: how a follower pages on.
    case after(Int64, limit: Int)
    /// The newest `count` entries, oldest first, in one request: how a view shows the end
    /// of a log whose head it does not know yet.
    case tail(Int)

    /// The query items that ask for this page.
    public var query: [(String, String)] {
        switch self {
        case .after(let seq, let limit): [("after", "\(seq)"), ("limit", "\(limit)")]
        case .tail(let count): [("tail", "\(count)")]
        }
    }

    /// The forward page that holds the newest `count` entries of a log whose head is
    /// `headSeq` (seq numbers are contiguous from 1).
    public static func tailStart(count: Int, headSeq: Int64) -> Int64 {
        max(0, headSeq - Int64(max(count, 0)))
    }
}
