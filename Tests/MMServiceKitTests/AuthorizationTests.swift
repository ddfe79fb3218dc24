import AsyncPrimitives
import Foundation
import Hummingbird
import HummingbirdTesting
import MMCore
import MMServiceKit
import MMTestSupport
import Testing

/// The scaffolding every service shares: role tokens, error envelope, body limits, common routes.
@Suite struct AuthorizationTests {
    struct Echo: Codable, Sendable { var value: Int64 }

    let tokens: RoleTokens
    let environment: ServiceEnvironment
    /// Counts handler runs: a rejected request must never reach the handler.
    let handled = LockedBox(0)

    init() throws {
        let directory = TestPaths.temporaryDataDirectory("servicekit")
        tokens = try RoleTokens.generate(in: directory)
        var config = ClusterConfig.defaults
        config.http.maxBodyBytes = 2_048
        environment = ServiceEnvironment(process: .exchange, role: .exchange, config: config, dataDirectory: directory, tokens: tokens)
    }

    func makeApplication() -> some ApplicationProtocol {
        let router = buildServiceRouter(environment)
        let handled = self.handled
        router.on(RouteSpec(.POST, "/v1/echo", roles: [.node])) { request, context in
            let body = try await request.decode(as: Echo.self, context: context)
            handled.update { $0 += 1 }
            return body
        }
        return buildApplication(environment, router: router)
    }

    func bearer(_ role: Role) -> HTTPFields { [.authorization: "Bearer \(tokens.token(for: role, node: "n1")!)"] }

    func errorCode(_ response: TestResponse) -> String {
        (try? MMJSON.decode(ErrorEnvelope.self, from: Data(response.body.readableBytesView)).error.code) ?? "not an error envelope"
    }

