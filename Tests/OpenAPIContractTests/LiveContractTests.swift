import Coordinator
import Exchange
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import MMCore
import MMServiceKit
import MMTestSupport
import MarketMaker
import Testing
import TradingState
@testable import OperatorGUI
@testable import Supervisor

/// Real responses of every service, produced in process (HummingbirdTesting), against
/// docs/openapi.yaml: every documented route of a service answers there (401 without a token
/// where one is needed), every other method of its paths is a 405 naming exactly the
/// documented methods, paths of other services are 404, and representative calls answer with
/// a documented status and a body that matches the documented schema exactly (required
/// fields present, nothing undocumented).
@Suite("Live responses match docs/openapi.yaml")
struct LiveContractTests {
    /// A service's router under test, with the document and the cluster's tokens.
    struct Probe {
        let service: String
        let client: any TestClientProtocol
        let tokens: RoleTokens
        let document: OpenAPIDocument

        static let pathValues = ["symbol": "ACME", "node": "n1", "name": "n1", "order_id": "O1"]

        static func fill(_ template: String) -> String {
            var path = template
            for (name, value) in pathValues { path = path.replacingOccurrences(of: "{\(name)}", with: value) }
            return path
        }

        /// The bearer token of `role` (a node's own token for `.node`).
        func bearer(_ role: Role, node: String = "n1") -> String? {
            role == .node ? tokens.nodeToken(for: node) : tokens.token(for: role)
        }

