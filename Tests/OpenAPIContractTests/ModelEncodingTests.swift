import Foundation
import MMCore
import Testing
@testable import OperatorGUI

/// Values of every response model with optional fields, once with every field set and once
/// with every optional nil, shared by the encoding tests and the GUI's canned cluster view.
enum Models {
    static let t0: EpochMs = 1_700_000_000_000

    static let fill = Fill(
        fillId: "F1", seq: 1, symbol: "ACME", side: .sell, price: 10_007, qty: 1, makerOrderId: "Q-ACME-1-a", takerOrderId: "X-ACME-9",
        node: "n1", fencingToken: 7, tsMs: t0 - 500)

    static let fullProcess = ProcessStatus(
        name: "n3", role: "node", pid: 4242, state: .fatal, restarts: 5, uptimeMs: 1_200, port: 7413,
        lastExit: ProcessExit(code: 1, signal: 9, atMs: t0 - 100), fatalReason: "5 restarts in 30 s; last exit signal 9 (SIGKILL)", host: "b")
    static let minimalProcess = ProcessStatus(name: "n2", role: "node", pid: nil, state: .backoff, restarts: 1, uptimeMs: nil, port: 7412, lastExit: nil)

    static let fullEvent = ClusterEvent(seq: 40, tsMs: t0 - 1_000, kind: "grant", symbol: "ACME", node: "n1", fencingToken: 7, expiresAtMs: t0 + 1_000, detail: "granted for 2000 ms")
    static let minimalEvent = ClusterEvent(seq: 41, tsMs: t0 - 900, kind: "rebalance", detail: "ACME:n1→n2")

    static let fullEventLogBase: EventLogBase = {
        var fold = GrantLogFold()
        _ = fold.apply(fullEvent)
        return EventLogBase(compactedThroughSeq: 40, headSeq: 41, grants: fold)
    }()
    static let fullQuoteView = ClusterSnapshot.QuoteView(node: "n1", fencingToken: 7, bid: 10_003, bidQty: 5, ask: 10_007, askQty: 5, updatedAtMs: t0 - 50)
    static let minimalQuoteView = ClusterSnapshot.QuoteView(node: "n1", fencingToken: 7, bid: nil, bidQty: 0, ask: nil, askQty: 0, updatedAtMs: t0 - 50)

    static let fullSymbol = ClusterSnapshot.SymbolView(
        symbol: "ACME", tickSize: "0.01", referencePrice: 10_005, assignedTo: "n1",
        authority: ClusterSnapshot.Authority(node: "n1", fencingToken: 7, expiresInMs: 1_500), quote: fullQuoteView,
        position: fullPosition)
    static let minimalSymbol = ClusterSnapshot.SymbolView(
        symbol: "BOLT", tickSize: "0.01", referencePrice: nil, assignedTo: nil, authority: nil, quote: nil, position: nil)
    static let fullPosition = ClusterSnapshot.PositionView(netQty: -3, avgPrice: 10_010, realizedPnl: 1_234, unrealizedPnl: 15, fillCount: 9)
    static let minimalPosition = ClusterSnapshot.PositionView(netQty: 0, avgPrice: 0, realizedPnl: 0, unrealizedPnl: nil, fillCount: 0)

    static func fullSnapshot(takenAt: EpochMs = t0, quote: ClusterSnapshot.QuoteView = fullQuoteView) -> ClusterSnapshot {
        var symbol = fullSymbol
        symbol.quote = quote
        return ClusterSnapshot(
            takenAtMs: takenAt, supervisor: SupervisorInfo(pid: 4200, uptimeMs: 60_000, startedAtMs: t0 - 60_000, phase: "running"),
            processes: [fullProcess, minimalProcess], members: [ClusterSnapshot.Member(node: "n1", status: .alive, expiresInMs: 1_800)],
            assignments: ClusterSnapshot.Assignments(version: 12, symbols: ["ACME": "n1"]), symbols: [symbol, minimalSymbol],
            totals: ClusterSnapshot.Totals(realizedPnl: 1_234, unrealizedPnl: 15, fillCount: 9), recentFills: [fill],
            recentEvents: [fullEvent, minimalEvent], errors: [ClusterSnapshot.ServiceError(service: "exchange", error: "GET /v1/prices: unreachable")],
            hosts: [fullHost, minimalHost], warnings: [fullWarning])
    }

