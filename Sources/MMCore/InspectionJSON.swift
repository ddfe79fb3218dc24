import Foundation
/// Hand-written JSON for the inspection answers that grow with the number of symbols
/// (`GET /v1/authority`, `/v1/assignments`, `/v1/quotes`, `/v1/prices`, `/v1/positions`), both
/// ways, byte-identical to `MMJSON.encode` and value-identical to `MMJSON.decode`. At 1,000
/// symbols each answer is 50–140 KB: `mmctl status` reads five of them, and every node polls
/// prices and positions. Foundation's encoder and decoder spent most of `mmctl status`'s CPU
/// and tens of milliseconds per answer in the services (docs/PERFORMANCE.md, "1,000 symbols").
///
/// The same rules as the rest of the hot path: a writer gives up on a string that needs
/// escaping and a reader on anything it does not fully understand (an unknown key, an escape,
/// a fraction), and the caller falls back to Foundation. Property tests compare both ways.

// MARK: Writing

extension AuthorityStatus: HotPathJSONEncodable {
    public func writeJSON(to writer: inout HotPathJSONWriter) -> Bool {
        writer.beginObject()
        guard writer.member("assigned_to", assignedTo) else { return false }
        writer.member("expires_at_ms", expiresAtMs)
        writer.member("expires_in_ms", expiresInMs)
        writer.key("fencing_token")
        writer.int(fencingToken)
        guard writer.member("node", node) else { return false }
        writer.key("symbol")
        guard writer.string(symbol) else { return false }
        writer.endObject()
        return true
    }
}

extension AuthorityList: HotPathJSONEncodable {
    public func writeJSON(to writer: inout HotPathJSONWriter) -> Bool {
        writer.beginObject()
        writer.key("authority")
        guard writer.array(authority) else { return false }
        writer.key("quiet_for_ms")
        writer.int(quietForMs)
        writer.endObject()
        return true
    }
}

extension QuoteList: HotPathJSONEncodable {
    public func writeJSON(to writer: inout HotPathJSONWriter) -> Bool {
        writer.beginObject()
        writer.key("quotes")
        guard writer.array(quotes) else { return false }
        writer.endObject()
        return true
    }
}

extension ReferencePrice: HotPathJSONEncodable {
    public func writeJSON(to writer: inout HotPathJSONWriter) -> Bool {
        writer.beginObject()
        writer.key("price")
        writer.int(price)
        writer.key("symbol")
        guard writer.string(symbol) else { return false }
        writer.key("tick_index")
        writer.int(tickIndex)
        writer.key("ts_ms")
        writer.int(tsMs)
        writer.endObject()
        return true
    }
}

extension PriceList: HotPathJSONEncodable {
    public func writeJSON(to writer: inout HotPathJSONWriter) -> Bool {
        writer.beginObject()
        writer.key("prices")
        guard writer.array(prices) else { return false }
        writer.endObject()
        return true
    }
}

extension Position: HotPathJSONEncodable {
    public func writeJSON(to writer: inout HotPathJSONWriter) -> Bool {
        writer.beginObject()
        writer.key("avg_price")
        writer.int(avgPrice)
        writer.key("fill_count")
        writer.int(fillCount)
        writer.key("last_fill_seq")
        writer.int(lastFillSeq)
        writer.key("net_qty")
        writer.int(netQty)
        writer.key("open_cost")
        writer.int(openCost)
        writer.key("realized_pnl")
        writer.int(realizedPnl)
        writer.key("symbol")
        guard writer.string(symbol) else { return false }
        writer.key("version")
        writer.int(version)
        writer.endObject()
        return true
    }
}

extension PositionsView: HotPathJSONEncodable {
    public func writeJSON(to writer: inout HotPathJSONWriter) -> Bool {
        writer.beginObject()
        writer.key("positions")
        guard writer.array(positions) else { return false }
        writer.key("version")
        writer.int(version)
        writer.endObject()
        return true
    }
}

