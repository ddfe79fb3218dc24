// The Swift side of etcd's v3 API as the JSON gateway speaks it. Keys and values are bytes
// (etcd does not require UTF-8); the String initialisers and accessors are for the common case.
// Revisions, versions, TTLs and lease IDs are Int64 as in etcd's protobufs; member and cluster
// IDs are UInt64 because etcd generates them over the whole 64-bit range (a real member ID,
// 16661777209632031334, does not fit an Int64).

/// What every etcd response starts with: the store's revision and the raft term when the
/// answering member served the request.
public struct EtcdResponseHeader: Sendable, Hashable {
    public var clusterId: UInt64
    /// The member that answered (0 inside a transaction's per-operation responses, which carry
    /// only the revision).
    public var memberId: UInt64
    /// The store's revision after the request (a write) or at which it was served (a read).
    public var revision: Int64
    public var raftTerm: Int64

    public init(clusterId: UInt64 = 0, memberId: UInt64 = 0, revision: Int64 = 0, raftTerm: Int64 = 0) {
        self.clusterId = clusterId
        self.memberId = memberId
        self.revision = revision
        self.raftTerm = raftTerm
    }
}

/// One key as etcd stores it.
public struct EtcdKeyValue: Sendable, Hashable {
    public var key: [UInt8]
    public var value: [UInt8]
    /// The revision of the key's latest creation (a deleted and re-created key gets a new one).
    public var createRevision: Int64
    /// The revision of the key's latest write: strictly increasing per key, hence usable as a
    /// fencing token.
    public var modRevision: Int64
    /// Writes since the key's creation (1 after the first put); deletion resets it to 0.
    public var version: Int64
    /// The lease the key is attached to, 0 for none.
    public var lease: Int64

    public init(key: [UInt8], value: [UInt8], createRevision: Int64 = 0, modRevision: Int64 = 0, version: Int64 = 0, lease: Int64 = 0) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
        self.lease = lease
    }

    /// The key as UTF-8 text (invalid sequences become U+FFFD).
    public var keyString: String { String(decoding: key, as: UTF8.self) }
    /// The value as UTF-8 text (invalid sequences become U+FFFD).
    public var valueString: String { String(decoding: value, as: UTF8.self) }
}

/// Key-range arithmetic that etcd leaves to its clients.
public enum EtcdKeys {
    /// The `range_end` that makes a range cover every key starting with `prefix`: the prefix with
    /// its last byte that is not 0xFF incremented and what follows dropped (clientv3's
    /// `GetPrefixRangeEnd`). A prefix of only 0xFF bytes, or an empty one, has no such bound;
    /// etcd reads `[0]` as "every key from `key` on", which is then exactly the prefix's keys.
    public static func prefixRangeEnd(_ prefix: [UInt8]) -> [UInt8] {
        var end = prefix
        while let last = end.last {
            if last < 0xFF {
                end[end.count - 1] = last + 1
                return end
            }
            end.removeLast()
        }
        return [0]
    }

    public static func prefixRangeEnd(_ prefix: String) -> [UInt8] { prefixRangeEnd(Array(prefix.utf8)) }
}

// MARK: - Requests

/// A read of one key, a key range `[key, rangeEnd)`, or a prefix.
public struct EtcdRangeRequest: Sendable, Hashable {
    public var key: [UInt8]
    /// nil for the single key `key`; `[0]` for every key from `key` on.
    public var rangeEnd: [UInt8]?
    /// At most this many keys (0: no limit); `more` in the response says whether some were left.
    public var limit: Int64
    /// Read the store as it was at this revision (0: the current one). Fails once compacted.
    public var revision: Int64
    /// Served by the answering member from its local state, without a quorum round: faster and
    /// available without a leader, but possibly stale.
    public var serializable: Bool
    public var keysOnly: Bool
    public var countOnly: Bool

    public init(
        key: [UInt8], rangeEnd: [UInt8]? = nil, limit: Int64 = 0, revision: Int64 = 0,
        serializable: Bool = false, keysOnly: Bool = false, countOnly: Bool = false
    ) {
        self.key = key
        self.rangeEnd = rangeEnd
        self.limit = limit
        self.revision = revision
        self.serializable = serializable
        self.keysOnly = keysOnly
        self.countOnly = countOnly
    }

    public static func key(_ key: String) -> EtcdRangeRequest { EtcdRangeRequest(key: Array(key.utf8)) }

