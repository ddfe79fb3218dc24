import EtcdKit
import Foundation
import Logging
import MMCore

/// A store every coordinator replica shares: the whole decision state lives in it, and a
/// change is written only if nobody else wrote since the state it was decided on was read.
/// That one compare is what makes replicas safe (see docs/architecture/coordinator.md).
public protocol SharedCoordinatorStore: PrunableEventLog {
    /// The whole state and the revision it was read at; `snapshot` is nil when the store was
    /// never written (the first replica then bootstraps it).
    func load() async throws -> (snapshot: CoordinatorSnapshot?, revision: Int64)
    /// Replaces the stored state `previous` (as read or last written at `revision`) by `next`
    /// and appends `events`, atomically, if the stored state is still at `revision`. Returns
    /// the new revision, or nil when another replica wrote first (then nothing was written).
    /// Throws when the outcome is unknown (the write may or may not have happened).
    func commit(from previous: CoordinatorSnapshot?, to next: CoordinatorSnapshot, events: [ClusterEvent], ifRevision revision: Int64) async throws -> Int64?
    /// The stored state's current revision (0 when never written), read through the quorum.
    func currentRevision() async throws -> Int64
    /// Revisions at which some replica changed the state, as they happen, from `after` + 1 on.
    /// Ends (throws) when the connection to the store is lost; the caller watches again.
    func stateRevisions(after revision: Int64) -> AsyncThrowingStream<Int64, any Error>
}

public enum SharedStoreError: Error, CustomStringConvertible {
    /// A value under the prefix that this version did not write: never trusted.
    case foreignValue(key: String, reason: String)

    public var description: String {
        switch self {
        case .foreignValue(let key, let reason):
            "refusing the coordinator state in etcd: key '\(key)' holds a value this coordinator did not write (\(reason)); "
                + "is another program or a newer version using this key prefix? Set coordinator.etcd.prefix to a prefix of its own"
        }
    }
}

/// The coordinator's state in etcd, under `prefix` (`/mm/` by default):
///
/// | key | value |
/// |---|---|
/// | `state/head` | head seq, assignment table, startup window (JSON); its mod_revision is the state's version |
/// | `state/members/NN` | the member records of bucket NN (of 16), JSON array |
/// | `state/symbols/NN` | fencing token and live grant of each symbol of bucket NN (of 64), JSON array |
/// | `events/SEQ` | the events of one commit, SEQ = the last one's seq, zero-padded |
///
/// Buckets bound a transaction's size whatever the number of symbols (etcd refuses more than
/// 128 operations per transaction by default), while a renewal rewrites one small value.
public struct EtcdCoordinatorStore: SharedCoordinatorStore {
    public static let memberBuckets = 16
    public static let symbolBuckets = 64

    public let client: EtcdClient
    public let prefix: String
    public let retention: EventRetention
    let logger: Logger
    private let compaction = CompactionScheduler()

    public init(client: EtcdClient, prefix: String, retention: EventRetention = .default, logger: Logger) {
        self.client = client
        self.prefix = prefix
        self.retention = retention
        self.logger = logger
    }

    /// The compaction base: outside `state/` (so pruning never conflicts with, or is refused
    /// by, the state's transaction) and outside `events/` (so no event range reads it).
    var baseKey: String { prefix + "compaction/events-base" }
    var headKey: String { prefix + "state/head" }
    var statePrefix: String { prefix + "state/" }
    var eventsPrefix: String { prefix + "events/" }
    func memberKey(_ bucket: Int) -> String { prefix + "state/members/" + twoDigits(bucket) }
    func symbolKey(_ bucket: Int) -> String { prefix + "state/symbols/" + twoDigits(bucket) }
    func eventKey(_ seq: Int64) -> String {
        let digits = String(seq)
        return eventsPrefix + String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }

    /// One symbol's durable record: its counter, and its grant while one is live.
    struct SymbolRecord: Codable, Hashable {
        var symbol: String
        var fencingToken: Int64
        var grant: GrantRecord?
    }

