import Exchange
import Foundation
import MMCore
import MMServiceKit
import MMTestSupport
import Testing

/// SIGTERM while the state's fill ingest (here: a client like it) holds a `/v1/fills` long-poll
/// open: the poll is answered and the exchange exits at once, not after the poll's wait.
@Suite("Exchange shutdown", .serialized)
struct ExchangeShutdownTests {
    @Test("SIGTERM answers a parked fill long-poll and exits well before its wait")
    func sigtermAnswersParkedFillPoll() async throws {
        let cluster = try TestCluster("exchange-sigterm")
        defer { cluster.removeData() }
        let process = try await cluster.start(.exchange)
        let ingest = ExchangeClient(try await cluster.endpoint(.exchange, as: .state))
        let head = try await ingest.stats().fillCount
        let pollWaitMs: Int64 = 10_000

        // No node quotes, so no fill can end the poll before its wait: only shutdown can.
        let timing = await sigtermDuringLongPoll(process, exitDeadline: .milliseconds(pollWaitMs + 5_000)) {
            let page = try await ingest.fills(after: head, limit: 100, waitMs: pollWaitMs)
            #expect(page.fills.isEmpty)
        }
        print("exchange SIGTERM during a fill long-poll: \(timing)")
        let problems = timing.problems(pollWaitMs: pollWaitMs)
        #expect(problems.isEmpty, "\(problems.joined(separator: "; ")): \(timing); log: \(process.logTail())")
    }
}
