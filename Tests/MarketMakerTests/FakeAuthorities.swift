import Foundation
import MMCore
import Synchronization

@testable import MarketMaker

/// In-memory coordinator, exchange and trading state for driving the node's loops without a
/// network. Every call is appended to `log` so tests can check what was sent and in what order.
final class FakeAuthorities: PresenceRegistry, AuthorityProvider, AssignmentSource, OrderEntry, ReferencePriceSource, PositionSource {
    struct State {
        var log: [String] = []
        var assignments = AssignmentTable(version: 1, symbols: [:])
        var tokens: [String: Int64] = [:]
        /// Errors the next acquires of a symbol answer with, in order.
        var acquireErrors: [String: [ClientError]] = [:]
        /// Symbols whose renewal is refused.
        var refuseRenewal: Set<String> = []
        /// Error every quote replace of a symbol answers with.
        var replaceError: [String: ClientError] = [:]
        var prices: [ReferencePrice] = []
        /// The symbol lists of every filtered price poll, in order.
        var pricePolls: [[String]] = []
        var positions = PositionsView(version: 0, positions: [])
        var book: [String: QuoteRequest] = [:]
        /// The symbols of every batch replace request, one entry per request, in order.
        var quoteBatches: [[String]] = []
        /// Every batch replace request fails as a whole with this error.
        var batchError: ClientError?
        var heartbeatsAccepted = true
        /// The incarnation each heartbeat carried, in order.
        var heartbeatIncarnations: [String?] = []
        /// How long each heartbeat takes to answer (a slow coordinator).
        var heartbeatDelayMs: Int64 = 0
        /// Symbols whose acquire is parked (as the coordinator parks it while another node holds
        /// the grant) until they are removed from this set.
        var parkedAcquires: Set<String> = []
        /// Every acquire and renewal fails as if the coordinator could not be reached.
        var authorityDown = false
    }

    let state: Mutex<State>
    let grantTtlMs: Int64
    let clock = ManualClock()

    init(grantTtlMs: Int64 = 2_000, configure: (inout State) -> Void = { _ in }) {
        var initial = State()
        configure(&initial)
        state = Mutex(initial)
        self.grantTtlMs = grantTtlMs
    }

    func update(_ body: (inout State) -> Void) { state.withLock { body(&$0) } }
    var log: [String] { state.withLock { $0.log } }
    var book: [String: QuoteRequest] { state.withLock { $0.book } }
    private func record(_ entry: String) { state.withLock { $0.log.append(entry) } }

    static func apiError(_ status: Int, _ code: String, details: [String: String]? = nil) -> ClientError {
        .api(status: status, ErrorEnvelope(code: code, message: "fake \(code)", details: details))
    }

    func makeGrant(symbol: String, node: String, token: Int64) -> AuthorityGrant {
        let now = clock.nowMs()
        return AuthorityGrant(symbol: symbol, node: node, fencingToken: token, grantedAtMs: now, expiresAtMs: now + grantTtlMs, signature: "fake")
    }

    // MARK: PresenceRegistry

    func heartbeat(node: String, _ request: HeartbeatRequest) async throws(ClientError) -> HeartbeatResponse {
        record("heartbeat \(node)")
        state.withLock { $0.heartbeatIncarnations.append(request.incarnation) }
        let (accepted, version, delayMs) = state.withLock { ($0.heartbeatsAccepted, $0.assignments.version, $0.heartbeatDelayMs) }
        guard accepted else { throw .unreachable(TransportError(url: "fake", reason: "down")) }
        if delayMs > 0 {
            do {
                try await Task.sleep(for: .milliseconds(delayMs))
            } catch {
                // Cut short on the node's side, the request still reaches the coordinator.
                Task {
                    try? await Task.sleep(for: .milliseconds(delayMs))
                    self.record("heartbeat \(node) answered")
                }
                throw .unreachable(TransportError(url: "fake", reason: "cancelled"))
            }
            record("heartbeat \(node) answered")
        }
        return HeartbeatResponse(node: node, expiresAtMs: clock.nowMs() + 2_000, assignmentsVersion: version)
    }

