import Foundation
import MMCore
import MMServiceKit
import Synchronization

// Shared by the test targets: real `mmd` processes on their own ports and data directories,
// so process tests can run in parallel without touching each other or a developer's cluster.

public enum TestPaths {
    /// The built `mmd`: $MMD_BINARY, else next to the test bundle (.build/debug/mmd).
    public static var mmd: String { binary("mmd", env: "MMD_BINARY") }
    public static var mmctl: String { binary("mmctl", env: "MMCTL_BINARY") }

    static func binary(_ name: String, env: String) -> String {
        if let path = ProcessInfo.processInfo.environment[env] { return path }
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug/\(name)").path
    }

    /// The repository root (for etc/, Scripts/).
    public static var repositoryRoot: String {
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/" {
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) { return directory.path }
            directory = directory.deletingLastPathComponent()
        }
        return FileManager.default.currentDirectoryPath
    }

    /// A fresh, empty data directory under /tmp, removed when the test process exits (most
    /// tests that take one do not remove it themselves; a whole run left about 80 behind).
    public static func temporaryDataDirectory(_ label: String) -> DataDirectory {
        let path = NSTemporaryDirectory() + "mm-test-\(label)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        TemporaryDirectories.removeAtExit(path)
        return DataDirectory(path)
    }
}

/// Directories the test process made, removed by an `atexit` handler: after the last test,
/// when every cluster a test started has been stopped.
enum TemporaryDirectories {
    static let paths = Mutex<[String]>([])
    private static let handler: Void = {
        atexit { TemporaryDirectories.removeAll() }
    }()

    static func removeAtExit(_ path: String) {
        _ = handler
        paths.withLock { $0.append(path) }
    }

    static func removeAll() {
        for path in paths.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
    }
}

/// Hands out port bases (blocks of 100 ports) no other test in this run uses and that are
/// free right now, all below the kernel's ephemeral range: a port in that range can be taken
/// at any moment by an outgoing connection's local end (the services keep dozens of loopback
/// connections open), which once made a test node fail to bind a port found free a second
/// earlier.
public enum PortAllocator {
    static let lowest = 10_000
    /// The first ephemeral port (`/proc/sys/net/ipv4/ip_local_port_range`), 32768 if unreadable.
    static let ephemeralStart: Int = {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        return text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap { Int($0) } ?? 32_768
    }()
    /// Where bases start and how many 100-port blocks fit below the ephemeral range; a machine
    /// whose ephemeral range starts too low for that gets the old 20000–60000 window.
    static var window: (start: Int, blocks: Int) {
        ephemeralStart >= lowest + 2_000 ? (lowest, (ephemeralStart - lowest) / 100 - 1) : (20_000, 400)
    }
    private static let next = Mutex<Int>(Int(ProcessInfo.processInfo.processIdentifier) % window.blocks)

    public static func portBase() -> Int {
        let window = window
        while true {
            let base = next.withLock { block -> Int in
                let current = window.start + (block % window.blocks) * 100
                block += 1
                return current
            }
            if (0..<20).allSatisfy({ LoopbackSocket.isPortFree(port: base + $0) }) { return base }
        }
    }
}

/// A test cluster's shared settings: one data directory, one port base, config overrides.
public struct TestCluster: Sendable {
    public let dataDirectory: DataDirectory
    public let portBase: Int
    public var overrides: [String: String]
    public let tokens: RoleTokens

    public init(_ label: String, overrides: [String: String] = [:]) throws {
        dataDirectory = TestPaths.temporaryDataDirectory(label)
        try dataDirectory.ensureExists()
        portBase = PortAllocator.portBase()
        var all = overrides
        all["listen.port_base"] = "\(portBase)"
        self.overrides = all
        tokens = try RoleTokens.generate(in: dataDirectory)
    }

    public var config: ClusterConfig {
        get async throws { try await ClusterConfig.load(path: nil, environment: [:], overrides: overrides) }
    }

