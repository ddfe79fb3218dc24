import AsyncPrimitives
import Foundation
import Logging
import MMCore
import ProcessKit
import Testing
@testable import Supervisor

/// The supervisor's rules in-process: a fake spawner, a fake readiness probe and a clock the
/// test moves. Nothing here sleeps; the only wall-clock bound is a safety net against a hang.
struct ProcessTreeTests {
    struct TimedOut: Error, CustomStringConvertible {
        let description: String
    }

    /// One supervisor over fakes, with its tree running.
    final class Tree: Sendable {
        let supervisor: ProcessSupervisor
        let spawner = FakeSpawner()
        let probe = FakeProbe()
        let clock = SteppedClock()
        let notifier: RecordingNotifier
        let config: ClusterConfig
        let dataDirectory: DataDirectory
        let running: Task<Void, Never>

        init(notifier: RecordingNotifier = RecordingNotifier(), etcdPath: String? = "/opt/etcd", _ adjust: (inout ClusterConfig) -> Void = { _ in }) throws {
            self.notifier = notifier
            var config = ClusterConfig.defaults
            adjust(&config)
            self.config = config
            dataDirectory = DataDirectory(FileManager.default.temporaryDirectory.appendingPathComponent("tree-\(UUID().uuidString)").path)
            try dataDirectory.ensureExists()
            let supervisor = ProcessSupervisor(
                config: config, dataDirectory: dataDirectory,
                launch: ChildLaunchSettings(mmdPath: "/opt/mmd", configPath: nil, overrides: [], etcdPath: etcdPath),
                spawner: spawner, probe: probe, deathReporter: notifier, clock: clock, logger: Logger(label: "tree-test"))
            self.supervisor = supervisor
            running = Task { await supervisor.run() }
        }

        /// Waits (on changes, not on time) until `predicate` holds; fails after 10 s of wall time.
        func eventually(_ what: String, _ predicate: @escaping @Sendable (ProcessList) -> Bool) async throws {
            let supervisor = supervisor
            let met = await withTimeLimit(.seconds(10)) { await supervisor.waitUntil(predicate) } != nil
            if !met { throw TimedOut(description: "timed out waiting for: \(what); processes: \(await supervisor.processList().processes.map { "\($0.name)=\($0.state.rawValue)" })") }
        }

        func state(_ name: String) async -> ProcessState? {
            await supervisor.processList().processes.first { $0.name == name }?.state
        }

        func process(_ name: String) async -> ProcessStatus? {
            await supervisor.processList().processes.first { $0.name == name }
        }

        /// Waits until some timer sleeps on the clock, then moves time to its deadline.
        func advanceToNextTimer() async throws {
            let clock = clock
            try await eventuallyTrue("a timer is pending") { clock.nextDeadline != nil }
            if let deadline = clock.nextDeadline { clock.advance(byMs: max(0, deadline - clock.nowMs())) }
        }

        /// For what the tree does not announce (a timer registering, a signal sent, a notice
        /// delivered): polled, yielding to the tasks that make it true; fails after 10 s.
        func eventuallyTrue(_ what: String, _ condition: @escaping @Sendable () -> Bool) async throws {
            let deadline = ContinuousClock.now + .seconds(10)
            var rounds = 0
            while !condition() {
                guard ContinuousClock.now < deadline else { throw TimedOut(description: "timed out waiting for: \(what)") }
                rounds += 1
                if rounds % 100 == 0 { try? await Task.sleep(for: .milliseconds(1)) } else { await Task.yield() }
            }
        }

        func started(nodes: Int = 2) async throws {
            try await supervisor.startAll(nodeCount: nodes)
        }

        /// Stops the tree, moving the clock past each grace so children that ignore SIGTERM go too.
        func shutDown() async {
            let supervisor = supervisor
            let stop = Task { await supervisor.stopAll(graceMs: 1_000) }
            while await supervisor.phase != .stopped {
                clock.advance(byMs: 1_000)
                try? await Task.sleep(for: .milliseconds(1))
            }
            await stop.value
            await running.value
            try? FileManager.default.removeItem(atPath: dataDirectory.path)
        }
    }