    static let fullHost = ClusterSnapshot.HostView(
        name: "b", address: "10.0.0.2", reachable: true, supervisor: SupervisorInfo(pid: 4300, uptimeMs: 60_000, startedAtMs: t0 - 60_000, phase: "running"),
        clockOffsetMs: 812, clockUncertaintyMs: 3, clockSkewed: true, clockError: "GET /v1/info: timed out")
    static let minimalHost = ClusterSnapshot.HostView(name: "c", address: "10.0.0.3", reachable: false)
    static let fullWarning = ClusterSnapshot.Warning(
        kind: ClusterSnapshot.Warning.clockSkew, hosts: ["b"], message: "clock of host b (10.0.0.2) is 812 ms ahead", offsetMs: 812, uncertaintyMs: 3, boundMs: 200)
    static let minimalWarning = ClusterSnapshot.Warning(kind: ClusterSnapshot.Warning.clockSkew, hosts: ["b"], message: "clock of host b is ahead")

    static let minimalSnapshot = ClusterSnapshot(
        takenAtMs: t0, supervisor: nil, processes: [], members: [], assignments: nil, symbols: [], totals: ClusterSnapshot.Totals(realizedPnl: 0, unrealizedPnl: 0, fillCount: 0),
        recentFills: [], recentEvents: [], errors: [])

    static let fullRefresh = RefreshStatus(
        intervalMs: 300, lastAttemptMs: t0, lastSuccessMs: t0 - 300, consecutiveFailures: 1, lastError: "coordinator: connection refused", stale: false, staleAfterMs: 1_500)
    static let minimalRefresh = RefreshStatus(
        intervalMs: 300, lastAttemptMs: nil, lastSuccessMs: nil, consecutiveFailures: 0, lastError: nil, stale: true, staleAfterMs: 1_500)

    static let facts = ClusterFacts(grantTtlMs: 2_000, presenceTtlMs: 2_000, symbols: [SymbolSpec(symbol: "ACME", tickSize: "0.01", basePrice: 10_000, lotSize: 100)])

    /// Both optionals set never happens on the wire (an item has a quote or an error); here
    /// it only checks that each is a documented, optional field.
    static let fullBatchItem: QuoteBatchResult.Item = {
        var item = QuoteBatchResult.Item(symbol: "ACME", refusal: APIError(status: 409, code: "stale_fencing_token", message: "superseded", details: ["symbol": "ACME"]))
        item.quote = Quote(symbol: "ACME", node: "n1", fencingToken: 3, bidPrice: 9_990, bidQty: 5, askPrice: 10_010, askQty: 3, updatedAtMs: t0)
        return item
    }()
    static let minimalBatchItem: QuoteBatchResult.Item = {
        var item = QuoteBatchResult.Item(symbol: "ACME", refusal: APIError(status: 409, code: "stale_fencing_token", message: "superseded"))
        item.error = nil
        return item
    }()