    func leave(node: String) async throws(ClientError) -> LeaveResult {
        record("leave \(node)")
        return LeaveResult(node: node, left: true)
    }

    // MARK: AuthorityProvider

    func acquire(symbol: String, node: String, waitMs: Int64 = 0) async throws(ClientError) -> AuthorityGrant {
        if state.withLock({ $0.parkedAcquires.contains(symbol) }) { record("acquire \(symbol) parked") }
        while state.withLock({ $0.parkedAcquires.contains(symbol) }) {
            try? await Task.sleep(for: .milliseconds(5))
            if Task.isCancelled { throw .unreachable(TransportError(url: "fake", reason: "cancelled")) }
        }
        let result: Result<AuthorityGrant, ClientError> = state.withLock { state in
            state.log.append("acquire \(symbol)")
            if state.authorityDown { return .failure(.unreachable(TransportError(url: "fake", reason: "down"))) }
            if var queued = state.acquireErrors[symbol], !queued.isEmpty {
                let error = queued.removeFirst()
                state.acquireErrors[symbol] = queued
                return .failure(error)
            }
            guard state.assignments.symbols[symbol] == node else { return .failure(Self.apiError(409, "not_assigned")) }
            let token = (state.tokens[symbol] ?? 0) + 1
            state.tokens[symbol] = token
            return .success(makeGrant(symbol: symbol, node: node, token: token))
        }
        return try result.get()
    }

    func renew(symbol: String, _ request: RenewRequest) async throws(ClientError) -> AuthorityGrant {
        record("renew one \(symbol)#\(request.fencingToken)")
        if state.withLock({ $0.authorityDown }) { throw .unreachable(TransportError(url: "fake", reason: "down")) }
        return makeGrant(symbol: symbol, node: request.node, token: request.fencingToken)
    }

