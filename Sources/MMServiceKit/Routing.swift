import Foundation
import Hummingbird
import MMCore
import Synchronization

/// Every route a router serves, as path pattern and method. The error middleware asks it when
/// the router found no route: a known path asked with another method is then a 405 naming the
/// allowed methods (`Allow`), not a 404 that reads as "no such endpoint".
public final class RouteCatalog: Sendable {
    private struct Route: Sendable {
        var segments: [String]
        var method: HTTPRequest.Method
    }

    private let routes = Mutex<[Route]>([])

    public init() {}

    /// Records `method` on `path` (`{name}` or `:name` segments match any one segment).
    public func add(_ path: String, method: HTTPRequest.Method) {
        let route = Route(segments: Self.segments(path), method: method)
        routes.withLock { $0.append(route) }
    }

    /// The methods served on a path matching `path`, in a fixed order; empty for an unknown path.
    /// Like the router's trie, a literal segment wins over a parameter without falling back:
    /// with `POST /v1/authority/renew` and `GET /v1/authority/{symbol}`, the path
    /// `/v1/authority/renew` serves POST only.
    public func allowedMethods(forPath path: String) -> [HTTPRequest.Method] {
        let requested = Self.segments(path)
        var candidates = routes.withLock { routes in routes.filter { Self.matches($0.segments, requested) } }
        for (index, segment) in requested.enumerated() where candidates.contains(where: { $0.segments[index] == segment }) {
            candidates.removeAll { $0.segments[index] != segment }
        }
        return Set(candidates.map(\.method.rawValue)).sorted().map { HTTPRequest.Method($0)! }
    }

    private static func segments(_ path: String) -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    }

    private static func matches(_ pattern: [String], _ requested: [String]) -> Bool {
        guard pattern.count == requested.count else { return false }
        return zip(pattern, requested).allSatisfy { pattern, segment in
            pattern.hasPrefix("{") || pattern.hasPrefix(":") || pattern == "*" || pattern == segment
        }
    }
}

/// Registers routes from their `RouteSpec` so that the role rule documented in the contract
/// is the rule enforced: a missing or unknown token is 401, a role not on the list is 403,
/// and either way the handler (and so any state change) never runs. It owns the router and
/// its error middleware, so every route it registers is in the catalog that turns a wrong
/// method into a 405.
public struct AuthorizedRouter {
    public let router: Router<MMRequestContext>
    /// Read at every request: a secrets rotation takes effect without a restart.
    public let secrets: LiveSecrets
    public let catalog: RouteCatalog

    public var tokens: RoleTokens { secrets.tokens }

    public init(tokens: RoleTokens) {
        self.init(secrets: LiveSecrets(tokens))
    }

    public init(secrets: LiveSecrets) {
        let catalog = RouteCatalog()
        router = Router(context: MMRequestContext.self)
        router.add(middleware: ErrorEnvelopeMiddleware(catalog: catalog))
        self.secrets = secrets
        self.catalog = catalog
    }

    /// A JSON route: the handler's value is encoded with status 200.
    public func on<Output: Encodable & Sendable>(
        _ spec: RouteSpec,
        _ handler: @escaping @Sendable (Request, MMRequestContext) async throws -> Output
    ) {
        let secrets = self.secrets
        catalog.add(spec.path, method: spec.method.hummingbird)
        router.on(RouterPath(spec.path), method: spec.method.hummingbird) { request, context in
            var context = context
            let caller = try authorize(request, spec: spec, tokens: secrets.tokens)
            context.role = caller.role
            context.node = caller.node
            return try jsonResponse(try await handler(request, context))
        }
    }

    /// A route whose handler builds its own response (status codes other than 200, streams).
    public func onResponse(
        _ spec: RouteSpec,
        _ handler: @escaping @Sendable (Request, MMRequestContext) async throws -> Response
    ) {
        let secrets = self.secrets
        catalog.add(spec.path, method: spec.method.hummingbird)
        router.on(RouterPath(spec.path), method: spec.method.hummingbird) { request, context in
            var context = context
            let caller = try authorize(request, spec: spec, tokens: secrets.tokens)
            context.role = caller.role
            context.node = caller.node
            return try await handler(request, context)
        }
    }

