import Coordinator
import Foundation
import MMCore
import MMServiceKit
import MMTestSupport
import Testing

/// The real `mmd coordinator`: a kill -9 and a restart on the same data directory.
@Suite(.serialized) struct CoordinatorProcessTests {
    @Test func restartAfterKill9IsQuietThenGrantsAHigherToken() async throws {
        let cluster = try TestCluster(
            "coord-proc", overrides: ["coordinator.grant_ttl_ms": "1500", "coordinator.presence_ttl_ms": "1500", "node.renew_interval_ms": "500"])
        defer { cluster.removeData() }
        let coordinator = CoordinatorClient(try await cluster.endpoint(.coordinator, as: .node))
        let signer = try GrantSigner(dataDirectory: cluster.dataDirectory)

        let first = try await cluster.start(.coordinator)
        _ = try await coordinator.heartbeat(node: "n1", HeartbeatRequest(address: "http://127.0.0.1:1"))
        let grant = try await coordinator.acquire(symbol: "ACME", node: "n1")
        #expect(grant.fencingToken == 1)
        #expect(signer.isAuthentic(grant))
        await first.kill9()
        #expect(!first.isRunning)

        let second = try await cluster.start(.coordinator)
        defer { Task { await second.stop() } }
        _ = try await coordinator.heartbeat(node: "n1", HeartbeatRequest(address: "http://127.0.0.1:1"))
        do {
            _ = try await coordinator.acquire(symbol: "ACME", node: "n1")
            Issue.record("acquire right after a restart must be refused")
        } catch {
            #expect(error.status == 503)
            #expect(error.code == CoordinatorErrorCode.startupQuiet)
            if case .api(_, let envelope) = error {
                let retry = Int64(envelope.error.details?["retry_after_ms"] ?? "") ?? -1
                #expect(retry > 0 && retry <= 1_500)
            }
        }
        // The old grant's holder cannot renew it across the restart either.
        await #expect(throws: ClientError.self) { try await coordinator.renew(symbol: "ACME", RenewRequest(node: "n1", fencingToken: 1)) }

        var next: AuthorityGrant?
        let granted = await eventually(timeout: .seconds(10), every: .milliseconds(100)) {
            _ = try? await coordinator.heartbeat(node: "n1", HeartbeatRequest(address: "http://127.0.0.1:1"))
            next = try? await coordinator.acquire(symbol: "ACME", node: "n1")
            return next != nil
        }
        #expect(granted)
        #expect((next?.fencingToken ?? 0) == 2)
        #expect((next?.grantedAtMs ?? 0) >= grant.expiresAtMs, "the new grant starts after the old one could have ended")

        let events = try await coordinator.events(after: 0, limit: 100).events
        #expect(events.filter { $0.kind == "coordinator_started" }.count == 2)
        await second.stop()
        #expect(second.terminationStatus == 0, "graceful stop: \(second.logTail())")
    }
}