    /// The nodes are peers: all are spawned before any is ready, so 20 start in the time of one.
    @Test func theNodesStartTogether() async throws {
        let tree = try Tree()
        tree.probe.holdBack("n1")
        let start = Task { try await tree.started(nodes: 3) }
        try await tree.eventually("n1 spawned") { list in list.processes.contains { $0.name == "n1" && $0.state == .starting } }
        let spawner = tree.spawner
        try await tree.eventuallyTrue("n2 and n3 spawned while n1 is not ready") { Set(spawner.spawnOrder).isSuperset(of: ["n1", "n2", "n3"]) }
        #expect(!tree.spawner.spawnOrder.contains("gui"), "what comes after the nodes waits for every one of them")
        tree.probe.release("n1")
        while !(await tree.supervisor.phase == .running) {
            if let deadline = tree.clock.nextDeadline { tree.clock.advance(byMs: max(0, deadline - tree.clock.nowMs())) }
            try? await Task.sleep(for: .milliseconds(1))
        }
        try await start.value
        #expect(tree.spawner.spawnOrderOfTiers == ["coordinator", "state", "exchange", "n1", "n2", "n3", "gui"])
        await tree.shutDown()
    }

    @Test func startsInDependencyOrderEachOnlyAfterThePreviousIsReady() async throws {
        let tree = try Tree()
        tree.probe.holdBack("state")
        let start = Task { try await tree.started(nodes: 2) }
        try await tree.eventually("state spawned") { list in list.processes.contains { $0.name == "state" && $0.state == .starting } }
        // State is not ready: nothing after it may start, however long it takes (within the timeout).
        tree.clock.advance(byMs: 1_000)
        try await tree.eventually("state still starting") { list in list.processes.contains { $0.name == "state" && $0.state == .starting } }
        #expect(tree.spawner.spawnOrder == ["coordinator", "state"])
        tree.probe.release("state")
        // The next probe finds it ready; move time only while something waits on the clock.
        while !(await tree.supervisor.phase == .running) {
            if let deadline = tree.clock.nextDeadline { tree.clock.advance(byMs: max(0, deadline - tree.clock.nowMs())) }
            try? await Task.sleep(for: .milliseconds(1))
        }
        try await start.value
        #expect(tree.spawner.spawnOrderOfTiers == ["coordinator", "state", "exchange", "n1", "n2", "gui"])
        #expect(await tree.supervisor.phase == .running)
        await tree.shutDown()
    }

    @Test func aProcessThatNeverBecomesReadyFailsTheStartWithTheTimeout() async throws {
        let tree = try Tree { $0.supervisor.readyTimeoutMs = 2_000 }
        tree.probe.holdBack("exchange")
        let start = Task { () -> SupervisorError? in
            do { try await tree.started(nodes: 1) } catch let error as SupervisorError { return error } catch { return .io("\(error)") }
            return nil
        }
        try await tree.eventually("exchange starting") { list in list.processes.contains { $0.name == "exchange" && $0.state == .starting } }
        let began = tree.clock.nowMs()
        while tree.clock.nowMs() - began < 2_000 { try await tree.advanceToNextTimer() }
        let failure = await start.value
        guard case .notReady(let process, let timeoutMs, _) = failure else {
            Issue.record("expected notReady, got \(String(describing: failure))")
            await tree.shutDown()
            return
        }
        #expect(process == "exchange")
        #expect(timeoutMs == 2_000)
        #expect(tree.spawner.latest("exchange")?.signals.contains(SIGKILL) == true)
        #expect(!tree.spawner.spawnOrder.contains("n1"), "nothing after the failed process may start")
        await tree.shutDown()
    }

