import Foundation
import Synchronization

/// What a typed client needs from an HTTP stack. Services plug in AsyncHTTPClient
/// (MMServiceKit), mmctl plugs in libcurl (CurlClient), tests may plug in anything.
public protocol HTTPTransport: Sendable {
    func send(_ request: TransportRequest) async throws(TransportError) -> TransportResponse
    /// The transport an endpoint with several replicas uses: one that reports a refused
    /// connection at once rather than retrying it until the timeout, since another replica
    /// can be tried instead. By default the transport itself.
    var failoverTransport: any HTTPTransport { get }
}

extension HTTPTransport {
    public var failoverTransport: any HTTPTransport { self }
}

public enum HTTPMethod: String, Sendable, Codable {
    case GET, POST, PUT, DELETE
}

public struct TransportRequest: Sendable {
    public var method: HTTPMethod
    public var url: String
    public var headers: [(String, String)]
    public var body: Data?
    public var timeoutMs: Int64

    public init(method: HTTPMethod, url: String, headers: [(String, String)] = [], body: Data? = nil, timeoutMs: Int64) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeoutMs = timeoutMs
    }
}

public struct TransportResponse: Sendable {
    public var status: Int
    public var body: Data

    public init(status: Int, body: Data) {
        self.status = status
        self.body = body
    }
}

/// The service could not be talked to at all (refused, timed out, reset).
public struct TransportError: Error, Sendable, CustomStringConvertible {
    public var url: String
    public var reason: String

    public init(url: String, reason: String) {
        self.url = url
        self.reason = reason
    }

    public var description: String { "\(url): \(reason)" }
}

/// Why a typed call failed: unreachable, answered with an error envelope, or answered
/// with something that is not the contract.
public enum ClientError: Error, Sendable, CustomStringConvertible {
    case unreachable(TransportError)
    case api(status: Int, ErrorEnvelope)
    case undecodable(url: String, status: Int, reason: String)

    public var description: String {
        switch self {
        case .unreachable(let error): "unreachable: \(error)"
        case .api(let status, let envelope): "\(status) \(envelope.error.code): \(envelope.error.message)"
        case .undecodable(let url, let status, let reason): "\(url) answered \(status) with an unexpected body: \(reason)"
        }
    }

    /// The error envelope's code, when the service answered with one.
    public var code: String? {
        if case .api(_, let envelope) = self { return envelope.error.code }
        return nil
    }

    public var status: Int? {
        if case .api(let status, _) = self { return status }
        return nil
    }
}

/// One or more base URLs plus a bearer token over a transport: the building block of the
/// typed clients.
///
/// Several base URLs are replicas of one service (the coordinator's): a call goes to the
/// preferred one; when it cannot be reached (refused, reset, timed out) or answers 503, the
/// call moves on to the next URL in order, each tried once per call, and the one that answered
/// becomes the preferred one, shared by every copy of the endpoint. So all callers settle on
/// the same replica (the lowest one that answers) and the replicas rarely contend: a client
/// that failed over to a higher replica tries the lowest one first again, with an ordinary
/// call (not a long-poll), once `ServiceEndpoint.returnAfterMs` has passed, which brings it
/// back after that replica's restart. One base URL behaves exactly as a plain client: no
/// retry, no failover.
public struct ServiceEndpoint: Sendable {
    /// Every base URL, in order of preference (replica 1 first).
    public let baseURLs: [String]
    public var token: String
    /// When set, the token presented at each call (a process's live secrets); else `token`.
    public var tokenSource: (@Sendable () -> String)?
    public var transport: any HTTPTransport
    public var timeoutMs: Int64
    /// With several base URLs: the timeout of each attempt of a call that names no timeout
    /// of its own, short enough that a paused replica is skipped quickly. Calls that pass
    /// `timeoutMs` (long-polls) keep theirs for every attempt.
    public var attemptTimeoutMs: Int64?
    /// Which base URL calls go to first; shared by every copy of this endpoint.
    public let preference: ReplicaPreference

    /// After a failover, how long the answering replica stays preferred before the lowest one
    /// is tried first again.
    public static let returnAfterMs: Int64 = 5_000

