import Foundation
import Logging
import MMCore
import MMServiceKit
import ProcessKit
import Synchronization

// What the supervisor needs from the outside world, as protocols: the in-process tests drive
// restart policy, backoff, intensity, start order, readiness, escalation and stop with fakes
// and a manual clock, and the real implementations below are tested with real processes.

/// One process to start, as the supervisor decided it.
public struct SpawnRequest: Sendable {
    public var process: ClusterProcess
    /// Unique across the supervisor's life (never reused, even for a re-added node name).
    public var generation: Int
    public var executable: String
    public var arguments: [String]
    /// Where the child's stdout and stderr go (nil: discarded; fakes ignore it).
    public var log: RotatingLog?
}

/// A started child.
public protocol ChildHandle: Sendable {
    var pid: Int32 { get }
    /// Signals the child's whole process group.
    func signalGroup(_ signal: Int32)
    /// Returns once the child has been reaped (at once if it already has).
    func exit() async -> ChildExit
}

public protocol ChildSpawner: Sendable {
    func spawn(_ request: SpawnRequest) async throws(SupervisorError) -> any ChildHandle
}

/// Whether a started process answers its readiness check.
public protocol ReadinessProbe: Sendable {
    func isReady(_ process: ClusterProcess) async -> Bool
}

/// A supervised process that died, as the supervisor learned it from the reap.
public struct ChildDeath: Sendable, Hashable {
    public var process: ClusterProcess
    public var pid: Int32
    /// The identity the child was started with (`mmd node --incarnation`).
    public var incarnation: String
    public var exit: ChildExit
}

/// Told of every death the moment the child is reaped (before any restart backoff).
public protocol DeathReporter: Sendable {
    func childDied(_ death: ChildDeath) async
}

/// The supervisor's time: epoch milliseconds for timestamps and sleeping for timers.
public protocol SupervisorClock: EpochClock {
    /// Sleeps until `nowMs() >= deadline`; throws `CancellationError` when cancelled.
    func sleep(untilMs deadline: EpochMs) async throws
}

extension SupervisorClock {
    func sleep(forMs duration: Int64) async throws {
        try await sleep(untilMs: nowMs() + duration)
    }
}

// MARK: Real implementations

public struct RealSupervisorClock: SupervisorClock {
    private let epoch = MonotonicEpochClock()
    public init() {}
    public func nowMs() -> EpochMs { epoch.nowMs() }
    public func sleep(untilMs deadline: EpochMs) async throws {
        let remaining = deadline - nowMs()
        if remaining > 0 { try await Task.sleep(for: .milliseconds(remaining)) }
    }
}

/// `posix_spawn` from one long-lived thread.
///
/// `mmd --supervised-by PID` arms `PR_SET_PDEATHSIG`, which the kernel fires when the
/// *thread* that forked the child exits. Swift concurrency's threads come and go, so a spawn
/// from a task would kill children at random; this thread lives as long as the process.
public final class PosixChildSpawner: ChildSpawner {
    private let thread = SpawnerThread()

    public init() {}