    @Test func anExitDuringStartFailsTheStartAndIsNotRestarted() async throws {
        let tree = try Tree()
        tree.probe.holdBack("coordinator")
        let start = Task { () -> SupervisorError? in
            do { try await tree.started(nodes: 1) } catch let error as SupervisorError { return error } catch { return .io("\(error)") }
            return nil
        }
        try await tree.eventually("coordinator starting") { list in list.processes.contains { $0.name == "coordinator" && $0.pid != nil } }
        tree.spawner.latest("coordinator")?.crash(signal: SIGSEGV)
        let failure = await start.value
        guard case .exitedDuringStart(let process, let exit, _) = failure else {
            Issue.record("expected exitedDuringStart, got \(String(describing: failure))")
            await tree.shutDown()
            return
        }
        #expect(process == "coordinator")
        #expect(exit.contains("SIGSEGV"))
        #expect(tree.spawner.incarnations(of: "coordinator").count == 1)
        await tree.shutDown()
    }

    @Test func aCrashIsRestartedAfterABackoffThatDoublesAndTheDeathIsToldAtOnce() async throws {
        let tree = try Tree()
        try await tree.started(nodes: 2)
        let initialMs = tree.config.supervisor.backoffInitialMs
        let first = try #require(tree.spawner.latest("n1"))
        first.crash()
        try await tree.eventually("n1 in backoff") { list in list.processes.contains { $0.name == "n1" && $0.state == .backoff } }
        // Told before any time passes: the backoff does not delay the notice.
        try await tree.eventuallyTrue("death notice") { tree.notifier.recorded.contains { $0.process == .node(1) } }
        let death = try #require(tree.notifier.recorded.first { $0.process == .node(1) })
        #expect(death.pid == first.pid)
        #expect(death.exit.signal == SIGKILL)
        let incarnationArgument = first.arguments.firstIndex(of: "--incarnation").map { first.arguments[$0 + 1] }
        #expect(incarnationArgument == death.incarnation)

        tree.clock.advance(byMs: initialMs - 1)
        try await tree.eventually("still in backoff") { list in list.processes.contains { $0.name == "n1" && $0.state == .backoff } }
        #expect(tree.spawner.incarnations(of: "n1").count == 1)
        tree.clock.advance(byMs: 1)
        try await tree.eventually("n1 running again") { list in list.processes.contains { $0.name == "n1" && $0.state == .running && $0.restarts == 1 } }
        let second = try #require(tree.spawner.latest("n1"))
        #expect(second.pid != first.pid)
        let secondIncarnation = second.arguments.firstIndex(of: "--incarnation").map { second.arguments[$0 + 1] }
        #expect(secondIncarnation != incarnationArgument, "every incarnation has its own identity")

        // A second crash soon after waits twice as long.
        second.crash()
        try await tree.eventually("n1 in backoff again") { list in list.processes.contains { $0.name == "n1" && $0.state == .backoff } }
        tree.clock.advance(byMs: initialMs * 2 - 1)
        try await tree.eventually("still waiting") { list in list.processes.contains { $0.name == "n1" && $0.state == .backoff } }
        tree.clock.advance(byMs: 1)
        try await tree.eventually("n1 back") { list in list.processes.contains { $0.name == "n1" && $0.state == .running && $0.restarts == 2 } }
        await tree.shutDown()
    }

