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

    /// A key known only at run time (a map's); false when it needs escaping.
    public mutating func key(dynamic name: String) -> Bool {
        separate()
        guard string(name) else { return false }
        bytes.append(UInt8(ascii: ":"))
        return true
    }

    /// Decimal digits written in place: a `String` per number was most of the writing cost of a
    /// 1,000-symbol answer.
    public mutating func int(_ value: Int64) {
        if value == 0 {
            bytes.append(UInt8(ascii: "0"))
            return
        }
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        // The magnitude as UInt64, so Int64.min has one too.
        var magnitude = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            while magnitude > 0 {
                buffer[count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            }
            for index in stride(from: count - 1, through: 0, by: -1) { bytes.append(buffer[index]) }
        }
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

    /// Bytes that are already JSON (a value encoded elsewhere), written as one value.
    public mutating func raw(_ json: some Sequence<UInt8>) {
        bytes.append(contentsOf: json)
    }

    /// A member that JSONEncoder omits when nil (`encodeIfPresent`).
    public mutating func member(_ name: StaticString, _ value: Int64?) {
        guard let value else { return }
        key(name)
        int(value)
    }

    /// A string member omitted when nil; false when the string needs escaping.
    public mutating func member(_ name: StaticString, _ value: String?) -> Bool {
        guard let value else { return true }
        key(name)
        return string(value)
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

extension Quote: HotPathJSONEncodable {
    public func writeJSON(to writer: inout HotPathJSONWriter) -> Bool {
        writer.beginObject()
        writer.member("ask_price", askPrice)
        writer.key("ask_qty")
        writer.int(askQty)
        writer.member("bid_price", bidPrice)
        writer.key("bid_qty")
        writer.int(bidQty)
        writer.key("fencing_token")
        writer.int(fencingToken)
        writer.key("node")
        guard writer.string(node) else { return false }
        writer.key("symbol")
        guard writer.string(symbol) else { return false }
        writer.key("updated_at_ms")
        writer.int(updatedAtMs)
        writer.endObject()
        return true
    }
}

// MARK: Reading

/// The exchange's hottest request body (`QuoteRequest`, every quote replace) read without
/// `JSONDecoder`, which was 13% of the exchange's CPU. Deliberately narrow: it accepts only
/// what it fully understands (one object of known snake_case keys, each once; ASCII strings
/// without escapes; plain integers) and answers nil for anything else (an unknown or repeated
/// key, null, a fraction, an escape, non-ASCII, a missing field, trailing bytes), so the caller
/// falls back to `JSONDecoder` and its precise error messages. A property test checks that it
/// never accepts what `JSONDecoder` rejects and never reads a different value.
public protocol HotPathJSONDecodable: Decodable {
    static func decodeHotPath(_ bytes: [UInt8]) -> Self?
}

public struct HotPathJSONReader {
    private let bytes: [UInt8]
    private var index = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var atEnd: Bool {
        mutating get {
            skipWhitespace()
            return index == bytes.count
        }
    }

    /// Reads `{`, then calls `member` with each key (positioned at its value) until `}`.
    /// `member` returns false to give up. Keys repeated within the object give up too.
    public mutating func object(_ member: (String, inout HotPathJSONReader) -> Bool) -> Bool {
        guard consume(UInt8(ascii: "{")) else { return false }
        // A struct's object has a handful of keys: a linear look is cheaper than hashing. A
        // map's (`readMap`) may have thousands, and uses a set.
        var seen: [String] = []
        if consume(UInt8(ascii: "}")) { return true }
        while true {
            guard let key = string(), !seen.contains(key), consume(UInt8(ascii: ":")) else { return false }
            seen.append(key)
            guard member(key, &self) else { return false }
            if consume(UInt8(ascii: ",")) { continue }
            return consume(UInt8(ascii: "}"))
        }
    }

    /// An object read as a map of string values (`[String: String]`); nil on a repeated key or
    /// any value that is not a plain string.
    public mutating func stringMap() -> [String: String]? {
        guard consume(UInt8(ascii: "{")) else { return nil }
        var map: [String: String] = [:]
        if consume(UInt8(ascii: "}")) { return map }
        while true {
            guard let key = string(), map[key] == nil, consume(UInt8(ascii: ":")), let value = string() else { return nil }
            map[key] = value
            if consume(UInt8(ascii: ",")) { continue }
            return consume(UInt8(ascii: "}")) ? map : nil
        }
    }

    /// Reads `[`, then calls `element` at each element until `]`; false to give up.
    public mutating func array(_ element: (inout HotPathJSONReader) -> Bool) -> Bool {
        guard consume(UInt8(ascii: "[")) else { return false }
        if consume(UInt8(ascii: "]")) { return true }
        while true {
            guard element(&self) else { return false }
            if consume(UInt8(ascii: ",")) { continue }
            return consume(UInt8(ascii: "]"))
        }
    }

    /// One value of any kind, skipped, as its bytes: for a caller that reads some members by
    /// hand and leaves the others to Foundation (which then judges whether they are valid).
    /// nil when the input ends inside the value or no value is there.
    public mutating func rawValue() -> ArraySlice<UInt8>? {
        skipWhitespace()
        let start = index
        var depth = 0
        var inString = false
        while index < bytes.count {
            let byte = bytes[index]
            if inString {
                if byte == UInt8(ascii: "\\") { index += 2; continue }
                index += 1
                if byte == UInt8(ascii: "\"") {
                    inString = false
                    if depth == 0 { return bytes[start..<index] }
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                // At depth 0 this closes the enclosing container: a scalar ends here.
                if depth == 0 { return index > start ? bytes[start..<index] : nil }
                depth -= 1
                if depth == 0 {
                    index += 1
                    return bytes[start..<index]
                }
            case UInt8(ascii: ","):
                if depth == 0 { return index > start ? bytes[start..<index] : nil }
            default: break
            }
            index += 1
        }
        return depth == 0 && !inString && index > start ? bytes[start..<index] : nil
    }

    /// Consumes a `null` and says so; anything else is left unread.
    public mutating func null() -> Bool {
        skipWhitespace()
        let after = index + 4
        guard after <= bytes.count, bytes[index] == UInt8(ascii: "n"), bytes[index + 1] == UInt8(ascii: "u"),
              bytes[index + 2] == UInt8(ascii: "l"), bytes[index + 3] == UInt8(ascii: "l"), endsValue(at: after) else { return false }
        index = after
        return true
    }

    /// A scalar ending at `position` is followed by the end, a delimiter or whitespace (so
    /// `nullx` and `12a` are not values).
    private func endsValue(at position: Int) -> Bool {
        guard position < bytes.count else { return true }
        switch bytes[position] {
        case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): return true
        default: return false
        }
    }

    /// An integer or `null` (a Swift optional, as JSONDecoder reads it): `.some(nil)` for null,
    /// nil when it is neither.
    public mutating func optionalInt() -> Int64?? {
        if null() { return .some(nil) }
        return int().map { .some($0) }
    }

    /// A string or `null`, as `optionalInt`.
    public mutating func optionalString() -> String?? {
        if null() { return .some(nil) }
        return string().map { .some($0) }
    }

    /// A string of printable ASCII without escapes; nil otherwise.
    public mutating func string() -> String? {
        guard consume(UInt8(ascii: "\"")) else { return nil }
        let start = index
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let value = String(decoding: bytes[start..<index], as: UTF8.self)
                index += 1
                return value
            }
            if byte < 0x20 || byte >= 0x7f || byte == UInt8(ascii: "\\") { return nil }
            index += 1
        }
        return nil
    }

    /// An integer written as JSON allows it (`-`? then `0` or a non-zero digit and digits),
    /// fitting in Int64, and followed by a delimiter; nil for anything else (fractions,
    /// exponents, overflow).
    public mutating func int() -> Int64? {
        skipWhitespace()
        var cursor = index
        let negative = cursor < bytes.count && bytes[cursor] == UInt8(ascii: "-")
        if negative { cursor += 1 }
        let digitsStart = cursor
        var value: Int64 = 0
        while cursor < bytes.count, bytes[cursor] >= UInt8(ascii: "0"), bytes[cursor] <= UInt8(ascii: "9") {
            let digit = Int64(bytes[cursor] - UInt8(ascii: "0"))
            let (shifted, overflowA) = value.multipliedReportingOverflow(by: 10)
            let (next, overflowB) = negative ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
            if overflowA || overflowB { return nil }
            value = next
            cursor += 1
        }
        let digitCount = cursor - digitsStart
        guard digitCount > 0, !(digitCount > 1 && bytes[digitsStart] == UInt8(ascii: "0")), endsValue(at: cursor) else { return nil }
        index = cursor
        return value
    }

    private mutating func consume(_ byte: UInt8) -> Bool {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): index += 1
            default: return
            }
        }
    }
}

