import Foundation
import Logging
import MMCore

/// Everything a service process knows at startup: who it is, the resolved cluster config,
/// the data directory, the role tokens, the clock and how to reach its peers.
public struct ServiceEnvironment: Sendable {
    public var process: ClusterProcess
    public var role: Role
    public var config: ClusterConfig
    public var dataDirectory: DataDirectory
    public var tokens: RoleTokens
    public var clock: any EpochClock
    public var transport: any HTTPTransport
    public var logger: Logger
    public var startedAtMs: EpochMs
    /// Overrides the configured port (tests bind port 0 or a free port).
    public var portOverride: Int?

    public init(
        process: ClusterProcess, role: Role, config: ClusterConfig, dataDirectory: DataDirectory, tokens: RoleTokens,
        clock: any EpochClock = MonotonicEpochClock(), transport: any HTTPTransport = AHCTransport.shared,
        logger: Logger? = nil, portOverride: Int? = nil
    ) {
        self.process = process
        self.role = role
        self.config = config
        self.dataDirectory = dataDirectory
        self.tokens = tokens
        self.clock = clock
        self.transport = transport
        self.logger = logger ?? Logger(label: "mm.\(process.name)")
        self.startedAtMs = clock.nowMs()
        self.portOverride = portOverride
    }

    /// The address this process listens on: its host's (`hosts`, `placement`), else `listen.host`.
    public var host: String { config.address(of: process) }
    public var port: Int { portOverride ?? config.port(of: process) }

    /// The token this process presents: its role's, or for a node, the one naming its id.
    public var ownToken: String? {
        tokens.token(for: role, node: process.name)
    }

    /// How this process calls `peer`, authenticating as its own role.
    /// The coordinator (any of its processes) is reached over every replica, with failover.
    public func endpoint(of peer: ClusterProcess, timeoutMs: Int64? = nil) -> ServiceEndpoint {
        let token = ownToken ?? ""
        let timeout = timeoutMs ?? config.http.clientTimeoutMs
        if peer.coordinatorReplicaIndex != nil {
            return .coordinator(config, token: token, transport: transport, timeoutMs: timeout)
        }
        if peer.stateReplicaIndex != nil {
            return .state(config, token: token, transport: transport, timeoutMs: timeout)
        }
        return ServiceEndpoint(baseURL: config.baseURL(of: peer), token: token, transport: transport, timeoutMs: timeout)
    }

    public var info: ServiceInfo {
        ServiceInfo(
            role: process.role, name: process.name, version: MMVersion.current,
            pid: ProcessInfo.processInfo.processIdentifier, startedAtMs: startedAtMs, configDigest: config.digest)
    }
}
