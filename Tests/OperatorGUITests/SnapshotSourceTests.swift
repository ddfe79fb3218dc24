import Foundation
import MMCore
import MMServiceKit
import Synchronization
import Testing
@testable import OperatorGUI

/// Records every request the GUI's server makes and answers like a cluster with nothing up.
final class RecordingTransport: HTTPTransport {
    let requests = Mutex<[(method: MMCore.HTTPMethod, url: String, authorization: String?)]>([])

    func send(_ request: TransportRequest) async throws(TransportError) -> TransportResponse {
        let authorization = request.headers.first { $0.0.lowercased() == "authorization" }?.1
        requests.withLock { $0.append((request.method, request.url, authorization)) }
        throw TransportError(url: request.url, reason: "connection refused")
    }
}

@Suite struct SnapshotSourceTests {
    @Test func theServerOnlyIssuesGetsWithTheObserverToken() async throws {
        var environment = try Fixtures.environment()
        let transport = RecordingTransport()
        environment.transport = transport
        let snapshot = try await ClusterSnapshotSource(environment: environment).snapshot()
        let requests = transport.requests.withLock { $0 }
        #expect(!requests.isEmpty)
        for request in requests {
            #expect(request.method == .GET, "\(request.method) \(request.url)")
            #expect(request.authorization == "Bearer token-observer", "\(request.url)")
        }
        // Every service it asks is one of the cluster's own loopback endpoints.
        let config = environment.config
        let bases = [config.supervisorURL] + [ClusterProcess.coordinator, .state, .exchange].map { config.baseURL(of: $0) }
        #expect(requests.allSatisfy { request in bases.contains { request.url.hasPrefix($0 + "/") } })
        // Nothing answered: the view says so per service instead of failing.
        #expect(Set(snapshot.errors.map(\.service)) == ["supervisor", "coordinator", "exchange", "state"])
        #expect(snapshot.symbols.map(\.symbol) == config.symbolNames)
    }

    @Test func theRefresherKeepsServingTheLastGoodViewWhenTheSourceThrows() async throws {
        let harness = try Fixtures.Harness()
        await harness.refresher.refreshOnce()
        harness.source.fail("down")
        await harness.refresher.refreshOnce()
        await harness.refresher.refreshOnce()
        let frame = harness.store.frame(nowMs: harness.clock.nowMs(), quoteLimit: 5)
        #expect(frame.view == Fixtures.snapshot())
        #expect(frame.refresh.consecutiveFailures == 2)
        #expect(frame.version == 1)
    }
}