extension AssignmentTable: HotPathJSONEncodable {
    public func writeJSON(to writer: inout HotPathJSONWriter) -> Bool {
        writer.beginObject()
        writer.key("symbols")
        guard writer.stringMap(symbols) else { return false }
        writer.key("version")
        writer.int(version)
        writer.endObject()
        return true
    }
}

extension HotPathJSONWriter {
    /// An array of values that write themselves; false when one gives up.
    public mutating func array(_ elements: [some HotPathJSONEncodable]) -> Bool {
        beginArray()
        for element in elements {
            self.element()
            guard element.writeJSON(to: &self) else { return false }
        }
        endArray()
        return true
    }

    /// A `[String: String]` as JSONEncoder writes it with sorted keys: in byte order of the keys.
    public mutating func stringMap(_ map: [String: String]) -> Bool {
        beginObject()
        for (key, value) in map.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
            guard self.key(dynamic: key), string(value) else { return false }
        }
        endObject()
        return true
    }
}

// MARK: Reading

extension AuthorityStatus {
    static func readHotPath(_ reader: inout HotPathJSONReader) -> AuthorityStatus? {
        var symbol: String?, fencingToken: Int64?
        var assignedTo: String?, node: String?, expiresAtMs: Int64?, expiresInMs: Int64?
        let complete = reader.object { key, reader in
            switch key {
            case "symbol": symbol = reader.string(); return symbol != nil
            case "fencing_token": fencingToken = reader.int(); return fencingToken != nil
            case "assigned_to": return reader.optionalString().map { assignedTo = $0 } != nil
            case "node": return reader.optionalString().map { node = $0 } != nil
            case "expires_at_ms": return reader.optionalInt().map { expiresAtMs = $0 } != nil
            case "expires_in_ms": return reader.optionalInt().map { expiresInMs = $0 } != nil
            default: return false
            }
        }
        guard complete, let symbol, let fencingToken else { return nil }
        return AuthorityStatus(symbol: symbol, assignedTo: assignedTo, node: node, fencingToken: fencingToken, expiresAtMs: expiresAtMs, expiresInMs: expiresInMs)
    }
}

extension AuthorityList: HotPathJSONDecodable {
    public static func decodeHotPath(_ bytes: [UInt8]) -> AuthorityList? {
        var reader = HotPathJSONReader(bytes)
        var authority: [AuthorityStatus]?, quietForMs: Int64?
        let complete = reader.object { key, reader in
            switch key {
            case "authority": authority = reader.elements(AuthorityStatus.readHotPath); return authority != nil
            case "quiet_for_ms": quietForMs = reader.int(); return quietForMs != nil
            default: return false
            }
        }
        guard complete, reader.atEnd, let authority, let quietForMs else { return nil }
        return AuthorityList(authority: authority, quietForMs: quietForMs)
    }
}

extension Quote {
    static func readHotPath(_ reader: inout HotPathJSONReader) -> Quote? {
        var symbol: String?, node: String?, fencingToken: Int64?, bidQty: Int64?, askQty: Int64?, updatedAtMs: Int64?
        var bidPrice: Int64?, askPrice: Int64?
        let complete = reader.object { key, reader in
            switch key {
            case "symbol": symbol = reader.string(); return symbol != nil
            case "node": node = reader.string(); return node != nil
            case "fencing_token": fencingToken = reader.int(); return fencingToken != nil
            case "bid_qty": bidQty = reader.int(); return bidQty != nil
            case "ask_qty": askQty = reader.int(); return askQty != nil
            case "updated_at_ms": updatedAtMs = reader.int(); return updatedAtMs != nil
            case "bid_price": return reader.optionalInt().map { bidPrice = $0 } != nil
            case "ask_price": return reader.optionalInt().map { askPrice = $0 } != nil
            default: return false
            }
        }
        guard complete, let symbol, let node, let fencingToken, let bidQty, let askQty, let updatedAtMs else { return nil }
        return Quote(symbol: symbol, node: node, fencingToken: fencingToken, bidPrice: bidPrice, bidQty: bidQty, askPrice: askPrice, askQty: askQty, updatedAtMs: updatedAtMs)
    }
}

