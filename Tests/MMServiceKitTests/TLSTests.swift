import Foundation
import MMCore
import MMServiceKit
import MMTestSupport
import Testing

/// HTTPS between processes (`tls: {cert, key, ca}`): a service built as every service is
/// serves TLS with its host's certificate, AsyncHTTPClient trusting only the cluster CA
/// verifies chain, dates and the IP it dialled, and every failure names host:port and TLS,
/// within the request's timeout.
@Suite(.serialized) struct TLSTests {
    static func config(_ ca: ThrowawayCA, cert: String? = nil) -> ClusterConfig {
        var config = ClusterConfig.defaults
        config.tls = .init(cert: cert ?? ca.certTemplate, key: ca.keyTemplate, ca: ca.caPath)
        return config
    }

    static func get(_ transport: any HTTPTransport, _ url: String, timeoutMs: Int64 = 2_000) async throws(TransportError) -> TransportResponse {
        try await transport.send(TransportRequest(method: .GET, url: url, timeoutMs: timeoutMs))
    }

    /// The failure of `send`, and how long it took.
    static func failure(_ transport: any HTTPTransport, _ url: String, timeoutMs: Int64 = 2_000) async -> (TransportError?, Duration) {
        let started = ContinuousClock.now
        do {
            _ = try await get(transport, url, timeoutMs: timeoutMs)
            return (nil, ContinuousClock.now - started)
        } catch {
            return (error, ContinuousClock.now - started)
        }
    }

    @Test func serviceServesHTTPSToAClientTrustingTheCA() async throws {
        try await withThrowawayCA { ca in
            let config = Self.config(ca)
            #expect(config.scheme == "https")
            try await withTestService(config: config) { port in
                let transport = try AHCTransport(trustingCA: ca.caPath)
                defer { Task { try? await transport.shutdown() } }
                let response = try await Self.get(transport, "https://127.0.0.1:\(port)/healthz")
                #expect(response.status == 200)
                // The process-wide transport a service gets from its config, and its fail-fast twin.
                let cluster = AHCTransport.cluster(config)
                #expect(try await Self.get(cluster, "https://127.0.0.1:\(port)/readyz").status == 200)
                #expect(try await Self.get(cluster.failoverTransport, "https://127.0.0.1:\(port)/healthz").status == 200)
            }
        }
    }

    @Test func serviceEnvironmentDefaultsToTheClusterTransport() async throws {
        try await withThrowawayCA { ca in
            let config = Self.config(ca)
            let directory = TestPaths.temporaryDataDirectory("tls-env")
            defer { try? FileManager.default.removeItem(atPath: directory.path) }
            let environment = ServiceEnvironment(process: .node(1), role: .node, config: config, dataDirectory: directory, tokens: RoleTokens(tokens: [:]))
            #expect(environment.hostName == ClusterConfig.localHostName)
            try await withTestService(config: config) { port in
                let response = try await Self.get(environment.transport, "https://127.0.0.1:\(port)/healthz")
                #expect(response.status == 200)
            }
        }
    }

    @Test func aWrongCAIsATLSVerificationFailureNamingHostAndPort() async throws {
        try await withThrowawayCA { ca in
            try await withTestService(config: Self.config(ca)) { port in
                let stranger = try AHCTransport(trustingCA: ca.otherCAPath)
                defer { Task { try? await stranger.shutdown() } }
                // Fail-fast: at once. Retrying: the handshake error once the timeout is up, not a bare timeout.
                for (transport, bound) in [(stranger.failoverTransport, Duration.seconds(1)), (stranger, .seconds(3))] {
                    let (error, took) = await Self.failure(transport, "https://127.0.0.1:\(port)/healthz", timeoutMs: 2_000)
                    let reason = try #require(error).reason
                    #expect(reason.contains("TLS verification failed for 127.0.0.1:\(port)"), "\(reason)")
                    #expect(reason.contains(ca.otherCAPath), "names the CA it trusted: \(reason)")
                    #expect(took < bound, "took \(took)")
                    #expect(ClientError.unreachable(try #require(error)).description.contains("TLS verification failed"))
                }
            }
        }
    }