    public var setArguments: [String] { overrides.sorted { $0.key < $1.key }.flatMap { ["--set", "\($0.key)=\($0.value)"] } }

    /// `.coordinator` is every coordinator replica, with failover (`.coordinatorReplica(K)`
    /// is that replica alone). A `.node` caller presents node `node`'s own token.
    public func endpoint(_ process: ClusterProcess, as role: Role, node: String = "n1", timeoutMs: Int64 = 5_000) async throws -> ServiceEndpoint {
        let config = try await config
        let token = tokens.token(for: role, node: node)!
        if process == .coordinator {
            return .coordinator(config, token: token, transport: AHCTransport.shared, timeoutMs: timeoutMs)
        }
        return ServiceEndpoint(baseURL: config.baseURL(of: process), token: token, transport: AHCTransport.shared, timeoutMs: timeoutMs)
    }

    /// Starts `mmd <role…>` for `process` and waits until its /readyz answers 200.
    public func start(_ process: ClusterProcess, extraArguments: [String] = [], readyTimeout: Duration = .seconds(30)) async throws -> MMDProcess {
        var arguments: [String]
        switch process {
        case .node: arguments = ["node", "--id", process.name]
        case .gui: arguments = ["gui"]
        case .exchange: arguments = ["exchange", "serve"]
        case .coordinator, .coordinatorReplica: arguments = ["coordinator", "--replica", "\(process.coordinatorReplicaIndex ?? 1)"]
        case .stateReplica(let index): arguments = ["state", "serve", "--replica", "\(index)"]
        case .etcd: throw HarnessError("etcd members are not mmd processes: use withEtcdCluster")
        default: arguments = [process.name]
        }
        arguments += ["--data-dir", dataDirectory.path] + setArguments + extraArguments
        let running = try MMDProcess.launch(arguments: arguments, logPath: dataDirectory.logPath(process.name))
        let url = try await config.baseURL(of: process) + CommonRoutes.readyz
        try await running.waitUntilReady(url: url, timeout: readyTimeout)
        return running
    }

    public func removeData() {
        try? FileManager.default.removeItem(atPath: dataDirectory.path)
    }
}

/// One real `mmd` process (Foundation.Process is fine in tests; the supervisor uses
/// swift-subprocess with its own process-group handling).
public final class MMDProcess: Sendable {
    private let process: Process
    public let logPath: String
    public var pid: Int32 { process.processIdentifier }

    init(process: Process, logPath: String) {
        self.process = process
        self.logPath = logPath
    }

    public static func launch(arguments: [String], logPath: String) throws -> MMDProcess {
        let process = try Process.startLogging(TestPaths.mmd, arguments, to: logPath, what: "mmd \(arguments.first ?? "")")
        return MMDProcess(process: process, logPath: logPath)
    }

    public var isRunning: Bool { process.isRunning }

