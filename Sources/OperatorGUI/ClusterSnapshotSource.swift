import Foundation
import MMCore
import MMServiceKit
import AsyncPrimitives

/// The production source: the shared `ClusterSnapshotBuilder` (also behind `mmctl status
/// --json`), reading every service's inspection routes with the observer token over
/// AsyncHTTPClient. Only GETs: the builder calls nothing else.
public struct ClusterSnapshotSource: SnapshotSource {
    let environment: ServiceEnvironment
    /// The builder for the observer token it was made with: kept across refreshes (its
    /// endpoints remember which coordinator replica answers), remade when a secrets rotation
    /// imported while the GUI runs changes the token.
    private let current: LockedBox<(token: String, builder: ClusterSnapshotBuilder)?>

    public init(environment: ServiceEnvironment) {
        self.environment = environment
        current = LockedBox(nil)
    }

    public func snapshot() async throws -> ClusterSnapshot {
        let token = environment.tokens.token(for: .observer) ?? ""
        let builder = current.update { current in
            if let current, current.token == token { return current.builder }
            let made = ClusterSnapshotBuilder(
                config: environment.config, token: token, transport: environment.transport,
                // A hung service must not hold the view back by more than about three refreshes.
                timeoutMs: min(environment.config.http.clientTimeoutMs, 1_000),
                clock: environment.clock)
            current = (token, made)
            return made
        }
        return await builder.snapshot()
    }
}
