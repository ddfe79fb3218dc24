import Foundation

/// What a typed client needs from an HTTP stack. Services plug in AsyncHTTPClient
/// (MMServiceKit), mmctl plugs in libcurl (CurlClient), tests may plug in anything.
public protocol HTTPTransport: Sendable {
    func send(_ request: TransportRequest) async throws(TransportError) -> TransportResponse
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

/// A base URL plus a bearer token over a transport: the building block of the typed clients.
public struct ServiceEndpoint: Sendable {
    public var baseURL: String
    public var token: String
    public var transport: any HTTPTransport
    public var timeoutMs: Int64

    public init(baseURL: String, token: String, transport: any HTTPTransport, timeoutMs: Int64 = 5_000) {
        self.baseURL = baseURL
        self.token = token
        self.transport = transport
        self.timeoutMs = timeoutMs
    }

    public func call<Response: Decodable>(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: (some Encodable)? = Optional<Empty>.none,
        timeoutMs: Int64? = nil, as: Response.Type = Response.self
    ) async throws(ClientError) -> Response {
        let data = try await raw(method, path, query: query, body: body, timeoutMs: timeoutMs)
        do {
            return try MMJSON.decode(Response.self, from: data)
        } catch {
            throw .undecodable(url: baseURL + path, status: 200, reason: MMJSON.describe(error))
        }
    }

    /// The response body of a successful (2xx) call, undecoded.
    public func raw(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: (some Encodable)? = Optional<Empty>.none,
        timeoutMs: Int64? = nil
    ) async throws(ClientError) -> Data {
        var url = baseURL + path
        if !query.isEmpty {
            url += "?" + query.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+"))) ?? $0.1)" }.joined(separator: "&")
        }
        var headers = [("Authorization", "Bearer \(token)"), ("Accept", "application/json")]
        var bodyData: Data?
        if let body {
            headers.append(("Content-Type", "application/json"))
            do { bodyData = try MMJSON.encode(body) } catch {
                throw .undecodable(url: url, status: 0, reason: "request not encodable: \(error)")
            }
        }
        let response: TransportResponse
        do {
            response = try await transport.send(TransportRequest(method: method, url: url, headers: headers, body: bodyData, timeoutMs: timeoutMs ?? self.timeoutMs))
        } catch {
            throw .unreachable(error)
        }
        guard (200..<300).contains(response.status) else {
            if let envelope = try? MMJSON.decode(ErrorEnvelope.self, from: response.body) {
                throw .api(status: response.status, envelope)
            }
            throw .undecodable(url: url, status: response.status, reason: String(decoding: response.body.prefix(200), as: UTF8.self))
        }
        return response.body
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