extension AuthorityGrant {
    static func readHotPath(_ reader: inout HotPathJSONReader) -> AuthorityGrant? {
        var symbol: String?, node: String?, signature: String?
        var fencingToken: Int64?, grantedAtMs: Int64?, expiresAtMs: Int64?
        let complete = reader.object { key, reader in
            switch key {
            case "symbol": symbol = reader.string(); return symbol != nil
            case "node": node = reader.string(); return node != nil
            case "signature": signature = reader.string(); return signature != nil
            case "fencing_token": fencingToken = reader.int(); return fencingToken != nil
            case "granted_at_ms": grantedAtMs = reader.int(); return grantedAtMs != nil
            case "expires_at_ms": expiresAtMs = reader.int(); return expiresAtMs != nil
            default: return false
            }
        }
        guard complete, let symbol, let node, let signature, let fencingToken, let grantedAtMs, let expiresAtMs else { return nil }
        return AuthorityGrant(symbol: symbol, node: node, fencingToken: fencingToken, grantedAtMs: grantedAtMs, expiresAtMs: expiresAtMs, signature: signature)
    }
}

extension QuoteRequest: HotPathJSONDecodable {
    public static func decodeHotPath(_ bytes: [UInt8]) -> QuoteRequest? {
        var reader = HotPathJSONReader(bytes)
        var node: String?, grant: AuthorityGrant?
        var bidPrice: Int64?, bidQty: Int64?, askPrice: Int64?, askQty: Int64?
        let complete = reader.object { key, reader in
            switch key {
            case "node": node = reader.string(); return node != nil
            case "grant": grant = AuthorityGrant.readHotPath(&reader); return grant != nil
            case "bid_price": bidPrice = reader.int(); return bidPrice != nil
            case "bid_qty": bidQty = reader.int(); return bidQty != nil
            case "ask_price": askPrice = reader.int(); return askPrice != nil
            case "ask_qty": askQty = reader.int(); return askQty != nil
            default: return false
            }
        }
        guard complete, reader.atEnd, let node, let grant, let bidQty, let askQty else { return nil }
        return QuoteRequest(node: node, grant: grant, bidPrice: bidPrice, bidQty: bidQty, askPrice: askPrice, askQty: askQty)
    }
}

