import Foundation
import MMCore
import Synchronization

/// A point on a clock that never jumps (not the wall clock), in nanoseconds from an
/// arbitrary origin. Only differences between instants of the same source mean anything.
public struct MonotonicInstant: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    public func adding(milliseconds: Int64) -> MonotonicInstant {
        let (delta, overflow) = milliseconds.multipliedReportingOverflow(by: 1_000_000)
        if overflow { return MonotonicInstant(nanoseconds: milliseconds < 0 ? .min : .max) }
        let (sum, sumOverflow) = nanoseconds.addingReportingOverflow(delta)
        if sumOverflow { return MonotonicInstant(nanoseconds: delta < 0 ? .min : .max) }
        return MonotonicInstant(nanoseconds: sum)
    }

    /// Whole milliseconds from `earlier` to `self`, truncated toward zero.
    public func milliseconds(since earlier: MonotonicInstant) -> Int64 {
        let (difference, overflow) = nanoseconds.subtractingReportingOverflow(earlier.nanoseconds)
        if overflow { return earlier.nanoseconds < nanoseconds ? Int64.max / 1_000_000 : Int64.min / 1_000_000 }
        return difference / 1_000_000
    }

    public var description: String { "mono+\(nanoseconds / 1_000_000)ms" }
}

/// The node's source of monotonic time, injected so lease logic is testable without sleeping.
public protocol MonotonicTimeSource: Sendable {
    func now() -> MonotonicInstant
}

/// The process's monotonic clock (Swift's ContinuousClock: CLOCK_BOOTTIME on Linux, so it
/// keeps counting through a suspend, which is exactly when a lease must be seen to run out).
public struct SystemMonotonicTime: MonotonicTimeSource {
    private let origin: ContinuousClock.Instant

    public init() { origin = ContinuousClock.now }

    public func now() -> MonotonicInstant {
        let (seconds, attoseconds) = (ContinuousClock.now - origin).components
        return MonotonicInstant(nanoseconds: seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// Monotonic time a test moves by hand.
public final class ManualMonotonicTime: MonotonicTimeSource {
    private let current: Mutex<Int64>

    public init(startNanoseconds: Int64 = 1_000_000_000) { current = Mutex(startNanoseconds) }

    public func now() -> MonotonicInstant { MonotonicInstant(nanoseconds: current.withLock { $0 }) }

    public func advance(milliseconds: Int64) {
        current.withLock { $0 += milliseconds * 1_000_000 }
    }
}

/// A grant as this node may rely on it: valid until the instant the request that obtained it
/// was SENT plus the grant's lifetime minus the safety margin, on the node's monotonic clock.
///
/// Why the send instant: the coordinator started the lifetime at some moment between our send
/// and our receipt of the answer, so counting from the send can only end the lease earlier than
/// the coordinator does, never later, however slow the round trip. Why not `expires_at_ms`
/// against the wall clock: the two machines' (or one machine's stepped) wall clocks disagree;
/// only the lifetime, a duration, crosses the boundary safely. The lifetime is also capped at
/// the configured grant TTL, so a grant whose `granted_at_ms` is the original grant time (while
/// `expires_at_ms` moved with renewals) cannot stretch the lease.
public struct GrantLease: Sendable, Hashable {
    public let grant: AuthorityGrant
    public let requestSentAt: MonotonicInstant
    public let validUntil: MonotonicInstant

    public init(grant: AuthorityGrant, requestSentAt: MonotonicInstant, safetyMarginMs: Int64, maximumLifetimeMs: Int64) {
        self.grant = grant
        self.requestSentAt = requestSentAt
        validUntil = requestSentAt.adding(milliseconds: Self.trustedLifetimeMs(
            grant: grant, safetyMarginMs: safetyMarginMs, maximumLifetimeMs: maximumLifetimeMs))
    }

    /// min(expires − granted, maximum) − margin; ≤ 0 means the grant is useless on arrival.
    public static func trustedLifetimeMs(grant: AuthorityGrant, safetyMarginMs: Int64, maximumLifetimeMs: Int64) -> Int64 {
        let (lifetime, overflow) = grant.expiresAtMs.subtractingReportingOverflow(grant.grantedAtMs)
        let capped = overflow ? maximumLifetimeMs : min(lifetime, maximumLifetimeMs)
        let (trusted, marginOverflow) = capped.subtractingReportingOverflow(max(safetyMarginMs, 0))
        return marginOverflow ? Int64.min : trusted
    }

    public var symbol: String { grant.symbol }
    public var fencingToken: Int64 { grant.fencingToken }

    /// Strictly before the end: at `validUntil` the lease is already over.
    public func isValid(at now: MonotonicInstant) -> Bool { now < validUntil }

    /// Milliseconds left by the node's own reckoning (0 once over).
    public func remainingMs(at now: MonotonicInstant) -> Int64 { max(validUntil.milliseconds(since: now), 0) }

    /// The renewed grant, counted from the renewal's own send instant. A renewal for another
    /// symbol or token, or one that would end the lease sooner (an answer overtaken by a later
    /// one), is ignored.
    public func renewed(with grant: AuthorityGrant, requestSentAt: MonotonicInstant, safetyMarginMs: Int64, maximumLifetimeMs: Int64) -> GrantLease {
        guard grant.symbol == self.grant.symbol, grant.node == self.grant.node, grant.fencingToken == self.grant.fencingToken else { return self }
        let candidate = GrantLease(grant: grant, requestSentAt: requestSentAt, safetyMarginMs: safetyMarginMs, maximumLifetimeMs: maximumLifetimeMs)
        return candidate.validUntil > validUntil ? candidate : self
    }
}
