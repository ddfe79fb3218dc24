import AsyncPrimitives
import Foundation
import MMCore
import ProcessKit
import Synchronization
@testable import Supervisor

/// A clock only the test moves. Sleepers wake when `advance` passes their deadline, so a
/// backoff or a grace period is crossed in no wall time at all.
final class SteppedClock: SupervisorClock {
    private struct Sleeper {
        var deadline: EpochMs
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: EpochMs
        var sleepers: [UInt64: Sleeper] = [:]
        var nextId: UInt64 = 0
    }

    private let state: Mutex<State>

    init(startMs: EpochMs = 1_700_000_000_000) { state = Mutex(State(now: startMs)) }

    func nowMs() -> EpochMs { state.withLock { $0.now } }

    var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    /// The earliest pending deadline, if anything sleeps.
    var nextDeadline: EpochMs? { state.withLock { $0.sleepers.values.map(\.deadline).min() } }

    func sleep(untilMs deadline: EpochMs) async throws {
        let id = state.withLock { state -> UInt64 in
            state.nextId += 1
            return state.nextId
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let due = state.withLock { state -> Bool in
                    if Task.isCancelled { return true }
                    if state.now >= deadline { return true }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return false
                }
                if due {
                    if Task.isCancelled { continuation.resume(throwing: CancellationError()) } else { continuation.resume() }
                }
            }
        } onCancel: {
            state.withLock { $0.sleepers.removeValue(forKey: id) }?.continuation.resume(throwing: CancellationError())
        }
    }

    func advance(byMs delta: Int64) {
        let due = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.now += delta
            let now = state.now
            let ready = state.sleepers.filter { $0.value.deadline <= now }
            for id in ready.keys { state.sleepers[id] = nil }
            return ready.values.map(\.continuation)
        }
        for continuation in due { continuation.resume() }
    }
}

/// A child that exists only in memory. It obeys SIGTERM unless told to ignore it, always
/// dies of SIGKILL, and records every signal it got.
final class FakeChild: ChildHandle {
    let pid: Int32
    let process: ClusterProcess
    let arguments: [String]
    private let exitLatch = OnceValue<ChildExit>()
    private let state = Mutex<(signals: [Int32], ignoresTerm: Bool, exited: Bool)>(([], false, false))

    init(pid: Int32, process: ClusterProcess, arguments: [String], ignoresTerm: Bool) {
        self.pid = pid
        self.process = process
        self.arguments = arguments
        state.withLock { $0.ignoresTerm = ignoresTerm }
    }

    var signals: [Int32] { state.withLock { $0.signals } }
    var hasExited: Bool { state.withLock { $0.exited } }

    func signalGroup(_ signal: Int32) {
        let dies = state.withLock { state -> Bool in
            state.signals.append(signal)
            return !state.exited && (signal == SIGKILL || (signal == SIGTERM && !state.ignoresTerm))
        }
        if dies { end(ChildExit(code: signal == SIGTERM ? 0 : nil, signal: signal == SIGTERM ? nil : signal)) }
    }

    /// The child dies by itself (a crash).
    func crash(signal: Int32 = SIGKILL) { end(ChildExit(code: nil, signal: signal)) }

    func exit() async -> ChildExit { await exitLatch.value() }

    private func end(_ exit: ChildExit) {
        let first = state.withLock { state -> Bool in
            defer { state.exited = true }
            return !state.exited
        }
        if first { exitLatch.resolve(exit) }
    }
}

/// Hands out `FakeChild`ren and remembers them in spawn order.
final class FakeSpawner: ChildSpawner {
    private let state = Mutex<(children: [FakeChild], ignoringTerm: Set<String>, failing: Set<String>)>(([], [], []))

    var children: [FakeChild] { state.withLock { $0.children } }
    var spawnOrder: [String] { children.map(\.process.name) }
    /// Spawn order with each run of nodes sorted: the nodes start together as one tier, so
    /// their order among themselves is whichever task ran first.
    var spawnOrderOfTiers: [String] {
        var out: [String] = []
        var nodes: [String] = []
        for name in spawnOrder {
            if name.hasPrefix("n"), Int(name.dropFirst()) != nil {
                nodes.append(name)
                continue
            }
            out += nodes.sorted { Int($0.dropFirst())! < Int($1.dropFirst())! }
            nodes = []
            out.append(name)
        }
        return out + nodes.sorted { Int($0.dropFirst())! < Int($1.dropFirst())! }
    }

    func incarnations(of name: String) -> [FakeChild] { children.filter { $0.process.name == name } }
    func latest(_ name: String) -> FakeChild? { incarnations(of: name).last }

    func ignoreTerm(_ name: String) { state.withLock { _ = $0.ignoringTerm.insert(name) } }
    func failSpawns(of name: String) { state.withLock { _ = $0.failing.insert(name) } }

    func spawn(_ request: SpawnRequest) async throws(SupervisorError) -> any ChildHandle {
        let outcome: Result<FakeChild, SupervisorError> = state.withLock { state in
            if state.failing.contains(request.process.name) { return .failure(.spawnFailed(request.executable, errno: ENOENT)) }
            let child = FakeChild(
                pid: Int32(10_000 + request.generation), process: request.process, arguments: request.arguments,
                ignoresTerm: state.ignoringTerm.contains(request.process.name))
            state.children.append(child)
            return .success(child)
        }
        return try outcome.get()
    }
}

/// Ready once the test says so (everything is ready at once unless held back).
final class FakeProbe: ReadinessProbe {
    private let held = Mutex<Set<String>>([])

    func holdBack(_ name: String) { held.withLock { _ = $0.insert(name) } }
    func release(_ name: String) { held.withLock { _ = $0.remove(name) } }

    func isReady(_ process: ClusterProcess) async -> Bool { !held.withLock { $0.contains(process.name) } }
}

final class RecordingNotifier: DeathReporter, Sendable {
    private let deaths = Mutex<[ChildDeath]>([])
    private let cut = Mutex<[ChildDeath]>([])
    /// Wall time a delivery takes, as an HTTP round trip would; 0 records at once.
    let roundTrip: Duration

    init(roundTrip: Duration = .zero) { self.roundTrip = roundTrip }

    var recorded: [ChildDeath] { deaths.withLock { $0 } }
    /// Notices whose delivery was cancelled half-way (never reached the coordinator).
    var cancelled: [ChildDeath] { cut.withLock { $0 } }

    func childDied(_ death: ChildDeath) async {
        if roundTrip > .zero {
            do { try await Task.sleep(for: roundTrip) } catch {
                cut.withLock { $0.append(death) }
                return
            }
        }
        deaths.withLock { $0.append(death) }
    }
}
