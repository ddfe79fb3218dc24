import ArgumentParser
import Foundation
import MMCore
import MMServiceKit

/// `mmbench node`: (1) fill → replacement quote on the book, p50/p99 over ≥ 1,000 fills, with
/// real coordinator, trading-state, exchange and node processes on loopback; (2) the CPU an
/// idle node holding 10 symbols uses, from /proc/PID/stat (see docs/PERFORMANCE.md).
struct NodeBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: "Benchmark: fill → replacement quote latency and idle node CPU.")

    @Option(help: "Fills to measure.") var fills = 1_000
    @Option(help: "Seconds of idle CPU sampling.") var idleSeconds = 30
    @Option(help: "The mmd binary (default: next to mmbench).") var mmd: String?

    func run() async throws {
        let binary = mmd ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("mmd").path
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw ValidationError("no mmd at \(binary): build it or pass --mmd") }
        try await latencyBenchmark(binary)
        try await idleBenchmark(binary)
    }

    /// Prices frozen (one tick per 10 minutes) so the only thing that moves a quote is a fill;
    /// every external order crosses. Latency = the book quote's `updated_at_ms` minus the fill's
    /// `ts_ms`, both stamped by the exchange's clock. When the next fill of the symbol lands
    /// before the replacement is observed, the later update is counted: this overestimates.
    private func latencyBenchmark(_ binary: String) async throws {
        let cluster = try BenchCluster(binary: binary, label: "latency", overrides: [
            "exchange.price_interval_ms": "600000", "flow.cross_pct": "100", "flow.interval_ms": "100", "flow.max_qty": "2",
            "quoting.position_limit_lots": "1000000", "quoting.size_lots": "5",
        ])
        defer { cluster.stop() }
        try await cluster.start(["coordinator", "state", "exchange serve", "node --id n1"])
        let exchange = ExchangeClient(cluster.endpoint(.exchange))
        // Let the node quote everything before counting.
        try await Task.sleep(for: .seconds(2))
        var after = try await exchange.fills(after: 0, limit: 1, waitMs: 0).headSeq
        var samples: [Int64] = []
        while samples.count < fills {
            let page = try await exchange.fills(after: after, limit: 100, waitMs: 2_000)
            for fill in page.fills {
                after = max(after, fill.seq)
                let deadline = ContinuousClock.now + .seconds(2)
                while ContinuousClock.now < deadline {
                    let quotes = try await exchange.quotes()
                    if let quote = quotes.first(where: { $0.symbol == fill.symbol }), quote.updatedAtMs >= fill.tsMs, quote.node == "n1" {
                        samples.append(quote.updatedAtMs - fill.tsMs)
                        break
                    }
                    try await Task.sleep(for: .milliseconds(1))
                }
            }
        }
        samples.sort()
        emit("fill → replacement quote on the book: \(samples.count) fills")
        emit("  p50 \(percentile(samples, 0.50)) ms  p99 \(percentile(samples, 0.99)) ms  max \(samples.last ?? 0) ms  (target p99 < 50 ms)")
    }

    /// A node holding 10 symbols with nothing moving: no fills, prices frozen, default refresh.
    private func idleBenchmark(_ binary: String) async throws {
        let names = (0..<10).map { "IDLE\($0)" }
        var overrides = ["exchange.price_interval_ms": "600000", "flow.cross_pct": "0", "flow.interval_ms": "1000", "symbols.names": names.joined(separator: ",")]
        for name in names { overrides["symbols.\(name).base_price"] = "10000" }
        let cluster = try BenchCluster(binary: binary, label: "idle", overrides: overrides)
        defer { cluster.stop() }
        try await cluster.start(["coordinator", "state", "exchange serve", "node --id n1"])
        let node = NodeClient(cluster.endpoint(.node(1)))
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline, (try? await node.status().grants.count) != 10 {
            try await Task.sleep(for: .milliseconds(200))
        }
        guard let pid = cluster.pid(of: "node --id n1") else { throw ValidationError("node not running") }
        try await Task.sleep(for: .seconds(2))
        let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
        let before = try cpuTicks(pid)
        let started = ContinuousClock.now
        try await Task.sleep(for: .seconds(idleSeconds))
        let elapsed = ContinuousClock.now - started
        let used = Double(try cpuTicks(pid) - before) / ticksPerSecond
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        emit("idle node, 10 symbols held, \(idleSeconds) s: \(String(format: "%.2f", used / seconds * 100))% of one core (target < 5%)")
    }

    /// utime + stime of a process, in clock ticks (/proc/PID/stat fields 14 and 15).
    private func cpuTicks(_ pid: Int32) throws -> Int64 {
        let text = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        // The command name (field 2) may contain spaces: count fields after its closing paren.
        guard let paren = text.lastIndex(of: ")") else { throw ValidationError("unreadable /proc/\(pid)/stat") }
        let fields = text[text.index(after: paren)...].split(separator: " ")
        guard fields.count > 13, let user = Int64(fields[11]), let system = Int64(fields[12]) else { throw ValidationError("unreadable /proc/\(pid)/stat") }
        return user + system
    }

    private func percentile(_ sorted: [Int64], _ p: Double) -> Int64 {
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))]
    }
}