/// A node's batch of quote replaces: at 1,000 symbols every node sends one per quoting cycle,
/// and Foundation's decoder of them was a quarter of the exchange's CPU.
extension QuoteBatchRequest: HotPathJSONDecodable {
    public static func decodeHotPath(_ bytes: [UInt8]) -> QuoteBatchRequest? {
        var reader = HotPathJSONReader(bytes)
        var node: String?, quotes: [Item]?
        let complete = reader.object { key, reader in
            switch key {
            case "node": node = reader.string(); return node != nil
            case "quotes": quotes = reader.elements(Item.readHotPath); return quotes != nil
            default: return false
            }
        }
        guard complete, reader.atEnd, let node, let quotes else { return nil }
        return QuoteBatchRequest(node: node, quotes: quotes)
    }
}

extension QuoteBatchRequest.Item {
    static func readHotPath(_ reader: inout HotPathJSONReader) -> QuoteBatchRequest.Item? {
        var symbol: String?, grant: AuthorityGrant?
        var bidPrice: Int64?, bidQty: Int64?, askPrice: Int64?, askQty: Int64?
        let complete = reader.object { key, reader in
            switch key {
            case "symbol": symbol = reader.string(); return symbol != nil
            case "grant": grant = AuthorityGrant.readHotPath(&reader); return grant != nil
            // Absent or null is no price (a one-sided quote), as Foundation reads `Ticks?`.
            case "bid_price": return reader.optionalInt().map { bidPrice = $0 } != nil
            case "ask_price": return reader.optionalInt().map { askPrice = $0 } != nil
            case "bid_qty": bidQty = reader.int(); return bidQty != nil
            case "ask_qty": askQty = reader.int(); return askQty != nil
            default: return false
            }
        }
        guard complete, let symbol, let grant, let bidQty, let askQty else { return nil }
        return QuoteBatchRequest.Item(symbol: symbol, grant: grant, bidPrice: bidPrice, bidQty: bidQty, askPrice: askPrice, askQty: askQty)
    }
}

