import AsyncHTTPClient
import Foundation
import MMCore
import NIOCore
import NIOHTTP1

/// Service-to-service HTTP through AsyncHTTPClient, with a per-request timeout.
public struct AHCTransport: HTTPTransport {
    /// One client per process with room for the long-polls and parked acquires a node keeps
    /// open to one service: `HTTPClient.shared` allows 8 connections per host and queues the
    /// rest, so a renewal could wait behind parked acquires and let a lease lapse.
    public static let shared: AHCTransport = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        // Never shut down: it lives exactly as long as the process, like HTTPClient.shared.
        return AHCTransport(client: HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration))
    }()

    /// Like `shared`, but a refused connection fails the request at once instead of being
    /// retried with backoff until the request's timeout: for endpoints with several replicas,
    /// where the next replica is the better retry (`failoverTransport`).
    public static let failFast: AHCTransport = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        configuration.connectionPool.retryConnectionEstablishment = false
        return AHCTransport(client: HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration))
    }()

    public var failoverTransport: any HTTPTransport { client === Self.shared.client ? Self.failFast : self }

    let client: HTTPClient
    /// Responses larger than this are refused rather than buffered without bound.
    let maxResponseBytes: Int

    public init(client: HTTPClient, maxResponseBytes: Int = 64 * 1024 * 1024) {
        self.client = client
        self.maxResponseBytes = maxResponseBytes
    }

    public func send(_ request: TransportRequest) async throws(TransportError) -> TransportResponse {
        var outbound = HTTPClientRequest(url: request.url)
        outbound.method = NIOHTTP1.HTTPMethod(rawValue: request.method.rawValue)
        for (name, value) in request.headers { outbound.headers.add(name: name, value: value) }
        if let body = request.body { outbound.body = .bytes(ByteBuffer(bytes: body)) }
        do {
            let response = try await client.execute(outbound, timeout: .milliseconds(request.timeoutMs))
            let body = try await response.body.collect(upTo: maxResponseBytes)
            return TransportResponse(status: Int(response.status.code), body: Data(body.readableBytesView))
        } catch {
            throw TransportError(url: request.url, reason: "\(error)")
        }
    }
}