    /// A GET route open without a token (health probes, metrics, the dashboard's page).
    public func openGet(_ path: String, _ handler: @escaping @Sendable (Request, MMRequestContext) async throws -> Response) {
        catalog.add(path, method: .get)
        router.get(RouterPath(path), use: handler)
    }
}

/// The caller proven by the request's bearer token, if its role may call `spec`.
public func authorize(_ request: Request, spec: RouteSpec, tokens: RoleTokens) throws -> Caller {
    guard let header = request.headers[.authorization] else { throw APIError.missingToken }
    let prefix = "Bearer "
    guard header.hasPrefix(prefix) else { throw APIError.missingToken }
    // Trimmed by hand: Foundation's trimmingCharacters(in:) was 4% of the coordinator's CPU.
    let presented = header.utf8.dropFirst(prefix.utf8.count).drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
    let end = presented.lastIndex { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }
    guard let end, let caller = tokens.caller(forToken: Substring(presented[...end])) else {
        throw APIError.invalidToken
    }
    guard spec.roles.contains(caller.role) else {
        throw APIError.forbiddenRole(caller.role, allowed: Role.allCases.filter { spec.roles.contains($0) })
    }
    return caller
}

extension MMCore.HTTPMethod {
    var hummingbird: HTTPRequest.Method {
        switch self {
        case .GET: .get
        case .POST: .post
        case .PUT: .put
        case .DELETE: .delete
        }
    }
}

// MARK: Request helpers

extension Request {
    /// An integer query parameter, or `fallback` when absent; present but not an integer
    /// (or outside `range`) is a 400 naming the parameter.
    public func queryInt(_ name: String, default fallback: Int64, range: ClosedRange<Int64> = Int64.min...Int64.max) throws -> Int64 {
        guard let raw = uri.queryParameters.get(name) else { return fallback }
        guard let value = Int64(raw), range.contains(value) else {
            throw APIError.invalidField(name, "must be an integer in \(range.lowerBound)...\(range.upperBound) (got '\(raw)')")
        }
        return value
    }

    public func queryIntIfPresent(_ name: String, range: ClosedRange<Int64> = Int64.min...Int64.max) throws -> Int64? {
        guard uri.queryParameters.get(name) != nil else { return nil }
        return try queryInt(name, default: 0, range: range)
    }

    public func queryString(_ name: String) -> String? {
        uri.queryParameters.get(name)
    }

    /// Where a page of a seq-cursored log starts: `after=SEQ&limit=N` pages forward, and
    /// `tail=N` asks for the newest N in one request (a reader that wants the end of a long
    /// log would otherwise learn the head first and ask again). `tail` stands alone: with
    /// `after`, `limit` or a wait it is a 400, never a silent choice between them.
    public func logCursor(defaultLimit: Int64, maxLimit: Int64, waitParameter: String? = nil) throws -> LogCursor {
        guard let tail = try queryIntIfPresent("tail", range: 1...maxLimit) else {
            let after = try queryInt("after", default: 0, range: 0...Int64.max)
            let limit = try queryInt("limit", default: defaultLimit, range: 1...maxLimit)
            return .after(after, limit: Int(limit))
        }
        let clashing = ["after", "limit"] + (waitParameter.map { [$0] } ?? [])
        if let clash = clashing.first(where: { uri.queryParameters.get($0) != nil }) {
            throw APIError.invalidField("tail", "cannot be combined with '\(clash)': 'tail=N' is the newest N entries; page forward with 'after' and 'limit' instead")
        }
        return .tail(Int(tail))
    }
}

extension MMRequestContext {
    /// A path parameter the route pattern guarantees.
    public func pathParameter(_ name: String) throws -> String {
        guard let value = parameters.get(name) else { throw APIError.malformedBody("missing path parameter '\(name)'") }
        return value.removingPercentEncoding ?? value
    }
}