    public func load() async throws -> (snapshot: CoordinatorSnapshot?, revision: Int64) {
        let response = try await client.range(.prefix(statePrefix))
        guard let headValue = response.keyValues.first(where: { $0.keyString == headKey }) else {
            guard response.keyValues.isEmpty else {
                throw SharedStoreError.foreignValue(key: response.keyValues[0].keyString, reason: "state keys exist but no head")
            }
            return (nil, 0)
        }
        let head: CoordinatorSnapshot.Head = try decode(headValue)
        guard head.format == CoordinatorSnapshot.Head.currentFormat else {
            throw SharedStoreError.foreignValue(key: headKey, reason: "format \(head.format), this version reads \(CoordinatorSnapshot.Head.currentFormat)")
        }
        var members: [MemberRecord] = []
        var grants: [GrantRecord] = []
        var tokens: [String: Int64] = [:]
        for keyValue in response.keyValues where keyValue.keyString != headKey {
            let key = keyValue.keyString
            if key.hasPrefix(prefix + "state/members/") {
                let records: [MemberRecord] = try decode(keyValue)
                for record in records {
                    guard NodeID.isValid(record.node), bucket(node: record.node) == Int(key.suffix(2)) else {
                        throw SharedStoreError.foreignValue(key: key, reason: "member '\(record.node)' does not belong in this bucket")
                    }
                    members.append(record)
                }
            } else if key.hasPrefix(prefix + "state/symbols/") {
                let records: [SymbolRecord] = try decode(keyValue)
                for record in records {
                    guard isValidSymbolName(record.symbol), bucket(symbol: record.symbol) == Int(key.suffix(2)), record.fencingToken > 0,
                        record.grant.map({ $0.symbol == record.symbol && $0.fencingToken == record.fencingToken }) ?? true
                    else {
                        throw SharedStoreError.foreignValue(key: key, reason: "symbol record '\(record.symbol)' is inconsistent")
                    }
                    tokens[record.symbol] = record.fencingToken
                    if let grant = record.grant { grants.append(grant) }
                }
            } else {
                throw SharedStoreError.foreignValue(key: key, reason: "not a key of the coordinator's layout")
            }
        }
        let snapshot = CoordinatorSnapshot(
            head: head, members: members.sorted { $0.node < $1.node }, grants: grants.sorted { $0.symbol < $1.symbol }, fencingTokens: tokens)
        return (snapshot, headValue.modRevision)
    }

    public func commit(from previous: CoordinatorSnapshot?, to next: CoordinatorSnapshot, events: [ClusterEvent], ifRevision revision: Int64) async throws -> Int64? {
        var operations: [EtcdRequestOp] = []
        let oldMembers = memberBuckets(previous?.members ?? [])
        for (index, records) in memberBuckets(next.members) where records != oldMembers[index] {
            operations.append(records.isEmpty ? .deleteRange(.key(memberKey(index))) : .put(EtcdPutRequest(memberKey(index), try encode(records))))
        }
        let oldSymbols = previous.map(symbolBuckets) ?? [:]
        for (index, records) in symbolBuckets(next) where records != oldSymbols[index] {
            operations.append(records.isEmpty ? .deleteRange(.key(symbolKey(index))) : .put(EtcdPutRequest(symbolKey(index), try encode(records))))
        }
        if let last = events.last { operations.append(.put(EtcdPutRequest(eventKey(last.seq), try encode(events)))) }
        // Always written: its mod_revision is the state's version, which the next writer compares.
        operations.append(.put(EtcdPutRequest(headKey, try encode(next.head))))
        // The head is written by every commit, so its revision names the state; the second
        // compare also catches a write under the prefix by anything else (never trusted: the
        // reread that follows refuses it).
        let compare = [
            EtcdCompare(headKey, .equal, .modRevision(revision)),
            EtcdCompare(key: Array(statePrefix.utf8), rangeEnd: EtcdKeys.prefixRangeEnd(statePrefix), .less, .modRevision(revision + 1)),
        ]
        let response = try await client.txn(compare: compare, success: operations)
        guard response.succeeded else { return nil }
        // Pruning runs beside the decisions, never inside their transaction: a commit that
        // finds the log due only starts it.
        compaction.startIfDue(head: next.head.headSeq, retention: retention) { [self] in
            do { _ = try await compact() } catch {
                logger.warning("pruning the coordinator's event log in etcd failed (retried after a later commit): \(error)")
            }
        }
        return response.header.revision
    }