    public func spawn(_ request: SpawnRequest) async throws(SupervisorError) -> any ChildHandle {
        let result: Result<SpawnedChild, SupervisorError> = await thread.run {
            do throws(SupervisorError) {
                return .success(try SpawnedChild.spawn(executable: request.executable, arguments: request.arguments, log: request.log))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }
}

/// A thread that runs submitted closures one at a time, forever.
final class SpawnerThread: Sendable {
    private let jobs = Mutex<[@Sendable () -> Void]>([])
    private let pending = DispatchSemaphore(value: 0)

    init() {
        // Holds `self` for the life of the process, on purpose: the thread must never end.
        let thread = Thread { [self] in
            while true {
                pending.wait()
                let job = jobs.withLock { $0.isEmpty ? nil : $0.removeFirst() }
                job?()
            }
        }
        thread.name = "mmd-spawner"
        thread.stackSize = 512 * 1024
        thread.start()
    }

    func run<Value: Sendable>(_ body: @escaping @Sendable () -> Value) async -> Value {
        await withCheckedContinuation { continuation in
            jobs.withLock { $0.append { continuation.resume(returning: body()) } }
            pending.signal()
        }
    }
}

/// GET /readyz with a short timeout; for a local etcd member, GET /health answering 200 with
/// `"health":"true"` (it knows a leader and a quorum read went through).
public struct HTTPReadinessProbe: ReadinessProbe {
    let config: ClusterConfig
    let transport: any HTTPTransport

    /// `transport` nil: the cluster's own (`AHCTransport.cluster`, trusting `tls.ca` over TLS).
    public init(config: ClusterConfig, transport: (any HTTPTransport)? = nil) {
        self.config = config
        self.transport = transport ?? AHCTransport.cluster(config)
    }

    public func isReady(_ process: ClusterProcess) async -> Bool {
        if case .postgres = process { return await LocalPostgres.isAccepting(host: config.address(of: .postgres), port: config.port(of: .postgres)) }
        if case .etcd = process {
            let url = config.baseURL(of: process) + "/health"
            guard let response = try? await transport.send(TransportRequest(method: .GET, url: url, timeoutMs: 500)) else { return false }
            return Self.isHealthyEtcd(status: response.status, body: response.body)
        }
        let url = config.baseURL(of: process) + CommonRoutes.readyz
        guard let response = try? await transport.send(TransportRequest(method: .GET, url: url, timeoutMs: 500)) else { return false }
        return response.status == 200
    }

    /// etcd 3.4 answers `{"health":"true"}` (3.4.x later adds `"reason"`), spaces or not.
    static func isHealthyEtcd(status: Int, body: Data) -> Bool {
        guard status == 200 else { return false }
        let compact = String(decoding: body, as: UTF8.self).filter { !$0.isWhitespace }
        return compact.contains("\"health\":\"true\"")
    }
}

/// Tells the coordinator that a node's incarnation is gone (`POST /v1/members/{node}/death`,
/// supervisor role), so it ends that incarnation's presence and grants at once instead of
/// waiting for the TTLs. Best effort: if the coordinator does not answer, the TTLs remain.
public struct CoordinatorDeathReporter: DeathReporter {
    let coordinator: CoordinatorClient
    let logger: Logger

    /// Presents the supervisor token `secrets` holds at each notice (a rotation changes it), to
    /// every replica: the notice must reach whichever one is alive. `transport` nil: the
    /// cluster's own (`AHCTransport.cluster`).
    public init(config: ClusterConfig, secrets: LiveSecrets, transport: (any HTTPTransport)? = nil, logger: Logger) {
        var endpoint = ServiceEndpoint.coordinator(
            config, token: secrets.tokens.token(for: .supervisor) ?? "", transport: transport ?? AHCTransport.cluster(config), timeoutMs: 1_000)
        endpoint.tokenSource = { secrets.presentedToken(role: .supervisor, node: "") ?? "" }
        self.coordinator = CoordinatorClient(endpoint)
        self.logger = logger
    }

    public func childDied(_ death: ChildDeath) async {
        guard case .node = death.process else { return }
        let notice = DeathNotice(incarnation: death.incarnation, pid: death.pid, exit: death.exit.shortDescription)
        do {
            let result = try await coordinator.notifyDeath(node: death.process.name, notice)
            logger.info("death notice for \(death.process.name) (\(death.incarnation)): ended=\(result.ended), revoked \(result.revokedGrants)")
        } catch {
            logger.warning("death notice for \(death.process.name) not delivered (\(error)); its grants end with their TTL")
        }
    }
}

/// For a supervisor without a coordinator to tell (tests of the tree itself).
public struct NoDeathReporter: DeathReporter {
    public init() {}
    public func childDied(_ death: ChildDeath) async {}
}
