import AsyncHTTPClient
import AsyncPrimitives
import Foundation
import Logging
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// A typed client for etcd 3.4's v3 JSON gateway (`/v3/...` on every member's client URL).
///
/// Calls go to the member that answered last. When a member cannot be reached in time (refused,
/// broken or unanswered connection) or answers that it cannot serve (no leader, quorum
/// timeout), the call moves on to the next endpoint, within `Configuration.requestTimeout` in
/// all. A refusal that is about the request (a missing lease, an invalid key) is thrown at once:
/// every member would say the same.
///
/// A write retried on another member after a timeout or a broken connection may have been
/// applied by the first one as well: the gateway carries no request IDs to deduplicate it.
/// Writes that must not happen twice are transactions guarded by a compare (`modRevision`,
/// `createRevision == 0`), so the repeat fails its compare instead of writing again.
public struct EtcdClient: Sendable {
    public struct Configuration: Sendable {
        /// How long one member gets to answer before the next one is tried. A member cut off
        /// from its quorum answers writes only after the server's own 7 s request timeout, so
        /// this is what lets a call reach a healthy member in time.
        public var attemptTimeout: Duration
        /// How long a call may take in all, failover included.
        public var requestTimeout: Duration
        /// Larger answers are refused rather than buffered without bound.
        public var maxResponseBytes: Int

        public init(attemptTimeout: Duration = .seconds(2), requestTimeout: Duration = .seconds(6), maxResponseBytes: Int = 32 * 1024 * 1024) {
            self.attemptTimeout = attemptTimeout
            self.requestTimeout = requestTimeout
            self.maxResponseBytes = maxResponseBytes
        }
    }

    /// The members' client URLs, e.g. "http://127.0.0.1:2379", without a trailing slash.
    public let endpoints: [String]
    public let configuration: Configuration
    let httpClient: HTTPClient
    let logger: Logger
    /// Index in `endpoints` of the member that answered last. Calls start there, so a dead
    /// member costs one failed attempt, not one per call. Shared by every copy of this value.
    let preferred: LockedBox<Int>

