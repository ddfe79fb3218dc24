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
    /// The tokens and grant keys as they are now (reloaded after a secrets rotation step).
    public let secrets: LiveSecrets
    public var tokens: RoleTokens { secrets.tokens }
    public var clock: any EpochClock
    public var transport: any HTTPTransport
    public var logger: Logger
    public var startedAtMs: EpochMs
    /// Overrides the configured port (tests bind port 0 or a free port).
    public var portOverride: Int?

    public init(
        process: ClusterProcess, role: Role, config: ClusterConfig, dataDirectory: DataDirectory, tokens: RoleTokens,
        clock: any EpochClock = MonotonicEpochClock(), transport: (any HTTPTransport)? = nil,
        logger: Logger? = nil, portOverride: Int? = nil
    ) {
        self.process = process
        self.role = role
        self.config = config
        self.dataDirectory = dataDirectory
        self.secrets = LiveSecrets(tokens, dataDirectory: dataDirectory)
        self.clock = clock
        // Without a transport given, the cluster's: over TLS trusting only tls.ca when configured.
        self.transport = transport ?? AHCTransport.cluster(config)
        self.logger = logger ?? Logger(label: "mm.\(process.name)")
        self.startedAtMs = clock.nowMs()
        self.portOverride = portOverride
    }

    /// The address this process listens on: its host's (`hosts`, `placement`), else `listen.host`.
    public var host: String { config.address(of: process) }
    public var port: Int { portOverride ?? config.port(of: process) }
    /// The host this process runs on by name (`hosts`, `placement`; `local` on one machine):
    /// whose certificate it serves when `tls` is set (`{host}` in tls.cert and tls.key).
    public var hostName: String { config.hostName(of: process) }

    /// The token this process presents: its role's, or for a node, the one naming its id.
    public var ownToken: String? {
        tokens.token(for: role, node: process.name)
    }

    /// How this process calls `peer`, authenticating as its own role.
    /// The coordinator (any of its processes) is reached over every replica, with failover.
    public func endpoint(of peer: ClusterProcess, timeoutMs: Int64? = nil) -> ServiceEndpoint {
        let token = ownToken ?? ""
        let timeout = timeoutMs ?? config.http.clientTimeoutMs
        var endpoint: ServiceEndpoint
        if peer.coordinatorReplicaIndex != nil {
            endpoint = .coordinator(config, token: token, transport: transport, timeoutMs: timeout)
        } else if peer.stateReplicaIndex != nil {
            endpoint = .state(config, token: token, transport: transport, timeoutMs: timeout)
        } else {
            endpoint = ServiceEndpoint(baseURL: config.baseURL(of: peer), token: token, transport: transport, timeoutMs: timeout)
        }
        // The token presented at each call is the current one: a rotation step imported while
        // this process runs changes it.
        let secrets = self.secrets, role = self.role, name = process.name
        endpoint.tokenSource = { secrets.presentedToken(role: role, node: name) ?? token }
        return endpoint
    }

    /// `GET /v1/info`. Computed on every read, so `now_ms` is the clock at the moment of the
    /// request: a caller that builds it once (at router setup) would report the start time
    /// as "now" forever, and every clock-offset estimate from it would drift with uptime.
    public var info: ServiceInfo {
        ServiceInfo(
            role: process.role, name: process.name, version: MMVersion.current,
            pid: ProcessInfo.processInfo.processIdentifier, startedAtMs: startedAtMs, configDigest: config.digest,
            nowMs: clock.nowMs())
    }
}