    public init(baseURL: String, token: String, transport: any HTTPTransport, timeoutMs: Int64 = 5_000) {
        self.init(baseURLs: [baseURL], token: token, transport: transport, timeoutMs: timeoutMs)
    }

    /// `baseURLs` must not be empty.
    public init(baseURLs: [String], token: String, transport: any HTTPTransport, timeoutMs: Int64 = 5_000, attemptTimeoutMs: Int64? = nil) {
        precondition(!baseURLs.isEmpty, "a service endpoint needs at least one base URL")
        self.baseURLs = baseURLs
        self.token = token
        self.transport = baseURLs.count > 1 ? transport.failoverTransport : transport
        self.timeoutMs = timeoutMs
        self.attemptTimeoutMs = attemptTimeoutMs
        self.preference = ReplicaPreference(count: baseURLs.count, returnAfterMs: Self.returnAfterMs)
    }

    /// The timeout of a call the server may hold for `waitMs` (a long-poll, a parked acquire):
    /// the wait plus the time an ordinary call may take, per attempt.
    public func longPollTimeoutMs(waitMs: Int64) -> Int64 {
        (baseURLs.count > 1 ? attemptTimeoutMs ?? timeoutMs : timeoutMs) + max(0, waitMs)
    }

    /// The base URL calls go to first right now.
    public var baseURL: String { baseURLs[preference.preferredIndex] }

    public func call<Response: Decodable>(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: (some Encodable)? = Optional<Empty>.none,
        timeoutMs: Int64? = nil, as: Response.Type = Response.self
    ) async throws(ClientError) -> Response {
        let (data, base) = try await send(method, path, query: query, body: body, timeoutMs: timeoutMs)
        do {
            return try MMJSON.decode(Response.self, from: data)
        } catch {
            throw .undecodable(url: base + path, status: 200, reason: MMJSON.describe(error))
        }
    }

    /// The response body of a successful (2xx) call, undecoded.
    public func raw(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: (some Encodable)? = Optional<Empty>.none,
        timeoutMs: Int64? = nil
    ) async throws(ClientError) -> Data {
        try await send(method, path, query: query, body: body, timeoutMs: timeoutMs).body
    }

    /// The body of a 2xx answer and the base URL that gave it.
    private func send(
        _ method: HTTPMethod, _ path: String, query: [(String, String)], body: (some Encodable)?, timeoutMs: Int64?
    ) async throws(ClientError) -> (body: Data, base: String) {
        var suffix = path
        if !query.isEmpty {
            suffix += "?" + query.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+"))) ?? $0.1)" }.joined(separator: "&")
        }
        var headers = [("Authorization", "Bearer \(tokenSource?() ?? token)"), ("Accept", "application/json")]
        var bodyData: Data?
        if let body {
            headers.append(("Content-Type", "application/json"))
            // The hand-written writers give the same bytes without JSONEncoder (HotPathJSON).
            if let hot = body as? any HotPathJSONEncodable, let bytes = hot.hotPathJSON() {
                bodyData = Data(bytes)
            } else {
                do { bodyData = try MMJSON.encode(body) } catch {
                    throw .undecodable(url: baseURL + suffix, status: 0, reason: "request not encodable: \(error)")
                }
            }
        }
        let failingOver = baseURLs.count > 1
        let attemptTimeout = timeoutMs ?? (failingOver ? attemptTimeoutMs ?? self.timeoutMs : self.timeoutMs)
        // Only ordinary calls look at the lowest replica again: a long-poll sent to a replica
        // that is paused would hang for its whole wait.
        let order = preference.attemptOrder(mayReturnToLowest: timeoutMs == nil)
        var unreachable: [TransportError] = []
        for (position, index) in order.enumerated() {
            let url = baseURLs[index] + suffix
            let isLast = position == order.count - 1
            let response: TransportResponse
            do {
                response = try await transport.send(TransportRequest(method: method, url: url, headers: headers, body: bodyData, timeoutMs: attemptTimeout))
            } catch {
                guard failingOver else { throw .unreachable(error) }
                unreachable.append(error)
                continue
            }
            if failingOver && response.status == 503 {
                // Up but unable to serve (e.g. its store is unreachable): the next may be able to.
                if !isLast { continue }
            } else {
                preference.answered(index, afterTrying: order[0])
            }
            guard (200..<300).contains(response.status) else {
                if let envelope = try? MMJSON.decode(ErrorEnvelope.self, from: response.body) {
                    throw .api(status: response.status, envelope)
                }
                throw .undecodable(url: url, status: response.status, reason: String(decoding: response.body.prefix(200), as: UTF8.self))
            }
            return (response.body, baseURLs[index])
        }
        // Several base URLs and none could be reached (a 503 from the last one is its answer).
        throw .unreachable(TransportError(
            url: baseURLs.joined(separator: ", "),
            reason: "none of the \(baseURLs.count) replicas answered (" + unreachable.map { "\($0.url): \($0.reason)" }.joined(separator: "; ") + ")"))
    }
}

