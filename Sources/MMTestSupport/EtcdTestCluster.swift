import Foundation
import MMCore
import MMServiceKit
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

// Real etcd members for tests, as child processes on private loopback ports with their data in
// a fresh temporary directory: the client is tested against the server it will meet, not a fake.

/// Runs `body` against a fresh etcd cluster of `members` members and stops it however `body`
/// ends (returns, throws, or is cancelled), so no etcd outlives the test.
public func withEtcdCluster<Result>(
    members: Int = 1, label: String = "etcd", durable: Bool = false, readyTimeout: Duration = .seconds(20), _ body: (EtcdTestCluster) async throws -> Result
) async throws -> Result {
    try await withStopping(try await EtcdTestCluster.start(members: members, label: label, durable: durable, readyTimeout: readyTimeout), stop: { await $0.stop() }, body)
}

/// A 1- or 3-member etcd cluster (any size works; those are the ones tests need). Prefer
/// `withEtcdCluster`; whoever calls `start` must call `stop`.
public final class EtcdTestCluster: Sendable {
    /// The temporary directory holding every member's data directory and log; removed by `stop`.
    public let directory: String
    /// The members' client URLs, member 0 first.
    public let clientURLs: [String]
    private let launches: [EtcdTestServer.Launch]
    private let servers: Mutex<[EtcdTestServer]>
    private let stopped = Mutex(false)

    public var memberCount: Int { launches.count }

    /// The running (or killed, or paused) process of `member`.
    public func server(_ member: Int) -> EtcdTestServer { servers.withLock { $0[member] } }

