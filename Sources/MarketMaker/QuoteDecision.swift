import MMCore

/// What a sent quote was computed from, so the next decision can tell which input moved.
public struct QuoteInputs: Sendable, Hashable {
    public var referencePrice: Ticks
    public var netQty: Lots
    public var positionVersion: Int64
    public var lastFillSeq: Int64
    public var fillCount: Int64

    public init(referencePrice: Ticks, netQty: Lots, positionVersion: Int64, lastFillSeq: Int64, fillCount: Int64) {
        self.referencePrice = referencePrice
        self.netQty = netQty
        self.positionVersion = positionVersion
        self.lastFillSeq = lastFillSeq
        self.fillCount = fillCount
    }

    public init(price: ReferencePrice, position: Position) {
        self.init(
            referencePrice: price.price, netQty: position.netQty, positionVersion: position.version,
            lastFillSeq: position.lastFillSeq, fillCount: position.fillCount)
    }
}

/// The last quote the exchange accepted from this node for a symbol (or the last cancel,
/// when the model withdrew both sides).
public struct SentQuote: Sendable, Hashable {
    public var target: QuoteTarget
    public var fencingToken: Int64
    public var reason: QuoteReason
    public var inputs: QuoteInputs
    public var sentAt: MonotonicInstant
    public var sentAtMs: EpochMs
}

/// One thing the quoting engine will do for a symbol this round.
public struct QuoteDecision: Sendable, Hashable {
    public enum Action: Sendable, Hashable {
        /// `PUT /v1/quotes/{symbol}` with the target.
        case replace
        /// `DELETE /v1/quotes/{symbol}`: the model withdrew both sides.
        case cancel
    }

    public var action: Action
    public var target: QuoteTarget
    public var reason: QuoteReason
    public var inputs: QuoteInputs

    /// Whether (and why) to send a quote now. Pure: the engine passes in everything.
    ///
    /// - A new grant (no quote yet under this fencing token) sends at once: `acquired`.
    /// - A fill (the position's last fill seq moved) always sends, even when the target is
    ///   unchanged, because the fill consumed resting size the replacement restores: `fill`.
    /// - Otherwise a changed target is sent, labelled by the input that moved (`position`,
    ///   `price`, else `parameters`); an unchanged target is not re-sent…
    /// - …until `refreshIntervalMs` has passed since the last send: `timer`.
    /// Returns nil while the price or position is unknown (the node never quotes on guesses).
    public static func decide(
        fencingToken: Int64,
        price: ReferencePrice?,
        position: Position?,
        last: SentQuote?,
        parameters: ClusterConfig.QuotingParameters,
        maxPriceTicks: Ticks,
        refreshIntervalMs: Int64,
        now: MonotonicInstant
    ) -> QuoteDecision? {
        guard let price, let position else { return nil }
        let inputs = QuoteInputs(price: price, position: position)
        let target = QuoteModel.quote(referencePrice: price.price, netQty: position.netQty, parameters: parameters, maxPriceTicks: maxPriceTicks)
        let action: Action = target.isEmpty ? .cancel : .replace

        guard let last, last.fencingToken == fencingToken else {
            return QuoteDecision(action: action, target: target, reason: .acquired, inputs: inputs)
        }
        let reason: QuoteReason?
        if inputs.lastFillSeq != last.inputs.lastFillSeq || inputs.fillCount != last.inputs.fillCount {
            reason = .fill
        } else if target != last.target {
            if inputs.positionVersion != last.inputs.positionVersion || inputs.netQty != last.inputs.netQty {
                reason = .position
            } else if inputs.referencePrice != last.inputs.referencePrice {
                reason = .price
            } else {
                reason = .parameters
            }
        } else if now.milliseconds(since: last.sentAt) >= refreshIntervalMs {
            // Nothing rests to refresh after a cancel: a repeated cancel would only add load.
            reason = target.isEmpty ? nil : .timer
        } else {
            reason = nil
        }
        guard let reason else { return nil }
        return QuoteDecision(action: action, target: target, reason: reason, inputs: inputs)
    }
}

/// How an exchange refusal of a quote replace or cancel is handled.
public enum ExchangeRefusal: Sendable, Hashable {
    /// The exchange says the grant no longer counts (a higher token was seen, it expired, or
    /// it does not verify): stop acting on the symbol at once and give it up.
    case lostAuthority(code: String)
    /// The request itself was refused (a bug or a misconfiguration): retry only after the
    /// refresh interval, so a bad request is not hammered at the exchange.
    case refused(code: String)
    /// The exchange could not answer (unreachable, 5xx): retry soon.
    case transient(code: String)

    public var code: String {
        switch self {
        case .lostAuthority(let code), .refused(let code), .transient(let code): code
        }
    }

    public static func classify(_ error: ClientError) -> ExchangeRefusal {
        switch error {
        case .unreachable:
            return .transient(code: "unreachable")
        case .undecodable(_, let status, _):
            return status >= 500 || status == 0 ? .transient(code: "http_\(status)") : .refused(code: "undecodable")
        case .api(let status, let envelope):
            let code = envelope.error.code
            switch code {
            case ExchangeErrorCode.staleFencingToken, ExchangeErrorCode.grantExpired, ExchangeErrorCode.invalidGrant:
                return .lostAuthority(code: code)
            default:
                return status >= 500 || status == 429 ? .transient(code: code) : .refused(code: code)
            }
        }
    }
}
