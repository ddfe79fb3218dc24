import Foundation
import MMCore
import MMTestSupport
import Testing
@testable import ClusterCheck

/// A real cluster started with `mmctl start` in a temp data directory: `check` must find every
/// invariant holding, a short kill drill must recover and pass, and a frozen exchange must make
/// the check say "unreachable" (exit 4) rather than "held".
@Suite("live cluster", .serialized)
struct LiveClusterTests {
    /// Runs mmctl to completion with posix_spawn + waitpid: Foundation's Process does not
    /// notice the exit of `mmctl start` (it leaves a daemon behind) on this platform, so the
    /// test reaps the child itself.
    static func mmctl(_ arguments: [String], dataDirectory: DataDirectory, timeout: Duration = .seconds(90)) async throws -> (status: Int32, output: String) {
        let outputPath = dataDirectory.file("mmctl-\(arguments[0]).out")
        var environment = ProcessInfo.processInfo.environment
        environment["MMD_BINARY"] = TestPaths.mmd
        environment["NO_COLOR"] = "1"
        let argv = ([TestPaths.mmctl] + arguments + ["--data-dir", dataDirectory.path]).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, TestPaths.mmctl, &actions, nil, argv, envp)
        guard spawned == 0 else { throw HarnessError("posix_spawn \(TestPaths.mmctl) failed: errno \(spawned)") }
        let deadline = ContinuousClock.now + timeout
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            guard ContinuousClock.now < deadline else {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                throw HarnessError("mmctl \(arguments.joined(separator: " ")) did not finish within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let exitCode = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (exitCode, (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
    }

    @Test("check holds on a live cluster; a kill drill passes; a frozen exchange is reported unreachable")
    func liveCluster() async throws {
        let dataDirectory = TestPaths.temporaryDataDirectory("check")
        let portBase = PortAllocator.portBase()
        let start = try await Self.mmctl(
            ["start", "--set", "listen.port_base=\(portBase)", "--set", "supervisor.max_restarts=50"], dataDirectory: dataDirectory)
        do {
            try #require(start.status == 0, "mmctl start failed: \(start.output)")
            try await exercise(dataDirectory: dataDirectory, portBase: portBase)
        } catch {
            _ = try? await Self.mmctl(["stop"], dataDirectory: dataDirectory)
            throw error
        }
        let stop = try await Self.mmctl(["stop"], dataDirectory: dataDirectory)
        #expect(stop.status == 0, "\(stop.output)")
        try? FileManager.default.removeItem(atPath: dataDirectory.path)
    }

    func exercise(dataDirectory: DataDirectory, portBase: Int) async throws {

        let selection = try ClusterSelection.parse(["--data-dir", dataDirectory.path])
        let connection = try await ClusterConnection.open(options: selection, needSupervisorToken: true)
        #expect(connection.config.listen.portBase == portBase, "the running cluster's effective config is used")

        let report = await ClusterChecker(connection: connection, tolerances: CheckTolerances(quoteSettleMs: 15_000)).run()
        #expect(report.exitCode == 0, "\(report.renderText())")
        #expect(report.invariants.map(\.name) == InvariantName.allCases)
        let allHeld = report.invariants.allSatisfy { $0.held }
        #expect(allHeld, "\(report.renderText())")

        var settings = DrillSettings(durationMs: 1_000, seed: 11, faults: [.kill])
        settings.recoveryTimeoutMs = 15_000
        let drill = await DrillRunner(connection: connection, settings: settings, log: { _ in }).run()
        #expect(drill.faultsApplied >= 1, "\(drill.renderText())")
        let allRecovered = drill.faults.allSatisfy { $0.recoveryMs != nil }
        #expect(allRecovered, "\(drill.renderText())")
        #expect(drill.fillsLost == 0 && drill.fillsDoubleCounted == 0 && drill.overlappingGrants == 0 && drill.staleAccepted == 0, "\(drill.renderText())")
        #expect(drill.check?.exitCode == 0, "\(drill.renderText())")

        // A service that does not answer is "unreachable" (4), never "held".
        let control = try #require(connection.supervisorControl)
        _ = try await control.signal("exchange", signal: "STOP")
        let frozen = await ClusterChecker(connection: try Self.withTimeout(connection, dataDirectory: dataDirectory)).run()
        _ = try await control.signal("exchange", signal: "CONT")
        #expect(frozen.exitCode == 4, "\(frozen.renderText())")
        #expect(frozen.unreachable.first?.contains("exchange") == true, "\(frozen.unreachable)")
    }

    /// The same cluster with a short client timeout, so a frozen service fails fast.
    static func withTimeout(_ connection: ClusterConnection, dataDirectory: DataDirectory) throws -> ClusterConnection {
        ClusterConnection(
            config: connection.config, observerToken: try dataDirectory.readSecret(dataDirectory.tokenPath(.observer)), supervisorToken: nil,
            transport: connection.exchange.endpoint.transport, timeoutMs: 500)
    }
}
