import AsyncPrimitives
import Foundation
import MMCore
import ProcessKit
import Synchronization

/// What every child of one supervisor shares: the event log, the generation counter, the
/// per-process log files, and a change counter that anyone can wait on (the API's `--wait`
/// and the in-process tests observe the tree through it instead of sleeping).
public final class SupervisorJournal: Sendable {
    static let eventCapacity = 2_000

    private struct State {
        var events: [ClusterEvent] = []
        var nextEventSeq: Int64 = 1
        var lastGeneration = 0
        var logs: [String: RotatingLog] = [:]
    }

    private let state = Mutex(State())
    private let changes = ChangeSignal()
    let clock: any EpochClock

    init(clock: any EpochClock) { self.clock = clock }

    /// Generations are unique across the supervisor, not per name: a node removed and added
    /// again under the same name must not inherit its predecessor's generation, or a timer left
    /// by the predecessor (the SIGKILL escalation after SIGTERM) would hit the newcomer.
    func nextGeneration() -> Int {
        state.withLock {
            $0.lastGeneration += 1
            return $0.lastGeneration
        }
    }

    func record(_ kind: String, process: ClusterProcess?, _ detail: String) {
        var node: String?
        if case .node = process { node = process?.name }
        let now = clock.nowMs()
        state.withLock { state in
            state.events.append(ClusterEvent(seq: state.nextEventSeq, tsMs: now, kind: kind, node: node, detail: detail))
            state.nextEventSeq += 1
            if state.events.count > Self.eventCapacity { state.events.removeFirst(state.events.count - Self.eventCapacity) }
        }
        changed()
    }

    public func eventPage(_ cursor: LogCursor) -> EventPage {
        state.withLock { state in
            let head = state.nextEventSeq - 1
            switch cursor {
            case .after(let seq, let limit):
                return EventPage(events: Array(state.events.lazy.filter { $0.seq > seq }.prefix(limit)), headSeq: head)
            case .tail(let count):
                return EventPage(events: Array(state.events.suffix(count)), headSeq: head)
            }
        }
    }

    /// The log of `process`, opened once and shared by its incarnations and the supervisor's notes.
    func log(for process: ClusterProcess, path: String, maxBytes: Int64, keep: Int) throws(SupervisorError) -> RotatingLog {
        if let existing = state.withLock({ $0.logs[process.name] }) { return existing }
        let created: RotatingLog
        do {
            created = try RotatingLog(path: path, maxBytes: maxBytes, keep: keep)
        } catch let error as SupervisorError {
            throw error
        } catch {
            throw .io("\(error)")
        }
        return state.withLock { state in
            if let raced = state.logs[process.name] { return raced }
            state.logs[process.name] = created
            return created
        }
    }

    func existingLog(for process: ClusterProcess) -> RotatingLog? {
        state.withLock { $0.logs[process.name] }
    }

    // MARK: Changes

    /// Something in the tree changed: wake every waiter.
    func changed() { changes.signal() }

    var changeCount: UInt64 { changes.version }

    /// Returns once the change counter has moved past `seen` (at once if it already has), or
    /// when the calling task is cancelled.
    func waitForChange(after seen: UInt64) async { await changes.wait(after: seen, timeoutMs: nil) }
}