    /// (schema pointer, every optional set, every optional nil).
    static let pairs: [(String, any Encodable & Sendable, any Encodable & Sendable)] = [
        ("#/components/schemas/Quote",
         Quote(symbol: "ACME", node: "n1", fencingToken: 3, bidPrice: 9_990, bidQty: 5, askPrice: 10_010, askQty: 3, updatedAtMs: t0),
         Quote(symbol: "ACME", node: "n1", fencingToken: 3, bidPrice: nil, bidQty: 0, askPrice: nil, askQty: 0, updatedAtMs: t0)),
        ("#/components/schemas/QuoteBatchResultItem", fullBatchItem, minimalBatchItem),
        ("#/components/schemas/ErrorEnvelope/properties/error",
         ErrorEnvelope(code: "invalid_field", message: "'depth' must be …", details: ["field": "depth"]).error,
         ErrorEnvelope(code: "not_found", message: "no route").error),
        ("#/components/schemas/LedgerPage", LedgerPage(fills: [fill], nextAfter: 1), LedgerPage(fills: [], nextAfter: nil)),
        ("#/components/schemas/IngestStatus",
         IngestStatus(
            cursor: 18, exchangeHeadSeq: 20, lag: 2, ledgerFillCount: 18, lastBatchAtMs: t0, lastError: "exchange fill log unavailable", lastErrorAtMs: t0,
            version: 18, ingesting: true),
         IngestStatus(cursor: 0, exchangeHeadSeq: nil, lag: nil, ledgerFillCount: 0, lastBatchAtMs: nil, lastError: nil)),
        ("#/components/schemas/ClusterEvent", fullEvent, minimalEvent),
        ("#/components/schemas/EventPage", EventPage(events: [fullEvent], headSeq: 41, compactedThroughSeq: 12), EventPage(events: [], headSeq: 0)),
        ("#/components/schemas/SymbolGrants",
         GrantLogFold.SymbolGrants(
            symbol: "ACME", highestToken: 7, open: .init(node: "n1", fencingToken: 7, grantedAtMs: t0, grantSeq: 40),
            lastEnded: .init(node: "n2", fencingToken: 6, endMs: t0 - 5)),
         GrantLogFold.SymbolGrants(symbol: "BOLT")),
        ("#/components/schemas/EventLogBase", fullEventLogBase, EventLogBase(compactedThroughSeq: 0, headSeq: 0, grants: GrantLogFold())),
        ("#/components/schemas/NodePresence",
         NodePresence(node: "n1", address: "http://127.0.0.1:7411", joinedAtMs: t0, lastHeartbeatMs: t0, expiresAtMs: t0 + 2_000, expiresInMs: 2_000, status: .alive, incarnation: "5f3a"),
         NodePresence(node: "n1", address: "http://127.0.0.1:7411", joinedAtMs: t0, lastHeartbeatMs: t0, expiresAtMs: t0, expiresInMs: 0, status: .left)),
        ("#/components/schemas/DeathNoticeResult",
         DeathNoticeResult(node: "n2", incarnation: "abc", ended: false, revokedGrants: ["BOLT"], reason: "incarnation abc is not the current one"),
         DeathNoticeResult(node: "n2", incarnation: "abc", ended: true, revokedGrants: [])),
        ("#/components/schemas/AuthorityStatus",
         AuthorityStatus(symbol: "ACME", assignedTo: "n1", node: "n1", fencingToken: 7, expiresAtMs: t0 + 2_000, expiresInMs: 1_320),
         AuthorityStatus(symbol: "BOLT", assignedTo: nil, node: nil, fencingToken: 0, expiresAtMs: nil, expiresInMs: nil)),
        ("#/components/schemas/ProcessStatus", fullProcess, minimalProcess),
        ("#/components/schemas/ProcessExit", ProcessExit(code: 0, signal: 15, atMs: t0), ProcessExit(code: nil, signal: nil, atMs: t0)),
        ("#/components/schemas/SupervisorInfo",
         SupervisorInfo(pid: 1, uptimeMs: 5, startedAtMs: t0, phase: "running"), SupervisorInfo(pid: 1, uptimeMs: 5, startedAtMs: t0)),
        ("#/components/schemas/NodeStatus/properties/quotes/items",
         NodeQuoteStatus(symbol: "ACME", bidPrice: 10_007, bidQty: 5, askPrice: 10_011, askQty: 5, fencingToken: 4, reason: .fill, sentAtMs: t0, referencePrice: 10_009, netQty: 2, positionVersion: 180),
         NodeQuoteStatus(symbol: "ACME", bidPrice: nil, bidQty: 0, askPrice: nil, askQty: 0, fencingToken: 4, reason: .timer, sentAtMs: t0)),
        ("#/components/schemas/ClusterSnapshot", fullSnapshot(), minimalSnapshot),
        ("#/components/schemas/ClusterSnapshot/properties/symbols/items", fullSymbol, minimalSymbol),
        ("#/components/schemas/HostView", fullHost, minimalHost),
        ("#/components/schemas/SnapshotWarning", fullWarning, minimalWarning),
        ("#/components/schemas/ClusterSnapshot/properties/errors/items",
         ClusterSnapshot.ServiceError(service: "supervisor", error: "host c (10.0.0.3): GET /v1/processes: connection refused", host: "c"),
         ClusterSnapshot.ServiceError(service: "exchange", error: "GET /v1/prices: connection refused")),
        ("#/components/schemas/ServiceInfo",
         ServiceInfo(role: "supervisor", name: "supervisor", version: "0.1.0", pid: 42, startedAtMs: t0 - 5_000, configDigest: "ab12", nowMs: t0),
         ServiceInfo(role: "supervisor", name: "supervisor", version: "0.1.0", pid: 42, startedAtMs: t0 - 5_000, configDigest: "ab12")),
        ("#/components/schemas/QuoteView", fullQuoteView, minimalQuoteView),
        ("#/components/schemas/ClusterSnapshot/properties/symbols/items/properties/position", fullPosition, minimalPosition),
        ("#/components/schemas/QuoteUpdate",
         QuoteUpdate(seq: 3, observedAtMs: t0, symbol: "ACME", change: .replaced, quote: fullQuoteView),
         QuoteUpdate(seq: 4, observedAtMs: t0, symbol: "ACME", change: .withdrawn, quote: minimalQuoteView)),
        ("#/components/schemas/DashboardFrame/properties/refresh", fullRefresh, minimalRefresh),
        ("#/components/schemas/DashboardFrame",
         DashboardFrame(version: 2, serverNowMs: t0, refresh: fullRefresh, cluster: facts, view: fullSnapshot(), quoteUpdates: [], timeline: [fullEvent]),
         DashboardFrame(version: 0, serverNowMs: t0, refresh: minimalRefresh, cluster: facts, view: nil, quoteUpdates: [], timeline: [])),
    ]
}

