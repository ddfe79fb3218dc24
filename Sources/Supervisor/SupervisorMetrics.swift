import MMCore
import MMServiceKit
import Synchronization

/// The supervisor's metrics (names and meaning in docs/API.md, "Metrics"), brought up to date
/// from the process table each time `/metrics` is scraped, so they are never staler than the
/// table itself and nothing on the supervisor's hot paths has to remember to count.
final class SupervisorMetrics: Sendable {
    /// Restart counts already added, per process: the Prometheus counter only grows by the difference.
    private let counted = Mutex<[String: Int64]>([:])

    func update(from list: ProcessList) {
        for process in list.processes {
            let name = process.name
            ServiceMetrics.gauge("mm_supervisor_process_up", "1 while the process is running, else 0.", labels: [("process", name)])
                .set(Int64(process.state == .running ? 1 : 0))
            // `unreachable` is what a status view says of another host's process; a supervisor
            // never reports its own that way.
            for state in ProcessState.allCases where state != .unreachable {
                ServiceMetrics.gauge(
                    "mm_supervisor_process_state", "The process's supervision state (one series per state; the current one is 1).",
                    labels: [("process", name), ("state", state.rawValue)]
                ).set(Int64(process.state == state ? 1 : 0))
            }
            let added = counted.withLock { counted -> Int64 in
                // A node removed and added again starts from 0: count its restarts afresh.
                let before = min(counted[name] ?? 0, process.restarts)
                counted[name] = process.restarts
                return process.restarts - before
            }
            let restarts = ServiceMetrics.counter(
                "mm_supervisor_process_restarts_total", "Restarts of the process by the supervisor (crashes, kills, restart requests).",
                labels: [("process", name)])
            if added > 0 { restarts.increment(by: added) }
        }
    }
}
