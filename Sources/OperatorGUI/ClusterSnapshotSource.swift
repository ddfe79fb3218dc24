import Foundation
import MMCore
import MMServiceKit

/// The production source: the shared `ClusterSnapshotBuilder` (also behind `mmctl status
/// --json`), reading every service's inspection routes with the observer token over
/// AsyncHTTPClient. Only GETs: the builder calls nothing else.
public struct ClusterSnapshotSource: SnapshotSource {
    let builder: ClusterSnapshotBuilder

    public init(environment: ServiceEnvironment) {
        builder = ClusterSnapshotBuilder(
            config: environment.config,
            token: environment.tokens.token(for: .observer) ?? "",
            transport: environment.transport,
            // A hung service must not hold the view back by more than about three refreshes.
            timeoutMs: min(environment.config.http.clientTimeoutMs, 1_000),
            clock: environment.clock)
    }

    public func snapshot() async throws -> ClusterSnapshot {
        await builder.snapshot()
    }
}
