import AsyncPrimitives
import Foundation
import Logging
import MMCore
import ProcessKit
import ServiceLifecycle
import Synchronization

/// Everything the children of one supervisor share.
struct SupervisionContext: Sendable {
    let config: ClusterConfig
    let dataDirectory: DataDirectory
    let launch: ChildLaunchSettings
    let policy: RestartPolicy
    let spawner: any ChildSpawner
    let probe: any ReadinessProbe
    let deathReporter: any DeathReporter
    let clock: any SupervisorClock
    let journal: SupervisorJournal
    let logger: Logger
    /// Prefix of every node incarnation this supervisor starts (unique per supervisor run).
    let incarnationPrefix: String
    /// The host whose processes this supervisor runs (`ClusterConfig.hostNames`).
    let host: String
    /// How often a starting process's readiness is probed.
    let readinessPollMs: Int64 = 25
}

/// One supervised process for its whole life in the tree: spawn, readiness, exits, restarts
/// with backoff and an intensity limit, operator requests and the stop with escalation.
///
/// A mailbox loop: everything that happens to the child (its reap, readiness, a timer, a
/// request) arrives as a message and is handled in order by `run()`, so no two decisions
/// about one child ever race. Timers and waits are child tasks of `run()`'s task group and
/// sleep on the injected clock: nothing is fire-and-forget, and tests drive time by hand.
///
/// It is a `Service`, but does not stop on graceful shutdown by itself: the tree stops its
/// children explicitly, in reverse start order (OTP's rule), which a task-local shutdown
/// signal reaching every child at once could not honour.
public final class ChildService: Service, Sendable {
    public let process: ClusterProcess
    private let context: SupervisionContext
    private let mailbox: AsyncStream<Message>
    private let postbox: AsyncStream<Message>.Continuation
    private let row: Mutex<Row>
    private let startOutcome = StartOutcome()

    enum Intent: Sendable, Equatable {
        case keepRunning
        case restartNow
        case stop(removing: Bool)
    }

    struct Row: Sendable {
        var state: ProcessState = .stopped
        /// The running incarnation (nil between a reap and the next spawn); its pid is the row's.
        var handle: (any ChildHandle)?
        /// The identity it was started with, for the death notice.
        var incarnation: String?
        var history: RestartPolicy.History
        var generation = 0
        var restarts: Int64 = 0
        var startedAtMs: EpochMs?
        var lastExit: ProcessExit?
        var fatalReason: String?
        var intent: Intent = .keepRunning
        /// Until the first ready: an exit or a readiness timeout then fails the start instead
        /// of being restarted, so `mmctl start` reports the cause.
        var initialStart = true
        var finished = false

        var pid: Int32? { handle?.pid }
    }

    enum Message: Sendable {
        case begin(initialStart: Bool)
        case exited(generation: Int, ChildExit)
        case ready(generation: Int)
        case readinessDeadline(generation: Int)
        case backoffElapsed(generation: Int)
        case graceElapsed(generation: Int)
        case signal(Int32, name: String, reply: CheckedContinuation<ProcessStatus, Never>)
        case restart(reply: CheckedContinuation<ProcessStatus, Never>)
        case stop(graceMs: Int64, removing: Bool)
    }

    init(process: ClusterProcess, context: SupervisionContext) {
        self.process = process
        self.context = context
        (mailbox, postbox) = AsyncStream.makeStream(of: Message.self)
        row = Mutex(Row(history: context.policy.freshHistory()))
    }

    // MARK: Inspection (any task)

    func status(now: EpochMs) -> ProcessStatus {
        let row = row.withLock { $0 }
        let live = row.state == .running || row.state == .starting || row.state == .stopping
        return ProcessStatus(
            name: process.name, role: process.role, pid: row.pid, state: row.state, restarts: row.restarts,
            uptimeMs: live ? row.startedAtMs.map { now - $0 } : nil,
            port: context.config.port(of: process), lastExit: row.lastExit, fatalReason: row.fatalReason)
    }

    var isFinished: Bool { row.withLock { $0.finished } }
    var isRemoving: Bool { row.withLock { $0.intent == .stop(removing: true) } }
    var pid: Int32? { row.withLock { $0.pid } }

    // MARK: Requests (any task)

    /// Starts the child (initial start: see `Row.initialStart`).
    func begin(initialStart: Bool) { postbox.yield(.begin(initialStart: initialStart)) }

    /// Returns once the first incarnation is ready; throws why it never became ready.
    func firstReady() async throws(SupervisorError) { try await startOutcome.wait() }