    /// Starts `members` members and waits until every one reports healthy (it has a leader and
    /// serves a quorum read). On any failure the members already started are killed.
    /// `durable`: fsync as a production member does (benchmarks); tests skip it.
    public static func start(members: Int = 1, label: String = "etcd", durable: Bool = false, readyTimeout: Duration = .seconds(20)) async throws -> EtcdTestCluster {
        precondition(members >= 1, "an etcd cluster has at least one member")
        let binary = try EtcdBinary.path()
        etcdLeftovers.sweepOnce()
        let directory = NSTemporaryDirectory() + "\(etcdLeftovers.directoryPrefix)\(getpid())-\(label)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Client ports base+0…, peer ports base+10…: one PortAllocator block checks 20 ports free.
        let base = PortAllocator.portBase()
        let names = (0..<members).map { "m\($0)" }
        let peerURLs = (0..<members).map { "http://127.0.0.1:\(base + 10 + $0)" }
        let initialCluster = zip(names, peerURLs).map { "\($0)=\($1)" }.joined(separator: ",")
        let launches = (0..<members).map { index in
            EtcdTestServer.Launch(
                binary: binary, name: names[index], clientURL: "http://127.0.0.1:\(base + index)", peerURL: peerURLs[index],
                dataDirectory: "\(directory)/\(names[index])", logPath: "\(directory)/\(names[index]).log",
                initialCluster: initialCluster, clusterToken: (directory as NSString).lastPathComponent, durable: durable
            )
        }
        var started: [EtcdTestServer] = []
        do {
            for launch in launches { started.append(try EtcdTestServer(launch)) }
        } catch {
            for server in started { await server.kill() }
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        let cluster = EtcdTestCluster(directory: directory, launches: launches, servers: started)
        do {
            try await cluster.waitUntilHealthy(timeout: readyTimeout)
        } catch {
            await cluster.stop()
            throw error
        }
        return cluster
    }

    private init(directory: String, launches: [EtcdTestServer.Launch], servers: [EtcdTestServer]) {
        self.directory = directory
        self.launches = launches
        self.clientURLs = launches.map(\.clientURL)
        self.servers = Mutex(servers)
    }

    /// Waits until each of `members` (all by default) answers /health with true: it knows a
    /// leader and a linearizable read went through. Throws with the log tail of the first member
    /// that exited or stayed unhealthy.
    public func waitUntilHealthy(members: [Int]? = nil, timeout: Duration = .seconds(20)) async throws {
        let deadline = ContinuousClock.now + timeout
        for member in members ?? Array(0..<memberCount) {
            let server = server(member)
            var lastAnswer = "no answer yet"
            while true {
                if !server.isRunning {
                    throw HarnessError("etcd member \(server.name) exited (\(server.exitDescription)) before it was healthy; its log ends with:\n\(server.logTail())")
                }
                let remaining = deadline - ContinuousClock.now
                if remaining <= .zero {
                    throw HarnessError(
                        "etcd member \(server.name) (\(server.clientURL)) not healthy within \(timeout) (last /health: \(lastAnswer)); its log ends with:\n\(server.logTail())"
                    )
                }
                let request = TransportRequest(method: .GET, url: server.clientURL + "/health", timeoutMs: 1_000)
                do {
                    let response = try await AHCTransport.shared.send(request)
                    let body = String(decoding: response.body, as: UTF8.self)
                    if response.status == 200 && body.contains("\"health\":\"true\"") { break }
                    lastAnswer = "HTTP \(response.status) \(body)"
                } catch {
                    lastAnswer = "\(error)"
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    /// kill -9 the member and wait until it is gone.
    public func kill(member: Int) async {
        await server(member).kill()
    }

    /// SIGSTOP: the member keeps its sockets open but answers nothing, like a hung machine.
    public func pause(member: Int) {
        server(member).signal(SIGSTOP)
    }

    public func resume(member: Int) {
        server(member).signal(SIGCONT)
    }

    /// Starts a killed member again on its data directory and ports and waits until it is healthy.
    public func restart(member: Int, readyTimeout: Duration = .seconds(20)) async throws {
        let old = server(member)
        await old.kill()
        let new = try EtcdTestServer(launches[member])
        servers.withLock { $0[member] = new }
        try await waitUntilHealthy(members: [member], timeout: readyTimeout)
    }

    /// Kills every member (no graceful shutdown: the data is thrown away) and removes the
    /// directory. Safe to call more than once and from a cancelled task.
    public func stop() async {
        let firstStop = stopped.withLock { stopped in
            defer { stopped = true }
            return !stopped
        }
        guard firstStop else { return }
        for server in servers.withLock({ $0 }) { await server.kill() }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The last line of defence for a caller that forgot `stop`: the members are killed
    /// (synchronously, so nothing waits) and their directory removed.
    deinit {
        if stopped.withLock({ $0 }) { return }
        for server in servers.withLock({ $0 }) { server.signal(SIGKILL) }
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// One etcd member process.
public final class EtcdTestServer: Sendable {
    struct Launch: Sendable {
        var binary: String
        var name: String
        var clientURL: String
        var peerURL: String
        var dataDirectory: String
        var logPath: String
        var initialCluster: String
        var clusterToken: String
        var durable = false

        var arguments: [String] {
            // Test data is thrown away, so the fsyncs that make a real member durable only
            // cost time (etcd 3.4 has this flag although `etcd --help` does not list it).
            ["--name", name, "--data-dir", dataDirectory] + (durable ? [] : ["--unsafe-no-fsync"]) + [
                "--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
                "--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
                "--initial-cluster", initialCluster, "--initial-cluster-state", "new",
                "--initial-cluster-token", clusterToken,
                "--logger", "zap", "--log-outputs", "stderr",
            ]
        }
    }

    private let process: Process
    public let name: String
    public let clientURL: String
    public let dataDirectory: String
    public let logPath: String

    init(_ launch: Launch) throws {
        process = try Process.startLogging(launch.binary, launch.arguments, to: launch.logPath, what: "etcd member \(launch.name)")
        name = launch.name
        clientURL = launch.clientURL
        dataDirectory = launch.dataDirectory
        logPath = launch.logPath
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    var exitDescription: String {
        guard !process.isRunning else { return "running" }
        return process.terminationReason == .uncaughtSignal ? "signal \(process.terminationStatus)" : "exit status \(process.terminationStatus)"
    }

    public func signal(_ signal: Int32) {
        if process.isRunning { Glibc.kill(process.processIdentifier, signal) }
    }

    /// SIGKILL (which also ends a SIGSTOPped member) and wait until the process is reaped.
    public func kill() async {
        signal(SIGKILL)
        let deadline = ContinuousClock.now + .seconds(10)
        while process.isRunning && ContinuousClock.now < deadline {
            do {
                try await Task.sleep(for: .milliseconds(10))
            } catch {
                // Cancelled (a test that timed out): keep waiting, or the ports may still be
                // bound when the next cluster starts.
                usleep(10_000)
            }
        }
    }

    /// The end of the member's log (etcd logs to stderr, which goes to `logPath`).
    public func logTail(lines: Int = 25) -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "(no log at \(logPath))"
        return text.split(separator: "\n").suffix(lines).map { "  \($0)" }.joined(separator: "\n")
    }
}

enum EtcdBinary {
    /// $ETCD_BINARY, else `etcd` on $PATH, else Debian's /usr/bin/etcd.
    static func path() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let configured = environment["ETCD_BINARY"] {
            guard FileManager.default.isExecutableFile(atPath: configured) else {
                throw HarnessError("ETCD_BINARY=\(configured) is not an executable file")
            }
            return configured
        }
        let directories = (environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/bin"]
        for directory in directories where FileManager.default.isExecutableFile(atPath: "\(directory)/etcd") {
            return "\(directory)/etcd"
        }
        throw HarnessError(
            "etcd is not installed (no etcd on $PATH or in /usr/bin): run Scripts/install-deps, which installs Debian's etcd-server (etcd 3.4), or point ETCD_BINARY at an etcd 3.4 binary"
        )
    }
}

/// etcd members left by a test process that died without stopping its clusters.
let etcdLeftovers = TestServerLeftovers(directoryPrefix: "mm-etcd-", executable: "etcd")
