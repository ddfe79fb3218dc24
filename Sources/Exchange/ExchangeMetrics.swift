import MMCore
import MMServiceKit

/// The exchange's domain metrics (names and meaning in docs/API.md, "Metrics").
struct ExchangeMetrics: Sendable {
    /// Durable fills, counted when they are published (as `/v1/fills` shows them).
    let fills: [String: MetricCounter]
    let quotesReplaced: MetricCounter
    let quotesCancelled: MetricCounter
    let deadmanFirings: MetricCounter
    let fencingRejections: [String: MetricCounter]
    let journalCommit: MetricHistogram
    /// Seconds each symbol spent without a two-sided market-maker quote.
    let unquoted: [String: MetricCounter]
    /// Seconds each symbol spent with no market-maker quote at all (neither side): a fill that
    /// takes one side leaves the symbol one-sided, not unquoted, until the holder replenishes it.
    let withoutQuote: [String: MetricCounter]
    let staleAccepted: MetricGauge
    let publishedFillSeq: MetricGauge

    /// The refusals that are the fencing rules at work (the rest are bad input).
    static let fencingCodes = [ExchangeErrorCode.staleFencingToken, ExchangeErrorCode.invalidGrant, ExchangeErrorCode.grantExpired]

    init(symbols: [String]) {
        fills = ServiceMetrics.perSymbolCounters("mm_exchange_fills_total", "Fills made durable and published, by symbol.", symbols: symbols)
        quotesReplaced = ServiceMetrics.counter("mm_exchange_quotes_replaced_total", "Quote replacements accepted from nodes.")
        quotesCancelled = ServiceMetrics.counter("mm_exchange_quotes_cancelled_total", "Quote withdrawals accepted from nodes.")
        deadmanFirings = ServiceMetrics.counter(
            "mm_exchange_deadman_firings_total", "Dead-man's switches that fired and pulled a node's quotes and orders.")
        fencingRejections = Dictionary(uniqueKeysWithValues: Self.fencingCodes.map { code in
            (code, ServiceMetrics.counter(
                "mm_exchange_fencing_rejections_total", "Requests refused by the grant and fencing-token checks, by error code.",
                labels: [("code", code)]))
        })
        journalCommit = ServiceMetrics.histogram(
            "mm_exchange_journal_commit_seconds", "Time to make one group-commit batch of journal records durable (fsync included).")
        unquoted = ServiceMetrics.perSymbolCounters(
            "mm_exchange_unquoted_seconds_total", "Seconds a symbol had no two-sided market-maker quote resting, by symbol.", symbols: symbols)
        withoutQuote = ServiceMetrics.perSymbolCounters(
            "mm_exchange_no_quote_seconds_total", "Seconds a symbol had no market-maker quote resting on either side, by symbol.", symbols: symbols)
        staleAccepted = ServiceMetrics.gauge(
            "mm_exchange_stale_accepted", "Requests accepted with a fencing token below one already seen; anything but 0 is a bug.")
        publishedFillSeq = ServiceMetrics.gauge("mm_exchange_fill_seq", "Sequence number of the last published fill (the fill log's head).")
    }
}
