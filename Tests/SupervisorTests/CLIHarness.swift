import Foundation
import MMCore
import MMTestSupport
import Supervisor
import Testing

/// What one `mmctl` invocation did.
struct CLIResult: Sendable {
    var code: Int32
    var stdout: String
    var stderr: String
}

/// Runs a command to completion (bounded by `timeout`), capturing its output.
func runCommand(_ executable: String, _ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(60)) async throws -> CLIResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env["MMD_BINARY"] = TestPaths.mmd
    env["NO_COLOR"] = "1"
    for (key, value) in environment { env[key] = value }
    process.environment = env
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mmctl-out-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let outPath = directory.appendingPathComponent("out").path
    let errPath = directory.appendingPathComponent("err").path
    FileManager.default.createFile(atPath: outPath, contents: nil)
    FileManager.default.createFile(atPath: errPath, contents: nil)
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let deadline = ContinuousClock.now + timeout
    while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
    if process.isRunning {
        process.terminate()
        throw HarnessError("\(arguments.joined(separator: " ")) did not finish within \(timeout)")
    }
    return CLIResult(
        code: process.terminationStatus,
        stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
}

/// A cluster started through `mmctl start` in its own data directory and port block.
struct CLICluster: Sendable {
    let dataDirectory: DataDirectory
    let portBase: Int
    let settings: [String: String]

    init(_ label: String, settings: [String: String] = [:]) {
        dataDirectory = TestPaths.temporaryDataDirectory(label)
        portBase = PortAllocator.portBase()
        // Short timings keep the suite fast; a child that ignores SIGTERM costs the grace.
        var all = [
            "listen.port_base": "\(portBase)",
            "supervisor.stop_grace_ms": "500",
            "supervisor.backoff_initial_ms": "100",
            "supervisor.ready_timeout_ms": "15000",
        ]
        for (key, value) in settings { all[key] = value }
        self.settings = all
    }

    var setArguments: [String] { settings.sorted { $0.key < $1.key }.flatMap { ["--set", "\($0.key)=\($0.value)"] } }

    func mmctl(_ arguments: [String], timeout: Duration = .seconds(60)) async throws -> CLIResult {
        try await runCommand(TestPaths.mmctl, arguments + ["--data-dir", dataDirectory.path], timeout: timeout)
    }

    func start(nodes: Int = 1) async throws -> CLIResult {
        try await mmctl(["start", "--nodes", "\(nodes)"] + setArguments, timeout: .seconds(90))
    }

    func stop() async throws -> CLIResult { try await mmctl(["stop"], timeout: .seconds(60)) }

    func snapshot() async throws -> ClusterSnapshot {
        let result = try await mmctl(["status", "--json"])
        return try MMJSON.decode(ClusterSnapshot.self, from: Data(result.stdout.utf8))
    }

    func process(_ name: String) async throws -> ProcessStatus? {
        try await snapshot().processes.first { $0.name == name }
    }

    /// Best-effort cleanup after a failed test: nothing may outlive the suite.
    func forceCleanup() {
        if let state = SupervisorStateFile.read(dataDirectory), HostChecks.isClusterProcess(pid: state.pid, dataDirectory: dataDirectory) {
            kill(state.pid, SIGKILL)
        }
        for pid in clusterPids(dataDirectory) { kill(-pid, SIGKILL); kill(pid, SIGKILL) }
    }
}

/// Every live process whose command line names this data directory (mmd children and
/// the supervisor), found by scanning /proc rather than trusting any pid file.
func clusterPids(_ dataDirectory: DataDirectory) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { pid in
        HostChecks.isAlive(pid) && HostChecks.isClusterProcess(pid: pid, dataDirectory: dataDirectory)
    }
}

/// The process group of a live pid (field 5 of /proc/PID/stat).
func processGroup(of pid: Int32) -> Int32? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    return fields.count > 2 ? Int32(fields[2]) : nil
}

func groupExists(_ pgid: Int32) -> Bool {
    // kill(-pgid, 0) also succeeds for zombies; a reaped group is ESRCH.
    kill(-pgid, 0) == 0
}
