import Foundation

// The JSON the etcd 3.4 gateway reads and writes (grpc-gateway's proto3 JSON mapping), checked
// against a real etcd 3.4.23:
// - bytes fields (keys, values) are base64 strings;
// - int64 and uint64 fields come back as JSON strings ("revision":"7"); both strings and
//   numbers are accepted in requests, strings are sent so no value loses precision;
// - fields holding their default are left out: no "succeeded" on a failed transaction, no
//   "value" for an empty value, no "kvs"/"count" for an empty range, no "type" on a PUT event;
// - field names are the protobuf names: snake_case in KV messages, but `dbSize`, `raftTerm`,
//   `raftIndex` in StatusResponse and `TTL`/`ID` in lease messages;
// - enums are accepted by name ("VALUE", "EQUAL") or number.
// Unknown fields are ignored on both sides.

/// An int64/uint64 field: a JSON string on the wire, a number accepted too.
struct WireInteger<Value: FixedWidthInteger & Codable & Sendable>: Codable, Sendable {
    var value: Value

    init(_ value: Value) { self.value = value }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            guard let parsed = Value(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "\"\(text)\" is not a \(Value.self)")
            }
            value = parsed
        } else {
            value = try container.decode(Value.self)
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(String(value))
    }
}

typealias WireInt64 = WireInteger<Int64>
typealias WireUInt64 = WireInteger<UInt64>

/// A bytes field: base64 on the wire.
struct WireBytes: Codable, Sendable {
    var bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let data = Data(base64Encoded: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\"\(text.prefix(40))\" is not base64")
        }
        bytes = Array(data)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Data(bytes).base64EncodedString())
    }
}

extension Optional where Wrapped == WireInt64 {
    var orZero: Int64 { self?.value ?? 0 }
}

extension Optional where Wrapped == WireUInt64 {
    var orZero: UInt64 { self?.value ?? 0 }

    /// A uint64 raft counter as Int64: raft terms and indexes count up from 1 and never get
    /// near 2^63; a value that did would be a corrupt answer, so it saturates rather than traps.
    var asInt64: Int64 { Int64(clamping: self?.value ?? 0) }
}

// MARK: - Requests

struct WireRangeRequest: Encodable {
    var key: WireBytes
    var range_end: WireBytes?
    var limit: WireInt64?
    var revision: WireInt64?
    var serializable: Bool?
    var keys_only: Bool?
    var count_only: Bool?

    init(_ request: EtcdRangeRequest) {
        key = WireBytes(request.key)
        range_end = request.rangeEnd.map(WireBytes.init)
        limit = request.limit == 0 ? nil : WireInt64(request.limit)
        revision = request.revision == 0 ? nil : WireInt64(request.revision)
        serializable = request.serializable ? true : nil
        keys_only = request.keysOnly ? true : nil
        count_only = request.countOnly ? true : nil
    }
}

struct WirePutRequest: Encodable {
    var key: WireBytes
    var value: WireBytes
    var lease: WireInt64?
    var prev_kv: Bool?

    init(_ request: EtcdPutRequest) {
        key = WireBytes(request.key)
        value = WireBytes(request.value)
        lease = request.lease == 0 ? nil : WireInt64(request.lease)
        prev_kv = request.previousKeyValue ? true : nil
    }
}

struct WireDeleteRangeRequest: Encodable {
    var key: WireBytes
    var range_end: WireBytes?
    var prev_kv: Bool?

    init(_ request: EtcdDeleteRangeRequest) {
        key = WireBytes(request.key)
        range_end = request.rangeEnd.map(WireBytes.init)
        prev_kv = request.previousKeyValues ? true : nil
    }
}

struct WireRequestOp: Encodable {
    var request_range: WireRangeRequest?
    var request_put: WirePutRequest?
    var request_delete_range: WireDeleteRangeRequest?

    init(_ operation: EtcdRequestOp) {
        switch operation {
        case .range(let request): request_range = WireRangeRequest(request)
        case .put(let request): request_put = WirePutRequest(request)
        case .deleteRange(let request): request_delete_range = WireDeleteRangeRequest(request)
        }
    }
}

struct WireCompare: Encodable {
    var key: WireBytes
    var range_end: WireBytes?
    var target: String
    var result: String
    // Exactly one of these is set, the one `target` names. A zero is sent, not left out: the
    // gateway would read an absent field as 0 anyway, but the request then says what it means.
    var value: WireBytes?
    var version: WireInt64?
    var create_revision: WireInt64?
    var mod_revision: WireInt64?
    var lease: WireInt64?

    init(_ compare: EtcdCompare) {
        key = WireBytes(compare.key)
        range_end = compare.rangeEnd.map(WireBytes.init)
        result = compare.result.rawValue
        switch compare.target {
        case .value(let bytes):
            target = "VALUE"
            value = WireBytes(bytes)
        case .version(let number):
            target = "VERSION"
            version = WireInt64(number)
        case .createRevision(let number):
            target = "CREATE"
            create_revision = WireInt64(number)
        case .modRevision(let number):
            target = "MOD"
            mod_revision = WireInt64(number)
        case .lease(let number):
            target = "LEASE"
            lease = WireInt64(number)
        }
    }
}

struct WireTxnRequest: Encodable {
    var compare: [WireCompare]
    var success: [WireRequestOp]
    var failure: [WireRequestOp]
}

struct WireLeaseGrantRequest: Encodable {
    var TTL: WireInt64
    var ID: WireInt64?
}

struct WireLeaseRequest: Encodable {
    var ID: WireInt64
}

struct WireLeaseTimeToLiveRequest: Encodable {
    var ID: WireInt64
    var keys: Bool?
}

