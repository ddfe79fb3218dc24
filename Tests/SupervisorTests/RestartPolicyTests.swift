import MMCore
import PropertyBased
import Supervisor
import Testing

@Suite struct RestartPolicyTests {
    let policy = RestartPolicy(initialMs: 250, maxMs: 2_000, stableAfterMs: 60_000, maxRestarts: 5, periodMs: 30_000)

    @Test func delaysDoubleUpToTheMaximum() {
        var history = policy.freshHistory()
        var delays: [Int64] = []
        for index in 0..<5 {
            if case .restart(let delay) = policy.onExit(&history, upForMs: 10, nowMs: 1_000 + Int64(index) * 10) { delays.append(delay) }
        }
        #expect(delays == [250, 500, 1_000, 2_000, 2_000])
    }

    @Test func moreThanMaxRestartsInThePeriodIsFatal() {
        var history = policy.freshHistory()
        for index in 0..<5 {
            #expect(policy.onExit(&history, upForMs: 10, nowMs: Int64(index)) != .fatal(restarts: index))
        }
        #expect(policy.onExit(&history, upForMs: 10, nowMs: 100) == .fatal(restarts: 5))
    }

    @Test func restartsOutsideThePeriodAreForgotten() {
        var history = policy.freshHistory()
        for index in 0..<5 { _ = policy.onExit(&history, upForMs: 10, nowMs: Int64(index)) }
        // 30 s later the earlier five no longer count.
        guard case .restart = policy.onExit(&history, upForMs: 10, nowMs: 30_010) else {
            Issue.record("restarts older than restart_period_ms must not count")
            return
        }
    }

    @Test func aStableRunResetsTheBackoff() {
        var history = policy.freshHistory()
        _ = policy.onExit(&history, upForMs: 10, nowMs: 0)
        _ = policy.onExit(&history, upForMs: 10, nowMs: 1)
        #expect(history.nextDelayMs == 1_000)
        #expect(policy.onExit(&history, upForMs: 60_000, nowMs: 70_000) == .restart(afterMs: 250))
    }

    @Test(arguments: [
        // (max_restarts, exits in quick succession, expected fatal at exit #)
        (1, 3, 2), (2, 5, 3), (5, 10, 6),
    ])
    func fatalExactlyAfterTheLimit(maxRestarts: Int64, exits: Int, fatalAt: Int) {
        let policy = RestartPolicy(initialMs: 10, maxMs: 100, stableAfterMs: 1_000, maxRestarts: maxRestarts, periodMs: 10_000)
        var history = policy.freshHistory()
        var firstFatal: Int?
        for exit in 1...exits {
            if case .fatal = policy.onExit(&history, upForMs: 1, nowMs: Int64(exit)), firstFatal == nil { firstFatal = exit }
        }
        #expect(firstFatal == fatalAt)
    }

    @Test func propertyDelayStaysWithinBoundsAndRestartsWithinLimit() async {
        await propertyCheck(input: Gen.int(in: 10...1_000), Gen.int(in: 1...8), Gen.int(in: 1...40)) { initial, maxRestarts, exits in
            let policy = RestartPolicy(initialMs: Int64(initial), maxMs: Int64(initial) * 16, stableAfterMs: 1_000_000, maxRestarts: Int64(maxRestarts), periodMs: 1_000_000)
            var history = policy.freshHistory()
            var restarts = 0
            for exit in 0..<exits {
                switch policy.onExit(&history, upForMs: 1, nowMs: Int64(exit)) {
                case .restart(let delay):
                    restarts += 1
                    #expect(delay >= policy.initialMs && delay <= policy.maxMs)
                case .fatal:
                    break
                }
            }
            #expect(restarts == min(exits, maxRestarts))
        }
    }
}
