import Foundation
import Synchronization

/// The one source of "now" for every expiry decision, injected so logic is testable
/// without sleeping. Values are Unix epoch milliseconds.
public protocol EpochClock: Sendable {
    func nowMs() -> EpochMs
}

/// Epoch milliseconds that never jump: anchored to the wall clock once at creation, then
/// advanced by the monotonic clock, so an NTP step cannot shorten or stretch a lease.
public struct MonotonicEpochClock: EpochClock {
    private let anchorEpochMs: EpochMs
    private let anchorInstant: ContinuousClock.Instant

    public init() {
        anchorEpochMs = EpochMs((Date().timeIntervalSince1970 * 1000).rounded())
        anchorInstant = ContinuousClock.now
    }

    public func nowMs() -> EpochMs {
        let elapsed = ContinuousClock.now - anchorInstant
        let (seconds, attoseconds) = elapsed.components
        return anchorEpochMs + seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

/// A clock tests move by hand.
public final class ManualClock: EpochClock {
    private let current: Mutex<EpochMs>

    public init(startMs: EpochMs = 1_700_000_000_000) {
        current = Mutex(startMs)
    }

    public func nowMs() -> EpochMs { current.withLock { $0 } }

    public func advance(byMs delta: Int64) {
        current.withLock { $0 += delta }
    }

    public func set(_ value: EpochMs) {
        current.withLock { $0 = value }
    }
}