extension QuoteList: HotPathJSONDecodable {
    public static func decodeHotPath(_ bytes: [UInt8]) -> QuoteList? {
        var reader = HotPathJSONReader(bytes)
        var quotes: [Quote]?
        let complete = reader.object { key, reader in
            guard key == "quotes" else { return false }
            quotes = reader.elements(Quote.readHotPath)
            return quotes != nil
        }
        guard complete, reader.atEnd, let quotes else { return nil }
        return QuoteList(quotes: quotes)
    }
}

extension ReferencePrice {
    static func readHotPath(_ reader: inout HotPathJSONReader) -> ReferencePrice? {
        var symbol: String?, price: Int64?, tickIndex: Int64?, tsMs: Int64?
        let complete = reader.object { key, reader in
            switch key {
            case "symbol": symbol = reader.string(); return symbol != nil
            case "price": price = reader.int(); return price != nil
            case "tick_index": tickIndex = reader.int(); return tickIndex != nil
            case "ts_ms": tsMs = reader.int(); return tsMs != nil
            default: return false
            }
        }
        guard complete, let symbol, let price, let tickIndex, let tsMs else { return nil }
        return ReferencePrice(symbol: symbol, price: price, tickIndex: tickIndex, tsMs: tsMs)
    }
}

extension PriceList: HotPathJSONDecodable {
    public static func decodeHotPath(_ bytes: [UInt8]) -> PriceList? {
        var reader = HotPathJSONReader(bytes)
        var prices: [ReferencePrice]?
        let complete = reader.object { key, reader in
            guard key == "prices" else { return false }
            prices = reader.elements(ReferencePrice.readHotPath)
            return prices != nil
        }
        guard complete, reader.atEnd, let prices else { return nil }
        return PriceList(prices: prices)
    }
}

extension Position {
    static func readHotPath(_ reader: inout HotPathJSONReader) -> Position? {
        var symbol: String?
        var netQty: Int64?, avgPrice: Int64?, openCost: Int64?, realizedPnl: Int64?, fillCount: Int64?, lastFillSeq: Int64?, version: Int64?
        let complete = reader.object { key, reader in
            switch key {
            case "symbol": symbol = reader.string(); return symbol != nil
            case "net_qty": netQty = reader.int(); return netQty != nil
            case "avg_price": avgPrice = reader.int(); return avgPrice != nil
            case "open_cost": openCost = reader.int(); return openCost != nil
            case "realized_pnl": realizedPnl = reader.int(); return realizedPnl != nil
            case "fill_count": fillCount = reader.int(); return fillCount != nil
            case "last_fill_seq": lastFillSeq = reader.int(); return lastFillSeq != nil
            case "version": version = reader.int(); return version != nil
            default: return false
            }
        }
        guard complete, let symbol, let netQty, let avgPrice, let openCost, let realizedPnl, let fillCount, let lastFillSeq, let version else { return nil }
        return Position(symbol: symbol, netQty: netQty, avgPrice: avgPrice, openCost: openCost, realizedPnl: realizedPnl, fillCount: fillCount, lastFillSeq: lastFillSeq, version: version)
    }
}

extension PositionsView: HotPathJSONDecodable {
    public static func decodeHotPath(_ bytes: [UInt8]) -> PositionsView? {
        var reader = HotPathJSONReader(bytes)
        var positions: [Position]?, version: Int64?
        let complete = reader.object { key, reader in
            switch key {
            case "positions": positions = reader.elements(Position.readHotPath); return positions != nil
            case "version": version = reader.int(); return version != nil
            default: return false
            }
        }
        guard complete, reader.atEnd, let positions, let version else { return nil }
        return PositionsView(version: version, positions: positions)
    }
}