/// Writes a result line at once (print is block-buffered when stdout is a file).
private func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Real `mmd` processes on their own data directory and port base, stopped with SIGTERM.
private final class BenchCluster {
    let binary: String
    let directory: DataDirectory
    let overrides: [String: String]
    let tokens: RoleTokens
    let config: ClusterConfig
    /// In start order, so they are stopped in reverse (nodes before the coordinator they leave).
    private var processes: [(role: String, process: Process)] = []

    init(binary: String, label: String, overrides: [String: String]) throws {
        self.binary = binary
        directory = DataDirectory(NSTemporaryDirectory() + "mmbench-node-\(label)-\(UUID().uuidString.prefix(8))")
        try directory.ensureExists()
        var all = overrides
        all["listen.port_base"] = "\(36_000 + Int(getpid() % 200) * 100)"
        self.overrides = all
        tokens = try RoleTokens.generate(in: directory)
        var config = ClusterConfig.defaults
        config.listen.portBase = Int(all["listen.port_base"]!)!
        self.config = config
    }

    func endpoint(_ process: ClusterProcess) -> ServiceEndpoint {
        ServiceEndpoint(baseURL: config.baseURL(of: process), token: tokens.token(for: .observer)!, transport: AHCTransport.shared, timeoutMs: 5_000)
    }

    func pid(of role: String) -> Int32? { processes.first { $0.role == role }?.process.processIdentifier }

    func start(_ roles: [String]) async throws {
        for role in roles {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = role.split(separator: " ").map(String.init) + ["--data-dir", directory.path]
                + overrides.sorted { $0.key < $1.key }.flatMap { ["--set", "\($0.key)=\($0.value)"] }
            let log = directory.path + "/\(role.replacingOccurrences(of: " ", with: "-")).log"
            FileManager.default.createFile(atPath: log, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.standardError = process.standardOutput
            try process.run()
            processes.append((role, process))
            let name = role.hasPrefix("node") ? "n1" : String(role.split(separator: " ")[0])
            guard let clusterProcess = ClusterProcess(name: name) else { continue }
            let url = config.baseURL(of: clusterProcess) + CommonRoutes.readyz
            let deadline = ContinuousClock.now + .seconds(30)
            while true {
                if let response = try? await AHCTransport.shared.send(TransportRequest(method: .GET, url: url, timeoutMs: 1_000)), response.status == 200 { break }
                guard ContinuousClock.now < deadline, process.isRunning else { throw ValidationError("\(role) did not become ready; see \(log)") }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    func stop() {
        for (_, process) in processes.reversed() where process.isRunning {
            process.terminate()
            // A service that does not finish its graceful shutdown in time is killed.
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: directory.path)
    }
}