    @Test func tooManyRestartsInThePeriodIsFatalAndSaysWhy() async throws {
        let tree = try Tree {
            $0.supervisor.maxRestarts = 3
            $0.supervisor.restartPeriodMs = 30_000
            $0.supervisor.backoffInitialMs = 100
        }
        try await tree.started(nodes: 1)
        for round in 1...3 {
            tree.spawner.latest("exchange")?.crash()
            try await tree.eventually("backoff \(round)") { list in list.processes.contains { $0.name == "exchange" && $0.state == .backoff } }
            try await tree.advanceToNextTimer()
            try await tree.eventually("running \(round)") { list in list.processes.contains { $0.name == "exchange" && $0.state == .running && $0.restarts == Int64(round) } }
        }
        tree.spawner.latest("exchange")?.crash(signal: SIGKILL)
        try await tree.eventually("fatal") { list in list.processes.contains { $0.name == "exchange" && $0.state == .fatal } }
        let status = try #require(await tree.process("exchange"))
        #expect(status.fatalReason == "3 restarts in 30 s; last exit signal 9 (SIGKILL)")
        #expect(status.pid == nil)
        #expect(tree.spawner.incarnations(of: "exchange").count == 4)

        // An operator's restart brings it back and clears the reason and the history.
        let restarted = try await tree.supervisor.restart(named: "exchange")
        #expect(restarted.fatalReason == nil)
        try await tree.eventually("running after restart") { list in list.processes.contains { $0.name == "exchange" && $0.state == .running } }
        #expect(await tree.process("exchange")?.fatalReason == nil)
        await tree.shutDown()
    }

    @Test func aStableRunResetsTheBackoff() async throws {
        let tree = try Tree { $0.supervisor.backoffInitialMs = 100 }
        try await tree.started(nodes: 1)
        tree.spawner.latest("n1")?.crash()
        try await tree.advanceToNextTimer()
        try await tree.eventually("running") { list in list.processes.contains { $0.name == "n1" && $0.state == .running && $0.restarts == 1 } }
        tree.clock.advance(byMs: tree.config.supervisor.stableAfterMs)
        tree.spawner.latest("n1")?.crash()
        try await tree.eventually("backoff") { list in list.processes.contains { $0.name == "n1" && $0.state == .backoff } }
        tree.clock.advance(byMs: 100)
        try await tree.eventually("restarted after the initial delay") { list in list.processes.contains { $0.name == "n1" && $0.restarts == 2 && $0.state == .running } }
        await tree.shutDown()
    }

    @Test func stopGoesInReverseOrderAndEscalatesToSIGKILLAfterTheGrace() async throws {
        let tree = try Tree()
        try await tree.started(nodes: 2)
        let gui = try #require(tree.spawner.latest("gui"))
        let exchange = try #require(tree.spawner.latest("exchange"))
        let stop = Task { await tree.supervisor.stopAll(graceMs: 5_000) }
        try await tree.eventually("stopped") { $0.supervisor.phase == "stopped" }
        await stop.value
        await tree.running.value
        #expect(gui.signals.contains(SIGTERM))
        #expect(exchange.signals.contains(SIGTERM))
        // Reverse order: every child's exit event comes after those started later.
        let exits = tree.supervisor.eventPage(after: 0, limit: 2_000).events.filter { $0.kind == "exit" }.map { $0.detail.split(separator: " ")[0] }
        #expect(exits.first == "gui")
        #expect(Array(exits.suffix(3)) == ["exchange", "state", "coordinator"])
        #expect(Set(exits[1...2]) == ["n1", "n2"])
        try? FileManager.default.removeItem(atPath: tree.dataDirectory.path)
    }

    @Test func aChildThatIgnoresSIGTERMIsKilledAfterTheGraceAndOnlyThen() async throws {
        let tree = try Tree()
        tree.spawner.ignoreTerm("gui")
        try await tree.started(nodes: 1)
        let gui = try #require(tree.spawner.latest("gui"))
        let exchange = try #require(tree.spawner.latest("exchange"))
        let stop = Task { await tree.supervisor.stopAll(graceMs: 3_000) }
        try await tree.eventuallyTrue("gui got SIGTERM") { gui.signals.contains(SIGTERM) }
        tree.clock.advance(byMs: 2_999)
        try await tree.eventually("gui stopping") { list in list.processes.contains { $0.name == "gui" && $0.state == .stopping } }
        #expect(!gui.signals.contains(SIGKILL))
        #expect(exchange.signals.isEmpty, "nothing before the GUI in start order is stopped while the GUI runs")
        try await tree.advanceToNextTimer()
        await stop.value
        #expect(gui.signals.last == SIGKILL)
        #expect(exchange.signals.contains(SIGTERM))
        let kills = tree.supervisor.eventPage(after: 0, limit: 2_000).events.filter { $0.kind == "kill" }
        #expect(kills.count == 1)
        await tree.running.value
    }