extension AssignmentTable: HotPathJSONDecodable {
    public static func decodeHotPath(_ bytes: [UInt8]) -> AssignmentTable? {
        var reader = HotPathJSONReader(bytes)
        var symbols: [String: String]?, version: Int64?
        let complete = reader.object { key, reader in
            switch key {
            case "symbols": symbols = reader.stringMap(); return symbols != nil
            case "version": version = reader.int(); return version != nil
            default: return false
            }
        }
        guard complete, reader.atEnd, let symbols, let version else { return nil }
        return AssignmentTable(version: version, symbols: symbols)
    }
}

extension HotPathJSONReader {
    /// An array whose every element `read` understands; nil otherwise.
    public mutating func elements<Element>(_ read: (inout HotPathJSONReader) -> Element?) -> [Element]? {
        var result: [Element] = []
        let complete = array { reader in
            guard let element = read(&reader) else { return false }
            result.append(element)
            return true
        }
        return complete ? result : nil
    }
}

// MARK: The cluster snapshot

extension ClusterSnapshot.SymbolView: HotPathJSONEncodable {
    public func writeJSON(to writer: inout HotPathJSONWriter) -> Bool {
        writer.beginObject()
        guard writer.member("assigned_to", assignedTo) else { return false }
        if let authority {
            writer.key("authority")
            writer.beginObject()
            writer.key("expires_in_ms")
            writer.int(authority.expiresInMs)
            writer.key("fencing_token")
            writer.int(authority.fencingToken)
            writer.key("node")
            guard writer.string(authority.node) else { return false }
            writer.endObject()
        }
        if let position {
            writer.key("position")
            writer.beginObject()
            writer.key("avg_price")
            writer.int(position.avgPrice)
            writer.key("fill_count")
            writer.int(position.fillCount)
            writer.key("net_qty")
            writer.int(position.netQty)
            writer.key("realized_pnl")
            writer.int(position.realizedPnl)
            writer.member("unrealized_pnl", position.unrealizedPnl)
            writer.endObject()
        }
        if let quote {
            writer.key("quote")
            writer.beginObject()
            writer.member("ask", quote.ask)
            writer.key("ask_qty")
            writer.int(quote.askQty)
            writer.member("bid", quote.bid)
            writer.key("bid_qty")
            writer.int(quote.bidQty)
            writer.key("fencing_token")
            writer.int(quote.fencingToken)
            writer.key("node")
            guard writer.string(quote.node) else { return false }
            writer.key("updated_at_ms")
            writer.int(quote.updatedAtMs)
            writer.endObject()
        }
        writer.member("reference_price", referencePrice)
        writer.key("symbol")
        guard writer.string(symbol) else { return false }
        writer.key("tick_size")
        guard writer.string(tickSize) else { return false }
        writer.endObject()
        return true
    }
}

/// The cluster snapshot (`mmctl status --json`, the GUI's `/api/view`) as `MMJSON.encode` writes
/// it, without sending its 1,000-symbol parts through Foundation: the snapshot is encoded with
/// `symbols` and the assignment map emptied, and their hand-written JSON is put in their place.
/// Everything else (processes, events, hosts: small and varied) keeps the general encoder.
public enum SnapshotJSON {
    /// `document` is the snapshot or a document around it; `rebuild` puts a snapshot in its place.
    public static func encode<Document: Encodable>(
        _ document: Document, snapshot: ClusterSnapshot, pretty: Bool, rebuild: (ClusterSnapshot) -> Document
    ) throws -> [UInt8] {
        var symbolsWriter = HotPathJSONWriter()
        var mapWriter = HotPathJSONWriter()
        guard symbolsWriter.array(snapshot.symbols), mapWriter.stringMap(snapshot.assignments?.symbols ?? [:]) else {
            return Array(try MMJSON.encode(document, pretty: pretty))
        }
        var skeleton = snapshot
        skeleton.symbols = []
        skeleton.assignments?.symbols = [:]
        var bytes = Array(try MMJSON.encode(rebuild(skeleton)))
        guard let withSymbols = JSONSplice.replacing(["symbols"], in: bytes, with: symbolsWriter.bytes) else {
            return Array(try MMJSON.encode(document, pretty: pretty))
        }
        bytes = withSymbols
        if snapshot.assignments != nil {
            guard let withMap = JSONSplice.replacing(["assignments", "symbols"], in: bytes, with: mapWriter.bytes) else {
                return Array(try MMJSON.encode(document, pretty: pretty))
            }
            bytes = withMap
        }
        return pretty ? JSONSplice.prettyPrinted(bytes) : bytes
    }
}

