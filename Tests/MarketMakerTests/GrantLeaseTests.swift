import MMCore
import Testing

@testable import MarketMaker

@Suite struct GrantLeaseTests {
    static func grant(token: Int64 = 7, grantedAt: EpochMs = 1_700_000_000_000, lifetimeMs: Int64 = 2_000, node: String = "n1", symbol: String = "ACME") -> AuthorityGrant {
        AuthorityGrant(symbol: symbol, node: node, fencingToken: token, grantedAtMs: grantedAt, expiresAtMs: grantedAt + lifetimeMs, signature: "sig")
    }

    @Test func validUntilSendInstantPlusLifetimeMinusMargin() {
        let time = ManualMonotonicTime()
        let sent = time.now()
        let lease = GrantLease(grant: Self.grant(), requestSentAt: sent, safetyMarginMs: 200, maximumLifetimeMs: 2_000)
        #expect(lease.validUntil == sent.adding(milliseconds: 1_800))
        time.advance(milliseconds: 1_799)
        #expect(lease.isValid(at: time.now()))
        #expect(lease.remainingMs(at: time.now()) == 1)
        time.advance(milliseconds: 1)
        #expect(!lease.isValid(at: time.now()))
        #expect(lease.remainingMs(at: time.now()) == 0)
    }

    @Test func countsFromTheSendNotTheArrival() {
        // The answer took 500 ms to arrive: the lease still ends 1 800 ms after the send.
        let time = ManualMonotonicTime()
        let sent = time.now()
        time.advance(milliseconds: 500)
        let lease = GrantLease(grant: Self.grant(), requestSentAt: sent, safetyMarginMs: 200, maximumLifetimeMs: 2_000)
        #expect(lease.remainingMs(at: time.now()) == 1_300)
    }

    @Test func wallClockValuesDoNotMatterOnlyTheirDifference() {
        // A grant stamped far in the past or the future by a skewed coordinator clock lasts the same.
        let time = ManualMonotonicTime()
        let past = GrantLease(grant: Self.grant(grantedAt: 1_000), requestSentAt: time.now(), safetyMarginMs: 100, maximumLifetimeMs: 2_000)
        let future = GrantLease(grant: Self.grant(grantedAt: 9_000_000_000_000), requestSentAt: time.now(), safetyMarginMs: 100, maximumLifetimeMs: 2_000)
        #expect(past.validUntil == future.validUntil)
    }

    @Test func lifetimeCappedAtTheConfiguredTTL() {
        let time = ManualMonotonicTime()
        let lease = GrantLease(grant: Self.grant(lifetimeMs: 60_000), requestSentAt: time.now(), safetyMarginMs: 200, maximumLifetimeMs: 2_000)
        #expect(lease.remainingMs(at: time.now()) == 1_800)
    }

    @Test(arguments: [(200 as Int64, 200 as Int64), (100, 250), (0, 0), (-5, 0)])
    func lifetimeWithinTheMarginIsUselessOnArrival(lifetime: Int64, margin: Int64) {
        let time = ManualMonotonicTime()
        let lease = GrantLease(grant: Self.grant(lifetimeMs: lifetime), requestSentAt: time.now(), safetyMarginMs: margin, maximumLifetimeMs: 2_000)
        #expect(!lease.isValid(at: time.now()))
    }

    @Test func renewalCountsFromItsOwnSendInstant() {
        let time = ManualMonotonicTime()
        let lease = GrantLease(grant: Self.grant(), requestSentAt: time.now(), safetyMarginMs: 200, maximumLifetimeMs: 2_000)
        time.advance(milliseconds: 600)
        let renewalSent = time.now()
        time.advance(milliseconds: 50)
        let renewed = lease.renewed(
            with: Self.grant(grantedAt: 1_700_000_000_600), requestSentAt: renewalSent, safetyMarginMs: 200, maximumLifetimeMs: 2_000)
        #expect(renewed.validUntil == renewalSent.adding(milliseconds: 1_800))
        #expect(renewed.grant.grantedAtMs == 1_700_000_000_600)
    }

    @Test func renewalForAnotherTokenNodeOrSymbolIsIgnored() {
        let time = ManualMonotonicTime()
        let lease = GrantLease(grant: Self.grant(), requestSentAt: time.now(), safetyMarginMs: 200, maximumLifetimeMs: 2_000)
        time.advance(milliseconds: 600)
        for other in [Self.grant(token: 8), Self.grant(node: "n2"), Self.grant(symbol: "BOLT")] {
            #expect(lease.renewed(with: other, requestSentAt: time.now(), safetyMarginMs: 200, maximumLifetimeMs: 2_000) == lease)
        }
    }

    @Test func anOvertakenRenewalNeverShortensTheLease() {
        let time = ManualMonotonicTime()
        let early = time.now()
        time.advance(milliseconds: 300)
        let lease = GrantLease(grant: Self.grant(), requestSentAt: time.now(), safetyMarginMs: 200, maximumLifetimeMs: 2_000)
        let stale = lease.renewed(with: Self.grant(), requestSentAt: early, safetyMarginMs: 200, maximumLifetimeMs: 2_000)
        #expect(stale.validUntil == lease.validUntil)
    }

    @Test func instantArithmeticSaturates() {
        let far = MonotonicInstant(nanoseconds: .max - 10)
        #expect(far.adding(milliseconds: 5) == MonotonicInstant(nanoseconds: .max))
        #expect(MonotonicInstant(nanoseconds: 0).adding(milliseconds: .max).nanoseconds == .max)
        #expect(MonotonicInstant(nanoseconds: 3_000_000).milliseconds(since: MonotonicInstant(nanoseconds: 1_000_000)) == 2)
    }

    @Test func systemMonotonicTimeNeverGoesBack() {
        let time = SystemMonotonicTime()
        var previous = time.now()
        for _ in 0..<1_000 {
            let next = time.now()
            #expect(next >= previous)
            previous = next
        }
    }
}
