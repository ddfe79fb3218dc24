import Foundation
import Hummingbird
import MMCore
import MMServiceKit

/// The exchange's HTTP surface: decodes and validates bodies, hands commands to the core,
/// and answers only after the journal holds them.
public struct ExchangeController: Sendable {
    public let core: ExchangeCore
    public let symbols: [SymbolSpec]

    public static let maxFillPageLimit: Int64 = 1_000
    public static let defaultFillPageLimit: Int64 = 100
    public static let maxFillWaitMs: Int64 = 30_000
    public static let maxBookLevels: Int64 = 100

    public init(core: ExchangeCore, symbols: [SymbolSpec]) {
        self.core = core
        self.symbols = symbols
    }

    public func register(on router: AuthorizedRouter) {
        let core = self.core
        let symbols = self.symbols
        router.on(ExchangeRoutes.symbols) { _, _ in SymbolList(symbols: symbols) }
        router.on(ExchangeRoutes.prices) { request, _ in
            guard let list = request.queryString("symbols") else { return PriceList(prices: await core.prices()) }
            let names = list.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard names.count <= symbols.count, !names.contains(where: \.isEmpty) else {
                throw APIError.invalidField("symbols", "must be a comma-separated list of at most \(symbols.count) configured symbols, none empty")
            }
            return PriceList(prices: try await core.prices(symbols: names))
        }
        router.on(ExchangeRoutes.price) { _, context in try await core.price(symbol: try context.pathParameter("symbol")) }
        router.on(ExchangeRoutes.quotes) { _, _ in QuoteList(quotes: await core.quotes()) }
        router.on(ExchangeRoutes.book) { request, context in
            let levels = try request.queryInt("depth", default: 10, range: 1...Self.maxBookLevels)
            return try await core.book(symbol: try context.pathParameter("symbol"), levels: Int(levels))
        }
        router.on(ExchangeRoutes.stats) { _, _ in await core.stats() }
        router.on(ExchangeRoutes.fills) { request, _ in
            let cursor = try request.logCursor(defaultLimit: Self.defaultFillPageLimit, maxLimit: Self.maxFillPageLimit, waitParameter: "wait_ms")
            let waitMs = try request.queryInt("wait_ms", default: 0, range: 0...Self.maxFillWaitMs)
            guard case .after(let after, let limit) = cursor else { return try await core.fillPage(cursor) }
            var page = try await core.fillPage(after: after, limit: limit)
            if page.fills.isEmpty && waitMs > 0 {
                await core.waitForFills(after: after, timeoutMs: waitMs)
                page = try await core.fillPage(after: after, limit: limit)
            }
            return page
        }
        router.on(ExchangeRoutes.fillFold) { _, _ in await core.fillFold() }
        router.on(ExchangeRoutes.fillDigest) { request, _ in
            let published = await core.publishedHead().count
            let through = try request.queryInt("through", default: published, range: 0...Int64.max)
            guard let head = try await core.fillChainHead(through: through) else {
                throw APIError(status: 404, code: ExchangeErrorCode.unknownFill,
                               message: "fill \(through) is not published yet (the published head is \(published))", details: ["head_seq": "\(published)"])
            }
            return FillLogHead(throughSeq: through, fillLogSha256: head)
        }
        router.on(ExchangeRoutes.replaceQuote) { request, context in
            let symbol = try context.pathParameter("symbol")
            let body = try await decodeCommand(QuoteRequest.self, request, context, priceFields: ["bid_price", "ask_price"], qtyFields: ["bid_qty", "ask_qty"])
            try context.requireActing(as: body.node)
            let (quote, seq) = try await core.replaceQuote(symbol: symbol, body)
            try await core.committer.waitDurable(seq)
            return quote
        }
        router.on(ExchangeRoutes.replaceQuotes) { request, context in
            let body = try await decodeQuoteBatch(request, context)
            try context.requireActing(as: body.node)
            let (result, seq) = await core.replaceQuotes(body)
            // One wait for the whole batch: its accepted items are one journal record.
            try await core.committer.waitDurable(seq)
            return result
        }
        router.on(ExchangeRoutes.cancelQuote) { request, context in
            let symbol = try context.pathParameter("symbol")
            let body = try await decodeCommand(FencedRequest.self, request, context, priceFields: [], qtyFields: [])
            try context.requireActing(as: body.node)
            let (result, seq) = try await core.cancelQuote(symbol: symbol, body)
            try await core.committer.waitDurable(seq)
            return result
        }
        router.on(ExchangeRoutes.submitOrder) { request, context in
            let body = try await decodeCommand(OrderRequest.self, request, context, priceFields: ["price"], qtyFields: ["qty"])
            try context.requireActing(as: body.node)
            let (ack, seq) = try await core.submitOrder(body)
            try await core.committer.waitDurable(seq)
            return ack
        }
        router.on(ExchangeRoutes.cancelOrder) { request, context in
            let orderId = try context.pathParameter("order_id")
            let body = try await decodeCommand(FencedRequest.self, request, context, priceFields: [], qtyFields: [])
            try context.requireActing(as: body.node)
            let (ack, seq) = try await core.cancelOrder(orderId: orderId, body)
            try await core.committer.waitDurable(seq)
            return ack
        }
        router.on(ExchangeRoutes.deadman) { request, context in
            let body = try await decodeCommand(DeadmanRequest.self, request, context, priceFields: [], qtyFields: ["timeout_ms"])
            try context.requireActing(as: body.node)
            return try await core.armDeadman(body)
        }

        /// Decodes and shape-checks a quote batch. Everything wrong with the request as a whole
        /// (bad JSON, a fractional or out-of-range number, no items, too many, a repeated
        /// symbol) is one 400 naming the item's index, before any item is decided.
        @Sendable func decodeQuoteBatch(_ request: Request, _ context: MMRequestContext) async throws -> QuoteBatchRequest {
            do {
                let data = try await readBody(request, limit: context.maxUploadSize)
                guard !data.isEmpty else { throw APIError.malformedBody("the request needs a JSON body") }
                let batch: QuoteBatchRequest
                do {
                    batch = try MMJSON.decode(QuoteBatchRequest.self, from: data)
                } catch {
                    if let classified = classifyBatchNumberError(data) { throw classified }
                    throw APIError.malformedBody(MMJSON.describe(error))
                }
                try batch.validateShape()
                return batch
            } catch let error as APIError {
                await core.countRejection(error.code)
                throw error
            }
        }

        /// Decodes a command body; a failure is classified so that a fractional price is
        /// `off_tick_grid` and an out-of-range number `absurd_size`, not a generic decode error.
        @Sendable func decodeCommand<T: Decodable>(
            _ type: T.Type, _ request: Request, _ context: MMRequestContext, priceFields: [String], qtyFields: [String]
        ) async throws -> T {
            do {
                let data = try await readBody(request, limit: context.maxUploadSize)
                guard !data.isEmpty else { throw APIError.malformedBody("the request needs a JSON body") }
                // MMJSON.decode reads a plain quote replace (the hottest request) without JSONDecoder.
                do {
                    return try MMJSON.decode(T.self, from: data)
                } catch {
                    if let classified = classifyNumberError(data, priceFields: priceFields, qtyFields: qtyFields) { throw classified }
                    throw APIError.malformedBody(MMJSON.describe(error))
                }
            } catch let error as APIError {
                await core.countRejection(error.code)
                throw error
            }
        }
    }
}

