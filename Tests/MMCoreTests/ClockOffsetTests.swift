import Foundation
import MMCore
import Testing

/// The clock-offset estimate (Cristian's algorithm over one `GET /v1/info`) and the skew rule
/// `mmctl status` flags hosts by (docs/ARCHITECTURE.md, "Clocks").
@Suite struct ClockOffsetTests {
    struct EstimateCase: CustomTestStringConvertible, Sendable {
        var sent: EpochMs
        var received: EpochMs
        var remote: EpochMs
        var offset: Int64?
        var uncertainty: Int64?
        var testDescription: String { "sent \(sent) received \(received) remote \(remote)" }
    }

    static let t: EpochMs = 1_700_000_000_000

    static let estimateCases: [EstimateCase] = [
        // Same clock, answered at the midpoint.
        EstimateCase(sent: t, received: t + 10, remote: t + 5, offset: 0, uncertainty: 5),
        // Remote 800 ms ahead.
        EstimateCase(sent: t, received: t + 10, remote: t + 805, offset: 800, uncertainty: 5),
        // Remote 300 ms behind.
        EstimateCase(sent: t, received: t + 4, remote: t - 298, offset: -300, uncertainty: 2),
        // Zero round trip: exact.
        EstimateCase(sent: t, received: t, remote: t + 7, offset: 7, uncertainty: 0),
        // Odd round trip: midpoint rounded down, half round trip rounded up (never understated).
        EstimateCase(sent: t, received: t + 3, remote: t + 1, offset: 0, uncertainty: 2),
        EstimateCase(sent: t, received: t + 1, remote: t, offset: 0, uncertainty: 1),
        // A slow round trip: the figure is as uncertain as the trip was long.
        EstimateCase(sent: t, received: t + 1_000, remote: t + 500, offset: 0, uncertainty: 500),
        // The local readings go backwards: no estimate rather than a wrong one.
        EstimateCase(sent: t + 5, received: t, remote: t, offset: nil, uncertainty: nil),
    ]

    @Test(arguments: estimateCases)
    func offsetIsRemoteMinusMidpointWithinHalfTheRoundTrip(_ c: EstimateCase) {
        let estimate = ClockOffset.estimate(ClockSample(sentMs: c.sent, receivedMs: c.received, remoteNowMs: c.remote))
        #expect(estimate?.offsetMs == c.offset)
        #expect(estimate?.uncertaintyMs == c.uncertainty)
    }

    /// Whatever instant between send and receipt the remote read its clock, and whatever its
    /// true offset, the estimate's interval contains it.
    @Test func theIntervalAlwaysContainsTheTrueOffset() throws {
        for trueOffset: Int64 in [-1_000, -201, -1, 0, 1, 199, 200, 5_000] {
            for roundTrip: Int64 in [0, 1, 2, 7, 100] {
                for readAt in 0...roundTrip {
                    let sample = ClockSample(sentMs: Self.t, receivedMs: Self.t + roundTrip, remoteNowMs: Self.t + readAt + trueOffset)
                    let estimate = try #require(ClockOffset.estimate(sample))
                    #expect(abs(estimate.offsetMs - trueOffset) <= estimate.uncertaintyMs, "offset \(trueOffset) rtt \(roundTrip) read at +\(readAt): \(estimate)")
                }
            }
        }
    }

    struct SkewCase: Sendable, CustomTestStringConvertible {
        var offset: Int64
        var uncertainty: Int64
        var bound: Int64
        var skewed: Bool
        var testDescription: String { "offset \(offset) ±\(uncertainty), bound \(bound)" }
    }