        func execute(_ method: HTTPRequest.Method, _ uri: String, as role: Role?, json: String?) async throws -> TestResponse {
            var headers = HTTPFields()
            if let role, let token = bearer(role) { headers[.authorization] = "Bearer \(token)" }
            if json != nil { headers[.contentType] = "application/json" }
            return try await client.execute(uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) })
        }

        /// Checks a response against the operation's documentation: the status is documented,
        /// the body matches that status's schema, documented headers are present. The parsed body.
        @discardableResult
        func check(_ operation: OpenAPIDocument.Operation, _ response: TestResponse, _ what: String) -> JSONValue? {
            let status = Int(response.status.code)
            guard let documented = document.response(operation, status: status) else {
                Issue.record("\(service): \(what) answered \(status), which \(operation.route) does not document: \(String(buffer: response.body))")
                return nil
            }
            for (name, header) in documented["headers"] as? [String: Any] ?? [:] {
                guard let header = document.dereferenced(header), header["required"] as? Bool == true else { continue }
                let value = HTTPField.Name(name).flatMap { response.headers[$0] }
                #expect(value != nil, "\(service): \(what) \(status) lacks the documented header \(name)")
                if let constant = (header["schema"] as? [String: Any])?["const"] as? String { #expect(value == constant, "\(service): \(what) \(name): \(value ?? "-")") }
            }
            let contentTypes = Set((documented["content"] as? [String: Any] ?? [:]).keys)
            let contentType = response.headers[.contentType]?.split(separator: ";").first.map(String.init)
            #expect(contentTypes.isEmpty || contentType.map(contentTypes.contains) == true, "\(service): \(what) \(status) is \(contentType ?? "-"), documented \(contentTypes.sorted())")
            guard let schema = document.jsonSchema(of: documented) else { return nil }
            let body: JSONValue
            do {
                body = try JSONValue.parse(Data(buffer: response.body))
            } catch {
                Issue.record("\(service): \(what) \(status) is not JSON: \(String(buffer: response.body))")
                return nil
            }
            let problems = document.validate(body, against: schema)
            #expect(problems.isEmpty, "\(service): \(what) \(status) does not match the documented schema: \(problems) in \(body)")
            return body
        }

        /// One representative call: `template` names the documented operation.
        @discardableResult
        func call(
            _ method: HTTPRequest.Method, _ template: String, _ uri: String? = nil, as role: Role? = .observer, json: String? = nil, expect status: Int = 200,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws -> JSONValue? {
            let route = Route(method.rawValue, template)
            guard let operation = document.operation(route) else {
                Issue.record("\(route) is not documented in docs/openapi.yaml", sourceLocation: sourceLocation)
                return nil
            }
            #expect(operation.tags.contains(service) || operation.tags.contains("common"), "\(route) is not tagged \(service)", sourceLocation: sourceLocation)
            let uri = uri ?? Self.fill(template)
            let response = try await execute(method, uri, as: role, json: json)
            #expect(Int(response.status.code) == status, "\(service): \(method) \(uri): \(response.status.code) \(String(buffer: response.body))", sourceLocation: sourceLocation)
            return check(operation, response, "\(method) \(uri)")
        }

        /// Every documented route of this service is served (401 without a token where one is
        /// needed); other methods on its paths are 405 with `Allow` naming exactly the
        /// documented ones; documented paths of no route of this service are 404.
        func probeEveryRoute() async throws {
            let served = document.operations.filter { $0.tags.contains(service) || $0.tags.contains("common") }
            for operation in served {
                let uri = Self.fill(operation.route.path)
                let response = try await execute(HTTPRequest.Method(operation.route.method)!, uri, as: nil, json: nil)
                let status = Int(response.status.code)
                if operation.isOpen {
                    #expect(status != 404 && status != 405, "\(service): \(operation.route) is documented but answers \(status)")
                } else {
                    #expect(status == 401, "\(service): \(operation.route) without a token answers \(status), not 401")
                }
                check(operation, response, "\(operation.route) without a token")
            }
            let byPath = Dictionary(grouping: served, by: \.route.path)
            for (path, operations) in byPath {
                let response = try await execute(.patch, Self.fill(path), as: .observer, json: nil)
                #expect(response.status == .methodNotAllowed, "\(service): PATCH \(path) answers \(response.status.code), not 405")
                let allowed = operations.map(\.route.method).sorted().joined(separator: ", ")
                #expect(response.headers[.allow] == allowed, "\(service): \(path) allows \(response.headers[.allow] ?? "-"), documented \(allowed)")
                let problems = document.validate(try JSONValue.parse(Data(buffer: response.body)), against: ["$ref": "#/components/schemas/ErrorEnvelope"])
                #expect(problems.isEmpty, "\(service): 405 body: \(problems)")
            }
            for operation in document.operations where byPath[operation.route.path] == nil {
                let response = try await execute(HTTPRequest.Method(operation.route.method)!, Self.fill(operation.route.path), as: .observer, json: nil)
                #expect(response.status == .notFound, "\(service) answers \(operation.route) (\(response.status.code)) though docs/openapi.yaml does not tag it \(service)")
            }
        }
    }

    static func run(_ service: String, _ router: AuthorizedRouter, tokens: RoleTokens, _ body: @Sendable (Probe) async throws -> Void) async throws {
        let document = try OpenAPIDocument.shared()
        let app = Application(router: router.router)
        try await app.test(.router) { client in
            let probe = Probe(service: service, client: client, tokens: tokens, document: document)
            try await probe.probeEveryRoute()
            try await body(probe)
        }
    }

    struct Cluster {
        let directory: DataDirectory
        let tokens: RoleTokens
        let config = ClusterConfig.defaults
        let clock = ManualClock(startMs: Models.t0)

        init(_ label: String) throws {
            directory = TestPaths.temporaryDataDirectory("openapi-\(label)")
            tokens = try RoleTokens.generate(in: directory)
        }

        func environment(_ process: ClusterProcess, _ role: Role) -> ServiceEnvironment {
            ServiceEnvironment(process: process, role: role, config: config, dataDirectory: directory, tokens: tokens, clock: clock)
        }

        func remove() { try? FileManager.default.removeItem(atPath: directory.path) }
    }

    static func json(_ value: some Encodable) -> String { String(decoding: try! MMJSON.encode(value), as: UTF8.self) }

    @Test func exchange() async throws {
        let cluster = try Cluster("exchange")
        defer { cluster.remove() }
        let environment = cluster.environment(.exchange, .exchange)
        let core = try ExchangeService.makeCore(environment, journal: InMemoryExchangeJournal())
        let flusher = Task { try await core.committer.run { seq in await core.markDurable(seq) } }
        defer { flusher.cancel() }
        let now = cluster.clock.nowMs()
        let grant = try GrantSigner(dataDirectory: cluster.directory).sign(symbol: "ACME", node: "n1", fencingToken: 1, grantedAtMs: now, expiresAtMs: now + 60_000)
        let fenced = Self.json(FencedRequest(node: "n1", grant: grant))

        try await Self.run("exchange", ExchangeService.buildExchangeRouter(environment, core: core), tokens: cluster.tokens) { probe in
            try await probe.call(.get, "/healthz", as: nil)
            try await probe.call(.get, "/readyz", as: nil)
            try await probe.call(.get, "/metrics", as: nil)
            try await probe.call(.get, "/v1/info")
            try await probe.call(.get, "/v1/symbols")
            try await probe.call(.get, "/v1/prices")
            try await probe.call(.get, "/v1/prices/{symbol}")
            try await probe.call(.get, "/v1/prices/{symbol}", "/v1/prices/NOPE", expect: 404)
            // A bid only: the ask side is withdrawn, so `ask_price` is absent.
            try await probe.call(
                .put, "/v1/quotes/{symbol}", as: .node,
                json: #"{"node":"n1","grant":\#(Self.json(grant)),"bid_price":9990,"bid_qty":5,"ask_qty":0}"#)
            // The batch: one accepted item (a quote) and one refused (an error), in order.
            try await probe.call(
                .put, "/v1/quotes", as: .node,
                json: #"{"node":"n1","quotes":[{"symbol":"ACME","grant":\#(Self.json(grant)),"bid_price":9990,"bid_qty":5,"ask_qty":0},{"symbol":"NOPE","grant":\#(Self.json(grant)),"bid_qty":0,"ask_qty":0}]}"#)
            try await probe.call(.put, "/v1/quotes", as: .node, json: #"{"node":"n1","quotes":[]}"#, expect: 400)
            try await probe.call(.put, "/v1/quotes/{symbol}", as: .observer, json: #"{"node":"n1"}"#, expect: 403)
            try await probe.call(.put, "/v1/quotes/{symbol}", as: .node, json: #"{"node":"n1","#, expect: 400)
            // External flow hits the bid: one fill.
            #expect(await core.submitExternal(ExternalOrderIntent(symbol: "ACME", side: .sell, price: 9_990, qty: 2, flowIndex: 1, aggressive: true)))
            var waited = 0
            while try await core.fillPage(after: 0, limit: 1).fills.isEmpty, waited < 400 {
                try await Task.sleep(for: .milliseconds(5))
                waited += 1
            }
            let page = try await probe.call(.get, "/v1/fills", "/v1/fills?after=0&limit=10")
            #expect(page?.objectKeys == ["fills", "head_seq"], "the exchange answers a FillPage")
            try await probe.call(.get, "/v1/fills", "/v1/fills?limit=0", expect: 400)
            try await probe.call(.get, "/v1/quotes")
            let ack = try await probe.call(
                .post, "/v1/orders", as: .node,
                json: #"{"client_order_id":"c1","symbol":"ACME","side":"sell","price":10100,"qty":1,"time_in_force":"gtc","node":"n1","grant":\#(Self.json(grant))}"#)
            guard case .object(let fields)? = ack, case .string(let orderId)? = fields["order_id"] else {
                Issue.record("no order id in \(String(describing: ack))")
                return
            }
            try await probe.call(.get, "/v1/book/{symbol}", "/v1/book/ACME?depth=5")
            try await probe.call(.get, "/v1/book/{symbol}", "/v1/book/ACME?depth=0", expect: 400)
            try await probe.call(.delete, "/v1/orders/{order_id}", "/v1/orders/\(orderId)", as: .node, json: fenced)
            try await probe.call(.delete, "/v1/orders/{order_id}", "/v1/orders/\(orderId)", as: .node, json: fenced, expect: 409)
            try await probe.call(.delete, "/v1/orders/{order_id}", "/v1/orders/O999", as: .node, json: fenced, expect: 404)
            try await probe.call(.post, "/v1/deadman", as: .node, json: #"{"node":"n1","timeout_ms":2000}"#)
            try await probe.call(.post, "/v1/deadman", as: .node, json: #"{"node":"n1","timeout_ms":0}"#, expect: 400)
            try await probe.call(.delete, "/v1/quotes/{symbol}", as: .node, json: fenced)
            try await probe.call(.get, "/v1/stats")
        }
    }

    @Test func state() async throws {
        let cluster = try Cluster("state")
        defer { cluster.remove() }
        let environment = cluster.environment(.state, .state)
        let parts = try await TradingStateService.build(environment)
        let fills = [
            Models.fill,
            Fill(fillId: "F2", seq: 2, symbol: "ACME", side: .buy, price: 10_001, qty: 3, makerOrderId: "Q2", takerOrderId: "X2", node: "n1", fencingToken: 7, tsMs: Models.t0),
        ]
        try await Self.run("state", parts.router, tokens: cluster.tokens) { probe in
            try await probe.call(.get, "/readyz", as: nil)
            try await probe.call(.post, "/v1/fills", as: .exchange, json: Self.json(RecordFillsRequest(fills: fills)))
            try await probe.call(.post, "/v1/fills", as: .exchange, json: Self.json(RecordFillsRequest(fills: fills)))
            try await probe.call(.post, "/v1/fills", as: .observer, json: Self.json(RecordFillsRequest(fills: fills)), expect: 403)
            try await probe.call(.post, "/v1/fills", as: .exchange, json: #"{"fills":[{"fill_id":"F3"}]}"#, expect: 400)
            try await probe.call(.get, "/v1/positions")
            try await probe.call(.get, "/v1/positions", "/v1/positions?after_version=0&wait_ms=0")
            try await probe.call(.get, "/v1/positions", "/v1/positions?wait_ms=-1", expect: 400)
            try await probe.call(.get, "/v1/positions", "/v1/positions?symbols=ACME,BOLT&after_version=0&wait_ms=0")
            try await probe.call(.get, "/v1/positions", "/v1/positions?symbols=")
            try await probe.call(.get, "/v1/positions", "/v1/positions?symbols=NOPE", expect: 400)
            try await probe.call(.get, "/v1/positions", "/v1/positions?symbols=ACME,,BOLT", expect: 400)
            try await probe.call(.get, "/v1/positions/{symbol}")
            try await probe.call(.get, "/v1/positions/{symbol}", "/v1/positions/NOPE", expect: 404)
            let first = try await probe.call(.get, "/v1/fills", "/v1/fills?limit=1")
            #expect(first?.objectKeys == ["fills", "next_after"], "a page that is not the last names the next")
            let last = try await probe.call(.get, "/v1/fills", "/v1/fills?symbol=ACME")
            #expect(last?.objectKeys == ["fills"], "the last page has no next_after (omitted, not null)")
            try await probe.call(.get, "/v1/fills", "/v1/fills?symbol=NOPE", expect: 404)
            try await probe.call(.get, "/v1/ingest")
        }
    }

    @Test func coordinator() async throws {
        let cluster = try Cluster("coordinator")
        defer { cluster.remove() }
        let environment = cluster.environment(.coordinator, .coordinator)
        let engine = try await makeCoordinatorEngine(environment, store: try GRDBCoordinatorStore())
        try await Self.run("coordinator", buildCoordinatorRouter(environment, engine: engine), tokens: cluster.tokens) { probe in
            try await probe.call(.post, "/v1/members/{node}/heartbeat", as: .node, json: #"{"address":"http://127.0.0.1:7411","incarnation":"abc123"}"#)
            try await probe.call(.post, "/v1/members/{node}/heartbeat", "/v1/members/N1/heartbeat", as: .node, json: #"{"address":"x"}"#, expect: 400)
            let acquired = try await probe.call(.post, "/v1/authority/{symbol}/acquire", as: .node, json: #"{"node":"n1"}"#)
            guard case .object(let grant)? = acquired, case .integer(let token)? = grant["fencing_token"] else {
                Issue.record("no grant in \(String(describing: acquired))")
                return
            }
            try await probe.call(.post, "/v1/authority/{symbol}/acquire", "/v1/authority/NOPE/acquire", as: .node, json: #"{"node":"n1"}"#, expect: 404)
            try await probe.call(.post, "/v1/authority/{symbol}/renew", as: .node, json: #"{"node":"n1","fencing_token":\#(token),"grant":\#(acquired!)}"#)
            try await probe.call(.post, "/v1/authority/{symbol}/renew", as: .node, json: #"{"node":"n1","fencing_token":\#(token + 5)}"#, expect: 409)
            try await probe.call(
                .post, "/v1/authority/renew", as: .node,
                json: #"{"node":"n1","grants":[{"symbol":"ACME","fencing_token":\#(token)},{"symbol":"BOLT","fencing_token":0,"grant":null}]}"#)
            try await probe.call(.get, "/v1/members")
            try await probe.call(.get, "/v1/assignments")
            try await probe.call(.get, "/v1/assignments", "/v1/assignments?after_version=0&wait_ms=0")
            try await probe.call(.get, "/v1/authority")
            try await probe.call(.get, "/v1/authority/{symbol}")
            try await probe.call(.get, "/v1/authority/{symbol}", "/v1/authority/renew", expect: 405)
            try await probe.call(.post, "/v1/authority/{symbol}/release", as: .node, json: #"{"node":"n1","fencing_token":\#(token)}"#)
            try await probe.call(
                .post, "/v1/members/{node}/death", as: .supervisor, json: #"{"incarnation":"abc123","pid":4242,"exit":"signal 9"}"#)
            try await probe.call(.post, "/v1/members/{node}/death", as: .node, json: #"{"incarnation":"abc123"}"#, expect: 403)
            try await probe.call(.delete, "/v1/members/{node}", as: .node)
            try await probe.call(.get, "/v1/events", "/v1/events?after=0&limit=100")
            try await probe.call(.get, "/v1/events", "/v1/events?limit=1001", expect: 400)
            try await probe.call(.get, "/v1/events/base")
        }
    }

    @Test func node() async throws {
        let cluster = try Cluster("node")
        defer { cluster.remove() }
        let node = MarketMakerNode(environment: cluster.environment(.node(1), .node))
        try await Self.run("node", node.router, tokens: cluster.tokens) { probe in
            try await probe.call(.get, "/readyz", as: nil, expect: 503)
            try await probe.call(.get, "/healthz", as: nil)
            try await probe.call(.get, "/v1/status")
            try await probe.call(.get, "/v1/status", as: .node)
            try await probe.call(.get, "/v1/info", as: .supervisor)
        }
    }

    @Test func gui() async throws {
        let cluster = try Cluster("gui")
        defer { cluster.remove() }
        let environment = cluster.environment(.gui, .observer)
        let store = DashboardStore(facts: ClusterFacts(cluster.config), refreshIntervalMs: 300)
        let source = CannedSnapshotSource(Models.fullSnapshot())
        let refresher = SnapshotRefresher(source: source, store: store, clock: cluster.clock, logger: environment.logger)
        await refresher.refreshOnce()
        cluster.clock.advance(byMs: 300)
        source.set(Models.fullSnapshot(takenAt: Models.t0 + 300, quote: Models.minimalQuoteView))
        await refresher.refreshOnce()
        try await Self.run("gui", buildGUIRouter(environment, store: store), tokens: cluster.tokens) { probe in
            try await probe.call(.get, "/", as: nil)
            try await probe.call(.get, "/app.js", as: nil)
            try await probe.call(.get, "/app.css", as: nil)
            try await probe.call(.get, "/api/view", as: nil)
            try await probe.call(.get, "/api/dashboard", "/api/dashboard?quotes=10", as: nil)
            try await probe.call(.get, "/api/dashboard", "/api/dashboard?quotes=501", as: nil, expect: 400)
            try await probe.call(.get, "/api/quote-updates", "/api/quote-updates?limit=5&symbol=ACME", as: nil)
            try await probe.call(.get, "/api/quote-updates", "/api/quote-updates?symbol=NOPE", as: nil, expect: 404)
            try await probe.call(.get, "/v1/info")
        }
    }

    @Test func supervisor() async throws {
        let cluster = try Cluster("supervisor")
        defer { cluster.remove() }
        // Never started: the table is empty and the phase is `starting`.
        let supervisor = ProcessSupervisor(
            config: cluster.config, dataDirectory: cluster.directory,
            launch: ChildLaunchSettings(mmdPath: "/nonexistent/mmd", configPath: nil, overrides: [], etcdPath: nil), logger: Logger(label: "openapi"))
        let router = buildControlRouter(supervisor: supervisor, tokens: cluster.tokens, config: cluster.config, shutdown: ShutdownRequests())
        try await Self.run("supervisor", router, tokens: cluster.tokens) { probe in
            try await probe.call(.get, "/healthz", as: nil)
            try await probe.call(.get, "/readyz", as: nil, expect: 503)
            try await probe.call(.get, "/v1/info")
            try await probe.call(.get, "/v1/processes")
            try await probe.call(.get, "/v1/events", "/v1/events?after=0&limit=2000")
            try await probe.call(.get, "/v1/events", "/v1/events?limit=2001", expect: 400)
            try await probe.call(.get, "/v1/logs/{name}", "/v1/logs/n1?lines=5", expect: 404)
            try await probe.call(.post, "/v1/processes/{name}/signal", as: .supervisor, json: #"{"signal":"KILL"}"#, expect: 404)
            try await probe.call(.post, "/v1/processes/{name}/signal", as: .observer, json: #"{"signal":"KILL"}"#, expect: 403)
            try await probe.call(.post, "/v1/nodes", as: .supervisor, expect: 409)
            try await probe.call(.delete, "/v1/nodes/{name}", as: .supervisor, expect: 404)
            try await probe.call(.post, "/v1/shutdown", as: .supervisor, json: #"{"grace_ms":-1}"#, expect: 400)
        }
    }
}
