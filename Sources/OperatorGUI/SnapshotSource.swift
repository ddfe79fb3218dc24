import AsyncPrimitives
import Foundation
import MMCore

/// Where the dashboard's cluster view comes from. The service plugs in the shared
/// `ClusterSnapshotBuilder` (the same aggregation `mmctl status --json` uses, so the page and
/// the CLI can never disagree); tests plug in canned snapshots.
public protocol SnapshotSource: Sendable {
    /// One fresh view of the cluster. A service that cannot be reached is reported inside
    /// the snapshot (`errors`); throwing means no view could be built at all.
    func snapshot() async throws -> ClusterSnapshot
}

/// A source that answers whatever a test (or a demo) last put into it.
public final class CannedSnapshotSource: SnapshotSource {
    private let current: LockedBox<Result<ClusterSnapshot, CannedSourceError>>

    public init(_ snapshot: ClusterSnapshot) {
        current = LockedBox(.success(snapshot))
    }

    public func set(_ snapshot: ClusterSnapshot) { current.value = .success(snapshot) }

    /// Makes the next calls fail, as when the cluster cannot be reached at all.
    public func fail(_ reason: String) { current.value = .failure(CannedSourceError(reason: reason)) }

    public func snapshot() async throws -> ClusterSnapshot {
        try current.value.get()
    }
}

public struct CannedSourceError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}
