import Foundation
import MMCore
import MMTestSupport
import Testing

/// The supervisor's own log (DATA_DIR/logs/supervisor.log, its stdout and stderr) is rotated
/// by size like every child's, and it keeps writing to the fresh file afterwards.
@Suite struct SupervisorLogRotationTests {
    static func size(_ path: String) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? -1
    }

    @Test func theSupervisorsOwnLogRotatesAtItsSizeLimit() async throws {
        let limit: Int64 = 4_096
        let cluster = CLICluster("suplog", settings: [
            "supervisor.log_max_bytes": "\(limit)", "supervisor.log_keep": "2",
            // Killed again and again on purpose: not a crash loop to give up on or back off from.
            "supervisor.max_restarts": "1000", "supervisor.backoff_max_ms": "200",
        ])
        defer { cluster.forceCleanup() }
        #expect(try await cluster.start(nodes: 1).code == 0)
        let log = cluster.dataDirectory.logPath("supervisor")
        // Every kill and restart is a few lines of the supervisor's log.
        var kills = 0
        while !FileManager.default.fileExists(atPath: log + ".1"), kills < 40 {
            _ = try await cluster.mmctl(["kill-node", "n1"])
            kills += 1
            _ = await eventually(timeout: .seconds(10)) { (try? await cluster.process("n1"))?.state == .running }
            try await Task.sleep(for: .milliseconds(100))
        }
        let rotated = await eventually(timeout: .seconds(5)) { FileManager.default.fileExists(atPath: log + ".1") }
        #expect(rotated, "no rotation after \(kills) kills; supervisor.log is \(Self.size(log)) bytes")
        // Checked once a second: a rotated file is at most a second's output past the limit.
        #expect(Self.size(log + ".1") > limit && Self.size(log + ".1") < 4 * limit, "supervisor.log.1 is \(Self.size(log + ".1")) bytes")

        // The supervisor writes on into the fresh file, and only `log_keep` old files are kept.
        let before = Self.size(log)
        _ = try await cluster.mmctl(["kill-node", "n1"])
        #expect(await eventually(timeout: .seconds(10)) { Self.size(log) > before }, "nothing written to the fresh supervisor.log")
        while !FileManager.default.fileExists(atPath: log + ".2"), kills < 80 {
            _ = try await cluster.mmctl(["kill-node", "n1"])
            kills += 1
            _ = await eventually(timeout: .seconds(10)) { (try? await cluster.process("n1"))?.state == .running }
            try await Task.sleep(for: .milliseconds(100))
        }
        try await Task.sleep(for: .seconds(1.5))
        #expect(!FileManager.default.fileExists(atPath: log + ".3"), "more than log_keep = 2 old files")
        let tail = try String(contentsOfFile: log, encoding: .utf8)
        #expect(tail.contains("[Supervisor]"), "the fresh supervisor.log has no supervisor lines: \(tail.prefix(500))")
        #expect(try await cluster.stop().code == 0)
    }
}