    @Test func aRemovedNodesKillTimerCannotHitItsReAddedSuccessor() async throws {
        let tree = try Tree()
        tree.spawner.ignoreTerm("n2")
        try await tree.started(nodes: 2)
        let old = try #require(tree.spawner.latest("n2"))
        _ = try await tree.supervisor.removeNode(named: "n2")
        try await tree.eventuallyTrue("SIGTERM sent") { old.signals.contains(SIGTERM) }
        old.crash(signal: SIGTERM) // it leaves after all, before the grace ends
        try await tree.eventually("n2 gone") { list in !list.processes.contains { $0.name == "n2" } }
        let added = try await tree.supervisor.addNode()
        #expect(added.name == "n2")
        try await tree.eventually("new n2 running") { list in list.processes.contains { $0.name == "n2" && $0.state == .running } }
        let successor = try #require(tree.spawner.latest("n2"))
        #expect(successor !== old)
        tree.clock.advance(byMs: tree.config.supervisor.stopGraceMs + 1)
        try await tree.eventually("still running") { list in list.processes.contains { $0.name == "n2" && $0.state == .running } }
        #expect(successor.signals.isEmpty, "the predecessor's grace timer must not reach the newcomer")
        await tree.shutDown()
    }

    /// A removed node's process is gone for good, so its child service ends right after the
    /// reap; the death notice must still be delivered, not cancelled with the service's timers.
    @Test func aRemovedNodesDeathNoticeIsDeliveredNotCancelled() async throws {
        let tree = try Tree(notifier: RecordingNotifier(roundTrip: .milliseconds(20)))
        try await tree.started(nodes: 2)
        let old = try #require(tree.spawner.latest("n2"))
        _ = try await tree.supervisor.removeNode(named: "n2")
        try await tree.eventually("n2 gone") { list in !list.processes.contains { $0.name == "n2" } }
        try await tree.eventuallyTrue("n2's death notice delivered") { tree.notifier.recorded.contains { $0.process == .node(2) } }
        #expect(tree.notifier.recorded.first { $0.process == .node(2) }?.pid == old.pid)
        #expect(tree.notifier.cancelled.isEmpty, "cancelled notices: \(tree.notifier.cancelled)")
        await tree.shutDown()
    }

    @Test func aSpawnFailureIsFatalWithTheReason() async throws {
        let tree = try Tree()
        try await tree.started(nodes: 1)
        tree.spawner.failSpawns(of: "n1")
        _ = try await tree.supervisor.restart(named: "n1")
        try await tree.eventually("n1 fatal") { list in list.processes.contains { $0.name == "n1" && $0.state == .fatal } }
        let status = try #require(await tree.process("n1"))
        #expect(status.fatalReason?.contains("could not be spawned") == true)
        await tree.shutDown()
    }

    @Test func requestsAreRefusedWithClearErrorsAndChangeNothing() async throws {
        let tree = try Tree()
        try await tree.started(nodes: 1)
        await #expect(throws: APIError.self) { _ = try await tree.supervisor.signal(named: "n9", signal: "KILL") }
        await #expect(throws: APIError.self) { _ = try await tree.supervisor.signal(named: "n1", signal: "HUP") }
        await #expect(throws: APIError.self) { _ = try await tree.supervisor.removeNode(named: "exchange") }
        #expect(tree.spawner.latest("n1")?.signals.isEmpty == true)
        #expect(tree.spawner.children.count == 5)
        await tree.shutDown()
    }
}
