import Foundation
import MMCore
import MMServiceKit
import MMTestSupport
import Testing
import TradingState

/// SIGTERM while a node-like client holds a positions long-poll open (and the exchange the
/// ingest polls is absent): the poll is answered and the state service exits at once.
@Suite("Trading state shutdown", .serialized)
struct ShutdownTests {
    @Test("SIGTERM answers a parked positions long-poll and exits well before its wait")
    func sigtermAnswersParkedPositionsPoll() async throws {
        let cluster = try TestCluster("state-sigterm")
        defer { cluster.removeData() }
        let process = try await cluster.start(.state)
        let node = TradingStateClient(try await cluster.endpoint(.state, as: .node))
        let version = try await node.positions().version
        let pollWaitMs: Int64 = 10_000

        // No exchange runs, so no fill can end the poll before its wait: only shutdown can.
        let timing = await sigtermDuringLongPoll(process, exitDeadline: .milliseconds(pollWaitMs + 5_000)) {
            let view = try await node.positions(afterVersion: version, waitMs: pollWaitMs)
            #expect(view.version == version)
        }
        print("state SIGTERM during a positions long-poll: \(timing)")
        let problems = timing.problems(pollWaitMs: pollWaitMs)
        #expect(problems.isEmpty, "\(problems.joined(separator: "; ")): \(timing); log: \(process.logTail())")
    }
}
