import Foundation
import MMCore
import PropertyBased
import Testing

import Exchange

/// The journal's hand-written encoding must be byte for byte what `JSONEncoder` writes (the
/// journal is read back with `JSONDecoder`, and the fill log digest covers replay), or decline.
@Suite struct JournalEncodingTests {
    static let text = Gen.int(in: 0...7).array(of: 0...6).map { $0.map { ["A", "z", "0", "-", "é", "\"", "\\", "\n"][$0] }.joined() }
    static let maybeText = Self.text.array(of: 0...1).map(\.first)
    static let maybeNumber = Gen.int64(in: -10...Int64.max).array(of: 0...1).map(\.first)

    @Test func everyEntryShapeMatchesJSONEncoder() async {
        await propertyCheck(
            count: 500, input: Gen.int(in: 0...(JournalEntry.Kind.allCases.count - 1)), Self.maybeText.array(of: 4...4),
            Self.maybeNumber.array(of: 8...8), Gen.int(in: 0...2), Gen.int(in: 0...2)
        ) { kindIndex, texts, numbers, sideIndex, tifIndex in
            let entry = JournalEntry(
                kind: JournalEntry.Kind.allCases[kindIndex], symbol: texts[0], node: texts[1], token: numbers[0],
                side: [nil, Side.buy, Side.sell][sideIndex], price: numbers[1], qty: numbers[2],
                timeInForce: [nil, TimeInForce.gtc, TimeInForce.ioc][tifIndex], clientOrderId: texts[2], orderId: texts[3],
                bidPrice: numbers[3], bidQty: numbers[4], askPrice: numbers[5], askQty: numbers[6], flowIndex: numbers[7])
            let general = [UInt8]((try? MMJSON.encode(entry)) ?? Data())
            if let hot = entry.hotPathJSON() {
                #expect(hot == general, "\(String(decoding: hot, as: UTF8.self)) != \(String(decoding: general, as: UTF8.self))")
            } else {
                #expect(general.contains(UInt8(ascii: "\\")), "declined an entry that needs no escaping")
            }
        }
    }

    @Test func batchesOfEveryEntryShapeMatchJSONEncoder() async {
        await propertyCheck(
            count: 300, input: Gen.int(in: 0...(JournalEntry.Kind.allCases.count - 1)).array(of: 0...4), Self.maybeText.array(of: 2...2),
            Self.maybeNumber.array(of: 6...6), Gen.int(in: 0...2)
        ) { kinds, texts, numbers, sideIndex in
            let entries = kinds.enumerated().map { index, kind in
                JournalEntry(
                    kind: JournalEntry.Kind.allCases[kind], symbol: index % 2 == 0 ? texts[0] : texts[1], node: texts[1], token: numbers[index % 6],
                    side: [nil, Side.buy, Side.sell][sideIndex], price: numbers[1], qty: numbers[2], bidPrice: numbers[3], bidQty: numbers[4],
                    askPrice: numbers[5], askQty: numbers[0])
            }
            for entry in [JournalEntry.batch(entries), JournalEntry(kind: .batch, symbol: texts[0], token: numbers[0], entries: entries)] {
                let general = [UInt8]((try? MMJSON.encode(entry)) ?? Data())
                if let hot = entry.hotPathJSON() {
                    #expect(hot == general, "\(String(decoding: hot, as: UTF8.self)) != \(String(decoding: general, as: UTF8.self))")
                    #expect((try? MMJSON.decode(JournalEntry.self, from: Data(hot))) == entry)
                } else {
                    #expect(general.contains(UInt8(ascii: "\\")), "declined a batch that needs no escaping")
                }
            }
        }
    }

    @Test func aQuoteBatchTakesTheFastPath() throws {
        let entry = JournalEntry.batch([
            .supersede(symbol: "ACME", token: 7),
            .replaceQuote(symbol: "ACME", node: "n1", token: 7, bidPrice: 9_998, bidQty: 5, askPrice: nil, askQty: 5),
        ])
        let bytes = try #require(entry.hotPathJSON())
        #expect(String(decoding: bytes, as: UTF8.self)
                == #"{"entries":[{"kind":"supersede","symbol":"ACME","token":7},{"bid_price":9998,"bid_qty":5,"kind":"replace_quote","node":"n1","symbol":"ACME","token":7}],"kind":"batch"}"#)
        #expect(try MMJSON.decode(JournalEntry.self, from: Data(bytes)) == entry)
    }

    @Test func aQuoteReplaceTakesTheFastPath() throws {
        let entry = JournalEntry.replaceQuote(symbol: "ACME", node: "n1", token: 7, bidPrice: 9_998, bidQty: 5, askPrice: nil, askQty: 5)
        let bytes = try #require(entry.hotPathJSON())
        #expect(String(decoding: bytes, as: UTF8.self) == #"{"bid_price":9998,"bid_qty":5,"kind":"replace_quote","node":"n1","symbol":"ACME","token":7}"#)
        #expect(try MMJSON.decode(JournalEntry.self, from: Data(bytes)) == entry)
    }
}