    /// Flagged only when |offset| − uncertainty > bound: certainly too far, never merely possibly.
    static let skewCases: [SkewCase] = [
        SkewCase(offset: 0, uncertainty: 0, bound: 200, skewed: false),
        SkewCase(offset: 200, uncertainty: 0, bound: 200, skewed: false),  // at the bound: still safe
        SkewCase(offset: 201, uncertainty: 0, bound: 200, skewed: true),
        SkewCase(offset: -201, uncertainty: 0, bound: 200, skewed: true),  // behind counts as much as ahead
        SkewCase(offset: 250, uncertainty: 50, bound: 200, skewed: false), // could be 200
        SkewCase(offset: 251, uncertainty: 50, bound: 200, skewed: true),
        SkewCase(offset: -900, uncertainty: 800, bound: 200, skewed: false), // a slow trip alone never alarms
        SkewCase(offset: 812, uncertainty: 4, bound: 200, skewed: true),
        SkewCase(offset: 1, uncertainty: 0, bound: 0, skewed: true),
        SkewCase(offset: .min, uncertainty: 0, bound: 200, skewed: true),    // garbage saturates, never wraps
        SkewCase(offset: .max, uncertainty: 0, bound: -5, skewed: true),
    ]

    @Test(arguments: skewCases)
    func skewIsFlaggedBeyondTheBoundOnly(_ c: SkewCase) {
        #expect(ClockOffset.isSkewed(ClockEstimate(offsetMs: c.offset, uncertaintyMs: c.uncertainty), boundMs: c.bound) == c.skewed)
    }

    @Test func twoHostsAgainstEachOtherAddTheirUncertainties() {
        let a = ClockEstimate(offsetMs: 150, uncertaintyMs: 3)
        let b = ClockEstimate(offsetMs: -150, uncertaintyMs: 2)
        #expect(ClockOffset.between(a, b) == ClockEstimate(offsetMs: -300, uncertaintyMs: 5))
        #expect(ClockOffset.isSkewed(ClockOffset.between(a, b), boundMs: 200))
        #expect(!ClockOffset.isSkewed(ClockOffset.between(a, b), boundMs: 295))
    }

    struct WarningCase: Sendable, CustomTestStringConvertible {
        var name: String
        /// (host, offset, uncertainty), nil offset: not measured.
        var hosts: [(String, Int64?, Int64)]
        var expected: [[String]]
        var testDescription: String { name }
    }

    static let warningCases: [WarningCase] = [
        WarningCase(name: "all within the bound", hosts: [("a", 0, 1), ("b", 150, 1), ("c", -40, 1)], expected: []),
        WarningCase(name: "one host far ahead: one warning, not also a pair", hosts: [("a", 0, 1), ("b", 812, 4), ("c", 3, 1)], expected: [["b"]]),
        WarningCase(name: "two hosts each within the bound of here but not of each other", hosts: [("a", 150, 1), ("b", -150, 1)], expected: [["a", "b"]]),
        WarningCase(name: "unmeasured hosts are not judged", hosts: [("a", 0, 1), ("b", nil, 0)], expected: []),
        WarningCase(name: "uncertain is not skewed", hosts: [("a", 0, 1), ("b", 600, 500)], expected: []),
    ]

    @Test(arguments: warningCases)
    func clockWarningsNameTheHosts(_ c: WarningCase) {
        let hosts = c.hosts.map { name, offset, uncertainty in
            ClusterSnapshot.HostView(
                name: name, address: "10.0.0.\(name.unicodeScalars.first!.value - 96)", reachable: true,
                clockOffsetMs: offset, clockUncertaintyMs: offset == nil ? nil : uncertainty,
                clockSkewed: offset.map { ClockOffset.isSkewed(ClockEstimate(offsetMs: $0, uncertaintyMs: uncertainty), boundMs: 200) } ?? false)
        }
        let warnings = ClusterSnapshotBuilder.clockWarnings(hosts, boundMs: 200)
        #expect(warnings.map(\.hosts) == c.expected)
        for warning in warnings {
            #expect(warning.boundMs == 200)
            #expect(warning.message.contains("200 ms") && warning.message.contains("node.safety_margin_ms"))
            #expect(warning.hosts.allSatisfy { warning.message.contains("host \($0)") || warning.message.contains("hosts \($0)") || warning.message.contains("and \($0)") })
        }
        if c.expected == [["b"]] {
            #expect(warnings[0].kind == "clock_skew" && warnings[0].offsetMs == 812)
            #expect(warnings[0].message.contains("812 ms ahead"), "\(warnings[0].message)")
        }
    }
}