    func signal(_ signal: Int32, name: String) async -> ProcessStatus {
        await withCheckedContinuation { postbox.yield(.signal(signal, name: name, reply: $0)) }
    }

    func restart() async -> ProcessStatus {
        await withCheckedContinuation { postbox.yield(.restart(reply: $0)) }
    }

    /// SIGTERM (after SIGCONT), SIGKILL after `graceMs`; `run()` returns once it is reaped.
    func stop(graceMs: Int64, removing: Bool = false) {
        postbox.yield(.stop(graceMs: graceMs, removing: removing))
    }

    // MARK: The loop

    public func run() async {
        await withDiscardingTaskGroup { group in
            for await message in mailbox {
                if await handle(message, group: &group) { break }
            }
            // Only timers and probes can still be pending: the child has been reaped. (A
            // discarding group: finished timers of a long life must not pile up.)
            group.cancelAll()
        }
        update { $0.finished = true }
        postbox.finish()
    }

    /// Handles one message; true when the child is gone for good.
    private func handle(_ message: Message, group: inout DiscardingTaskGroup) async -> Bool {
        let now = context.clock.nowMs()
        switch message {
        case .begin(let initialStart):
            update { $0.initialStart = initialStart }
            await spawn(group: &group)

        case .exited(let generation, let exit):
            guard generation == currentGeneration else { return false }
            return await childExited(exit, now: now, group: &group)

        case .ready(let generation):
            let became = update { row -> Bool in
                guard row.generation == generation, row.state == .starting else { return false }
                row.state = .running
                row.initialStart = false
                return true
            }
            if became {
                context.journal.record("ready", process: process, "\(process.name) is ready (pid \(pid ?? 0))")
                startOutcome.resolve(.success(()))
            }

        case .readinessDeadline(let generation):
            let (stillStarting, initial) = update { row in (row.generation == generation && row.state == .starting, row.initialStart) }
            guard stillStarting else { return false }
            let timeoutMs = context.config.supervisor.readyTimeoutMs
            if initial {
                startOutcome.resolve(.failure(.notReady(process: process.name, timeoutMs: timeoutMs, logTail: logTail())))
                update { $0.intent = .stop(removing: false) }
            } else {
                note("not ready within \(timeoutMs) ms: killing it (counts as a crash)")
                context.journal.record("not_ready", process: process, "\(process.name) not ready within \(timeoutMs) ms; killed")
            }
            row.withLock { $0.handle }?.signalGroup(SIGKILL)

        case .backoffElapsed(let generation):
            let due = update { row -> Bool in
                guard row.generation == generation, row.state == .backoff, row.intent == .keepRunning else { return false }
                row.restarts += 1
                return true
            }
            guard due else { return false }
            context.journal.record("restart", process: process, "\(process.name) restart #\(restarts) after backoff")
            await spawn(group: &group)

        case .graceElapsed(let generation):
            guard generation == currentGeneration, let handle = row.withLock({ $0.handle }) else { return false }
            note("still running after the grace period: SIGKILL")
            context.journal.record("kill", process: process, "\(process.name) (pid \(handle.pid)) ignored SIGTERM for the grace period: SIGKILL")
            handle.signalGroup(SIGKILL)

        case .signal(let signal, let name, let reply):
            if let handle = row.withLock({ $0.handle }) {
                handle.signalGroup(signal)
                context.journal.record("signal", process: process, "SIG\(name) sent to \(process.name) (pid \(handle.pid)) on request")
                note("SIG\(name) sent on request")
            }
            reply.resume(returning: status(now: now))

        case .restart(let reply):
            // An operator asked: the crash history is forgotten, a fatal process comes back.
            update { $0.history = context.policy.freshHistory() }
            if let handle = row.withLock({ $0.handle }) {
                update {
                    $0.intent = .restartNow
                    $0.state = .stopping
                }
                handle.signalGroup(SIGCONT)
                handle.signalGroup(process.stopSignal)
                escalate(after: context.config.supervisor.stopGraceMs, group: &group)
                reply.resume(returning: status(now: now))
            } else {
                let previous = update { row -> ProcessState in
                    row.restarts += 1
                    row.intent = .keepRunning
                    row.fatalReason = nil
                    return row.state
                }
                context.journal.record("restart", process: process, "\(process.name) restarted on request (was \(previous.rawValue))")
                await spawn(group: &group)
                reply.resume(returning: status(now: now))
            }

        case .stop(let graceMs, let removing):
            update { $0.intent = .stop(removing: removing) }
            guard let handle = row.withLock({ $0.handle }) else {
                update { $0.state = .stopped }
                startOutcome.resolve(.failure(.io("\(process.name) was stopped before it became ready")))
                return true
            }
            update { $0.state = .stopping }
            note("stopping: \(process.stopSignal == SIGINT ? "SIGINT" : "SIGTERM") (grace \(graceMs) ms)")
            handle.signalGroup(SIGCONT) // a SIGSTOPped child cannot act on SIGTERM
            handle.signalGroup(process.stopSignal)
            escalate(after: graceMs, group: &group)
        }
        return false
    }

