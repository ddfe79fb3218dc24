import AsyncHTTPClient
import Foundation
import MMCore
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// Service-to-service HTTP through AsyncHTTPClient, with a per-request timeout.
public struct AHCTransport: HTTPTransport {
    /// One client per process with room for the long-polls and parked acquires a node keeps
    /// open to one service: `HTTPClient.shared` allows 8 connections per host and queues the
    /// rest, so a renewal could wait behind parked acquires and let a lease lapse.
    /// Its https requests trust the system's roots: a cluster's own processes reach each other
    /// through `cluster(_:)`, which is this one without `tls`.
    public static let shared: AHCTransport = {
        // Never shut down: it lives exactly as long as the process, like HTTPClient.shared.
        AHCTransport(client: makeClient(tls: nil, retryConnections: true), failFastClient: failFast.client, caPath: nil)
    }()

    /// Like `shared`, but a refused connection fails the request at once instead of being
    /// retried with backoff until the request's timeout: for endpoints with several replicas,
    /// where the next replica is the better retry (`failoverTransport`).
    public static let failFast = AHCTransport(client: makeClient(tls: nil, retryConnections: false), failFastClient: nil, caPath: nil)

    /// The transport a process of this cluster calls its peers with: `shared` without `tls`;
    /// with it, a process-wide pair of clients (retrying and fail-fast) that trusts only the
    /// CA in `tls.ca`. One pair per CA file for the life of the process (like `shared`): a
    /// rotated CA is picked up by a restart. If the CA cannot be read, every call fails with
    /// the `TLSSetupError` (the process's own server refuses to start for the same reason).
    public static func cluster(_ config: ClusterConfig) -> any HTTPTransport {
        guard config.tls.isEnabled else { return shared }
        do {
            return try trustingCA(config.tls.ca)
        } catch {
            return UnusableTransport(error: error)
        }
    }

    /// The process-wide transport trusting only the CA certificates in `caPath` (see `cluster`).
    public static func trustingCA(_ caPath: String) throws(TLSSetupError) -> AHCTransport {
        if let existing = byCA.withLock({ $0[caPath] }) { return existing }
        let made = try AHCTransport(trustingCA: caPath)
        // Two callers may race to make the first one; the loser's clients are shut down.
        let (winner, lost) = byCA.withLock { cache -> (AHCTransport, Bool) in
            if let existing = cache[caPath] { return (existing, true) }
            cache[caPath] = made
            return (made, false)
        }
        if lost { Task { try? await made.shutdown() } }
        return winner
    }

    private static let byCA = Mutex<[String: AHCTransport]>([:])

    let client: HTTPClient
    /// The same trust without connection retries, for `failoverTransport`; nil when this is it.
    let failFastClient: HTTPClient?
    /// The CA file trusted (named in TLS failures), nil for the system's roots.
    let caPath: String?
    /// Responses larger than this are refused rather than buffered without bound.
    let maxResponseBytes: Int

    public init(client: HTTPClient, maxResponseBytes: Int = 64 * 1024 * 1024) {
        self.init(client: client, failFastClient: nil, caPath: nil, maxResponseBytes: maxResponseBytes)
    }

    init(client: HTTPClient, failFastClient: HTTPClient?, caPath: String?, maxResponseBytes: Int = 64 * 1024 * 1024) {
        self.client = client
        self.failFastClient = failFastClient
        self.caPath = caPath
        self.maxResponseBytes = maxResponseBytes
    }

    /// A transport of its own (two clients) trusting only the CA certificates in `caPath`;
    /// the caller shuts it down (`shutdown()`). Processes use the shared `trustingCA(_:)`.
    public init(trustingCA caPath: String) throws(TLSSetupError) {
        let tls = try ClientTLSSetup.clientConfiguration(caPath: caPath)
        self.init(
            client: Self.makeClient(tls: tls, retryConnections: true),
            failFastClient: Self.makeClient(tls: tls, retryConnections: false), caPath: caPath)
    }

    /// Shuts down the clients of a transport made with `init(trustingCA:)`.
    public func shutdown() async throws {
        try await client.shutdown()
        try await failFastClient?.shutdown()
    }

    static func makeClient(tls: TLSConfiguration?, retryConnections: Bool) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        configuration.connectionPool.retryConnectionEstablishment = retryConnections
        // Applies to https URLs only; http URLs never negotiate TLS.
        if let tls { configuration.tlsConfiguration = tls }
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    public var failoverTransport: any HTTPTransport {
        guard let failFastClient else { return self }
        return AHCTransport(client: failFastClient, failFastClient: nil, caPath: caPath, maxResponseBytes: maxResponseBytes)
    }

    public func send(_ request: TransportRequest) async throws(TransportError) -> TransportResponse {
        var outbound = HTTPClientRequest(url: request.url)
        outbound.method = NIOHTTP1.HTTPMethod(rawValue: request.method.rawValue)
        for (name, value) in request.headers { outbound.headers.add(name: name, value: value) }
        if let body = request.body { outbound.body = .bytes(ByteBuffer(bytes: body)) }
        do {
            // The timeout bounds everything, the TLS handshake included: a handshake that
            // fails is retried (like a refused connection) until then, and the request then
            // fails with the handshake's error rather than a bare timeout.
            let response = try await client.execute(outbound, timeout: .milliseconds(request.timeoutMs))
            let body = try await response.body.collect(upTo: maxResponseBytes)
            return TransportResponse(status: Int(response.status.code), body: Data(body.readableBytesView))
        } catch {
            throw TransportError(url: request.url, reason: TLSFailureDescription.describe(error, url: request.url, caPath: caPath) ?? "\(error)")
        }
    }
}

/// Stands in for a TLS transport whose CA could not be loaded: every call fails saying why.
struct UnusableTransport: HTTPTransport {
    let error: TLSSetupError

    func send(_ request: TransportRequest) async throws(TransportError) -> TransportResponse {
        throw TransportError(url: request.url, reason: "cannot call \(TLSFailureDescription.hostPort(request.url)) over TLS: \(error)")
    }
}
