import EtcdKit
import MMTestSupport
import Testing

/// Leases as the coordinator's presence will use them: a key per node incarnation under a lease.
@Suite struct EtcdLeaseTests {
    @Test func revokingALeaseDeletesItsKeys() async throws {
        try await withEtcdCluster(label: "lease") { cluster in
            let client = try EtcdTesting.client(cluster)
            let lease = try await client.grantLease(ttlSeconds: 30)
            #expect(lease.id != 0)
            #expect(lease.ttlSeconds == 30)

            try await client.put("presence/n1", "incarnation-1", lease: lease.id)
            try await client.put("unleased", "stays")
            #expect(try await client.get("presence/n1")?.lease == lease.id)
            let alive = try await client.leaseTimeToLive(lease.id, keys: true)
            #expect(alive.grantedTTLSeconds == 30)
            #expect(alive.ttlSeconds > 0 && alive.ttlSeconds <= 30)
            #expect(alive.keys == [Array("presence/n1".utf8)])

            try await client.revokeLease(lease.id)
            #expect(try await client.get("presence/n1") == nil)
            #expect(try await client.get("unleased")?.valueString == "stays")
            #expect(try await client.leaseTimeToLive(lease.id).isExpired)

            // Using the revoked lease: each call says so in its own way.
            do throws(EtcdError) {
                try await client.revokeLease(lease.id)
                Issue.record("a revoked lease was revoked again")
            } catch {
                #expect(error.isLeaseNotFound)
                #expect(error.gatewayStatus == EtcdGatewayStatus(httpStatus: 404, code: .notFound, message: "etcdserver: requested lease not found"))
            }
            do throws(EtcdError) {
                try await client.put("presence/n1", "incarnation-1", lease: lease.id)
                Issue.record("a put under a revoked lease was accepted")
            } catch {
                #expect(error.isLeaseNotFound)
            }
            do throws(EtcdError) {
                try await client.keepAliveLease(lease.id)
                Issue.record("a revoked lease was kept alive")
            } catch {
                guard case .leaseNotFound(let id, let endpoint) = error else {
                    Issue.record("expected .leaseNotFound, got \(error)")
                    return
                }
                #expect(id == lease.id)
                #expect(endpoint == cluster.clientURLs[0])
            }
        }
    }

    /// A lease kept alive outlives its TTL; its twin, left alone, expires and takes its key along.
    @Test func keepAliveExtendsTheTTL() async throws {
        try await withEtcdCluster(label: "keepalive") { cluster in
            let client = try EtcdTesting.client(cluster)
            // 2 s is etcd's minimum TTL with the default 1 s election timeout.
            let kept = try await client.grantLease(ttlSeconds: 2)
            let control = try await client.grantLease(ttlSeconds: 2)
            #expect(kept.ttlSeconds == 2 && control.ttlSeconds == 2)
            try await client.put("kept", "alive", lease: kept.id)
            try await client.put("control", "expires", lease: control.id)

            let start = ContinuousClock.now
            for _ in 0..<3 {
                try await Task.sleep(for: .milliseconds(900))
                let renewed = try await client.keepAliveLease(kept.id)
                #expect(renewed.id == kept.id)
                #expect(renewed.ttlSeconds == 2)
            }
            // Past the 2 s TTL: only the renewals keep the first key.
            #expect(ContinuousClock.now - start > .milliseconds(2_500))
            #expect(try await client.get("kept")?.valueString == "alive")
            #expect(try await client.leaseTimeToLive(kept.id).ttlSeconds >= 1)
            // The leader looks for expired leases every 500 ms, then revokes through raft.
            let controlGone = try await eventually(timeout: .seconds(3)) { try await client.get("control") == nil }
            #expect(controlGone, "the lease that was not kept alive still holds its key")
            #expect(try await client.leaseTimeToLive(control.id).isExpired)
        }
    }
}
