import CurlClient
import Foundation
import MMCore
import MMTestSupport
import Testing

/// mmctl's libcurl transport against a service serving HTTPS (`tls` set): it trusts only the
/// CA it is given, and every TLS failure names host:port and says TLS, well within the timeout.
@Suite(.serialized) struct CurlTLSTests {
    static func config(_ ca: ThrowawayCA, cert: String? = nil) -> ClusterConfig {
        var config = ClusterConfig.defaults
        config.tls = .init(cert: cert ?? ca.certTemplate, key: ca.keyTemplate, ca: ca.caPath)
        return config
    }

    /// The failure's reason and how long it took.
    static func failure(_ transport: CurlTransport, _ url: String) async -> (String?, Duration) {
        let started = ContinuousClock.now
        do {
            _ = try await transport.send(TransportRequest(method: .GET, url: url, timeoutMs: 3_000))
            return (nil, ContinuousClock.now - started)
        } catch {
            return (error.reason, ContinuousClock.now - started)
        }
    }

    @Test func trustingTheCAItGetsAnswers() async throws {
        try await withThrowawayCA { ca in
            try await withTestService(config: Self.config(ca)) { port in
                let response = try await CurlTransport(caPath: ca.caPath).send(TransportRequest(method: .GET, url: "https://127.0.0.1:\(port)/healthz", timeoutMs: 3_000))
                #expect(response.status == 200)
            }
        }
    }

    @Test func theProcessWideTrustIsTheConfigsCA() async throws {
        try await withThrowawayCA { ca in
            let config = Self.config(ca)
            CurlTransport.useClusterTrust(config)
            defer { CurlTransport.useClusterTrust(.defaults) }
            #expect(CurlTransport().caPath == ca.caPath)
            try await withTestService(config: config) { port in
                let response = try await CurlTransport().send(TransportRequest(method: .GET, url: "https://127.0.0.1:\(port)/healthz", timeoutMs: 3_000))
                #expect(response.status == 200)
            }
            CurlTransport.useClusterTrust(.defaults)
            #expect(CurlTransport().caPath == nil)
        }
    }

    @Test func aWrongCAIsATLSVerificationFailure() async throws {
        try await withThrowawayCA { ca in
            try await withTestService(config: Self.config(ca)) { port in
                let (reason, took) = await Self.failure(CurlTransport(caPath: ca.otherCAPath), "https://127.0.0.1:\(port)/healthz")
                let text = try #require(reason)
                #expect(text.contains("TLS verification failed for 127.0.0.1:\(port)"), "\(text)")
                #expect(text.contains(ca.otherCAPath), "\(text)")
                #expect(took < .seconds(2), "took \(took)")
            }
        }
    }

    @Test func noConfiguredCAIsAFailureToo() async throws {
        try await withThrowawayCA { ca in
            try await withTestService(config: Self.config(ca)) { port in
                let (reason, _) = await Self.failure(CurlTransport(caPath: nil), "https://127.0.0.1:\(port)/healthz")
                let text = try #require(reason)
                #expect(text.contains("TLS verification failed for 127.0.0.1:\(port)") && text.contains("no tls.ca"), "\(text)")
            }
        }
    }

    @Test func anExpiredCertificateIsRefusedAsExpired() async throws {
        try await withThrowawayCA { ca in
            try await withTestService(config: Self.config(ca, cert: ca.expiredCertPath)) { port in
                let (reason, took) = await Self.failure(CurlTransport(caPath: ca.caPath), "https://127.0.0.1:\(port)/healthz")
                let text = try #require(reason)
                #expect(text.contains("TLS verification failed for 127.0.0.1:\(port)") && text.contains("expired"), "\(text)")
                #expect(took < .seconds(2), "took \(took)")
            }
        }
    }

    @Test func aCertificateForAnotherAddressIsRefused() async throws {
        try await withThrowawayCA { ca in
            try await withTestService(config: Self.config(ca, cert: ca.wrongHostCertPath)) { port in
                let (reason, _) = await Self.failure(CurlTransport(caPath: ca.caPath), "https://127.0.0.1:\(port)/healthz")
                let text = try #require(reason)
                #expect(text.contains("TLS verification failed for 127.0.0.1:\(port)"), "\(text)")
            }
        }
    }

    @Test func plainHTTPToATLSServerFailsClearlyAndFast() async throws {
        try await withThrowawayCA { ca in
            try await withTestService(config: Self.config(ca)) { port in
                let (reason, took) = await Self.failure(CurlTransport(caPath: ca.caPath), "http://127.0.0.1:\(port)/healthz")
                let text = try #require(reason)
                #expect(text.contains("127.0.0.1:\(port)") && text.contains("HTTPS"), "\(text)")
                #expect(took < .seconds(2), "took \(took)")
            }
        }
    }

    @Test func httpsToAPlainServerFailsClearlyAndFast() async throws {
        try await withThrowawayCA { ca in
            try await withTestService(config: .defaults) { port in
                let (reason, took) = await Self.failure(CurlTransport(caPath: ca.caPath), "https://127.0.0.1:\(port)/healthz")
                let text = try #require(reason)
                #expect(text.contains("TLS handshake with 127.0.0.1:\(port) failed") && text.contains("does not answer in TLS"), "\(text)")
                #expect(took < .seconds(2), "took \(took)")
            }
        }
    }
}