    @Test func allowedRoleReachesTheHandler() async throws {
        try await makeApplication().test(.router) { client in
            try await client.execute(uri: "/v1/echo", method: .post, headers: bearer(.node), body: ByteBuffer(string: #"{"value":5}"#)) { response in
                #expect(response.status == .ok)
                #expect((try? MMJSON.decode(Echo.self, from: Data(response.body.readableBytesView)).value) == 5)
            }
        }
        #expect(handled.value == 1)
    }

    @Test(arguments: [
        (nil as String?, 401, "missing_token"),
        ("Basic abc", 401, "missing_token"),
        ("Bearer not-a-token", 401, "invalid_token"),
        ("Bearer ", 401, "missing_token"),  // an empty credential is no credential
        ("Bearer x y", 401, "invalid_token"),
    ])
    func missingOrWrongTokenIs401(header: String?, status: Int, code: String) async throws {
        try await makeApplication().test(.router) { client in
            var headers = HTTPFields()
            if let header { headers[.authorization] = header }
            try await client.execute(uri: "/v1/echo", method: .post, headers: headers, body: ByteBuffer(string: #"{"value":5}"#)) { response in
                #expect(response.status.code == status)
                #expect(errorCode(response) == code)
            }
        }
        #expect(handled.value == 0, "a rejected request must not reach the handler")
    }

    @Test(arguments: [Role.observer, .exchange, .state, .coordinator, .supervisor])
    func roleNotOnTheRouteIs403(role: Role) async throws {
        try await makeApplication().test(.router) { client in
            try await client.execute(uri: "/v1/echo", method: .post, headers: bearer(role), body: ByteBuffer(string: #"{"value":5}"#)) { response in
                #expect(response.status == .forbidden)
                #expect(errorCode(response) == "forbidden_role")
            }
        }
        #expect(handled.value == 0)
    }

    @Test(arguments: [
        (#"{"value":"#, "malformed_body"),
        (#"{"value":"five"}"#, "malformed_body"),
        (#"{}"#, "malformed_body"),
        ("", "malformed_body"),
    ])
    func badBodiesAre400(body: String, code: String) async throws {
        try await makeApplication().test(.router) { client in
            try await client.execute(uri: "/v1/echo", method: .post, headers: bearer(.node), body: ByteBuffer(string: body)) { response in
                #expect(response.status == .badRequest)
                #expect(errorCode(response) == code)
            }
        }
        #expect(handled.value == 0)
    }

    @Test func malformedBodyNamesTheField() async throws {
        try await makeApplication().test(.router) { client in
            try await client.execute(uri: "/v1/echo", method: .post, headers: bearer(.node), body: ByteBuffer(string: #"{"value":"five"}"#)) { response in
                let envelope = try? MMJSON.decode(ErrorEnvelope.self, from: Data(response.body.readableBytesView))
                #expect(envelope?.error.message.contains("value") == true)
            }
        }
    }

    @Test func oversizedBodyIs413() async throws {
        let huge = #"{"value":1,"pad":""# + String(repeating: "x", count: 4_096) + #""}"#
        try await makeApplication().test(.router) { client in
            try await client.execute(uri: "/v1/echo", method: .post, headers: bearer(.node), body: ByteBuffer(string: huge)) { response in
                #expect(response.status == .contentTooLarge)
                #expect(errorCode(response) == "body_too_large")
            }
        }
        #expect(handled.value == 0)
    }

    @Test func unknownRouteIsAnEnvelope404() async throws {
        try await makeApplication().test(.router) { client in
            try await client.execute(uri: "/v1/nothing-here", method: .get, headers: bearer(.observer)) { response in
                #expect(response.status == .notFound)
                #expect(errorCode(response) == "not_found")
            }
        }
    }

    /// A known path asked with another method is a 405 naming the allowed methods (header and
    /// body), before any token check, and nothing runs; an unknown path stays a 404.
    @Test func wrongMethodIs405WithAllow() async throws {
        try await makeApplication().test(.router) { client in
            let cases: [(path: String, method: HTTPRequest.Method, allow: String)] = [
                ("/v1/echo", .get, "POST"), ("/v1/echo", .delete, "POST"), ("/healthz", .post, "GET"),
                ("/metrics", .put, "GET"), ("/v1/info", .delete, "GET"),
            ]
            for item in cases {
                try await client.execute(uri: item.path, method: item.method, headers: bearer(.node), body: ByteBuffer(string: #"{"value":5}"#)) { response in
                    #expect(response.status == .methodNotAllowed, "\(item.method) \(item.path)")
                    #expect(response.headers[.allow] == item.allow, "\(item.method) \(item.path)")
                    #expect(errorCode(response) == "method_not_allowed")
                }
            }
            try await client.execute(uri: "/v1/echo/extra", method: .get, headers: bearer(.node)) { response in
                #expect(response.status == .notFound)
            }
        }
        #expect(handled.value == 0)
    }

    @Test func catalogMatchesPathParametersAndListsEachMethodOnce() {
        let catalog = RouteCatalog()
        catalog.add("/v1/quotes/{symbol}", method: .post)
        catalog.add("/v1/quotes/{symbol}", method: .get)
        catalog.add("/v1/quotes/:symbol", method: .get)
        catalog.add("/v1/quotes", method: .get)
        #expect(catalog.allowedMethods(forPath: "/v1/quotes/ACME").map(\.rawValue) == ["GET", "POST"])
        #expect(catalog.allowedMethods(forPath: "/v1/quotes/").map(\.rawValue) == ["GET"])
        #expect(catalog.allowedMethods(forPath: "/v1/quotes/ACME/x").isEmpty)
        #expect(catalog.allowedMethods(forPath: "/v2/quotes").isEmpty)
        // A literal segment wins over a parameter, as in the router's trie.
        catalog.add("/v1/quotes/renew", method: .post)
        #expect(catalog.allowedMethods(forPath: "/v1/quotes/renew").map(\.rawValue) == ["POST"])
        #expect(catalog.allowedMethods(forPath: "/v1/quotes/BOLT").map(\.rawValue) == ["GET", "POST"])
    }

    @Test func commonRoutes() async throws {
        try await makeApplication().test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/metrics", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/v1/info", method: .get) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/v1/info", method: .get, headers: bearer(.observer)) { response in
                #expect(response.status == .ok)
                let info = try? MMJSON.decode(ServiceInfo.self, from: Data(response.body.readableBytesView))
                #expect(info?.role == "exchange")
                #expect(info?.pid == ProcessInfo.processInfo.processIdentifier)
                #expect(info?.configDigest == environment.config.digest)
            }
        }
    }

    @Test func readinessReportsNotReady() async throws {
        let router = buildServiceRouter(environment) { Readiness(ready: false, detail: "replaying journal") }
        try await buildApplication(environment, router: router).test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body).contains("replaying journal"))
            }
        }
    }
}