/// What a node sends every quoting cycle (and its exchange answers): written and read by
/// hand on the node too, where Foundation's coder of them was a quarter of each node's CPU at
/// 1,000 symbols. The bytes are exactly `MMJSON.encode`'s.
extension QuoteBatchRequest: HotPathJSONEncodable {
    public func writeJSON(to writer: inout HotPathJSONWriter) -> Bool {
        writer.beginObject()
        writer.key("node")
        guard writer.string(node) else { return false }
        writer.key("quotes")
        writer.beginArray()
        for item in quotes {
            writer.element()
            writer.beginObject()
            writer.member("ask_price", item.askPrice)
            writer.key("ask_qty")
            writer.int(item.askQty)
            writer.member("bid_price", item.bidPrice)
            writer.key("bid_qty")
            writer.int(item.bidQty)
            writer.key("grant")
            guard item.grant.writeJSON(to: &writer) else { return false }
            writer.key("symbol")
            guard writer.string(item.symbol) else { return false }
            writer.endObject()
        }
        writer.endArray()
        writer.endObject()
        return true
    }
}

extension QuoteBatchResult: HotPathJSONDecodable {
    public static func decodeHotPath(_ bytes: [UInt8]) -> QuoteBatchResult? {
        var reader = HotPathJSONReader(bytes)
        var results: [Item]?
        let complete = reader.object { key, reader in
            guard key == "results" else { return false }
            results = reader.elements(Item.readHotPath)
            return results != nil
        }
        guard complete, reader.atEnd, let results else { return nil }
        return QuoteBatchResult(results: results)
    }
}

extension QuoteBatchResult.Item {
    static func readHotPath(_ reader: inout HotPathJSONReader) -> QuoteBatchResult.Item? {
        var symbol: String?, status: Int64?, quote: Quote?, error: ErrorEnvelope.Body?
        let complete = reader.object { key, reader in
            switch key {
            case "symbol": symbol = reader.string(); return symbol != nil
            case "status": status = reader.int(); return status != nil
            case "quote":
                if reader.null() { return true }
                quote = Quote.readHotPath(&reader)
                return quote != nil
            case "error":
                if reader.null() { return true }
                error = ErrorEnvelope.Body.readHotPath(&reader)
                return error != nil
            default: return false
            }
        }
        guard complete, let symbol, let status, let statusCode = Int(exactly: status) else { return nil }
        return QuoteBatchResult.Item(symbol: symbol, status: statusCode, quote: quote, error: error)
    }
}

