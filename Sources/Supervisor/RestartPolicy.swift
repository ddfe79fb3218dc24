import MMCore

/// What happens when a supervised process exits without being asked to: OTP's answer to
/// supervisord's tight crash loops. Pure (times are passed in), so it is table-tested.
///
/// - The delay before a restart starts at `initial_ms` and doubles per consecutive crash up
///   to `max_ms`; a process that stayed up `stable_after_ms` has its delay reset.
/// - More than `max_restarts` restarts within `restart_period_ms` ⇒ `fatal`: the process is
///   left down and says so, instead of burning CPU and log space forever.
public struct RestartPolicy: Sendable, Hashable {
    public var initialMs: Int64
    public var maxMs: Int64
    public var stableAfterMs: Int64
    public var maxRestarts: Int64
    public var periodMs: Int64

    public init(initialMs: Int64, maxMs: Int64, stableAfterMs: Int64, maxRestarts: Int64, periodMs: Int64) {
        self.initialMs = initialMs
        self.maxMs = maxMs
        self.stableAfterMs = stableAfterMs
        self.maxRestarts = maxRestarts
        self.periodMs = periodMs
    }

    public init(_ settings: ClusterConfig.SupervisorSettings) {
        self.init(
            initialMs: settings.backoffInitialMs, maxMs: settings.backoffMaxMs, stableAfterMs: settings.stableAfterMs,
            maxRestarts: settings.maxRestarts, periodMs: settings.restartPeriodMs)
    }

    /// Per-process memory of recent crashes.
    public struct History: Sendable, Hashable {
        public var nextDelayMs: Int64
        /// When each restart inside the current period was decided.
        public var restartTimes: [EpochMs]
        public init(nextDelayMs: Int64, restartTimes: [EpochMs] = []) {
            self.nextDelayMs = nextDelayMs
            self.restartTimes = restartTimes
        }
    }

    public enum Decision: Sendable, Hashable {
        case restart(afterMs: Int64)
        /// The limit was exceeded: `restarts` restarts already happened within the period.
        case fatal(restarts: Int)
    }

    public func freshHistory() -> History { History(nextDelayMs: initialMs) }

    /// Decides about one unrequested exit of a process that had been up `upForMs`.
    public func onExit(_ history: inout History, upForMs: Int64, nowMs: EpochMs) -> Decision {
        if upForMs >= stableAfterMs { history.nextDelayMs = initialMs }
        history.restartTimes.removeAll { nowMs - $0 >= periodMs }
        if Int64(history.restartTimes.count) + 1 > maxRestarts {
            return .fatal(restarts: history.restartTimes.count)
        }
        history.restartTimes.append(nowMs)
        let delay = min(max(history.nextDelayMs, initialMs), maxMs)
        history.nextDelayMs = min(delay * 2, maxMs)
        return .restart(afterMs: delay)
    }
}