    public func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// kill -9 and wait for it to be gone.
    public func kill9() async {
        signal(SIGKILL)
        await waitForExit(timeout: .seconds(10))
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    public func stop(grace: Duration = .seconds(10)) async {
        guard process.isRunning else { return }
        signal(SIGTERM)
        await waitForExit(timeout: grace)
        if process.isRunning { await kill9() }
    }

    public func waitForExit(timeout: Duration) async {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    public var terminationStatus: Int32? { process.isRunning ? nil : process.terminationStatus }

    public func waitUntilReady(url: String, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if !process.isRunning {
                throw HarnessError("mmd \(process.arguments ?? []) exited with \(process.terminationStatus) before ready; log tail:\n\(logTail())")
            }
            if let response = try? await AHCTransport.shared.send(TransportRequest(method: .GET, url: url, timeoutMs: 1_000)), response.status == 200 {
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw HarnessError("mmd \(process.arguments ?? []) not ready at \(url) within \(timeout); log tail:\n\(logTail())")
    }

    public func logTail(lines: Int = 30) -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }
}

public struct HarnessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Polls `condition` until it is true or `timeout` passes; returns whether it became true.
public func eventually(timeout: Duration = .seconds(10), every interval: Duration = .milliseconds(50), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return try await condition()
}

/// What `sigtermDuringLongPoll` saw, each time counted from the moment SIGTERM was sent.
public struct ShutdownTiming: Sendable, CustomStringConvertible {
    /// When the long-poll got its answer (or its error); negative if it ended before the signal,
    /// i.e. it was not parked when the process was told to stop.
    public var pollEndedAfter: Duration?
    /// The long-poll's error, if it failed instead of being answered.
    public var pollError: String?
    /// When the process was seen gone; nil if it was still running at the deadline.
    public var exitedAfter: Duration?
    public var terminationStatus: Int32?

    /// What a prompt, graceful shutdown would not show, given the poll's own wait: empty when
    /// the poll was parked at the signal, answered (not cut), and the process exited with 0
    /// in well under that wait. Tests assert it is empty.
    public func problems(pollWaitMs: Int64) -> [String] {
        var found: [String] = []
        if let ended = pollEndedAfter {
            if ended <= .zero { found.append("the poll was not parked when SIGTERM was sent") }
        } else {
            found.append("the poll never ended")
        }
        if let pollError { found.append("the parked poll was cut, not answered: \(pollError)") }
        if let exited = exitedAfter {
            if exited >= .milliseconds(pollWaitMs / 2) { found.append("the exit waited for the long-poll (\(exited))") }
        } else {
            found.append("still running after the deadline")
        }
        if let status = terminationStatus, status != 0 { found.append("exit status \(status), not a graceful 0") }
        return found
    }

    public var description: String {
        "long-poll ended after \(pollEndedAfter.map { "\($0)" } ?? "never")\(pollError.map { " (error: \($0))" } ?? ""), "
            + "process exited after \(exitedAfter.map { "\($0)" } ?? "never") with status \(terminationStatus.map(String.init) ?? "-")"
    }
}

/// Starts `longPoll` against `process`, lets it park for `parkFor`, sends SIGTERM and times
/// the poll's answer and the exit. The process is SIGKILLed if it has not exited by
/// `exitDeadline`, so a test of the old, slow behaviour still ends.
public func sigtermDuringLongPoll(
    _ process: MMDProcess, parkFor: Duration = .milliseconds(500), exitDeadline: Duration,
    longPoll: @escaping @Sendable () async throws -> Void
) async -> ShutdownTiming {
    let poll = Task { () -> (ContinuousClock.Instant, String?) in
        do {
            try await longPoll()
            return (ContinuousClock.now, nil)
        } catch {
            return (ContinuousClock.now, "\(error)")
        }
    }
    try? await Task.sleep(for: parkFor)
    let start = ContinuousClock.now
    process.signal(SIGTERM)
    await process.waitForExit(timeout: exitDeadline)
    var timing = ShutdownTiming()
    if !process.isRunning { timing.exitedAfter = ContinuousClock.now - start }
    timing.terminationStatus = process.terminationStatus
    if process.isRunning { await process.kill9() }
    // The poll is over by now (its server is gone): an answer or a connection error.
    let (endedAt, error) = await poll.value
    timing.pollEndedAfter = endedAt - start
    timing.pollError = error
    return timing
}

extension Process {
    /// Starts a server for a test: stdout and stderr appended to `logPath` (created if absent,
    /// so a restart's output follows the previous run's), stdin from /dev/null. A failure to
    /// start is a `HarnessError` naming `what`.
    static func startLogging(
        _ executable: String, _ arguments: [String], to logPath: String, what: String,
        directory: String? = nil, environment: [String: String]? = nil
    ) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        if let environment { process.environment = environment }
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw HarnessError("cannot start \(executable) for \(what): \(error)")
        }
        return process
    }
}