    // MARK: Loop-private state (touched only by `run()`)

    private var currentGeneration: Int { row.withLock { $0.generation } }
    private var restarts: Int64 { row.withLock { $0.restarts } }

    @discardableResult
    private func update<Result>(_ body: (inout Row) -> Result) -> Result {
        let result = row.withLock { body(&$0) }
        context.journal.changed()
        return result
    }

    // MARK: Actions

    /// Spawns the next incarnation. Awaited inside the loop, so no message about this child
    /// can be handled while it is half-started.
    private func spawn(group: inout DiscardingTaskGroup) async {
        let generation = context.journal.nextGeneration()
        let log: RotatingLog?
        do {
            log = try context.journal.log(
                for: process, path: context.dataDirectory.logPath(process.name),
                maxBytes: context.config.supervisor.logMaxBytes, keep: Int(context.config.supervisor.logKeep))
        } catch {
            markSpawnFailed(error)
            return
        }
        let incarnation = "\(context.incarnationPrefix).\(generation)"
        let arguments: [String]
        do {
            arguments = try context.launch.arguments(for: process, config: context.config, dataDirectory: context.dataDirectory, incarnation: incarnation)
        } catch {
            log?.note("cannot start: \(error)")
            markSpawnFailed(error)
            return
        }
        log?.note("starting: \(arguments.joined(separator: " "))")
        let request = SpawnRequest(process: process, generation: generation, executable: arguments[0], arguments: arguments, log: log)
        let handle: any ChildHandle
        do {
            handle = try await context.spawner.spawn(request)
        } catch {
            markSpawnFailed(error)
            return
        }
        adopt(handle, generation: generation, incarnation: incarnation)
        group.addTask { [postbox, self] in
            async let ready: Void = watchReadiness(generation: generation)
            let exit = await handle.exit()
            postbox.yield(.exited(generation: generation, exit))
            await ready
        }
    }

    /// Records the started child.
    private func adopt(_ handle: any ChildHandle, generation: Int, incarnation: String) {
        let now = context.clock.nowMs()
        update { row in
            row.generation = generation
            row.state = .starting
            row.intent = .keepRunning
            row.fatalReason = nil
            row.handle = handle
            row.incarnation = incarnation
            row.startedAtMs = now
        }
        try? "\(handle.pid)\n".write(toFile: context.dataDirectory.pidPath(process.name), atomically: true, encoding: .utf8)
        context.journal.record("spawn", process: process, "\(process.name) started as pid \(handle.pid)")
        context.logger.info("spawned \(process.name) pid \(handle.pid)")
    }

    private func markSpawnFailed(_ error: SupervisorError) {
        let reason = "could not be spawned: \(error)"
        update {
            $0.state = .fatal
            $0.fatalReason = reason
        }
        context.journal.record("fatal", process: process, "\(process.name) \(reason)")
        startOutcome.resolve(.failure(error))
    }

    /// Probes readiness while the child starts (a running cluster is not polled), posting
    /// `.ready` or, at the deadline, `.readinessDeadline`. Ends early when the child exits.
    private func watchReadiness(generation: Int) async {
        let deadline = context.clock.nowMs() + context.config.supervisor.readyTimeoutMs
        while !Task.isCancelled {
            let (same, starting) = row.withLock { ($0.generation == generation, $0.state == .starting && $0.pid != nil) }
            guard same, starting else { return }
            if await context.probe.isReady(process) {
                postbox.yield(.ready(generation: generation))
                return
            }
            if context.clock.nowMs() >= deadline {
                postbox.yield(.readinessDeadline(generation: generation))
                return
            }
            do { try await context.clock.sleep(forMs: context.readinessPollMs) } catch { return }
        }
    }

    /// Deadlines are fixed when the decision is made, not when the timer task first runs.
    private func escalate(after graceMs: Int64, group: inout DiscardingTaskGroup) {
        let generation = currentGeneration
        let deadline = context.clock.nowMs() + graceMs
        group.addTask { [context, postbox] in
            do { try await context.clock.sleep(untilMs: deadline) } catch { return }
            postbox.yield(.graceElapsed(generation: generation))
        }
    }

