import ArgumentParser
import CurlClient
import Foundation
import Histogram
import MMCore

/// `mmbench status`: how long one `mmctl status --json` snapshot takes against a running
/// cluster (every service's inspection endpoints over libcurl, JSON encoded), and how much
/// CPU the idle supervisor uses.
struct StatusBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Benchmark: status snapshot latency and supervisor idle CPU.")

    @Option(name: .customLong("data-dir"), help: "Data directory of a running cluster (started with 'mmctl start').")
    var dataDir: String?

    @Option(help: "Snapshots to time.")
    var iterations: Int = 500

    @Option(name: .customLong("idle-seconds"), help: "How long to sample the supervisor's CPU time.")
    var idleSeconds: Int = 20

    func run() async throws {
        let dataDirectory = DataDirectory.resolve(flag: dataDir)
        guard let configData = FileManager.default.contents(atPath: dataDirectory.effectiveConfigPath) else {
            throw ValidationError("no running cluster in \(dataDirectory.path) (start one with 'mmctl start --data-dir \(dataDirectory.path)')")
        }
        let config = try MMJSON.decode(ClusterConfig.self, from: configData)
        let token = try dataDirectory.readSecret(dataDirectory.tokenPath(.observer))
        let builder = ClusterSnapshotBuilder(config: config, token: token, transport: CurlTransport())

        for _ in 0..<20 { _ = try MMJSON.encode(await builder.snapshot(), pretty: true) } // warm-up
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        var errors = 0
        for _ in 0..<iterations {
            let started = ContinuousClock.now
            let snapshot = await builder.snapshot()
            _ = try MMJSON.encode(snapshot, pretty: true)
            let elapsed = ContinuousClock.now - started
            if !snapshot.errors.isEmpty { errors += 1 }
            histogram.record(UInt64(elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000))
        }
        func ms(_ micros: UInt64) -> String { String(format: "%.2f", Double(micros) / 1_000) }
        print("status snapshot (in-process builder over libcurl, \(iterations) runs, \(errors) with errors[])")
        print("  p50 \(ms(histogram.valueAtPercentile(50))) ms  p90 \(ms(histogram.valueAtPercentile(90))) ms  p99 \(ms(histogram.valueAtPercentile(99))) ms  max \(ms(histogram.max)) ms")

        guard let supervisorPid = supervisorPid(dataDirectory) else {
            print("supervisor idle CPU: supervisor.json not found")
            return
        }
        let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
        let before = cpuTicks(supervisorPid)
        try await Task.sleep(for: .seconds(idleSeconds))
        let after = cpuTicks(supervisorPid)
        let percent = Double(after - before) / ticksPerSecond / Double(idleSeconds) * 100
        print("supervisor idle CPU (pid \(supervisorPid), \(idleSeconds) s, no requests): \(String(format: "%.2f", percent))% of one core")
    }

    private func supervisorPid(_ dataDirectory: DataDirectory) -> Int32? {
        guard let data = FileManager.default.contents(atPath: dataDirectory.supervisorStatePath),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return (object["pid"] as? NSNumber)?.int32Value
    }

    /// utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat).
    private func cpuTicks(_ pid: Int32) -> Int64 {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13 else { return 0 }
        return (Int64(fields[11]) ?? 0) + (Int64(fields[12]) ?? 0)
    }
}
