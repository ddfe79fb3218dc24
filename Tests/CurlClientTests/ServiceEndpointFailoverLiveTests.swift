import CurlClient
import Foundation
import MMCore
import MMServiceKit
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `ServiceEndpoint` failover over real sockets, with both HTTP stacks (libcurl for mmctl,
/// AsyncHTTPClient for the services): a replica whose port is closed, a replica that accepts
/// connections but never answers (a SIGSTOPped process), and no replica at all.
@Suite struct ServiceEndpointFailoverLiveTests {
    static let transports: [(String, any HTTPTransport)] = [("curl", CurlTransport()), ("ahc", AHCTransport.shared)]

    /// A loopback port nothing listens on: bound, then closed.
    static func closedPort() throws -> Int {
        let socket = try ListeningSocket(listen: false)
        let port = socket.port
        socket.close()
        return port
    }

    /// A socket that is bound and listening (the kernel completes connections into its
    /// backlog) but never accepts or answers: what a stopped server looks like to a client.
    final class ListeningSocket: @unchecked Sendable {
        let fd: Int32
        let port: Int

        init(listen shouldListen: Bool = true) throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw POSIXError(.EMFILE) }
            var address = LoopbackSocket.address(port: 0)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else { Glibc.close(fd); throw POSIXError(.EADDRINUSE) }
            if shouldListen { _ = Glibc.listen(fd, 16) }
            var actual = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &actual) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            self.fd = fd
            port = Int(UInt16(bigEndian: actual.sin_port))
        }

        func close() { Glibc.close(fd) }
    }

    @Test(arguments: transports.map(\.0))
    func aClosedFirstReplicaIsSkippedAndTheSecondStaysPreferred(transportName: String) async throws {
        let transport = try #require(Self.transports.first { $0.0 == transportName }?.1)
        let dead = "http://127.0.0.1:\(try Self.closedPort())"
        try await CurlTransportTests.withServer { live in
            let endpoint = ServiceEndpoint(baseURLs: [dead, live], token: "t", transport: transport, timeoutMs: 2_000, attemptTimeoutMs: 500)
            let started = ContinuousClock.now
            let echo: CurlTransportTests.Echo = try await endpoint.call(.POST, "/echo", body: ["hello": "replica"])
            #expect(echo.method == "POST")
            #expect(echo.authorization == "Bearer t")
            #expect(echo.body.contains("replica"))
            #expect(endpoint.baseURL == live, "the replica that answered is remembered")
            #expect(ContinuousClock.now - started < .milliseconds(400), "a refused replica is skipped at once")
            // The next call goes straight to it; a copy of the endpoint shares the preference.
            let copy = endpoint
            let again: CurlTransportTests.Echo = try await copy.call(.GET, "/echo")
            #expect(again.method == "GET")
            #expect(copy.baseURL == live)
        }
    }

    @Test(arguments: transports.map(\.0))
    func aReplicaThatNeverAnswersIsSkippedWithinTheAttemptTimeout(transportName: String) async throws {
        let transport = try #require(Self.transports.first { $0.0 == transportName }?.1)
        let hung = try ListeningSocket()
        defer { hung.close() }
        try await CurlTransportTests.withServer { live in
            let endpoint = ServiceEndpoint(baseURLs: ["http://127.0.0.1:\(hung.port)", live], token: "t", transport: transport, timeoutMs: 5_000, attemptTimeoutMs: 300)
            let started = ContinuousClock.now
            let echo: CurlTransportTests.Echo = try await endpoint.call(.GET, "/echo")
            let took = ContinuousClock.now - started
            #expect(echo.method == "GET")
            #expect(took >= .milliseconds(250), "the hung replica was waited for one attempt (\(took))")
            #expect(took < .seconds(3), "not the 5 s client timeout (\(took))")
            #expect(endpoint.baseURL == live)
        }
    }

    @Test(arguments: transports.map(\.0))
    func noReplicaReachableIsOneClearError(transportName: String) async throws {
        let transport = try #require(Self.transports.first { $0.0 == transportName }?.1)
        let urls = try (0..<2).map { _ in "http://127.0.0.1:\(try Self.closedPort())" }
        let endpoint = ServiceEndpoint(baseURLs: urls, token: "t", transport: transport, timeoutMs: 2_000, attemptTimeoutMs: 500)
        let started = ContinuousClock.now
        do {
            let _: Empty = try await endpoint.call(.GET, "/v1/members")
            Issue.record("nothing listens: the call must fail")
        } catch {
            guard case .unreachable(let transportError) = error else {
                Issue.record("expected .unreachable, got \(error)")
                return
            }
            #expect(transportError.description.contains("none of the 2 replicas answered"), "\(transportError)")
            for url in urls { #expect(transportError.description.contains(url), "\(transportError)") }
        }
        // A refused connection is reported at once, not retried until the attempt timeout
        // (AsyncHTTPClient retries connecting by default; `failoverTransport` does not).
        let took = ContinuousClock.now - started
        #expect(took < .milliseconds(400), "two refused replicas took \(took)")
    }
}