struct WireEmptyRequest: Encodable {}

struct WireWatchRequest: Encodable {
    struct Create: Encodable {
        var key: WireBytes
        var range_end: WireBytes?
        var start_revision: WireInt64?
        var prev_kv: Bool?
        var progress_notify: Bool?
    }

    var create_request: Create
}

// MARK: - Responses

struct WireHeader: Decodable {
    var cluster_id: WireUInt64?
    var member_id: WireUInt64?
    var revision: WireInt64?
    var raft_term: WireUInt64?

    var model: EtcdResponseHeader {
        EtcdResponseHeader(clusterId: cluster_id.orZero, memberId: member_id.orZero, revision: revision.orZero, raftTerm: raft_term.asInt64)
    }
}

extension Optional where Wrapped == WireHeader {
    var model: EtcdResponseHeader { self?.model ?? EtcdResponseHeader() }
}

struct WireKeyValue: Decodable {
    var key: WireBytes?
    var create_revision: WireInt64?
    var mod_revision: WireInt64?
    var version: WireInt64?
    var value: WireBytes?
    var lease: WireInt64?

    var model: EtcdKeyValue {
        EtcdKeyValue(
            key: key?.bytes ?? [], value: value?.bytes ?? [], createRevision: create_revision.orZero,
            modRevision: mod_revision.orZero, version: version.orZero, lease: lease.orZero
        )
    }
}

struct WireRangeResponse: Decodable {
    var header: WireHeader?
    var kvs: [WireKeyValue]?
    var more: Bool?
    var count: WireInt64?

    var model: EtcdRangeResponse {
        EtcdRangeResponse(header: header.model, keyValues: (kvs ?? []).map(\.model), count: count.orZero, more: more ?? false)
    }
}

struct WirePutResponse: Decodable {
    var header: WireHeader?
    var prev_kv: WireKeyValue?

    var model: EtcdPutResponse { EtcdPutResponse(header: header.model, previous: prev_kv?.model) }
}

struct WireDeleteRangeResponse: Decodable {
    var header: WireHeader?
    var deleted: WireInt64?
    var prev_kvs: [WireKeyValue]?

    var model: EtcdDeleteRangeResponse {
        EtcdDeleteRangeResponse(header: header.model, deleted: deleted.orZero, previous: (prev_kvs ?? []).map(\.model))
    }
}

struct WireResponseOp: Decodable {
    var response_range: WireRangeResponse?
    var response_put: WirePutResponse?
    var response_delete_range: WireDeleteRangeResponse?

    /// nil for an operation this client never sends (a nested transaction).
    var model: EtcdResponseOp? {
        if let response_range { return .range(response_range.model) }
        if let response_put { return .put(response_put.model) }
        if let response_delete_range { return .deleteRange(response_delete_range.model) }
        return nil
    }
}

struct WireTxnResponse: Decodable {
    var header: WireHeader?
    var succeeded: Bool?
    var responses: [WireResponseOp]?
}

struct WireLeaseGrantResponse: Decodable {
    var header: WireHeader?
    var ID: WireInt64?
    var TTL: WireInt64?
    /// LeaseGrantResponse's own error field (etcd fills it on some refusals instead of failing the call).
    var error: String?
}

struct WireLeaseRevokeResponse: Decodable {
    var header: WireHeader?
}

struct WireLeaseKeepAliveResponse: Decodable {
    var header: WireHeader?
    var ID: WireInt64?
    var TTL: WireInt64?
}

struct WireLeaseTimeToLiveResponse: Decodable {
    var header: WireHeader?
    var ID: WireInt64?
    var TTL: WireInt64?
    var grantedTTL: WireInt64?
    var keys: [WireBytes]?
}

struct WireStatusResponse: Decodable {
    var header: WireHeader?
    var version: String?
    var dbSize: WireInt64?
    var leader: WireUInt64?
    var raftIndex: WireUInt64?
    var raftTerm: WireUInt64?
    var raftAppliedIndex: WireUInt64?
    var errors: [String]?
    var dbSizeInUse: WireInt64?
    var isLearner: Bool?

    var model: EtcdStatus {
        EtcdStatus(
            header: header.model, version: version ?? "", databaseSize: dbSize.orZero, databaseSizeInUse: dbSizeInUse.orZero,
            leader: leader.orZero, raftIndex: raftIndex.asInt64, raftTerm: raftTerm.asInt64,
            raftAppliedIndex: raftAppliedIndex.asInt64, errors: errors ?? [], isLearner: isLearner ?? false
        )
    }
}

struct WireWatchResponse: Decodable {
    struct Event: Decodable {
        var type: String?
        var kv: WireKeyValue?
        var prev_kv: WireKeyValue?
    }

    var header: WireHeader?
    var watch_id: WireInt64?
    var created: Bool?
    var canceled: Bool?
    var compact_revision: WireInt64?
    var cancel_reason: String?
    var events: [Event]?
}

/// A unary call's error body: `{"error": "...", "message": "...", "code": 5}`.
struct WireGatewayError: Decodable {
    var error: String?
    var message: String?
    var code: Int?
}

/// A streaming call's error line: `{"error": {"grpc_code": 14, "http_code": 503, "message": "...", "http_status": "..."}}`
/// (grpc-gateway v1's stream error shape).
struct WireStreamError: Decodable {
    var grpc_code: Int?
    var http_code: Int?
    var message: String?
    var http_status: String?
}

/// One line of a streaming call (keep-alive, watch): each message is wrapped in "result".
struct WireStreamLine<Result: Decodable>: Decodable {
    var result: Result?
    var error: WireStreamError?
}