/// A JSON value that keeps integers apart from fractions, to classify bad numbers.
enum LooseJSON: Decodable {
    case bool(Bool), integer(Int64), fraction(Double), string(String), array([LooseJSON]), object([String: LooseJSON]), null

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Int64.self) { self = .integer(value) }
        else if let value = try? container.decode(Double.self) { self = .fraction(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([LooseJSON].self) { self = .array(value) }
        else { self = .object(try container.decode([String: LooseJSON].self)) }
    }
}

/// The specific reason a numeric field failed to decode, if that is what failed.
func classifyNumberError(_ data: Data, priceFields: [String], qtyFields: [String]) -> APIError? {
    guard case .object(let object)? = try? JSONDecoder().decode(LooseJSON.self, from: data) else { return nil }
    return classifyNumberError(object, priceFields: priceFields, qtyFields: qtyFields, prefix: "")
}

/// The same for a quote batch, naming the item (`quotes[3].bid_price`).
func classifyBatchNumberError(_ data: Data) -> APIError? {
    guard case .object(let object)? = try? JSONDecoder().decode(LooseJSON.self, from: data),
          case .array(let items)? = object["quotes"] else { return nil }
    for (index, item) in items.enumerated() {
        guard case .object(let fields) = item else { continue }
        if let error = classifyNumberError(fields, priceFields: ["bid_price", "ask_price"], qtyFields: ["bid_qty", "ask_qty"], prefix: "quotes[\(index)].") {
            return error
        }
    }
    return nil
}

private func classifyNumberError(_ object: [String: LooseJSON], priceFields: [String], qtyFields: [String], prefix: String) -> APIError? {
    for name in priceFields + qtyFields {
        guard case .fraction(let value)? = object[name] else { continue }
        let field = prefix + name
        let isPrice = priceFields.contains(name)
        if value.rounded() != value {
            return isPrice
                ? APIError(status: 400, code: ExchangeErrorCode.offTickGrid,
                           message: "'\(field)' \(value) is not on the tick grid: prices are integer ticks (e.g. 10050 for 100.50 at tick 0.01)",
                           details: ["field": field])
                : APIError.invalidField(field, "must be a whole number (got \(value))")
        }
        return APIError(status: 400, code: ExchangeErrorCode.absurdSize, message: "'\(field)' \(value) is out of range", details: ["field": field])
    }
    return nil
}
