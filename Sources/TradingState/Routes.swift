import Foundation
import Hummingbird
import MMCore
import MMServiceKit

/// Longest a long-poll may be held, so a client cannot pin a connection indefinitely.
public let maxPositionWaitMs: Int64 = 30_000
/// Most fills one `POST /v1/fills` may carry (the body limit bounds it further).
public let maxRecordBatch = 10_000
public let maxLedgerPageLimit: Int64 = 5_000

/// Registers the trading-state routes on a service router. The role each route accepts
/// comes from `TradingStateRoutes` and is enforced before these handlers run.
public func addTradingStateRoutes(to router: AuthorizedRouter, ledger: TradingLedger, monitor: IngestMonitor, symbols: [String]) {
    let known = Set(symbols)

    router.on(TradingStateRoutes.recordFills) { request, context in
        let body = try await request.decode(as: RecordFillsRequest.self, context: context)
        guard body.fills.count <= maxRecordBatch else {
            throw APIError.invalidField("fills", "holds \(body.fills.count) fills; send at most \(maxRecordBatch) per request")
        }
        do {
            return try await ledger.record(body.fills)
        } catch let rejection as LedgerRejection {
            throw rejection.apiError(batch: body.fills)
        }
    }

    // `symbols=A,B` filters the answer and the wake-up: a node long-polls its own symbols only,
    // so a fill elsewhere neither wakes it nor costs an answer of every position.
    router.on(TradingStateRoutes.positions) { request, _ in
        let waitMs = try request.queryInt("wait_ms", default: 0, range: 0...maxPositionWaitMs)
        let afterVersion = try request.queryIntIfPresent("after_version", range: 0...Int64.max)
        var interest = PositionsInterest.all(afterVersion: afterVersion ?? 0)
        if let list = request.queryString("symbols") {
            do throws(PositionsFilterError) {
                interest = .symbols(try PositionsFilterError.parse(list, known: known), afterVersion: afterVersion ?? 0)
            } catch {
                throw error.apiError
            }
        }
        guard afterVersion != nil else { return await ledger.broadcaster.view(for: interest) }
        return await ledger.broadcaster.wait(timeoutMs: waitMs, for: interest)
    }

    router.on(TradingStateRoutes.position) { request, context in
        let symbol = try context.pathParameter("symbol")
        guard known.contains(symbol) else { throw APIError.unknownSymbol(symbol) }
        let waitMs = try request.queryInt("wait_ms", default: 0, range: 0...maxPositionWaitMs)
        // The symbol's own version: a reader of one symbol is not woken by the others.
        let view: PositionsView
        if let afterVersion = try request.queryIntIfPresent("after_version", range: 0...Int64.max) {
            view = await ledger.broadcaster.wait(timeoutMs: waitMs, for: .symbols([symbol], afterVersion: afterVersion))
        } else {
            view = await ledger.broadcaster.view(for: .symbols([symbol], afterVersion: 0))
        }
        return view.positions.first ?? .flat(symbol)
    }

    router.on(TradingStateRoutes.ledger) { request, _ in
        let symbol = request.queryString("symbol")
        if let symbol, !known.contains(symbol) { throw APIError.unknownSymbol(symbol) }
        // The exchange's fill log and the ledger share the path; only the exchange serves
        // `tail`, and ignoring it here would answer the oldest page as if it were the newest.
        if request.queryString("tail") != nil {
            throw APIError.invalidField("tail", "is served by the exchange's fill log only; page the ledger with 'after' and 'limit'")
        }
        let after = try request.queryInt("after", default: 0, range: 0...Int64.max)
        let limit = try request.queryInt("limit", default: 1_000, range: 1...maxLedgerPageLimit)
        return try await ledger.repository.ledger(symbol: symbol, after: after, limit: Int(limit))
    }

    // O(1): the chain is kept by every write (a remainder left by a v1 migration is advanced
    // by up to one transaction's limit per call; `chained_through_seq` says how far it got).
    router.on(TradingStateRoutes.ledgerDigest) { _, _ in
        try await ledger.repository.digest()
    }

    router.on(TradingStateRoutes.ingest) { _, _ in
        await monitor.status(version: await ledger.positions().version)
    }
}

extension LedgerRejection {
    /// The 4xx a caller gets for this rejection (nothing was recorded).
    func apiError(batch: [Fill]) -> APIError {
        let nothing = "; nothing in this batch was recorded"
        switch self {
        case .conflictingDuplicate(let fillId, let fields, let stored, let presented):
            var details = ["fill_id": fillId, "fields": fields.joined(separator: ",")]
            if let storedJSON = try? MMJSON.encode(stored) { details["stored"] = String(decoding: storedJSON, as: UTF8.self) }
            if let presentedJSON = try? MMJSON.encode(presented) { details["presented"] = String(decoding: presentedJSON, as: UTF8.self) }
            return APIError(status: 409, code: TradingStateErrorCode.conflictingDuplicate, message: description + nothing, details: details)
        case .seqConflict(let seq, let stored, let presented):
            return APIError(
                status: 409, code: TradingStateErrorCode.seqConflict, message: description + nothing,
                details: ["seq": "\(seq)", "stored_fill_id": stored, "presented_fill_id": presented])
        case .invalidFill(let index, let fillId, let field, let reason):
            let path = "fills[\(index)].\(field)"
            if field == "symbol", index < batch.count {
                return APIError(
                    status: 400, code: "unknown_symbol", message: "'\(path)' \(reason)\(nothing)",
                    details: ["field": path, "symbol": batch[index].symbol, "fill_id": fillId])
            }
            return APIError(status: 400, code: "invalid_field", message: "'\(path)' \(reason)\(nothing)", details: ["field": path, "fill_id": fillId])
        case .notContiguous:
            return APIError.internalError(description)
        }
    }
}