/// What the encoder emits is what the document says: with every optional set, exactly the
/// documented properties; with every optional nil, exactly the `required` ones (MMJSON omits
/// nil, it never writes `null`), and both validate.
@Suite("Response models encode as documented")
struct ModelEncodingTests {
    @Test(arguments: Models.pairs.indices)
    func optionalFieldsAreExactlyTheNonRequiredOnes(index: Int) throws {
        let document = try OpenAPIDocument.shared()
        let (pointer, full, minimal) = Models.pairs[index]
        let schema = try #require(document.resolve(pointer), "no schema at \(pointer)")
        let object = try #require(document.dereferenced(schema), "\(pointer) is not an object schema")
        let properties = Set((object["properties"] as? [String: Any] ?? [:]).keys)
        let required = Set(object["required"] as? [String] ?? [])

        let fullJSON = try JSONValue.encoding(full)
        #expect(fullJSON.objectKeys == properties, "\(pointer): every field set encodes \(fullJSON.objectKeys?.sorted() ?? []), documented \(properties.sorted())")
        let fullProblems = document.validate(fullJSON, against: schema)
        #expect(fullProblems.isEmpty, "\(pointer): \(fullProblems)")

        let minimalJSON = try JSONValue.encoding(minimal)
        #expect(minimalJSON.objectKeys == required, "\(pointer): every optional nil encodes \(minimalJSON.objectKeys?.sorted() ?? []), required \(required.sorted())")
        let minimalProblems = document.validate(minimalJSON, against: schema)
        #expect(minimalProblems.isEmpty, "\(pointer): \(minimalProblems)")
    }
}