    /// Every key that starts with `prefix`.
    public static func prefix(_ prefix: [UInt8], limit: Int64 = 0) -> EtcdRangeRequest {
        EtcdRangeRequest(key: prefix, rangeEnd: EtcdKeys.prefixRangeEnd(prefix), limit: limit)
    }

    public static func prefix(_ prefix: String, limit: Int64 = 0) -> EtcdRangeRequest { .prefix(Array(prefix.utf8), limit: limit) }
}

/// A write of one key.
public struct EtcdPutRequest: Sendable, Hashable {
    public var key: [UInt8]
    public var value: [UInt8]
    /// Attach the key to this lease (0: none): revoking or expiring the lease deletes the key.
    public var lease: Int64
    /// Return the key as it was before this write.
    public var previousKeyValue: Bool

    public init(key: [UInt8], value: [UInt8], lease: Int64 = 0, previousKeyValue: Bool = false) {
        self.key = key
        self.value = value
        self.lease = lease
        self.previousKeyValue = previousKeyValue
    }

    public init(_ key: String, _ value: String, lease: Int64 = 0, previousKeyValue: Bool = false) {
        self.init(key: Array(key.utf8), value: Array(value.utf8), lease: lease, previousKeyValue: previousKeyValue)
    }
}

/// A deletion of one key or a range `[key, rangeEnd)`.
public struct EtcdDeleteRangeRequest: Sendable, Hashable {
    public var key: [UInt8]
    public var rangeEnd: [UInt8]?
    /// Return the deleted keys.
    public var previousKeyValues: Bool

    public init(key: [UInt8], rangeEnd: [UInt8]? = nil, previousKeyValues: Bool = false) {
        self.key = key
        self.rangeEnd = rangeEnd
        self.previousKeyValues = previousKeyValues
    }

    public static func key(_ key: String, previousKeyValues: Bool = false) -> EtcdDeleteRangeRequest {
        EtcdDeleteRangeRequest(key: Array(key.utf8), previousKeyValues: previousKeyValues)
    }

    public static func prefix(_ prefix: String, previousKeyValues: Bool = false) -> EtcdDeleteRangeRequest {
        EtcdDeleteRangeRequest(key: Array(prefix.utf8), rangeEnd: EtcdKeys.prefixRangeEnd(prefix), previousKeyValues: previousKeyValues)
    }
}

/// One comparison of a transaction's guard; all must hold for the success branch to run.
/// A key that does not exist compares as value empty, version 0, create and mod revision 0,
/// lease 0: `createRevision == 0` is "absent".
public struct EtcdCompare: Sendable, Hashable {
    public enum Target: Sendable, Hashable {
        case value([UInt8])
        case version(Int64)
        case createRevision(Int64)
        case modRevision(Int64)
        case lease(Int64)
    }

    public enum Result: String, Sendable, Hashable {
        case equal = "EQUAL"
        case greater = "GREATER"
        case less = "LESS"
        case notEqual = "NOT_EQUAL"
    }

    public var key: [UInt8]
    /// Compare every key in `[key, rangeEnd)` (all must satisfy it); nil for the one key.
    public var rangeEnd: [UInt8]?
    /// The key's attribute on the left, this value on the right: `.modRevision(7)` with
    /// `.less` holds when the key's mod revision is below 7.
    public var target: Target
    public var result: Result

    public init(key: [UInt8], rangeEnd: [UInt8]? = nil, _ result: Result, _ target: Target) {
        self.key = key
        self.rangeEnd = rangeEnd
        self.target = target
        self.result = result
    }

    public init(_ key: String, _ result: Result, _ target: Target) {
        self.init(key: Array(key.utf8), result, target)
    }

    /// Holds when `key` does not exist.
    public static func absent(_ key: String) -> EtcdCompare { EtcdCompare(key, .equal, .createRevision(0)) }

    /// Holds when `key` holds exactly `value`.
    public static func valueEquals(_ key: String, _ value: String) -> EtcdCompare { EtcdCompare(key, .equal, .value(Array(value.utf8))) }

    /// Holds when `key` was last written at `revision` (0: it does not exist).
    public static func modRevisionEquals(_ key: String, _ revision: Int64) -> EtcdCompare { EtcdCompare(key, .equal, .modRevision(revision)) }
}

/// One operation of a transaction branch.
public enum EtcdRequestOp: Sendable, Hashable {
    case range(EtcdRangeRequest)
    case put(EtcdPutRequest)
    case deleteRange(EtcdDeleteRangeRequest)

