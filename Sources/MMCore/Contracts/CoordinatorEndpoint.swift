import Foundation

extension ClusterConfig {
    /// With several coordinator replicas, how long one attempt of a coordinator call may take
    /// before the next replica is tried: a quarter of the grant TTL (at least 100 ms), so a
    /// paused (SIGSTOPped) replica is skipped while the grants it would renew still run.
    public var coordinatorAttemptTimeoutMs: Int64 { max(100, coordinator.grantTtlMs / 4) }
}

extension ServiceEndpoint {
    /// The coordinator as every client must call it: over every replica's URL
    /// (`config.coordinatorURLs`), failing over from one that does not answer to the next.
    /// With one replica this is a plain endpoint on the coordinator's URL.
    public static func coordinator(_ config: ClusterConfig, token: String, transport: any HTTPTransport, timeoutMs: Int64) -> ServiceEndpoint {
        ServiceEndpoint(
            baseURLs: config.coordinatorURLs, token: token, transport: transport, timeoutMs: timeoutMs,
            attemptTimeoutMs: min(timeoutMs, config.coordinatorAttemptTimeoutMs))
    }
}

extension ServiceEndpoint {
    /// The trading state as every client must call it: over every replica's URL
    /// (`config.stateURLs`), moving to the next when one does not answer.
    public static func state(_ config: ClusterConfig, token: String, transport: any HTTPTransport, timeoutMs: Int64) -> ServiceEndpoint {
        ServiceEndpoint(
            baseURLs: config.stateURLs, token: token, transport: transport, timeoutMs: timeoutMs,
            attemptTimeoutMs: config.stateURLs.count > 1 ? min(timeoutMs, 1_000) : timeoutMs)
    }
}
