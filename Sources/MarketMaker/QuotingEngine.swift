import AsyncPrimitives
import Logging
import MMCore
import ServiceLifecycle

/// Keeps exactly one quote per held symbol on the exchange. It sleeps until something rings
/// (an input moved, a lease came or went) or the next deadline (a refresh is due, a lease ends
/// on the node's clock), then runs one round: every symbol needing attention is handled
/// concurrently, at most one request per symbol per round, and the round completes before the
/// next is planned — so requests for one symbol are never reordered.
///
/// On graceful shutdown (which reaches it after the inputs and the grant loops have stopped)
/// it gives up every symbol — cancel the quote, release the grant — and only then returns.
public struct QuotingEngine: Service {
    let state: NodeState
    let orders: any OrderEntry
    let authority: any AuthorityProvider
    let time: any MonotonicTimeSource
    let logger: Logger

    public init(state: NodeState, orders: any OrderEntry, authority: any AuthorityProvider, time: any MonotonicTimeSource, logger: Logger) {
        self.state = state
        self.orders = orders
        self.authority = authority
        self.time = time
        self.logger = logger
    }

    public func run() async throws {
        let bell = state.engineBell
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let (worked, deadline) = await runRound()
                if worked { continue }
                await bell.wait(timeout: deadline.map { .nanoseconds(max($0.nanoseconds - time.now().nanoseconds, 0)) })
            }
        } onGracefulShutdown: {
            bell.ring()
        }
        guard !Task.isCancelled else { return }
        await state.beginShutdown()
        let engine = self
        let budgetMs = state.settings.shutdownCleanupMs
        let finished = await withTimeLimit(.milliseconds(budgetMs)) {
            // Each round cleans up every pending symbol; a few rounds cover anything that raced in.
            var rounds = 0
            while !(await engine.state.isDrained) && rounds < 5 && !Task.isCancelled {
                _ = await engine.runRound()
                rounds += 1
            }
            return true
        }
        if finished == nil {
            logger.warning("quote cancels and grant releases not done within \(budgetMs) ms (exchange or coordinator not answering): exiting anyway; the dead-man's switch pulls the quotes and the grants end with the death notice or their TTL")
        } else {
            logger.info("quotes cancelled and grants released")
        }
    }

    /// Plans and performs one round; returns whether there was anything to do and, when
    /// there was not, when the next thing falls due.
    @discardableResult
    public func runRound() async -> (worked: Bool, deadline: MonotonicInstant?) {
        let (work, deadline) = await state.planRound()
        guard !work.isEmpty else { return (false, deadline) }
        await perform(work)
        return (true, deadline)
    }

    /// Two phases: first every quote request and every cancel of a symbol being given up,
    /// then every release. So on shutdown all quotes are pulled before any grant is released,
    /// and a released symbol never still has our quote on its way to the book.
    ///
    /// Every replace of the round goes in one batch request (`PUT /v1/quotes`): one request
    /// and one exchange journal record per round instead of one per symbol, which is what lets
    /// 20 nodes quote 1,000 symbols. Cancels stay single requests (rare: a withdrawn quote or
    /// a symbol being given up).
    func perform(_ work: [EngineWork]) async {
        var replaces: [(symbol: String, token: Int64, decision: QuoteDecision)] = []
        for case .quote(let symbol, let planned, let decision) in work where decision.action == .replace {
            replaces.append((symbol, planned.fencingToken, decision))
        }
        let batch = replaces
        await withTaskGroup(of: Void.self) { group in
            if !batch.isEmpty {
                group.addTask { await sendQuotes(batch) }
            }
            for item in work {
                switch item {
                case .quote(let symbol, let planned, let decision):
                    guard decision.action != .replace else { continue }
                    group.addTask { await sendQuote(symbol: symbol, token: planned.fencingToken, decision: decision) }
                case .giveUp(let symbol, let loss):
                    group.addTask { await cancelWhileGivingUp(symbol: symbol, loss: loss) }
                }
            }
        }
        await withTaskGroup(of: Void.self) { group in
            for case .giveUp(let symbol, let loss) in work {
                group.addTask { await release(symbol: symbol, loss: loss) }
            }
        }
    }

    /// One batch of replaces. Each symbol's lease is asked for at the moment of sending, as
    /// for a single request; a symbol without one is left out. Each item's outcome is handled
    /// exactly as the single route's answer would be (a stale grant loses that symbol only);
    /// a failure of the whole request counts for every item in it.
    private func sendQuotes(_ replaces: [(symbol: String, token: Int64, decision: QuoteDecision)]) async {
        let node = state.settings.nodeId
        var sent: [(symbol: String, token: Int64, decision: QuoteDecision)] = []
        var items: [QuoteBatchRequest.Item] = []
        for replace in replaces {
            guard let lease = await state.validLease(for: replace.symbol, token: replace.token) else { continue }
            let target = replace.decision.target
            items.append(QuoteBatchRequest.Item(
                symbol: replace.symbol, grant: lease.grant, bidPrice: target.bidPrice, bidQty: target.bidQty, askPrice: target.askPrice, askQty: target.askQty))
            sent.append(replace)
        }
        // More symbols than one request may carry (a configuration beyond 1,000 symbols on
        // one node) go in consecutive requests rather than one the exchange would refuse.
        for start in stride(from: 0, to: items.count, by: QuoteBatchRequest.maxItems) {
            let end = min(start + QuoteBatchRequest.maxItems, items.count)
            await sendBatch(node: node, items: Array(items[start..<end]), sent: Array(sent[start..<end]))
        }
    }

    private func sendBatch(node: String, items: [QuoteBatchRequest.Item], sent: [(symbol: String, token: Int64, decision: QuoteDecision)]) async {
        let sentAt = time.now()
        let outcomes: [ClientError?]
        do {
            let result = try await orders.replaceQuotes(QuoteBatchRequest(node: node, quotes: items))
            // The exchange answers one result per item in order; a short answer (a bug) must
            // not count an unanswered item as sent.
            outcomes = sent.indices.map { index in
                guard index < result.results.count, result.results[index].symbol == sent[index].symbol else {
                    return .undecodable(url: ExchangeRoutes.replaceQuotes.path, status: 200, reason: "no result for \(sent[index].symbol) in the batch answer")
                }
                return result.results[index].clientError
            }
        } catch {
            outcomes = Array(repeating: error, count: sent.count)
        }
        for (replace, outcome) in zip(sent, outcomes) {
            if let outcome {
                await handleRefusal(symbol: replace.symbol, token: replace.token, decision: replace.decision, error: outcome)
            } else {
                logger.debug("\(replace.symbol) #\(replace.token) quoted \(replace.decision.target) (\(replace.decision.reason.rawValue))")
                await state.recordSent(symbol: replace.symbol, token: replace.token, decision: replace.decision, sentAt: sentAt)
            }
        }
    }

    private func handleRefusal(symbol: String, token: Int64, decision: QuoteDecision, error: ClientError) async {
        let refusal = ExchangeRefusal.classify(error)
        switch refusal {
        case .lostAuthority: logger.warning("exchange refused \(symbol) #\(token): \(error); stopping at once")
        case .refused: logger.error("exchange refused the \(symbol) quote \(decision.target): \(error)")
        case .transient: logger.debug("\(symbol) quote not delivered: \(error)")
        }
        await state.recordRefusal(symbol: symbol, token: token, refusal: refusal)
    }

    private func sendQuote(symbol: String, token: Int64, decision: QuoteDecision) async {
        let node = state.settings.nodeId
        // The last word on authority, asked at the moment of sending: a lease that ran out
        // (on the node's monotonic clock) or was given up since planning sends nothing.
        guard let lease = await state.validLease(for: symbol, token: token) else { return }
        let sentAt = time.now()
        do {
            switch decision.action {
            case .replace:
                let target = decision.target
                _ = try await orders.replaceQuote(
                    symbol: symbol,
                    QuoteRequest(node: node, grant: lease.grant, bidPrice: target.bidPrice, bidQty: target.bidQty, askPrice: target.askPrice, askQty: target.askQty))
            case .cancel:
                _ = try await orders.cancelQuote(symbol: symbol, FencedRequest(node: node, grant: lease.grant))
            }
            logger.debug("\(symbol) #\(token) \(decision.action == .replace ? "quoted" : "withdrew") \(decision.target) (\(decision.reason.rawValue))")
            await state.recordSent(symbol: symbol, token: token, decision: decision, sentAt: sentAt)
        } catch {
            await handleRefusal(symbol: symbol, token: token, decision: decision, error: error)
        }
    }

    private func cancelWhileGivingUp(symbol: String, loss: PendingLoss) async {
        let grant = loss.lease.grant
        // Only while the grant is still valid by the node's own reckoning: past that the
        // exchange would refuse it anyway, and the dead-man's switch or the next holder's
        // higher token removes the quote.
        guard await state.mayStillCancel(loss) else { return }
        do {
            _ = try await orders.cancelQuote(symbol: symbol, FencedRequest(node: state.settings.nodeId, grant: grant))
            await state.countCancel()
        } catch {
            await state.countCancelRefusal(ExchangeRefusal.classify(error))
            logger.warning("cancel of \(symbol) #\(grant.fencingToken) while giving it up failed: \(error)")
        }
    }

    private func release(symbol: String, loss: PendingLoss) async {
        let token = loss.lease.fencingToken
        do {
            _ = try await authority.release(symbol: symbol, RenewRequest(node: state.settings.nodeId, fencingToken: token))
        } catch {
            // Refused (already lapsed or superseded) or unreachable: either way the grant ends
            // at its expiry at the latest, and the node no longer acts on it.
            logger.info("release of \(symbol) #\(token) not confirmed: \(error)")
        }
        await state.finishLoss(symbol)
    }
}