    public static func put(_ key: String, _ value: String, lease: Int64 = 0) -> EtcdRequestOp { .put(EtcdPutRequest(key, value, lease: lease)) }
    public static func get(_ key: String) -> EtcdRequestOp { .range(.key(key)) }
    public static func delete(_ key: String) -> EtcdRequestOp { .deleteRange(.key(key)) }
}

// MARK: - Responses

public struct EtcdRangeResponse: Sendable, Hashable {
    public var header: EtcdResponseHeader
    /// The keys in key order (empty for `countOnly`).
    public var keyValues: [EtcdKeyValue]
    /// How many keys the range holds, regardless of `limit`.
    public var count: Int64
    /// Whether `limit` left some keys out.
    public var more: Bool

    public init(header: EtcdResponseHeader, keyValues: [EtcdKeyValue], count: Int64, more: Bool) {
        self.header = header
        self.keyValues = keyValues
        self.count = count
        self.more = more
    }
}

public struct EtcdPutResponse: Sendable, Hashable {
    public var header: EtcdResponseHeader
    /// The key before the write, when asked for and the key existed.
    public var previous: EtcdKeyValue?

    public init(header: EtcdResponseHeader, previous: EtcdKeyValue?) {
        self.header = header
        self.previous = previous
    }
}

public struct EtcdDeleteRangeResponse: Sendable, Hashable {
    public var header: EtcdResponseHeader
    public var deleted: Int64
    /// The deleted keys, when asked for.
    public var previous: [EtcdKeyValue]

    public init(header: EtcdResponseHeader, deleted: Int64, previous: [EtcdKeyValue]) {
        self.header = header
        self.deleted = deleted
        self.previous = previous
    }
}

/// One operation's result, in the order of the branch that ran.
public enum EtcdResponseOp: Sendable, Hashable {
    case range(EtcdRangeResponse)
    case put(EtcdPutResponse)
    case deleteRange(EtcdDeleteRangeResponse)

    /// The keys a range operation read; nil for a put or a delete.
    public var keyValues: [EtcdKeyValue]? {
        if case .range(let range) = self { return range.keyValues }
        return nil
    }
}

public struct EtcdTxnResponse: Sendable, Hashable {
    public var header: EtcdResponseHeader
    /// Whether every comparison held (the success branch ran) or not (the failure branch ran).
    public var succeeded: Bool
    public var responses: [EtcdResponseOp]

    public init(header: EtcdResponseHeader, succeeded: Bool, responses: [EtcdResponseOp]) {
        self.header = header
        self.succeeded = succeeded
        self.responses = responses
    }
}

public struct EtcdLeaseGrant: Sendable, Hashable {
    public var header: EtcdResponseHeader
    public var id: Int64
    /// The TTL granted: etcd raises a TTL below its minimum (1.5 election timeouts, rounded up
    /// to whole seconds: 2 s with the default 1 s election timeout) without saying so.
    public var ttlSeconds: Int64
}

public struct EtcdLeaseKeepAlive: Sendable, Hashable {
    public var header: EtcdResponseHeader
    public var id: Int64
    /// The TTL the lease has again from now (its granted TTL).
    public var ttlSeconds: Int64
}

public struct EtcdLeaseTimeToLive: Sendable, Hashable {
    public var header: EtcdResponseHeader
    public var id: Int64
    /// Seconds left, rounded down; -1 when the lease has expired or never existed.
    public var ttlSeconds: Int64
    public var grantedTTLSeconds: Int64
    /// The keys attached, when asked for.
    public var keys: [[UInt8]]

    public var isExpired: Bool { ttlSeconds < 0 }
}

/// One member's view of the cluster (`/v3/maintenance/status`): readiness, leadership, size.
public struct EtcdStatus: Sendable, Hashable {
    public var header: EtcdResponseHeader
    public var version: String
    public var databaseSize: Int64
    public var databaseSizeInUse: Int64
    /// The leader's member ID, 0 while the member knows of none.
    public var leader: UInt64
    public var raftIndex: Int64
    public var raftTerm: Int64
    public var raftAppliedIndex: Int64
    /// Why the member cannot serve, e.g. "etcdserver: no leader" (also alarms such as NOSPACE).
    public var errors: [String]
    public var isLearner: Bool

    public var memberId: UInt64 { header.memberId }
    public var hasLeader: Bool { leader != 0 }
    public var isLeader: Bool { leader != 0 && leader == header.memberId }
}