extension ClusterSnapshot: HotPathJSONEncodable {
    public func writeJSON(to writer: inout HotPathJSONWriter) -> Bool {
        guard let bytes = try? SnapshotJSON.encode(self, snapshot: self, pretty: false, rebuild: { $0 }) else { return false }
        writer.raw(bytes)
        return true
    }
}

/// Byte-level edits of compact JSON as `MMJSON.encode` writes it (no whitespace outside strings).
public enum JSONSplice {
    /// `json` with the empty value (`[]` or `{}`) of the member at `path` (object keys from the
    /// top) replaced by `value`; nil when there is no such member or its value is not empty.
    public static func replacing(_ path: [String], in json: [UInt8], with value: [UInt8]) -> [UInt8]? {
        let keyBytes = path.map { Array("\"\($0)\":".utf8) }
        // Per open container: the index in `path` of the key whose value it is (nil when it is
        // not on the path).
        var openKeys: [Int?] = []
        var pendingKey: Int? = nil
        var index = 0
        var inString = false
        while index < json.count {
            let byte = json[index]
            if inString {
                if byte == UInt8(ascii: "\\") { index += 2; continue }
                if byte == UInt8(ascii: "\"") { inString = false }
                index += 1
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                // At an object member's key: does it match the path at this depth?
                let depth = openKeys.count
                if depth >= 1, depth <= path.count, (1..<depth).allSatisfy({ openKeys[$0] == $0 - 1 }),
                   json[index...].starts(with: keyBytes[depth - 1]), isKeyPosition(json, index) {
                    let valueStart = index + keyBytes[depth - 1].count
                    if depth == path.count {
                        guard valueStart + 1 < json.count,
                              (json[valueStart] == UInt8(ascii: "[") && json[valueStart + 1] == UInt8(ascii: "]"))
                                || (json[valueStart] == UInt8(ascii: "{") && json[valueStart + 1] == UInt8(ascii: "}")) else { return nil }
                        var spliced: [UInt8] = []
                        spliced.reserveCapacity(json.count + value.count)
                        spliced.append(contentsOf: json[..<valueStart])
                        spliced.append(contentsOf: value)
                        spliced.append(contentsOf: json[(valueStart + 2)...])
                        return spliced
                    }
                    pendingKey = depth - 1
                    index = valueStart
                    continue
                }
                inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                openKeys.append(pendingKey)
                pendingKey = nil
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                openKeys.removeLast()
            case UInt8(ascii: ","), UInt8(ascii: ":"):
                pendingKey = nil
            default:
                break
            }
            index += 1
        }
        return nil
    }

    /// A quote at `index` opens a key when the byte before it opens an object or ends a member.
    private static func isKeyPosition(_ json: [UInt8], _ index: Int) -> Bool {
        index > 0 && (json[index - 1] == UInt8(ascii: "{") || json[index - 1] == UInt8(ascii: ","))
    }

