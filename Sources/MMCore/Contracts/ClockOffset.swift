import Foundation

/// One exchange of clocks with a remote process: the local clock just before the request was
/// sent and just after the answer arrived, and the remote clock (`now_ms` of `GET /v1/info`)
/// read somewhere in between. All epoch milliseconds; the two local readings come from one
/// clock that never jumps (`MonotonicEpochClock`), so their difference is a true round trip.
public struct ClockSample: Sendable, Hashable {
    public var sentMs: EpochMs
    public var receivedMs: EpochMs
    public var remoteNowMs: EpochMs

    public init(sentMs: EpochMs, receivedMs: EpochMs, remoteNowMs: EpochMs) {
        self.sentMs = sentMs
        self.receivedMs = receivedMs
        self.remoteNowMs = remoteNowMs
    }
}

/// How far a remote clock is from the local one: remote − local, in ms (positive: the remote
/// clock is ahead), and how wrong that figure can be. The true offset lies within
/// `offsetMs ± uncertaintyMs` however the round trip split between the two directions.
public struct ClockEstimate: Codable, Sendable, Hashable {
    public var offsetMs: Int64
    public var uncertaintyMs: Int64

    public init(offsetMs: Int64, uncertaintyMs: Int64) {
        self.offsetMs = offsetMs
        self.uncertaintyMs = uncertaintyMs
    }
}

/// Cristian's estimate of a remote clock from one request, and the skew rule built on it.
/// Pure: the caller reads its clock around the request (docs/ARCHITECTURE.md, "Clocks").
public enum ClockOffset {
    /// offset = remote − midpoint(sent, received), uncertainty = round trip / 2.
    ///
    /// The remote clock was read at some instant between send and receipt; taking the midpoint
    /// is wrong by at most half the round trip either way. Integer ms: the midpoint is rounded
    /// down and the half round trip up, so the interval still contains every offset the
    /// readings allow. Nil when the local readings go backwards (no round trip to speak of).
    public static func estimate(_ sample: ClockSample) -> ClockEstimate? {
        let (roundTrip, overflow) = sample.receivedMs.subtractingReportingOverflow(sample.sentMs)
        guard !overflow, roundTrip >= 0 else { return nil }
        // sent + rtt/2 instead of (sent + received)/2: the sum of two epoch values cannot
        // overflow here, but the form keeps the arithmetic obviously safe.
        let midpoint = sample.sentMs + roundTrip / 2
        let (offset, offsetOverflow) = sample.remoteNowMs.subtractingReportingOverflow(midpoint)
        guard !offsetOverflow else { return nil }
        return ClockEstimate(offsetMs: offset, uncertaintyMs: roundTrip / 2 + roundTrip % 2)
    }

    /// How far apart two clocks certainly are beyond `boundMs`: |offset| − uncertainty − bound,
    /// positive only when even the most favourable reading of the estimate exceeds the bound.
    public static func excessMs(_ estimate: ClockEstimate, boundMs: Int64) -> Int64 {
        let magnitude = estimate.offsetMs == .min ? Int64.max : abs(estimate.offsetMs)
        return saturating(saturating(magnitude, minus: estimate.uncertaintyMs), minus: boundMs)
    }

    /// A clock is flagged when |offset| − uncertainty > bound: certainly too far, not merely
    /// possibly (a slow round trip alone must not raise the alarm).
    public static func isSkewed(_ estimate: ClockEstimate, boundMs: Int64) -> Bool {
        excessMs(estimate, boundMs: boundMs) > 0
    }

    /// Two remote clocks estimated against the same local clock: the offset of `b` relative to
    /// `a` (b − a), uncertain by both uncertainties.
    public static func between(_ a: ClockEstimate, _ b: ClockEstimate) -> ClockEstimate {
        ClockEstimate(offsetMs: saturating(b.offsetMs, minus: a.offsetMs), uncertaintyMs: saturating(a.uncertaintyMs, minus: -b.uncertaintyMs))
    }

    /// a − b clamped to Int64: a garbage `now_ms` must give a huge figure, not a wrapped one.
    static func saturating(_ a: Int64, minus b: Int64) -> Int64 {
        let (result, overflow) = a.subtractingReportingOverflow(b)
        guard overflow else { return result }
        return b < 0 ? .max : .min
    }
}
