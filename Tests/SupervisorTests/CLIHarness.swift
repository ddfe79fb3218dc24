import Foundation
import MMCore
import MMTestSupport
import ProcessKit
import Supervisor
import Testing

/// What one `mmctl` invocation did.
struct CLIResult: Sendable {
    var code: Int32
    var stdout: String
    var stderr: String
}

/// Runs a command to completion (bounded by `timeout`), capturing its output. Spawned and
/// reaped with posix_spawn/waitpid directly: Foundation.Process left exited children
/// unreaped (zombies reported as running) in this test process.
func runCommand(_ executable: String, _ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(60)) async throws -> CLIResult {
    var env = ProcessInfo.processInfo.environment
    env["MMD_BINARY"] = TestPaths.mmd
    env["NO_COLOR"] = "1"
    for (key, value) in environment { env[key] = value }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mmctl-out-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let outPath = directory.appendingPathComponent("out").path
    let errPath = directory.appendingPathComponent("err").path

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
    let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { for pointer in argv + envp { free(pointer) } }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, executable, &actions, nil, argv, envp)
    guard spawned == 0 else { throw HarnessError("cannot run \(executable): \(String(cString: strerror(spawned)))") }

    let deadline = ContinuousClock.now + timeout
    var status: Int32 = 0
    while waitpid(pid, &status, WNOHANG) == 0 {
        if ContinuousClock.now >= deadline {
            kill(pid, SIGKILL)
            _ = waitpid(pid, &status, 0)
            throw HarnessError("\(arguments.joined(separator: " ")) did not finish within \(timeout)")
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return CLIResult(
        code: code,
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