    /// The stored compaction base, as written (format 1).
    struct StoredBase: Codable, Hashable {
        var format: Int = 1
        var compactedThroughSeq: Int64
        var grants: GrantLogFold
    }

    private func readBase() async throws -> (base: StoredBase?, modRevision: Int64) {
        guard let keyValue = try await client.get(baseKey) else { return (nil, 0) }
        return (try decodeBase(keyValue), keyValue.modRevision)
    }

    private func decodeBase(_ keyValue: EtcdKeyValue) throws -> StoredBase {
        let base: StoredBase = try decode(keyValue)
        guard base.format == 1 else { throw SharedStoreError.foreignValue(key: baseKey, reason: "base format \(base.format), this version reads 1") }
        return base
    }

    /// Prunes whole `events/SEQ` keys (one commit's events each) until at most
    /// `retention.retain` events (plus the rest of one commit) remain, a batch of keys per
    /// transaction. Each transaction folds its events onto the stored base and replaces the
    /// base and deletes the keys together, compared on the base's revision, so two replicas
    /// pruning at once cannot both apply a batch (the loser reads the new base and goes on).
    /// Returns how many events were pruned.
    @discardableResult
    public func compact() async throws -> Int {
        var pruned = 0
        for _ in 0..<10_000 {
            let (stored, baseRevision) = try await readBase()
            let through = stored?.compactedThroughSeq ?? 0
            compaction.noteCompacted(through: through)
            guard let headValue = try await client.get(headKey) else { return pruned }
            let head: CoordinatorSnapshot.Head = try decode(headValue)
            let limitSeq = head.headSeq - retention.retain
            guard limitSeq > through else { return pruned }
            // Keys are named by their last event's seq, so every key up to eventKey(limitSeq)
            // holds only events at or below it.
            let request = EtcdRangeRequest(key: Array(eventKey(through + 1).utf8), rangeEnd: Array(eventKey(limitSeq + 1).utf8), limit: Int64(retention.batch))
            let keyValues = try await client.range(request).keyValues
            guard let lastKey = keyValues.last, let newThrough = Int64(lastKey.keyString.dropFirst(eventsPrefix.count)) else { return pruned }
            var fold = stored?.grants ?? GrantLogFold()
            var count = 0
            for keyValue in keyValues {
                do {
                    let batch: [ClusterEvent] = try decode(keyValue)
                    for event in batch where event.seq > through {
                        _ = fold.apply(event)
                        count += 1
                    }
                } catch {
                    // Unreadable for every reader alike (`events(after:)` skips it too), so the
                    // base stays the fold of exactly what readers could see.
                    logger.error("pruning an event record the coordinator cannot read: \(error)")
                }
            }
            let base = StoredBase(compactedThroughSeq: newThrough, grants: fold)
            let response = try await client.txn(
                compare: [.modRevisionEquals(baseKey, baseRevision)],
                success: [
                    .put(EtcdPutRequest(baseKey, try encode(base))),
                    .deleteRange(EtcdDeleteRangeRequest(key: Array(eventsPrefix.utf8), rangeEnd: Array(eventKey(newThrough + 1).utf8))),
                ])
            if response.succeeded {
                compaction.noteCompacted(through: newThrough)
                pruned += count
            }
        }
        return pruned
    }

    /// The events after `seq` and the base's seq, in one read-only transaction (one revision),
    /// so a page can never start past a gap that its `compacted_through_seq` does not show.
    public func eventPage(after seq: Int64, limit: Int) async throws -> (events: [ClusterEvent], compactedThroughSeq: Int64) {
        let request = EtcdRangeRequest(key: Array(eventKey(seq + 1).utf8), rangeEnd: EtcdKeys.prefixRangeEnd(eventsPrefix), limit: Int64(limit))
        let response = try await client.txn(compare: [], success: [.get(baseKey), .range(request)])
        guard response.responses.count == 2 else {
            throw SharedStoreError.foreignValue(key: eventsPrefix, reason: "etcd answered \(response.responses.count) results to a read of 2")
        }
        let through = try response.responses[0].keyValues?.first.map { try decodeBase($0).compactedThroughSeq } ?? 0
        return (decodeEvents(response.responses[1].keyValues ?? [], after: seq, limit: limit), through)
    }