    /// Compact JSON laid out as `JSONEncoder`'s `.prettyPrinted` does: two-space indents,
    /// `"key" : value`, and an empty container as its brackets around a blank line.
    public static func prettyPrinted(_ json: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(json.count * 3 / 2)
        var depth = 0
        var index = 0
        var inString = false
        func newline(_ depth: Int) {
            out.append(UInt8(ascii: "\n"))
            for _ in 0..<(depth * 2) { out.append(UInt8(ascii: " ")) }
        }
        while index < json.count {
            let byte = json[index]
            if inString {
                out.append(byte)
                if byte == UInt8(ascii: "\\"), index + 1 < json.count {
                    out.append(json[index + 1])
                    index += 2
                    continue
                }
                if byte == UInt8(ascii: "\"") { inString = false }
                index += 1
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                inString = true
                out.append(byte)
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                out.append(byte)
                let close = byte == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
                if index + 1 < json.count, json[index + 1] == close {
                    out.append(UInt8(ascii: "\n"))
                    newline(depth)
                    out.append(close)
                    index += 2
                    continue
                }
                depth += 1
                newline(depth)
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                newline(depth)
                out.append(byte)
            case UInt8(ascii: ","):
                out.append(byte)
                newline(depth)
            case UInt8(ascii: ":"):
                out.append(UInt8(ascii: " "))
                out.append(byte)
                out.append(UInt8(ascii: " "))
            default:
                out.append(byte)
            }
            index += 1
        }
        return out
    }
}

// MARK: Fills

/// Every fill is written once for the exchange's chain and journal, again for each page the
/// ledger pulls, and once more by the ledger's own chain; every page is read by the ledger.
/// At 1,000 symbols (about 1,500 fills/s) Foundation's coder of them was about a tenth of the
/// exchange's and the trading state's CPU. The bytes are exactly `MMJSON.encode`'s, so the
/// fill-log digest (which hashes them) is unchanged.
extension Fill: HotPathJSONEncodable {
    public func writeJSON(to writer: inout HotPathJSONWriter) -> Bool {
        writer.beginObject()
        writer.key("fencing_token")
        writer.int(fencingToken)
        writer.key("fill_id")
        guard writer.string(fillId) else { return false }
        writer.key("maker_order_id")
        guard writer.string(makerOrderId) else { return false }
        writer.key("node")
        guard writer.string(node) else { return false }
        writer.key("price")
        writer.int(price)
        writer.key("qty")
        writer.int(qty)
        writer.key("seq")
        writer.int(seq)
        writer.key("side")
        guard writer.string(side.rawValue) else { return false }
        writer.key("symbol")
        guard writer.string(symbol) else { return false }
        writer.key("taker_order_id")
        guard writer.string(takerOrderId) else { return false }
        writer.key("ts_ms")
        writer.int(tsMs)
        writer.endObject()
        return true
    }

    static func readHotPath(_ reader: inout HotPathJSONReader) -> Fill? {
        var fillId: String?, symbol: String?, side: Side?, makerOrderId: String?, takerOrderId: String?, node: String?
        var seq: Int64?, price: Int64?, qty: Int64?, fencingToken: Int64?, tsMs: Int64?
        let complete = reader.object { key, reader in
            switch key {
            case "fill_id": fillId = reader.string(); return fillId != nil
            case "seq": seq = reader.int(); return seq != nil
            case "symbol": symbol = reader.string(); return symbol != nil
            case "side": side = reader.string().flatMap(Side.init(rawValue:)); return side != nil
            case "price": price = reader.int(); return price != nil
            case "qty": qty = reader.int(); return qty != nil
            case "maker_order_id": makerOrderId = reader.string(); return makerOrderId != nil
            case "taker_order_id": takerOrderId = reader.string(); return takerOrderId != nil
            case "node": node = reader.string(); return node != nil
            case "fencing_token": fencingToken = reader.int(); return fencingToken != nil
            case "ts_ms": tsMs = reader.int(); return tsMs != nil
            default: return false
            }
        }
        guard complete, let fillId, let seq, let symbol, let side, let price, let qty, let makerOrderId, let takerOrderId, let node, let fencingToken, let tsMs else { return nil }
        return Fill(fillId: fillId, seq: seq, symbol: symbol, side: side, price: price, qty: qty, makerOrderId: makerOrderId, takerOrderId: takerOrderId, node: node, fencingToken: fencingToken, tsMs: tsMs)
    }
}

