import MMCore
import MMServiceKit

/// The trading-state service's domain metrics (names and meaning in docs/API.md, "Metrics").
struct TradingStateMetrics: Sendable {
    let fillsRecorded: MetricCounter
    let duplicates: MetricCounter
    let commit: MetricHistogram
    let cursor: MetricGauge
    let lag: MetricGauge
    let ingesting: MetricGauge
    let ingestErrors: MetricCounter

    static let shared = TradingStateMetrics()

    private init() {
        fillsRecorded = ServiceMetrics.counter("mm_state_fills_recorded_total", "Fills newly recorded in the ledger (each fill once, whether pushed or pulled).")
        duplicates = ServiceMetrics.counter("mm_state_fill_duplicates_total", "Fills received again and recognised as already recorded (nothing changed).")
        commit = ServiceMetrics.histogram(
            "mm_state_commit_seconds", "Time to commit one ledger batch durably (SQLite fsync or PostgreSQL COMMIT), positions included.")
        cursor = ServiceMetrics.gauge("mm_state_ingest_cursor_seq", "Highest exchange fill seq the ledger holds with nothing missing below it.")
        lag = ServiceMetrics.gauge("mm_state_ingest_lag_seqs", "Exchange fill-log head minus the ledger's cursor, in sequence numbers.")
        ingesting = ServiceMetrics.gauge("mm_state_ingesting", "1 while this replica pulls the exchange's fill log, 0 while another does.")
        ingestErrors = ServiceMetrics.counter("mm_state_ingest_errors_total", "Ingest rounds that failed (exchange unreachable, store down, a gap or conflict).")
    }
}
