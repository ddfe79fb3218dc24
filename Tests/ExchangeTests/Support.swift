import Exchange
import Foundation
import MMCore
import MMServiceKit
import Synchronization

/// Shared fixtures: a small config, a known grant key, grant factories.
enum Fixture {
    static let keyHex = String(repeating: "ab", count: 32)
    static let signer = GrantSigner(keyHex: keyHex)
    static let foreignSigner = GrantSigner(keyHex: String(repeating: "cd", count: 32))
    static let startMs: EpochMs = 1_700_000_000_000

    static func config(_ overrides: [String: String] = [:]) async throws -> ClusterConfig {
        var all = ["symbols.names": "ACME,BOLT"]
        all.merge(overrides) { $1 }
        return try await ClusterConfig.load(path: nil, environment: [:], overrides: all)
    }

    static func grant(_ symbol: String = "ACME", node: String = "n1", token: Int64 = 1, expiresAtMs: EpochMs = startMs + 60_000,
                      signer: GrantSigner = Fixture.signer) -> AuthorityGrant {
        signer.sign(symbol: symbol, node: node, fencingToken: token, grantedAtMs: startMs, expiresAtMs: expiresAtMs)
    }

    static func quote(_ symbol: String = "ACME", node: String = "n1", token: Int64 = 1, bid: Ticks? = 9_990, ask: Ticks? = 10_010, qty: Lots = 5,
                      grant: AuthorityGrant? = nil) -> QuoteRequest {
        QuoteRequest(node: node, grant: grant ?? Self.grant(symbol, node: node, token: token), bidPrice: bid, bidQty: qty, askPrice: ask, askQty: qty)
    }

    static func order(_ clientOrderId: String, symbol: String = "ACME", node: String = "n1", token: Int64 = 1, side: Side, price: Ticks, qty: Lots,
                      tif: TimeInForce = .gtc) -> OrderRequest {
        OrderRequest(clientOrderId: clientOrderId, symbol: symbol, side: side, price: price, qty: qty, timeInForce: tif, node: node,
                     grant: grant(symbol, node: node, token: token))
    }

    static func batchItem(_ symbol: String = "ACME", node: String = "n1", token: Int64 = 1, bid: Ticks? = 9_990, ask: Ticks? = 10_010, qty: Lots = 5,
                          grant: AuthorityGrant? = nil) -> QuoteBatchRequest.Item {
        QuoteBatchRequest.Item(symbol: symbol, grant: grant ?? Self.grant(symbol, node: node, token: token), bidPrice: bid, bidQty: qty, askPrice: ask, askQty: qty)
    }

    static func fenced(_ symbol: String = "ACME", node: String = "n1", token: Int64 = 1) -> FencedRequest {
        FencedRequest(node: node, grant: grant(symbol, node: node, token: token))
    }

    static func intent(_ symbol: String = "ACME", side: Side, price: Ticks, qty: Lots, flowIndex: Int64 = 1) -> ExternalOrderIntent {
        ExternalOrderIntent(symbol: symbol, side: side, price: price, qty: qty, flowIndex: flowIndex, aggressive: true)
    }
}

/// Runs a core's flush loop for the duration of `body` (unit tests do not run the service group).
func withFlushing<T: Sendable>(_ core: ExchangeCore, _ body: () async throws -> T) async throws -> T {
    let flusher = Task { try await core.committer.run { seq in await core.markDurable(seq) } }
    defer { flusher.cancel() }
    return try await body()
}

/// A state machine fed entries through decide → apply, as the core does.
struct StateDriver {
    var state: ExchangeState
    var journal: [(EpochMs, JournalEntry)] = []
    /// Every fill made, in seq order (the state itself hands them over and keeps none).
    var fills: [Fill] = []

    init(config: ClusterConfig) { state = ExchangeState(config: config) }

    mutating func commit(_ entries: [JournalEntry], at ts: EpochMs = Fixture.startMs) {
        for entry in entries {
            state.apply(entry, tsMs: ts)
            fills += state.takeNewFills()
            journal.append((ts, entry))
        }
    }

    /// Records an entry the state has already applied (a quote batch, which the state decides
    /// and applies in one step) as the journal's next record.
    mutating func record(_ entry: JournalEntry, at ts: EpochMs) {
        fills += state.takeNewFills()
        journal.append((ts, entry))
    }

    /// A quote batch as the core runs it: decided and applied item by item, journaled as one.
    @discardableResult
    mutating func batch(node: String, _ items: [QuoteBatchRequest.Item], at ts: EpochMs = Fixture.startMs) -> [APIError?] {
        let (entry, refusals) = state.acceptReplaceQuotes(node: node, items, signer: Fixture.signer, nowMs: ts)
        if let entry { record(entry, at: ts) }
        return refusals
    }
}
