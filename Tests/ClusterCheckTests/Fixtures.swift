import MMCore
@testable import ClusterCheck

/// Synthetic, internally consistent cluster histories the invariants must accept, which the
/// tests then break in one precise way.
enum Fixtures {
    static let symbols = ["ACME", "BOLT", "CRUX"]

    /// One trade: symbol index, buy?, price, qty.
    typealias Trade = (symbol: Int, buy: Bool, price: Int64, qty: Int64)

    static func fills(_ trades: [Trade]) -> [Fill] {
        trades.enumerated().map { index, trade in
            let seq = Int64(index + 1)
            return Fill(
                fillId: "F-\(seq)", seq: seq, symbol: symbols[trade.symbol % symbols.count], side: trade.buy ? .buy : .sell,
                price: trade.price, qty: trade.qty, makerOrderId: "Q-\(seq)", takerOrderId: "X-\(seq)", node: "n1", fencingToken: 1,
                tsMs: 1_700_000_000_000 + seq)
        }
    }

    /// The positions a correct trading-state service would report for `fills`: every symbol,
    /// flat ones included.
    static func positions(_ fills: [Fill]) -> [Position] {
        let folded = PositionFold.fold(fills)
        return symbols.map { folded[$0] ?? .flat($0) }
    }

    /// One grant's shape: symbol index, gap after the previous grant's end (≥ 0), lifetime, and
    /// how it ended (0 release, 1 expiry, 2 coordinator restart).
    typealias GrantStep = (symbol: Int, gapMs: Int64, lifetimeMs: Int64, ending: Int)

    static let ttlMs: Int64 = 2_000

    /// A clean event log: per symbol, each grant starts at or after the previous one's end with
    /// the next token; restarts close every open grant and impose the quiet period.
    static func events(_ steps: [GrantStep]) -> [ClusterEvent] {
        var events: [ClusterEvent] = []
        var now: Int64 = 1_700_000_000_000
        var seq: Int64 = 0
        var token: [String: Int64] = [:]
        var freeAt: [String: Int64] = [:]
        func append(_ kind: String, symbol: String? = nil, node: String? = nil, token: Int64? = nil, expires: Int64? = nil, at: Int64) {
            seq += 1
            events.append(ClusterEvent(seq: seq, tsMs: at, kind: kind, symbol: symbol, node: node, fencingToken: token, expiresAtMs: expires, detail: ""))
        }
        append("coordinator_started", expires: now, at: now)
        for (index, step) in steps.enumerated() {
            let symbol = symbols[step.symbol % symbols.count]
            let start = max(now, freeAt[symbol] ?? now) + step.gapMs
            let next = (token[symbol] ?? 0) + 1
            token[symbol] = next
            let node = "n\(index % 3 + 1)"
            append("grant", symbol: symbol, node: node, token: next, expires: start + ttlMs, at: start)
            // Renewals are silent: the lifetime may run past the first expiry.
            let end = start + step.lifetimeMs
            switch step.ending % 3 {
            case 0:
                append("release", symbol: symbol, node: node, token: next, expires: end, at: end)
                freeAt[symbol] = end
            case 1:
                // The sweep notices an expiry some time after it.
                append("grant_expired", symbol: symbol, node: node, token: next, expires: end, at: end + 37)
                freeAt[symbol] = end
            default:
                // Crash-restart with the grant open: nothing may be granted for one TTL.
                let restartAt = end
                append("coordinator_started", expires: restartAt + ttlMs, at: restartAt)
                for other in symbols { freeAt[other] = max(freeAt[other] ?? 0, restartAt + ttlMs) }
            }
            // Time only moves forward along the log, as in the real coordinator.
            now = end + 40
        }
        return events
    }

    static func authority(tokens: [String: Int64], holders: [String: String]) -> AuthorityList {
        AuthorityList(
            authority: symbols.map { symbol in
                AuthorityStatus(
                    symbol: symbol, assignedTo: holders[symbol], node: holders[symbol], fencingToken: tokens[symbol] ?? 0,
                    expiresAtMs: holders[symbol] == nil ? nil : 1_700_000_002_000, expiresInMs: holders[symbol] == nil ? nil : 1_500)
            },
            quietForMs: 0)
    }

    static func members(_ nodes: [String]) -> [NodePresence] {
        nodes.map { NodePresence(node: $0, address: "http://127.0.0.1:1", joinedAtMs: 0, lastHeartbeatMs: 0, expiresAtMs: 0, expiresInMs: 1_000, status: .alive) }
    }

    static func quote(_ symbol: String, node: String, token: Int64, updatedAtMs: Int64) -> Quote {
        Quote(symbol: symbol, node: node, fencingToken: token, bidPrice: 99, bidQty: 5, askPrice: 101, askQty: 5, updatedAtMs: updatedAtMs)
    }
}