    public func eventBase() async throws -> (compactedThroughSeq: Int64, grants: GrantLogFold) {
        guard let base = try await readBase().base else { return (0, GrantLogFold()) }
        return (base.compactedThroughSeq, base.grants)
    }

    public func currentRevision() async throws -> Int64 {
        try await client.get(headKey)?.modRevision ?? 0
    }

    public func events(after seq: Int64, limit: Int) async throws -> [ClusterEvent] {
        // A key holds one commit's events and is named by the last one's seq, so the first key
        // at or after `after + 1` holds event `after + 1` if it exists.
        let request = EtcdRangeRequest(key: Array(eventKey(seq + 1).utf8), rangeEnd: EtcdKeys.prefixRangeEnd(eventsPrefix), limit: Int64(limit))
        return decodeEvents(try await client.range(request).keyValues, after: seq, limit: limit)
    }

    private func decodeEvents(_ keyValues: [EtcdKeyValue], after seq: Int64, limit: Int) -> [ClusterEvent] {
        var result: [ClusterEvent] = []
        for keyValue in keyValues {
            do {
                let batch: [ClusterEvent] = try decode(keyValue)
                result += batch.filter { $0.seq > seq }
            } catch {
                logger.error("skipping an event record the coordinator cannot read: \(error)")
            }
            if result.count >= limit { break }
        }
        return Array(result.prefix(limit))
    }

    public func stateRevisions(after revision: Int64) -> AsyncThrowingStream<Int64, any Error> {
        let watch = client.watch(EtcdWatchRequest(key: Array(headKey.utf8), startRevision: revision + 1))
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    for try await message in watch {
                        for event in message.events where event.kind == .put { continuation.yield(event.keyValue.modRevision) }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    // MARK: Layout

    func bucket(node: String) -> Int { Int(fnv1a(node) % UInt64(Self.memberBuckets)) }
    func bucket(symbol: String) -> Int { Int(fnv1a(symbol) % UInt64(Self.symbolBuckets)) }

    /// Every bucket index, each with its members sorted by node (empty buckets included, so a
    /// bucket emptied by this commit is deleted).
    private func memberBuckets(_ members: [MemberRecord]) -> [Int: [MemberRecord]] {
        var buckets = Dictionary(uniqueKeysWithValues: (0..<Self.memberBuckets).map { ($0, [MemberRecord]()) })
        for member in members.sorted(by: { $0.node < $1.node }) { buckets[bucket(node: member.node), default: []].append(member) }
        return buckets
    }

    private func symbolBuckets(_ snapshot: CoordinatorSnapshot) -> [Int: [SymbolRecord]] {
        var buckets = Dictionary(uniqueKeysWithValues: (0..<Self.symbolBuckets).map { ($0, [SymbolRecord]()) })
        let grants = Dictionary(uniqueKeysWithValues: snapshot.grants.map { ($0.symbol, $0) })
        for (symbol, token) in snapshot.fencingTokens.sorted(by: { $0.key < $1.key }) where token > 0 {
            buckets[bucket(symbol: symbol), default: []].append(SymbolRecord(symbol: symbol, fencingToken: token, grant: grants[symbol]))
        }
        return buckets
    }

    private func encode(_ value: some Encodable) throws -> String {
        String(decoding: try MMJSON.encode(value), as: UTF8.self)
    }

    private func twoDigits(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }

    private func decode<T: Decodable>(_ keyValue: EtcdKeyValue) throws -> T {
        do {
            return try MMJSON.decode(T.self, from: Data(keyValue.value))
        } catch {
            throw SharedStoreError.foreignValue(key: keyValue.keyString, reason: MMJSON.describe(error))
        }
    }
}

/// FNV-1a, 64 bit: the same bucket for the same name in every process and version (Swift's
/// `Hasher` is seeded per process).
func fnv1a(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash = hash &* 0x100_0000_01b3
    }
    return hash
}
