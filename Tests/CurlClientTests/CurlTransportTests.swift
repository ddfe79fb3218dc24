import CurlClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MMCore
import ServiceLifecycle
import Synchronization
import Testing

/// CurlTransport against a real in-process Hummingbird server on an ephemeral port.
@Suite struct CurlTransportTests {
    struct Echo: Codable, Sendable {
        var method: String
        var authorization: String?
        var custom: String?
        var body: String
    }

    static func router() -> Router<BasicRequestContext> {
        let router = Router()
        for method in [HTTPRequest.Method.get, .post, .put, .delete] {
            router.on("/echo", method: method) { request, context -> Response in
                var request = request
                let body = try await request.collectBody(upTo: 1 << 20)
                let echo = Echo(
                    method: request.method.rawValue,
                    authorization: request.headers[.authorization],
                    custom: request.headers[HTTPField.Name("X-Custom")!],
                    body: String(buffer: body))
                return Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(bytes: try MMJSON.encode(echo))))
            }
        }
        router.get("/status/:code") { _, context -> Response in
            let code = Int(context.parameters.get("code") ?? "500") ?? 500
            return Response(status: .init(code: code), body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"error":{"code":"teapot","message":"short and stout"}}"#)))
        }
        router.get("/slow") { _, _ -> String in
            try await Task.sleep(for: .seconds(3))
            return "late"
        }
        router.get("/big") { _, _ -> Response in
            Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(repeating: UInt8(ascii: "x"), count: 200_000)))
        }
        return router
    }

    /// Runs the server for the duration of `body`, handing it the base URL.
    static func withServer(_ body: @Sendable (String) async throws -> Void) async throws {
        let port = Mutex<Int?>(nil)
        let app = Application(
            router: router(),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } },
            logger: Logger(label: "curl-test"))
        let group = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "curl-test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var bound: Int?
            for _ in 0..<200 {
                bound = port.withLock { $0 }
                if bound != nil { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            let base = "http://127.0.0.1:\(try #require(bound))"
            do { try await body(base) } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    @Test(arguments: [MMCore.HTTPMethod.GET, .POST, .PUT, .DELETE])
    func methodHeadersAndBodyArrive(method: MMCore.HTTPMethod) async throws {
        try await Self.withServer { base in
            let body = method == .GET ? nil : Data(#"{"signal":"KILL","note":"ünïcode"}"#.utf8)
            let response = try await CurlTransport().send(TransportRequest(
                method: method, url: base + "/echo",
                headers: [("Authorization", "Bearer abc123"), ("X-Custom", "v=1")], body: body, timeoutMs: 2_000))
            #expect(response.status == 200)
            let echo = try MMJSON.decode(Echo.self, from: response.body)
            #expect(echo.method == method.rawValue)
            #expect(echo.authorization == "Bearer abc123")
            #expect(echo.custom == "v=1")
            #expect(echo.body == (body.map { String(decoding: $0, as: UTF8.self) } ?? ""))
        }
    }

    @Test func largeRequestBodyIsSentWhole() async throws {
        try await Self.withServer { base in
            let payload = String(repeating: "abcdefgh", count: 40_000)
            let response = try await CurlTransport().send(TransportRequest(method: .POST, url: base + "/echo", body: Data(payload.utf8), timeoutMs: 2_000))
            #expect(try MMJSON.decode(Echo.self, from: response.body).body == payload)
        }
    }

    @Test(arguments: [404, 409, 503])
    func errorStatusAndBodyArePassedThrough(code: Int) async throws {
        try await Self.withServer { base in
            let response = try await CurlTransport().send(TransportRequest(method: .GET, url: base + "/status/\(code)", timeoutMs: 2_000))
            #expect(response.status == code)
            #expect(try MMJSON.decode(ErrorEnvelope.self, from: response.body).error.code == "teapot")
        }
    }

    @Test func typedClientDecodesErrorEnvelope() async throws {
        try await Self.withServer { base in
            let endpoint = ServiceEndpoint(baseURL: base, token: "t", transport: CurlTransport(), timeoutMs: 2_000)
            do {
                let _: Empty = try await endpoint.call(.GET, "/status/409")
                Issue.record("a 409 must throw")
            } catch let error as ClientError {
                #expect(error.status == 409)
                #expect(error.code == "teapot")
            }
        }
    }

    @Test func timeoutIsEnforced() async throws {
        try await Self.withServer { base in
            let started = ContinuousClock.now
            do {
                _ = try await CurlTransport().send(TransportRequest(method: .GET, url: base + "/slow", timeoutMs: 200))
                Issue.record("a 3 s handler must not answer within 200 ms")
            } catch let error as TransportError {
                #expect(error.reason.contains("200 ms"))
            }
            #expect(ContinuousClock.now - started < .seconds(2))
        }
    }

    @Test func refusedConnectionIsATransportError() async throws {
        // Bind then close to get a port nobody listens on.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        let port = Int(UInt16(bigEndian: address.sin_port))
        close(fd)
        do {
            _ = try await CurlTransport().send(TransportRequest(method: .GET, url: "http://127.0.0.1:\(port)/", timeoutMs: 1_000))
            Issue.record("nothing listens on \(port)")
        } catch {
            #expect(error.reason.contains("refused"))
            #expect(error.url.contains("\(port)"))
        }
    }

    @Test func oversizedResponseIsRefused() async throws {
        try await Self.withServer { base in
            do {
                _ = try await CurlTransport(maxResponseBytes: 10_000).send(TransportRequest(method: .GET, url: base + "/big", timeoutMs: 2_000))
                Issue.record("a 200 kB body must exceed a 10 kB limit")
            } catch let error as TransportError {
                #expect(error.reason.contains("larger than 10000"))
            }
            let whole = try await CurlTransport().send(TransportRequest(method: .GET, url: base + "/big", timeoutMs: 2_000))
            #expect(whole.body.count == 200_000)
        }
    }

    @Test func concurrentRequestsDoNotMixUp() async throws {
        try await Self.withServer { base in
            let transport = CurlTransport()
            try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for index in 0..<32 {
                    group.addTask {
                        let response = try await transport.send(TransportRequest(method: .POST, url: base + "/echo", body: Data("request-\(index)".utf8), timeoutMs: 5_000))
                        return (index, try MMJSON.decode(Echo.self, from: response.body).body)
                    }
                }
                var seen = 0
                for try await (index, body) in group {
                    #expect(body == "request-\(index)")
                    seen += 1
                }
                #expect(seen == 32)
            }
        }
    }
}
