import Foundation
import Hummingbird
import Logging
import MMCore
import MMServiceKit

/// Entry point used by `mmd gui`: a read-only dashboard of the whole cluster. The process
/// holds the observer token, which every service accepts only on its GET inspection routes,
/// so even a bug here could not change the cluster.
public enum OperatorGUIService {
    /// How often the view is rebuilt. The page polls at the same rate, so what it shows is
    /// never more than about two intervals (≈ 0.6 s) behind the services.
    public static let refreshIntervalMs: Int64 = 300

    public static func run(_ environment: ServiceEnvironment, exitWithParent: Bool) async throws {
        let store = DashboardStore(facts: ClusterFacts(environment.config), refreshIntervalMs: refreshIntervalMs)
        let refresher = SnapshotRefresher(
            source: ClusterSnapshotSource(environment: environment), store: store, clock: environment.clock,
            logger: environment.logger)
        let router = buildGUIRouter(environment, store: store)
        let app = buildApplication(environment, router: router, services: [refresher])
        try await runService(app, environment: environment, exitWithParent: exitWithParent)
    }
}

/// The routes the browser uses. They need no token (see docs/architecture/gui.md): the
/// server listens on the cluster's loopback address, every route is a GET that only reads,
/// and a browser cannot attach a bearer token to a page load anyway. What they do check is
/// the Host header, so a web page on another origin cannot read the cluster through DNS
/// rebinding.
public enum GUIRoutes {
    public static let page = "/"
    public static let script = "/app.js"
    public static let styles = "/app.css"
    /// The cluster view: the `mmctl status --json` document.
    public static let view = "/api/view"
    /// The view plus what the page needs around it (freshness, TTLs, quote updates).
    public static let dashboard = "/api/dashboard"
    /// `?limit=N&symbol=S`: the quote changes the GUI observed, newest first.
    public static let quoteUpdates = "/api/quote-updates"
    /// `?since_ms=T&symbols=A,B`: the charts' bounded session history (samples after T, of
    /// the listed symbols when `symbols` is given; spans and failover markers in full).
    public static let history = "/api/history"

    public static let all = [page, script, styles, view, dashboard, quoteUpdates, history]
}

public enum GUIErrorCode {
    /// 503: no snapshot has been built yet (the services were never reachable).
    public static let snapshotUnavailable = "snapshot_unavailable"
    /// 403: the Host header names neither loopback nor the configured listen host.
    public static let hostNotAllowed = "host_not_allowed"
}

public struct QuoteUpdatePage: Codable, Sendable, Hashable {
    public var updates: [QuoteUpdate]
}

/// Wires the common service routes plus the dashboard's. Every dashboard route is GET only;
/// other methods get 405 naming GET, like every service's (`RouteCatalog`).
public func buildGUIRouter(_ environment: ServiceEnvironment, store: DashboardStore) -> AuthorizedRouter {
    let authorized = buildServiceRouter(environment, readiness: {
        store.hasAttempted ? .ready : Readiness(ready: false, detail: "building the first cluster view")
    })
    let clock = environment.clock
    let hostGuard = HostGuard(listenHost: environment.host)

    authorized.openGet(GUIRoutes.page) { request, _ in
        try hostGuard.check(request)
        return asset(DashboardAssets.html, contentType: "text/html; charset=utf-8")
    }
    authorized.openGet(GUIRoutes.script) { request, _ in
        try hostGuard.check(request)
        return asset(DashboardAssets.script, contentType: "text/javascript; charset=utf-8")
    }
    authorized.openGet(GUIRoutes.styles) { request, _ in
        try hostGuard.check(request)
        return asset(DashboardAssets.styles, contentType: "text/css; charset=utf-8")
    }
    authorized.openGet(GUIRoutes.view) { request, _ in
        try hostGuard.check(request)
        guard let view = store.view else {
            throw APIError(
                status: 503, code: GUIErrorCode.snapshotUnavailable,
                message: "no cluster view yet: \(store.frame(nowMs: clock.nowMs(), quoteLimit: 0).refresh.lastError ?? "the first refresh has not finished")")
        }
        return noStore(try jsonResponse(view))
    }
    authorized.openGet(GUIRoutes.dashboard) { request, _ in
        try hostGuard.check(request)
        let limit = try request.queryInt("quotes", default: 50, range: 0...500)
        return noStore(try jsonResponse(store.serveFrame(nowMs: clock.nowMs(), quoteLimit: Int(limit))))
    }
    authorized.openGet(GUIRoutes.quoteUpdates) { request, _ in
        try hostGuard.check(request)
        let limit = try request.queryInt("limit", default: 50, range: 0...500)
        let symbol = request.queryString("symbol")
        if let symbol, !store.facts.symbols.contains(where: { $0.symbol == symbol }) {
            throw APIError.unknownSymbol(symbol)
        }
        return noStore(try jsonResponse(QuoteUpdatePage(updates: store.quoteUpdates(limit: Int(limit), symbol: symbol))))
    }
    authorized.openGet(GUIRoutes.history) { request, _ in
        try hostGuard.check(request)
        let since = try request.queryInt("since_ms", default: 0, range: 0...Int64.max)
        // Names that are not symbols select nothing: the page only ever asks for rows it shows.
        let samplesOf = request.queryString("symbols").map { Set($0.split(separator: ",").map(String.init)) }
        return noStore(try jsonResponse(store.history(sinceMs: since, nowMs: clock.nowMs(), samplesOf: samplesOf)))
    }
    return authorized
}

/// Static assets are embedded in the binary (no files to ship, works offline). The CSP
/// allows only this origin: the page cannot load or send anything elsewhere.
func asset(_ text: String, contentType: String) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = contentType
    headers[.cacheControl] = "no-cache"
    headers[.contentSecurityPolicy] = "default-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'"
    headers[.xContentTypeOptions] = "nosniff"
    headers[.init("Referrer-Policy")!] = "no-referrer"
    return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
}

/// Live data must never be served from a cache.
func noStore(_ response: Response) -> Response {
    var response = response
    response.headers[.cacheControl] = "no-store"
    response.headers[.xContentTypeOptions] = "nosniff"
    return response
}

/// Accepts requests addressed to loopback or to the configured listen host only.
struct HostGuard: Sendable {
    let allowed: Set<String>

    init(listenHost: String) {
        allowed = ["127.0.0.1", "localhost", "::1", listenHost.lowercased()]
    }

    func check(_ request: Request) throws {
        // Browsers always send Host; a client that sends none is not a rebinding attack.
        guard let authority = request.head.authority else { return }
        let host = Self.hostname(of: authority)
        guard allowed.contains(host) else {
            throw APIError(
                status: 403, code: GUIErrorCode.hostNotAllowed,
                message: "the dashboard answers only requests addressed to \(allowed.sorted().joined(separator: ", ")) (got Host '\(authority)'); open it through its loopback address")
        }
    }

    /// "127.0.0.1:7404" → "127.0.0.1", "[::1]:7404" → "::1", "LocalHost" → "localhost".
    static func hostname(of authority: String) -> String {
        let lowered = authority.lowercased()
        if lowered.hasPrefix("["), let close = lowered.firstIndex(of: "]") {
            return String(lowered[lowered.index(after: lowered.startIndex)..<close])
        }
        if let colon = lowered.lastIndex(of: ":"), lowered.firstIndex(of: ":") == colon {
            return String(lowered[..<colon])
        }
        return lowered
    }
}
