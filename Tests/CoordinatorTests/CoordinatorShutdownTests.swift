import Coordinator
import Foundation
import MMCore
import MMServiceKit
import MMTestSupport
import Testing

/// SIGTERM while clients hold long-polls open: the polls are answered and the process exits at
/// once, not after the polls' own wait (a keep-alive long-poll used to hold the HTTP server's
/// graceful drain open until it timed out).
@Suite(.serialized) struct CoordinatorShutdownTests {
    @Test func sigtermAnswersParkedLongPollsAndExitsPromptly() async throws {
        let cluster = try TestCluster("coord-sigterm")
        defer { cluster.removeData() }
        let process = try await cluster.start(.coordinator)
        let observer = CoordinatorClient(try await cluster.endpoint(.coordinator, as: .observer))
        let table = try await observer.assignments()
        let head = try await observer.events().headSeq
        let pollWaitMs: Int64 = 10_000

        // No member ever joins, so nothing would end these polls before their wait but shutdown.
        let timing = await sigtermDuringLongPoll(process, exitDeadline: .milliseconds(pollWaitMs + 5_000)) {
            async let assignments = observer.assignments(afterVersion: table.version, waitMs: pollWaitMs)
            async let events = observer.events(after: head, limit: 10, waitMs: pollWaitMs)
            _ = try await (assignments, events)
        }
        print("coordinator SIGTERM during long-polls: \(timing)")
        let problems = timing.problems(pollWaitMs: pollWaitMs)
        #expect(problems.isEmpty, "\(problems.joined(separator: "; ")): \(timing); log: \(process.logTail())")
    }
}
