/// Hand-written JSON for the few responses on the coordinator's hot path (every heartbeat and
/// every renewal), byte-identical to `MMJSON.encode`: sorted snake_case keys, integers as
/// decimals, strings unescaped. Foundation's `JSONEncoder` spent about 10% of the coordinator's
/// CPU on these three small shapes (key conversion, sorting, boxing), which decided whether
/// heartbeat + renew reached 10,000 requests/s on 2 cores.
///
/// A string that would need escaping (a quote, a backslash, a control character) makes the
/// writer give up, and the caller falls back to `JSONEncoder`: the fast path never has to
/// reproduce Foundation's escaping rules. A property test checks byte equality on random values.
public protocol HotPathJSONEncodable: Encodable {
    /// Appends the value's JSON; false when a string needs escaping (use `MMJSON.encode`).
    func writeJSON(to writer: inout HotPathJSONWriter) -> Bool
}

extension HotPathJSONEncodable {
    /// The JSON bytes, or nil when the value needs the general encoder.
    public func hotPathJSON() -> [UInt8]? {
        var writer = HotPathJSONWriter()
        return writeJSON(to: &writer) ? writer.bytes : nil
    }
}

public struct HotPathJSONWriter {
    public private(set) var bytes: [UInt8] = []
    /// Per open container: whether a member was written (so the next needs a comma).
    private var hasMembers: [Bool] = []

    public init() { bytes.reserveCapacity(256) }

    public mutating func beginObject() {
        bytes.append(UInt8(ascii: "{"))
        hasMembers.append(false)
    }

    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        hasMembers.removeLast()
    }

    public mutating func beginArray() {
        bytes.append(UInt8(ascii: "["))
        hasMembers.append(false)
    }

    public mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        hasMembers.removeLast()
    }

    /// Before an array element.
    public mutating func element() {
        separate()
    }

    /// A member's key (already snake_case, and the caller writes members in sorted order).
    public mutating func key(_ name: StaticString) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    public mutating func int(_ value: Int64) {
        bytes.append(contentsOf: String(value).utf8)
    }

    /// False (nothing written that matters: the caller abandons the writer) when `value` holds a
    /// character JSON would escape.
    public mutating func string(_ value: String) -> Bool {
        bytes.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            if byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { return false }
            bytes.append(byte)
        }
        bytes.append(UInt8(ascii: "\""))
        return true
    }

    private mutating func separate() {
        guard let last = hasMembers.indices.last else { return }
        if hasMembers[last] { bytes.append(UInt8(ascii: ",")) }
        hasMembers[last] = true
    }
}

extension AuthorityGrant: HotPathJSONEncodable {
    public func writeJSON(to writer: inout HotPathJSONWriter) -> Bool {
        writer.beginObject()
        writer.key("expires_at_ms")
        writer.int(expiresAtMs)
        writer.key("fencing_token")
        writer.int(fencingToken)
        writer.key("granted_at_ms")
        writer.int(grantedAtMs)
        writer.key("node")
        guard writer.string(node) else { return false }
        writer.key("signature")
        guard writer.string(signature) else { return false }
        writer.key("symbol")
        guard writer.string(symbol) else { return false }
        writer.endObject()
        return true
    }
}

extension HeartbeatResponse: HotPathJSONEncodable {
    public func writeJSON(to writer: inout HotPathJSONWriter) -> Bool {
        writer.beginObject()
        writer.key("assignments_version")
        writer.int(assignmentsVersion)
        writer.key("expires_at_ms")
        writer.int(expiresAtMs)
        writer.key("node")
        guard writer.string(node) else { return false }
        writer.endObject()
        return true
    }
}

extension BatchRenewResult: HotPathJSONEncodable {
    public func writeJSON(to writer: inout HotPathJSONWriter) -> Bool {
        writer.beginObject()
        writer.key("refused")
        writer.beginArray()
        for refusal in refused {
            writer.element()
            writer.beginObject()
            writer.key("code")
            guard writer.string(refusal.code) else { return false }
            writer.key("message")
            guard writer.string(refusal.message) else { return false }
            writer.key("symbol")
            guard writer.string(refusal.symbol) else { return false }
            writer.endObject()
        }
        writer.endArray()
        writer.key("renewed")
        writer.beginArray()
        for grant in renewed {
            writer.element()
            guard grant.writeJSON(to: &writer) else { return false }
        }
        writer.endArray()
        writer.endObject()
        return true
    }
}