extension FillPage: HotPathJSONEncodable, HotPathJSONDecodable {
    public func writeJSON(to writer: inout HotPathJSONWriter) -> Bool {
        writer.beginObject()
        writer.key("fills")
        guard writer.array(fills) else { return false }
        writer.key("head_seq")
        writer.int(headSeq)
        writer.endObject()
        return true
    }

    public static func decodeHotPath(_ bytes: [UInt8]) -> FillPage? {
        var reader = HotPathJSONReader(bytes)
        var fills: [Fill]?, headSeq: Int64?
        let complete = reader.object { key, reader in
            switch key {
            case "fills": fills = reader.elements(Fill.readHotPath); return fills != nil
            case "head_seq": headSeq = reader.int(); return headSeq != nil
            default: return false
            }
        }
        guard complete, reader.atEnd, let fills, let headSeq else { return nil }
        return FillPage(fills: fills, headSeq: headSeq)
    }
}

extension RecordFillsRequest: HotPathJSONEncodable, HotPathJSONDecodable {
    public func writeJSON(to writer: inout HotPathJSONWriter) -> Bool {
        writer.beginObject()
        writer.key("fills")
        guard writer.array(fills) else { return false }
        writer.endObject()
        return true
    }

    public static func decodeHotPath(_ bytes: [UInt8]) -> RecordFillsRequest? {
        var reader = HotPathJSONReader(bytes)
        var fills: [Fill]?
        let complete = reader.object { key, reader in
            guard key == "fills" else { return false }
            fills = reader.elements(Fill.readHotPath)
            return fills != nil
        }
        guard complete, reader.atEnd, let fills else { return nil }
        return RecordFillsRequest(fills: fills)
    }
}

// MARK: The effective config

extension SymbolSpec {
    static func readHotPath(_ reader: inout HotPathJSONReader) -> SymbolSpec? {
        var symbol: String?, tickSize: String?, basePrice: Int64?, lotSize: Int64?
        let complete = reader.object { key, reader in
            switch key {
            case "symbol": symbol = reader.string(); return symbol != nil
            case "tick_size": tickSize = reader.string(); return tickSize != nil
            case "base_price": basePrice = reader.int(); return basePrice != nil
            case "lot_size": lotSize = reader.int(); return lotSize != nil
            default: return false
            }
        }
        guard complete, let symbol, let tickSize, let basePrice, let lotSize else { return nil }
        return SymbolSpec(symbol: symbol, tickSize: tickSize, basePrice: basePrice, lotSize: lotSize)
    }
}

/// Every mmctl command against a running cluster reads `DATA_DIR/effective-config.json`; at
/// 1,000 symbols Foundation's decoding of its symbol list was a tenth of `mmctl status`'s
/// CPU. The symbols are read by hand; every other member is handed to Foundation as it
/// stands (a small object), so their rules stay Foundation's.
extension ClusterConfig: HotPathJSONDecodable {
    public static func decodeHotPath(_ bytes: [UInt8]) -> ClusterConfig? {
        var reader = HotPathJSONReader(bytes)
        var symbols: [SymbolSpec]?
        var rest: [UInt8] = [UInt8(ascii: "{")]
        let complete = reader.object { key, reader in
            if key == "symbols" {
                symbols = reader.elements(SymbolSpec.readHotPath)
                return symbols != nil
            }
            guard let raw = reader.rawValue() else { return false }
            if rest.count > 1 { rest.append(UInt8(ascii: ",")) }
            rest += Array("\"\(key)\":".utf8)
            rest += raw
            return true
        }
        guard complete, reader.atEnd, let symbols else { return nil }
        if rest.count > 1 { rest.append(UInt8(ascii: ",")) }
        rest += Array(#""symbols":[]}"#.utf8)
        guard var config = try? MMJSON.makeDecoder().decode(ClusterConfig.self, from: Data(rest)) else { return nil }
        config.symbols = symbols
        return config
    }
}