    /// - Parameter httpClient: owned by the caller; `makeHTTPClient()` builds one that fails
    ///   over quickly. With AsyncHTTPClient's defaults a stopped member is only given up on
    ///   after `attemptTimeout`, because the pool keeps retrying the refused connection.
    public init(
        endpoints: [String], httpClient: HTTPClient, configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "EtcdKit", factory: { _ in SwiftLogNoOpLogHandler() })
    ) throws(EtcdError) {
        guard !endpoints.isEmpty else { throw .invalidConfiguration("no endpoints given: pass the members' client URLs, e.g. http://127.0.0.1:2379") }
        var normalised: [String] = []
        for endpoint in endpoints {
            var url = endpoint
            while url.hasSuffix("/") { url.removeLast() }
            guard url.hasPrefix("http://") || url.hasPrefix("https://"), URL(string: url)?.host != nil else {
                throw .invalidConfiguration("endpoint \"\(endpoint)\" is not an http(s) URL with a host, e.g. http://127.0.0.1:2379")
            }
            normalised.append(url)
        }
        guard configuration.attemptTimeout > .zero, configuration.requestTimeout > .zero else {
            throw .invalidConfiguration("attemptTimeout and requestTimeout must be positive")
        }
        self.endpoints = normalised
        self.httpClient = httpClient
        self.configuration = configuration
        self.logger = logger
        preferred = LockedBox(0)
    }

    /// An HTTPClient suited to failover: a refused connection fails the request at once instead
    /// of being retried until the connect timeout (AsyncHTTPClient's default), connecting gives
    /// up after `connectTimeout`, and up to 64 requests run concurrently per member rather than
    /// 8. The caller shuts it down.
    public static func makeHTTPClient(connectTimeout: Duration = .seconds(1)) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        configuration.timeout.connect = TimeAmount(connectTimeout)
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// The endpoint the next call starts with.
    public var preferredEndpoint: String { endpoints[preferred.value % endpoints.count] }

    // MARK: - KV

    public func range(_ request: EtcdRangeRequest) async throws(EtcdError) -> EtcdRangeResponse {
        try await unary("range", path: "/v3/kv/range", WireRangeRequest(request), as: WireRangeResponse.self).model
    }

    /// The key's current value, nil when it does not exist.
    public func get(_ key: String) async throws(EtcdError) -> EtcdKeyValue? {
        try await range(.key(key)).keyValues.first
    }

    @discardableResult
    public func put(_ request: EtcdPutRequest) async throws(EtcdError) -> EtcdPutResponse {
        try await unary("put", path: "/v3/kv/put", WirePutRequest(request), as: WirePutResponse.self).model
    }

    @discardableResult
    public func put(_ key: String, _ value: String, lease: Int64 = 0) async throws(EtcdError) -> EtcdPutResponse {
        try await put(EtcdPutRequest(key, value, lease: lease))
    }

    @discardableResult
    public func deleteRange(_ request: EtcdDeleteRangeRequest) async throws(EtcdError) -> EtcdDeleteRangeResponse {
        try await unary("delete range", path: "/v3/kv/deleterange", WireDeleteRangeRequest(request), as: WireDeleteRangeResponse.self).model
    }

    /// Runs `success` if every comparison holds, else `failure`, atomically at one revision.
    /// etcd refuses a transaction that writes the same key twice ("duplicate key given in txn
    /// request") or has more than 128 operations per branch (the default --max-txn-ops).
    public func txn(compare: [EtcdCompare], success: [EtcdRequestOp], failure: [EtcdRequestOp] = []) async throws(EtcdError) -> EtcdTxnResponse {
        let request = WireTxnRequest(compare: compare.map(WireCompare.init), success: success.map(WireRequestOp.init), failure: failure.map(WireRequestOp.init))
        return try await call("txn", path: "/v3/kv/txn", request) { (wire: WireTxnResponse, _) in
            var responses: [EtcdResponseOp] = []
            for operation in wire.responses ?? [] {
                guard let model = operation.model else { return .malformed("a transaction response holds an operation this client never sent") }
                responses.append(model)
            }
            return .success(EtcdTxnResponse(header: wire.header.model, succeeded: wire.succeeded ?? false, responses: responses))
        }.value
    }

    // MARK: - Leases

    /// A new lease of `ttlSeconds` (raised by etcd to its minimum, see `EtcdLeaseGrant.ttlSeconds`),
    /// with the given ID or, for 0, one etcd chooses.
    public func grantLease(ttlSeconds: Int64, id: Int64 = 0) async throws(EtcdError) -> EtcdLeaseGrant {
        let request = WireLeaseGrantRequest(TTL: WireInt64(ttlSeconds), ID: id == 0 ? nil : WireInt64(id))
        return try await call("lease grant", path: "/v3/lease/grant", request) { (wire: WireLeaseGrantResponse, _) in
            if let error = wire.error, !error.isEmpty { return .refused(EtcdGatewayStatus(httpStatus: 200, code: .unknown, message: error)) }
            return .success(EtcdLeaseGrant(header: wire.header.model, id: wire.ID.orZero, ttlSeconds: wire.TTL.orZero))
        }.value
    }

    /// Ends the lease now and deletes every key attached to it. A lease etcd does not have is
    /// refused with NOT_FOUND ("etcdserver: requested lease not found", `isLeaseNotFound`).
    @discardableResult
    public func revokeLease(_ id: Int64) async throws(EtcdError) -> EtcdResponseHeader {
        try await unary("lease revoke", path: "/v3/lease/revoke", WireLeaseRequest(ID: WireInt64(id)), as: WireLeaseRevokeResponse.self).header.model
    }

    /// Renews the lease to its granted TTL, counted from now. The gateway serves keep-alive as
    /// a stream; one POST sends one request, gets one answer and ends. A lease etcd does not
    /// have (expired, revoked) comes back as TTL 0 rather than an error: thrown as `.leaseNotFound`.
    @discardableResult
    public func keepAliveLease(_ id: Int64) async throws(EtcdError) -> EtcdLeaseKeepAlive {
        let (result, endpoint) = try await call("lease keep-alive", path: "/v3/lease/keepalive", WireLeaseRequest(ID: WireInt64(id))) {
            (line: WireStreamLine<WireLeaseKeepAliveResponse>, _) -> Interpretation<EtcdLeaseKeepAlive> in
            if let error = line.error { return Self.interpret(error) }
            guard let wire = line.result else { return .malformed("neither \"result\" nor \"error\" in the stream's first line") }
            return .success(EtcdLeaseKeepAlive(header: wire.header.model, id: wire.ID?.value ?? id, ttlSeconds: wire.TTL.orZero))
        }
        guard result.ttlSeconds > 0 else { throw .leaseNotFound(leaseId: id, endpoint: endpoint) }
        return result
    }

    /// The lease's remaining TTL (-1 once expired or for an unknown lease) and, if asked, its keys.
    public func leaseTimeToLive(_ id: Int64, keys: Bool = false) async throws(EtcdError) -> EtcdLeaseTimeToLive {
        let wire = try await unary("lease time-to-live", path: "/v3/lease/timetolive", WireLeaseTimeToLiveRequest(ID: WireInt64(id), keys: keys ? true : nil), as: WireLeaseTimeToLiveResponse.self)
        return EtcdLeaseTimeToLive(
            header: wire.header.model, id: wire.ID?.value ?? id, ttlSeconds: wire.TTL.orZero,
            grantedTTLSeconds: wire.grantedTTL.orZero, keys: (wire.keys ?? []).map(\.bytes)
        )
    }

    // MARK: - Maintenance

    /// The status of whichever member answers (the preferred one when it can).
    public func status() async throws(EtcdError) -> EtcdStatus {
        try await unary("status", path: "/v3/maintenance/status", WireEmptyRequest(), as: WireStatusResponse.self).model
    }

    /// The status of the member at `endpoint`, asked only there: readiness checks need each
    /// member's own view. A member without a leader still answers, with `hasLeader` false.
    public func status(endpoint: String) async throws(EtcdError) -> EtcdStatus {
        var url = endpoint
        while url.hasSuffix("/") { url.removeLast() }
        return try await call("status", path: "/v3/maintenance/status", WireEmptyRequest(), only: url) { (wire: WireStatusResponse, _) in .success(wire.model) }.value
    }
}