extension ErrorEnvelope.Body {
    /// `code` and `message`; `details` (a map of any keys) is left to Foundation.
    static func readHotPath(_ reader: inout HotPathJSONReader) -> ErrorEnvelope.Body? {
        var code: String?, message: String?
        let complete = reader.object { key, reader in
            switch key {
            case "code": code = reader.string(); return code != nil
            case "message": message = reader.string(); return message != nil
            default: return false
            }
        }
        guard complete, let code, let message else { return nil }
        return ErrorEnvelope.Body(code: code, message: message, details: nil)
    }
}

/// Every node renews all its grants in one request about twice a second: at 1,000 symbols
/// Foundation's decoder of these was 30 % of the coordinator's CPU.
extension BatchRenewRequest: HotPathJSONEncodable, HotPathJSONDecodable {
    public func writeJSON(to writer: inout HotPathJSONWriter) -> Bool {
        writer.beginObject()
        writer.key("grants")
        writer.beginArray()
        for item in grants {
            writer.element()
            writer.beginObject()
            writer.key("fencing_token")
            writer.int(item.fencingToken)
            if let grant = item.grant {
                writer.key("grant")
                guard grant.writeJSON(to: &writer) else { return false }
            }
            writer.key("symbol")
            guard writer.string(item.symbol) else { return false }
            writer.endObject()
        }
        writer.endArray()
        writer.key("node")
        guard writer.string(node) else { return false }
        writer.endObject()
        return true
    }

    public static func decodeHotPath(_ bytes: [UInt8]) -> BatchRenewRequest? {
        var reader = HotPathJSONReader(bytes)
        var node: String?, grants: [Item]?
        let complete = reader.object { key, reader in
            switch key {
            case "node": node = reader.string(); return node != nil
            case "grants": grants = reader.elements(Item.readHotPath); return grants != nil
            default: return false
            }
        }
        guard complete, reader.atEnd, let node, let grants else { return nil }
        return BatchRenewRequest(node: node, grants: grants)
    }
}

extension BatchRenewResult: HotPathJSONDecodable {
    public static func decodeHotPath(_ bytes: [UInt8]) -> BatchRenewResult? {
        var reader = HotPathJSONReader(bytes)
        var renewed: [AuthorityGrant]?, refused: [Refusal]?
        let complete = reader.object { key, reader in
            switch key {
            case "renewed": renewed = reader.elements(AuthorityGrant.readHotPath); return renewed != nil
            case "refused": refused = reader.elements(Refusal.readHotPath); return refused != nil
            default: return false
            }
        }
        guard complete, reader.atEnd, let renewed, let refused else { return nil }
        return BatchRenewResult(renewed: renewed, refused: refused)
    }
}

extension BatchRenewRequest.Item {
    static func readHotPath(_ reader: inout HotPathJSONReader) -> BatchRenewRequest.Item? {
        var symbol: String?, fencingToken: Int64?, grant: AuthorityGrant?
        let complete = reader.object { key, reader in
            switch key {
            case "symbol": symbol = reader.string(); return symbol != nil
            case "fencing_token": fencingToken = reader.int(); return fencingToken != nil
            case "grant":
                if reader.null() { return true }
                grant = AuthorityGrant.readHotPath(&reader)
                return grant != nil
            default: return false
            }
        }
        guard complete, let symbol, let fencingToken else { return nil }
        return BatchRenewRequest.Item(symbol: symbol, fencingToken: fencingToken, grant: grant)
    }
}

extension BatchRenewResult.Refusal {
    static func readHotPath(_ reader: inout HotPathJSONReader) -> BatchRenewResult.Refusal? {
        var symbol: String?, code: String?, message: String?
        let complete = reader.object { key, reader in
            switch key {
            case "symbol": symbol = reader.string(); return symbol != nil
            case "code": code = reader.string(); return code != nil
            case "message": message = reader.string(); return message != nil
            default: return false
            }
        }
        guard complete, let symbol, let code, let message else { return nil }
        return BatchRenewResult.Refusal(symbol: symbol, code: code, message: message)
    }
}
