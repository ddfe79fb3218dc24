import Foundation
import MMCore
import MMServiceKit
import MMTestSupport
import Testing

/// A real cluster (`mmctl start`, supervisor, every service, one node) over TLS with a
/// throwaway CA: every process serves HTTPS with `{host}`'s certificate, the supervisor probes
/// and every service calls its peers trusting only tls.ca, and mmctl (libcurl) does the same.
@Suite(.serialized) struct ClusterTLSTests {
    @Test func aClusterRunsAndQuotesOverTLS() async throws {
        try await withThrowawayCA { ca in
            let cluster = CLICluster("tls", settings: [
                "tls.cert": ca.certTemplate, "tls.key": ca.keyTemplate, "tls.ca": ca.caPath,
            ])
            defer {
                cluster.forceCleanup()
                try? FileManager.default.removeItem(atPath: cluster.dataDirectory.path)
            }
            let started = try await cluster.start(nodes: 1)
            try #require(started.code == 0, "start failed: \(started.stdout)\(started.stderr)")

            let status = try await cluster.mmctl(["status", "--json"])
            #expect(status.code == 0, "\(status.stderr)")
            let snapshot = try MMJSON.decode(ClusterSnapshot.self, from: Data(status.stdout.utf8))
            #expect(snapshot.errors.isEmpty, "\(snapshot.errors)")
            #expect(!snapshot.processes.isEmpty && snapshot.processes.allSatisfy { $0.state == .running && $0.restarts == 0 }, "\(snapshot.processes.map { "\($0.name) \($0.state) \($0.restarts)" })")
            let quoting = await eventually(timeout: .seconds(15), every: .milliseconds(200)) {
                ((try? await cluster.snapshot())?.symbols.contains { $0.quote != nil && $0.authority?.node == "n1" }) ?? false
            }
            #expect(quoting, "n1 quotes over TLS")

            // Plain HTTP to the same supervisor is refused with a clear answer, not a hang.
            let plain = await Self.failure(AHCTransport.shared, "http://127.0.0.1:\(cluster.portBase)/healthz")
            #expect(plain?.contains("HTTPS") == true, "\(plain ?? "answered")")
            // And a client trusting another CA says TLS and names the supervisor's host:port.
            let stranger = try AHCTransport(trustingCA: ca.otherCAPath)
            let refused = await Self.failure(stranger.failoverTransport, "https://127.0.0.1:\(cluster.portBase)/healthz")
            try? await stranger.shutdown()
            #expect(refused?.contains("TLS verification failed for 127.0.0.1:\(cluster.portBase)") == true, "\(refused ?? "answered")")

            let stopped = try await cluster.stop()
            #expect(stopped.code == 0, "\(stopped.stderr)")
        }
    }

    static func failure(_ transport: any HTTPTransport, _ url: String) async -> String? {
        do {
            _ = try await transport.send(TransportRequest(method: .GET, url: url, timeoutMs: 2_000))
            return nil
        } catch {
            return error.reason
        }
    }
}