    @Test func anExpiredCertificateIsRefused() async throws {
        try await withThrowawayCA { ca in
            try await withTestService(config: Self.config(ca, cert: ca.expiredCertPath)) { port in
                let transport = try AHCTransport(trustingCA: ca.caPath)
                defer { Task { try? await transport.shutdown() } }
                let (error, took) = await Self.failure(transport.failoverTransport, "https://127.0.0.1:\(port)/healthz")
                let reason = try #require(error).reason
                #expect(reason.contains("TLS verification failed for 127.0.0.1:\(port)"), "\(reason)")
                #expect(reason.contains("expired"), "\(reason)")
                #expect(took < .seconds(1), "took \(took)")
            }
        }
    }

    @Test func aCertificateForAnotherAddressIsRefused() async throws {
        try await withThrowawayCA { ca in
            try await withTestService(config: Self.config(ca, cert: ca.wrongHostCertPath)) { port in
                let transport = try AHCTransport(trustingCA: ca.caPath)
                defer { Task { try? await transport.shutdown() } }
                let (error, _) = await Self.failure(transport.failoverTransport, "https://127.0.0.1:\(port)/healthz")
                let reason = try #require(error).reason
                #expect(reason.contains("TLS verification failed for 127.0.0.1:\(port)"), "\(reason)")
                #expect(reason.contains("does not name 127.0.0.1"), "\(reason)")
            }
        }
    }

    @Test func plainHTTPToATLSServerFailsClearlyAndFast() async throws {
        try await withThrowawayCA { ca in
            try await withTestService(config: Self.config(ca)) { port in
                let (error, took) = await Self.failure(AHCTransport.shared, "http://127.0.0.1:\(port)/healthz")
                let reason = try #require(error).reason
                #expect(reason.contains("127.0.0.1:\(port)") && reason.contains("HTTPS"), "\(reason)")
                #expect(took < .seconds(1), "took \(took)")
            }
        }
    }

    @Test func httpsToAPlainServerFailsClearlyAndFast() async throws {
        try await withThrowawayCA { ca in
            try await withTestService(config: .defaults) { port in
                let transport = try AHCTransport(trustingCA: ca.caPath)
                defer { Task { try? await transport.shutdown() } }
                let (error, took) = await Self.failure(transport.failoverTransport, "https://127.0.0.1:\(port)/healthz")
                let reason = try #require(error).reason
                #expect(reason.contains("TLS handshake with 127.0.0.1:\(port) failed"), "\(reason)")
                #expect(reason.contains("does not answer in TLS"), "\(reason)")
                #expect(took < .seconds(1), "took \(took)")
            }
        }
    }

    @Test func unusableTLSFilesAreNamedAtStart() async throws {
        try await withThrowawayCA { ca in
            var config = Self.config(ca)
            config.tls.cert = ca.path("missing-{host}.crt")
            #expect(throws: TLSSetupError(key: "tls.cert", path: ca.path("missing-local.crt"), reason: "no such file")) {
                try TLSServerSetup.validate(config, host: "local")
            }
            // A key that is not the certificate's.
            config = Self.config(ca)
            config.tls.key = ca.path("other-ca.key")
            #expect { try TLSServerSetup.validate(config, host: "local") } throws: { ($0 as? TLSSetupError)?.key == "tls" }
            config = Self.config(ca)
            config.tls.ca = ca.path("nowhere.pem")
            #expect { try TLSServerSetup.validate(config, host: "local") } throws: { ($0 as? TLSSetupError)?.key == "tls.ca" }
            // A service built with it does not start, and says why.
            config = Self.config(ca)
            config.tls.cert = ca.path("missing-{host}.crt")
            await #expect { try await withTestService(config: config) { _ in } } throws: { "\($0)".contains("tls.cert") }
            // Its clients say why too, naming the peer.
            config = Self.config(ca)
            config.tls.ca = ca.path("nowhere.pem")
            let (error, _) = await Self.failure(AHCTransport.cluster(config), "https://127.0.0.1:1/healthz")
            #expect(error?.reason.contains("tls.ca") == true)
        }
    }
}