    /// The reaped child: record, tell the death notifier at once, then restart, stay down or finish.
    private func childExited(_ exit: ChildExit, now: EpochMs, group: inout DiscardingTaskGroup) async -> Bool {
        let generation = currentGeneration
        let (pid, incarnation, startedAt, intent, initial) = update { row -> (Int32, String?, EpochMs?, Intent, Bool) in
            let snapshot = (row.pid ?? 0, row.incarnation, row.startedAtMs, row.intent, row.initialStart)
            row.handle = nil
            row.incarnation = nil
            row.lastExit = ProcessExit(code: exit.code, signal: exit.signal, atMs: now)
            return snapshot
        }
        let upFor = now - (startedAt ?? now)
        try? FileManager.default.removeItem(atPath: context.dataDirectory.pidPath(process.name))
        let what = "\(process.name) (pid \(pid)) \(exit) after \(upFor) ms"
        note(what)
        context.journal.record("exit", process: process, what)
        context.logger.notice("\(what)")

        // Death is news: the coordinator hears of it before any backoff or restart. A process
        // stopped for good ends this service, whose group is then cancelled, so that notice is
        // awaited here (bounded by the reporter's timeout) rather than cut off half-way.
        if let incarnation {
            let death = ChildDeath(process: process, pid: pid, incarnation: incarnation, exit: exit)
            if case .stop = intent {
                await context.deathReporter.childDied(death)
            } else {
                group.addTask { [context] in await context.deathReporter.childDied(death) }
            }
        }

        switch intent {
        case .stop:
            update { $0.state = .stopped }
            startOutcome.resolve(.failure(.exitedDuringStart(process: process.name, exit: describe(exit), logTail: logTail())))
            return true
        case .restartNow:
            update {
                $0.intent = .keepRunning
                $0.restarts += 1
            }
            context.journal.record("restart", process: process, "\(process.name) restarted on request")
            await spawn(group: &group)
            return false
        case .keepRunning:
            break
        }
        if initial {
            update { $0.state = .stopped }
            startOutcome.resolve(.failure(.exitedDuringStart(process: process.name, exit: describe(exit), logTail: logTail())))
            return false
        }
        let decision = update { context.policy.onExit(&$0.history, upForMs: upFor, nowMs: now) }
        switch decision {
        case .restart(let delay):
            update { $0.state = .backoff }
            note("restarting in \(delay) ms")
            let deadline = now + delay
            group.addTask { [context, postbox] in
                do { try await context.clock.sleep(untilMs: deadline) } catch { return }
                postbox.yield(.backoffElapsed(generation: generation))
            }
        case .fatal(let restarts):
            let reason = "\(restarts) restart\(restarts == 1 ? "" : "s") in \(Self.seconds(context.policy.periodMs)); last exit \(exit.shortDescription)"
            update {
                $0.state = .fatal
                $0.fatalReason = reason
            }
            let message = "\(process.name) is fatal: \(reason) (supervisor.max_restarts=\(context.policy.maxRestarts)); left down. Fix the cause (see its log), then 'mmctl restart \(process.name)'"
            note(message)
            context.journal.record("fatal", process: process, message)
            context.logger.error("\(message)")
        }
        return false
    }

    static func seconds(_ milliseconds: Int64) -> String {
        milliseconds % 1_000 == 0 ? "\(milliseconds / 1_000) s" : "\(milliseconds) ms"
    }

    private func describe(_ exit: ChildExit) -> String {
        if let code = exit.code { return "exited with code \(code)" }
        if let signal = exit.signal { return "was killed by \(signalName(signal))" }
        return "exited"
    }

    private func note(_ line: String) { context.journal.existingLog(for: process)?.note(line) }

    private func logTail() -> [String] { RotatingLog.tail(path: context.dataDirectory.logPath(process.name), lines: 20) }
}

/// The outcome of a child's first start, awaited by the tree's ordered start.
final class StartOutcome: Sendable {
    private let outcome = OnceValue<Result<Void, SupervisorError>>()

    /// The first outcome wins; later ones are ignored.
    func resolve(_ result: Result<Void, SupervisorError>) { outcome.resolve(result) }

    func wait() async throws(SupervisorError) { try await outcome.value().get() }
}

extension ClusterProcess {
    /// How the supervisor asks the process to stop. PostgreSQL takes SIGTERM as "smart"
    /// shutdown, which waits for every client to disconnect; SIGINT is its "fast" shutdown
    /// (clients disconnected, everything committed kept), which is what a stop means here.
    var stopSignal: Int32 {
        if case .postgres = self { return SIGINT }
        return SIGTERM
    }
}
