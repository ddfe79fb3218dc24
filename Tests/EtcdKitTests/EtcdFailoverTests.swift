import EtcdKit
import Foundation
import MMServiceKit
import MMTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The client against members that die, hang, or were never there.
@Suite struct EtcdFailoverTests {
    /// The member in use is the leader, so killing it also costs an election: the request must
    /// wait it out on another member within its deadline, not fail.
    @Test func killedMemberInUseFailsOverToAnother() async throws {
        try await withEtcdCluster(members: 3, label: "failover") { cluster in
            let leader = try await EtcdTesting.leader(of: cluster)
            let ordered = [cluster.clientURLs[leader]] + cluster.clientURLs.enumerated().filter { $0.offset != leader }.map(\.element)
            let client = try EtcdTesting.client(cluster, endpoints: ordered, attemptTimeout: .seconds(4), requestTimeout: .seconds(12))
            try await client.put("before", "1")
            #expect(client.preferredEndpoint == cluster.clientURLs[leader])
            let termBefore = try await client.status().raftTerm

            await cluster.kill(member: leader)
            #expect(!cluster.server(leader).isRunning)

            let written = try await client.put("after", "2")
            #expect(client.preferredEndpoint != cluster.clientURLs[leader])
            #expect(written.header.raftTerm > termBefore)
            #expect(try await client.get("before")?.valueString == "1")

            // Back on its data directory, the old leader catches up and serves what it missed.
            try await cluster.restart(member: leader)
            let restarted = try EtcdTesting.client(cluster, endpoints: [cluster.clientURLs[leader]])
            #expect(try await restarted.get("after")?.valueString == "2")
            #expect(try await restarted.status().hasLeader)
        }
    }

    /// A SIGSTOPped member accepts connections and never answers: the attempt times out and the
    /// next member serves the request.
    @Test func pausedMemberTimesOutAndTheNextAnswers() async throws {
        try await withEtcdCluster(members: 3, label: "paused") { cluster in
            let leader = try await EtcdTesting.leader(of: cluster)
            let follower = (leader + 1) % cluster.memberCount
            let ordered = [cluster.clientURLs[follower]] + cluster.clientURLs.enumerated().filter { $0.offset != follower }.map(\.element)
            let client = try EtcdTesting.client(cluster, endpoints: ordered, attemptTimeout: .milliseconds(800), requestTimeout: .seconds(8))
            try await client.put("before", "1")
            #expect(client.preferredEndpoint == cluster.clientURLs[follower])

            cluster.pause(member: follower)
            let start = ContinuousClock.now
            try await client.put("during", "2")
            let elapsed = ContinuousClock.now - start
            #expect(elapsed >= .milliseconds(700), "the paused member cannot have answered")
            #expect(client.preferredEndpoint != cluster.clientURLs[follower])

            cluster.resume(member: follower)
            try await cluster.waitUntilHealthy(members: [follower], timeout: .seconds(10))
            let resumed = try EtcdTesting.client(cluster, endpoints: [cluster.clientURLs[follower]])
            #expect(try await resumed.get("during")?.valueString == "2")
        }
    }

    /// No member reachable: one typed error that names every endpoint and why it failed.
    @Test func unreachableEndpointsGiveAnErrorNamingEveryOne() async throws {
        let base = PortAllocator.portBase()
        // Nothing listens on base and base+1; base+2 accepts connections (the kernel completes
        // the handshake into the backlog) but nothing ever reads or answers.
        let silent = try SilentListener(port: base + 2)
        defer { silent.close() }
        let endpoints = ["http://127.0.0.1:\(base)", "http://127.0.0.1:\(base + 1)", "http://127.0.0.1:\(base + 2)"]
        let client = try EtcdClient(
            endpoints: endpoints, httpClient: EtcdTesting.httpClient,
            configuration: EtcdClient.Configuration(attemptTimeout: .milliseconds(500), requestTimeout: .seconds(5))
        )
        let start = ContinuousClock.now
        do throws(EtcdError) {
            try await client.put("key", "value")
            Issue.record("a put succeeded with no etcd running")
        } catch {
            guard case .unavailable(let operation, let failures) = error else {
                Issue.record("expected .unavailable, got \(error)")
                return
            }
            #expect(operation == "put")
            #expect(failures.map(\.endpoint) == endpoints)
            guard failures.count == 3 else { return }
            guard case .connectionRefused = failures[0].reason, case .connectionRefused = failures[1].reason else {
                Issue.record("expected refused connections, got \(failures)")
                return
            }
            guard case .timedOut(let after) = failures[2].reason else {
                Issue.record("expected a timeout on the silent listener, got \(failures[2])")
                return
            }
            #expect(after == .milliseconds(500))
            let message = "\(error)"
            for endpoint in endpoints { #expect(message.contains(endpoint)) }
            #expect(message.contains("connection refused"))
            #expect(message.contains("no answer within 500 ms"))
        }
        // Refused connections fail at once; only the silent one costs its attempt time.
        #expect(ContinuousClock.now - start < .seconds(2))
    }
}

/// A loopback listener that never accepts: connections complete into its backlog and hang.
final class SilentListener: Sendable {
    let descriptor: Int32

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = LoopbackSocket.address(port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard descriptor >= 0, bound == 0, listen(descriptor, 16) == 0 else {
            throw EtcdTestingError("cannot listen on 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
        }
    }

    func close() { _ = Glibc.close(descriptor) }
}