/// Which of an endpoint's base URLs calls try first: the lowest that answered, kept until it
/// fails; after a failover to a higher one, the lowest is tried first again every
/// `returnAfterMs`. Shared by the copies of an endpoint (a class), safe from any task.
public final class ReplicaPreference: Sendable {
    private struct State {
        var preferred = 0
        /// When the preferred index last moved away from 0 or was confirmed over a lower one.
        var since: ContinuousClock.Instant?
    }

    public let count: Int
    public let returnAfterMs: Int64
    private let state = Mutex(State())

    public init(count: Int, returnAfterMs: Int64) {
        self.count = max(1, count)
        self.returnAfterMs = returnAfterMs
    }

    public var preferredIndex: Int { state.withLock { $0.preferred } }

    /// The indices one call tries, in order: the preferred one (or 0 when it is time to look
    /// at the lowest again and the call may), then the following ones, wrapping around; each once.
    func attemptOrder(mayReturnToLowest: Bool = true, now: ContinuousClock.Instant = .now) -> [Int] {
        let first = state.withLock { state -> Int in
            if mayReturnToLowest, state.preferred != 0, let since = state.since, now - since >= .milliseconds(returnAfterMs) { return 0 }
            return state.preferred
        }
        return (0..<count).map { (first + $0) % count }
    }

    /// `index` answered a call that began at `first`.
    func answered(_ index: Int, afterTrying first: Int, now: ContinuousClock.Instant = .now) {
        state.withLock { state in
            if index == 0 {
                state.preferred = 0
                state.since = nil
            } else if index != state.preferred || first != index {
                // A failover to it, or the lowest was tried first again and still does not
                // answer: stay here for another period.
                state.preferred = index
                state.since = now
            }
        }
    }
}

/// An empty JSON object, for bodies and responses that carry nothing.
public struct Empty: Codable, Sendable, Hashable {
    public init() {}
}

/// One row of a service's route table: what docs/API.md documents and the server enforces.
public struct RouteSpec: Sendable, Hashable, CustomStringConvertible {
    public var method: HTTPMethod
    /// Hummingbird path syntax: `/v1/quotes/{symbol}`.
    public var path: String
    /// Roles whose token is accepted. Inspection routes allow every role.
    public var roles: Set<Role>

    public init(_ method: HTTPMethod, _ path: String, roles: Set<Role>) {
        self.method = method
        self.path = path
        self.roles = roles
    }

    public static func read(_ path: String) -> RouteSpec { RouteSpec(.GET, path, roles: Set(Role.allCases)) }

    public var description: String { "\(method.rawValue) \(path)" }

    /// The concrete path with `{name}` placeholders filled in (percent-encoded).
    public func path(_ parameters: [String: String]) -> String {
        var result = path
        for (name, value) in parameters {
            result = result.replacingOccurrences(of: "{\(name)}", with: value.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? value)
        }
        return result
    }
}

/// Routes every service serves (see MMServiceKit): liveness, readiness, metrics, identity.
public enum CommonRoutes {
    /// No token: liveness for supervisors and load balancers.
    public static let healthz = "/healthz"
    /// No token: 200 once the service can do its job (dependencies reachable, state loaded).
    public static let readyz = "/readyz"
    /// No token: Prometheus text format.
    public static let metrics = "/metrics"
    public static let info = RouteSpec.read("/v1/info")
}