// MARK: - Transport and failover

extension EtcdClient {
    /// What one member's answer means for the call.
    enum Interpretation<Value> {
        case success(Value)
        /// The member cannot serve now; another may.
        case memberUnavailable(EtcdGatewayStatus)
        /// The cluster refused the request itself.
        case refused(EtcdGatewayStatus)
        case malformed(String)
    }

    /// One attempt at one member.
    enum AttemptOutcome: Sendable {
        case answered(status: Int, body: [UInt8])
        case failed(EtcdEndpointFailure.Reason)
        case cancelled
    }

    func unary<Request: Encodable, Response: Decodable>(_ operation: String, path: String, _ request: Request, as: Response.Type) async throws(EtcdError) -> Response {
        try await call(operation, path: path, request) { (response: Response, _) in .success(response) }.value
    }

    /// Sends `request` to the preferred member, then to the others in order, until one answers
    /// or the request's deadline passes; only to `only` when given. `interpret` reads a 200
    /// answer (decoded from its first line) knowing which endpoint gave it.
    func call<Request: Encodable, Wire: Decodable, Value>(
        _ operation: String, path: String, _ request: Request, only: String? = nil, interpret: (Wire, String) -> Interpretation<Value>
    ) async throws(EtcdError) -> (value: Value, endpoint: String) {
        let body = Self.encode(request)
        let deadline = ContinuousClock.now + configuration.requestTimeout
        let first = preferred.value % endpoints.count
        let order = only.map { [$0] } ?? (0..<endpoints.count).map { endpoints[(first + $0) % endpoints.count] }
        var failures: [EtcdEndpointFailure] = []
        for endpoint in order {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else {
                failures.append(EtcdEndpointFailure(endpoint: endpoint, reason: .notTried))
                continue
            }
            let reason: EtcdEndpointFailure.Reason
            switch await send(url: endpoint + path, body: body, timeout: min(configuration.attemptTimeout, remaining)) {
            case .cancelled:
                throw .cancelled(operation: operation)
            case .failed(let failure):
                reason = failure
            case .answered(let status, let responseBody):
                if status == 200 {
                    let interpretation: Interpretation<Value>
                    do {
                        interpretation = interpret(try Self.decoder.decode(Wire.self, from: Self.firstLine(responseBody)), endpoint)
                    } catch {
                        throw .malformedResponse(operation: operation, endpoint: endpoint, detail: "\(error)", bodyExcerpt: Self.excerpt(responseBody))
                    }
                    switch interpretation {
                    case .success(let value):
                        if only == nil { remember(endpoint) }
                        return (value, endpoint)
                    case .refused(let gateway):
                        throw .refused(operation: operation, endpoint: endpoint, status: gateway)
                    case .malformed(let detail):
                        throw .malformedResponse(operation: operation, endpoint: endpoint, detail: detail, bodyExcerpt: Self.excerpt(responseBody))
                    case .memberUnavailable(let gateway):
                        reason = .memberUnavailable(gateway)
                    }
                } else if let gateway = Self.gatewayStatus(httpStatus: status, body: responseBody) {
                    guard gateway.isMemberUnavailable else { throw .refused(operation: operation, endpoint: endpoint, status: gateway) }
                    reason = .memberUnavailable(gateway)
                } else {
                    reason = .unexpectedResponse(httpStatus: status, bodyExcerpt: Self.excerpt(responseBody))
                }
            }
            let failure = EtcdEndpointFailure(endpoint: endpoint, reason: reason)
            failures.append(failure)
            // Debug: with a member down this is every request; the caller reports the outcome.
            logger.debug("etcd \(operation) failed at one member, trying the next", metadata: ["failure": "\(failure)"])
        }
        throw .unavailable(operation: operation, failures: failures)
    }