    func renew(_ request: BatchRenewRequest) async throws(ClientError) -> BatchRenewResult {
        if state.withLock({ $0.authorityDown }) {
            record("renew refused: down")
            throw .unreachable(TransportError(url: "fake", reason: "down"))
        }
        return state.withLock { state in
            state.log.append("renew \(request.grants.map { "\($0.symbol)#\($0.fencingToken)" }.joined(separator: ","))")
            var result = BatchRenewResult(renewed: [], refused: [])
            for item in request.grants {
                if state.refuseRenewal.contains(item.symbol) {
                    result.refused.append(.init(symbol: item.symbol, code: "grant_lapsed", message: "fake refusal"))
                } else {
                    result.renewed.append(makeGrant(symbol: item.symbol, node: request.node, token: item.fencingToken))
                }
            }
            return result
        }
    }

    func release(symbol: String, _ request: RenewRequest) async throws(ClientError) -> ReleaseResult {
        record("release \(symbol)#\(request.fencingToken)")
        return ReleaseResult(symbol: symbol, released: true)
    }

    // MARK: AssignmentSource

    func assignments(afterVersion: Int64?, waitMs: Int64) async throws(ClientError) -> AssignmentTable {
        let table = state.withLock { $0.assignments }
        if let afterVersion, table.version <= afterVersion {
            try? await Task.sleep(for: .milliseconds(min(waitMs, 20)))
            return state.withLock { $0.assignments }
        }
        return table
    }

    // MARK: OrderEntry

    func replaceQuote(symbol: String, _ request: QuoteRequest) async throws(ClientError) -> Quote {
        let result: Result<Quote, ClientError> = state.withLock { state in
            state.log.append("replace \(symbol)#\(request.grant.fencingToken) \(request.bidPrice.map(String.init) ?? "-")/\(request.askPrice.map(String.init) ?? "-")")
            if let error = state.replaceError[symbol] { return .failure(error) }
            state.book[symbol] = request
            return .success(Quote(
                symbol: symbol, node: request.node, fencingToken: request.grant.fencingToken, bidPrice: request.bidPrice, bidQty: request.bidQty,
                askPrice: request.askPrice, askQty: request.askQty, updatedAtMs: 0))
        }
        return try result.get()
    }

    /// The batch route as the exchange serves it: each item by the single route's rules (here
    /// the fake's `replaceError`), each logged as a single replace would be.
    func replaceQuotes(_ request: QuoteBatchRequest) async throws(ClientError) -> QuoteBatchResult {
        if let error = state.withLock({ state -> ClientError? in
            state.quoteBatches.append(request.quotes.map(\.symbol))
            return state.batchError
        }) {
            throw error
        }
        var results: [QuoteBatchResult.Item] = []
        for item in request.quotes {
            do {
                let quote = try await replaceQuote(symbol: item.symbol, item.request(node: request.node))
                results.append(QuoteBatchResult.Item(symbol: item.symbol, quote: quote))
            } catch {
                guard case .api(let status, let envelope) = error else { throw error }
                results.append(QuoteBatchResult.Item(
                    symbol: item.symbol, refusal: APIError(status: status, code: envelope.error.code, message: envelope.error.message, details: envelope.error.details)))
            }
        }
        return QuoteBatchResult(results: results)
    }

    func cancelQuote(symbol: String, _ request: FencedRequest) async throws(ClientError) -> QuoteCancelResult {
        state.withLock { state in
            state.log.append("cancel \(symbol)#\(request.grant.fencingToken)")
            let had = state.book.removeValue(forKey: symbol) != nil
            return QuoteCancelResult(symbol: symbol, cancelled: had)
        }
    }

    func submitOrder(_ request: OrderRequest) async throws(ClientError) -> OrderAck { throw Self.apiError(500, "not_used") }
    func cancelOrder(orderId: String, _ request: FencedRequest) async throws(ClientError) -> OrderAck { throw Self.apiError(500, "not_used") }

    func armDeadman(_ request: DeadmanRequest) async throws(ClientError) -> DeadmanStatus {
        record("deadman \(request.node) \(request.timeoutMs)")
        return DeadmanStatus(node: request.node, armedUntilMs: clock.nowMs() + request.timeoutMs)
    }

    // MARK: Prices and positions

    func prices() async throws(ClientError) -> [ReferencePrice] { state.withLock { $0.prices } }

    func prices(symbols: [String]) async throws(ClientError) -> [ReferencePrice] {
        let wanted = Set(symbols)
        return state.withLock { state in
            state.pricePolls.append(symbols)
            return state.prices.filter { wanted.contains($0.symbol) }
        }
    }

    func price(symbol: String) async throws(ClientError) -> ReferencePrice {
        guard let price = state.withLock({ $0.prices.first { $0.symbol == symbol } }) else { throw Self.apiError(404, "unknown_symbol") }
        return price
    }

    func positions(afterVersion: Int64?, waitMs: Int64) async throws(ClientError) -> PositionsView {
        let view = state.withLock { $0.positions }
        if let afterVersion, view.version <= afterVersion {
            try? await Task.sleep(for: .milliseconds(min(waitMs, 20)))
            return state.withLock { $0.positions }
        }
        return view
    }

    // MARK: Helpers for tests

    func setPrice(_ symbol: String, _ price: Ticks, tick: Int64) {
        update { state in
            state.prices.removeAll { $0.symbol == symbol }
            state.prices.append(ReferencePrice(symbol: symbol, price: price, tickIndex: tick, tsMs: 0))
        }
    }

    /// A fill: the position's net moves, its fill seq and the ledger version advance.
    func fill(_ symbol: String, netDelta: Lots) {
        update { state in
            let version = state.positions.version + 1
            var positions = state.positions.positions
            var position = positions.first { $0.symbol == symbol } ?? Position.flat(symbol)
            positions.removeAll { $0.symbol == symbol }
            position.netQty += netDelta
            position.fillCount += 1
            position.lastFillSeq = version
            position.version = version
            positions.append(position)
            state.positions = PositionsView(version: version, positions: positions)
        }
    }

    func assign(_ symbols: [String: String]) {
        update { state in state.assignments = AssignmentTable(version: state.assignments.version + 1, symbols: symbols) }
    }
}