    /// Makes `endpoint` the first one tried by later calls.
    func remember(_ endpoint: String) {
        guard let index = endpoints.firstIndex(of: endpoint) else { return }
        preferred.value = index
    }

    /// One POST to one member, bounded by `timeout` from the connection to the last byte of the
    /// answer (AsyncHTTPClient's own deadline stops at the response head).
    func send(url: String, body: [UInt8], timeout: Duration) async -> AttemptOutcome {
        let client = httpClient
        let maxResponseBytes = configuration.maxResponseBytes
        let outcome = await withTimeLimit(timeout) { () async -> AttemptOutcome in
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(body)
            do {
                let response = try await client.execute(request, timeout: TimeAmount(timeout))
                let buffer = try await response.body.collect(upTo: maxResponseBytes)
                return .answered(status: Int(response.status.code), body: Array(buffer.readableBytesView))
            } catch {
                return Task.isCancelled ? .cancelled : .failed(Self.reason(for: error, timeout: timeout))
            }
        }
        guard let outcome else { return Task.isCancelled ? .cancelled : .failed(.timedOut(after: timeout)) }
        // The time limit cancels the request, which then reports a cancellation of its own.
        if case .cancelled = outcome, !Task.isCancelled { return .failed(.timedOut(after: timeout)) }
        return outcome
    }

    /// Sorts a transport error into what an operator can act on.
    static func reason(for error: any Error, timeout: Duration) -> EtcdEndpointFailure.Reason {
        let detail = String(describing: error)
        if let httpError = error as? HTTPClientError {
            switch httpError {
            case .deadlineExceeded, .readTimeout, .getConnectionFromPoolTimeout: return .timedOut(after: timeout)
            case .connectTimeout: return .timedOut(after: timeout)
            case .remoteConnectionClosed: return .connectionClosed(detail: detail)
            default: break
            }
        }
        if error is NIOTooManyBytesError {
            return .other(detail: "answer larger than EtcdClient.Configuration.maxResponseBytes (narrow the range or raise the limit)")
        }
        if let ioError = error as? IOError {
            if ioError.errnoCode == ECONNREFUSED { return .connectionRefused(detail: detail) }
            if ioError.errnoCode == ECONNRESET || ioError.errnoCode == EPIPE { return .connectionClosed(detail: detail) }
        }
        if let channelError = error as? ChannelError {
            switch channelError {
            case .ioOnClosedChannel, .eof, .outputClosed, .inputClosed, .alreadyClosed: return .connectionClosed(detail: detail)
            case .connectTimeout: return .timedOut(after: timeout)
            default: break
            }
        }
        if detail.localizedCaseInsensitiveContains("connection refused") { return .connectionRefused(detail: detail) }
        return .other(detail: detail)
    }

    /// The gateway's error body: `{"error": "...", "message": "...", "code": N}`; nil if the body is something else.
    static func gatewayStatus(httpStatus: Int, body: [UInt8]) -> EtcdGatewayStatus? {
        guard let wire = try? decoder.decode(WireGatewayError.self, from: Data(body)), let code = wire.code,
              let message = wire.message ?? wire.error else { return nil }
        return EtcdGatewayStatus(httpStatus: httpStatus, code: EtcdStatusCode(rawValue: code), message: message)
    }

    /// A stream's error line, sorted like a unary error.
    static func interpret<Value>(_ error: WireStreamError) -> Interpretation<Value> {
        let status = EtcdGatewayStatus(httpStatus: error.http_code ?? 200, code: EtcdStatusCode(rawValue: error.grpc_code ?? 2), message: error.message ?? "")
        return status.isMemberUnavailable ? .memberUnavailable(status) : .refused(status)
    }

    /// A streaming call's answer is one JSON object per line; a unary one is a single line.
    static func firstLine(_ body: [UInt8]) -> Data {
        Data(body.split(separator: UInt8(ascii: "\n"), maxSplits: 1, omittingEmptySubsequences: true).first ?? [])
    }

    static func excerpt(_ body: [UInt8]) -> String {
        let text = String(decoding: body.prefix(300), as: UTF8.self)
        return body.count > 300 ? text + "…" : text
    }

    static func encode<Request: Encodable>(_ request: Request) -> [UInt8] {
        do {
            return Array(try JSONEncoder().encode(request))
        } catch {
            // The wire types hold only strings, booleans, arrays and nested wire types, which
            // JSONEncoder always encodes; reaching this is a bug in EtcdWire.swift.
            preconditionFailure("EtcdKit could not encode \(Request.self): \(error)")
        }
    }

    static let decoder = JSONDecoder()
}
