import Foundation
import Synchronization
import Testing
@testable import MMCore

/// `ServiceEndpoint` over several replicas, against a scripted transport: which URLs a call
/// tries, in which order, with which timeout, and what it remembers.
@Suite struct ServiceEndpointFailoverTests {
    enum Outcome: Sendable {
        case unreachable
        case status(Int)
    }

    /// Answers each base URL as scripted and records every request.
    final class ScriptedTransport: HTTPTransport {
        private let state: Mutex<(script: [String: Outcome], requests: [TransportRequest])>

        init(_ script: [String: Outcome]) { state = Mutex((script, [])) }

        func set(_ base: String, _ outcome: Outcome) { state.withLock { $0.script[base] = outcome } }

        var requests: [TransportRequest] { state.withLock { $0.requests } }
        /// The base URLs tried, in order.
        var tried: [String] { requests.map { base(of: $0.url) } }
        func clear() { state.withLock { $0.requests = [] } }

        func base(of url: String) -> String {
            // "http://host:port/path" → "http://host:port"
            let afterScheme = url.range(of: "://").map { url[$0.upperBound...] } ?? Substring(url)
            let host = afterScheme.prefix { $0 != "/" }
            return String(url[..<host.endIndex])
        }

        func send(_ request: TransportRequest) async throws(TransportError) -> TransportResponse {
            let outcome = state.withLock { state -> Outcome in
                state.requests.append(request)
                return state.script[base(of: request.url)] ?? .unreachable
            }
            switch outcome {
            case .unreachable:
                throw TransportError(url: request.url, reason: "connection refused")
            case .status(let code):
                let body = (200..<300).contains(code)
                    ? Data(#"{"served_by":"\#(base(of: request.url))"}"#.utf8)
                    : Data(#"{"error":{"code":"code_\#(code)","message":"status \#(code)"}}"#.utf8)
                return TransportResponse(status: code, body: body)
            }
        }
    }

    struct Served: Codable, Sendable { var servedBy: String }

    static let urls = ["http://r1:1", "http://r2:2", "http://r3:3"]

    func endpoint(_ transport: ScriptedTransport, urls: [String] = urls, attemptTimeoutMs: Int64? = 300) -> ServiceEndpoint {
        ServiceEndpoint(baseURLs: urls, token: "t", transport: transport, timeoutMs: 5_000, attemptTimeoutMs: attemptTimeoutMs)
    }

    @Test func anUnreachableFirstReplicaIsSkippedAndTheOneThatAnsweredIsRemembered() async throws {
        let transport = ScriptedTransport(["http://r1:1": .unreachable, "http://r2:2": .status(200), "http://r3:3": .status(200)])
        let endpoint = endpoint(transport)
        let first: Served = try await endpoint.call(.GET, "/v1/members")
        #expect(first.servedBy == "http://r2:2")
        #expect(transport.tried == ["http://r1:1", "http://r2:2"])
        #expect(endpoint.baseURL == "http://r2:2")

        // Sticky: the next call (also through a copy of the endpoint) goes straight to r2.
        transport.clear()
        let copy = endpoint
        let second: Served = try await copy.call(.POST, "/v1/members/n1/heartbeat", body: Empty())
        #expect(second.servedBy == "http://r2:2")
        #expect(transport.tried == ["http://r2:2"])

        // r2 goes away too: r3, then (wrapping) r1, each once.
        transport.set("http://r2:2", .unreachable)
        transport.clear()
        let third: Served = try await endpoint.call(.GET, "/v1/members")
        #expect(third.servedBy == "http://r3:3")
        #expect(transport.tried == ["http://r2:2", "http://r3:3"])
        #expect(copy.baseURL == "http://r3:3")
    }

    @Test func a503MovesOnButAnyOtherAnswerIsTheAnswer() async throws {
        let transport = ScriptedTransport(["http://r1:1": .status(503), "http://r2:2": .status(200)])
        let endpoint = endpoint(transport)
        let served: Served = try await endpoint.call(.GET, "/v1/authority")
        #expect(served.servedBy == "http://r2:2")
        #expect(transport.tried == ["http://r1:1", "http://r2:2"])

        // A refusal (409) from the preferred replica is its answer: nobody else is asked.
        transport.set("http://r2:2", .status(409))
        transport.clear()
        await #expect(throws: ClientError.self) { let _: Served = try await endpoint.call(.POST, "/v1/authority/ACME/acquire", body: Empty()) }
        #expect(transport.tried == ["http://r2:2"])
        do {
            let _: Served = try await endpoint.call(.GET, "/x")
        } catch {
            #expect(error.status == 409)
            #expect(error.code == "code_409")
        }
    }

    @Test func whenEveryReplicaIs503TheLastAnswerIsReturned() async throws {
        let transport = ScriptedTransport(["http://r1:1": .status(503), "http://r2:2": .status(503), "http://r3:3": .status(503)])
        let endpoint = endpoint(transport)
        do {
            let _: Served = try await endpoint.call(.GET, "/v1/members")
            Issue.record("three 503s must throw")
        } catch {
            #expect(error.status == 503)
        }
        #expect(transport.tried == Self.urls)
        #expect(endpoint.baseURL == "http://r1:1", "a 503 does not move the preference")
    }

    @Test func noReplicaAnsweringIsOneClearErrorNamingEveryURL() async throws {
        let transport = ScriptedTransport([:])
        let endpoint = endpoint(transport)
        do {
            let _: Served = try await endpoint.call(.GET, "/v1/members")
            Issue.record("no replica answers: the call must throw")
        } catch {
            guard case .unreachable(let transportError) = error else {
                Issue.record("expected .unreachable, got \(error)")
                return
            }
            #expect(transportError.description.contains("none of the 3 replicas answered"), "\(transportError)")
            for url in Self.urls { #expect(transportError.description.contains(url + "/v1/members"), "\(transportError)") }
        }
        #expect(transport.tried == Self.urls, "each replica is tried exactly once per call")
    }

    @Test func oneBaseURLBehavesAsBefore() async throws {
        let transport = ScriptedTransport(["http://only:1": .status(503)])
        let endpoint = ServiceEndpoint(baseURL: "http://only:1", token: "t", transport: transport, timeoutMs: 1_234)
        do {
            let _: Served = try await endpoint.call(.GET, "/v1/members")
            Issue.record("a 503 must throw")
        } catch {
            #expect(error.status == 503)
        }
        transport.set("http://only:1", .unreachable)
        do {
            let _: Served = try await endpoint.call(.GET, "/v1/members")
            Issue.record("unreachable must throw")
        } catch {
            guard case .unreachable(let transportError) = error else {
                Issue.record("expected .unreachable, got \(error)")
                return
            }
            #expect(transportError.url == "http://only:1/v1/members")
        }
        #expect(transport.requests.map(\.timeoutMs) == [1_234, 1_234])
        #expect(endpoint.longPollTimeoutMs(waitMs: 10_000) == 11_234)
    }

    @Test func severalURLsUseTheShortAttemptTimeoutUnlessTheCallNamesOne() async throws {
        let transport = ScriptedTransport(["http://r1:1": .status(200)])
        let endpoint = endpoint(transport, attemptTimeoutMs: 300)
        let _: Served = try await endpoint.call(.GET, "/v1/members")
        let _: Served = try await endpoint.call(.GET, "/v1/assignments", timeoutMs: 20_000)
        #expect(transport.requests.map(\.timeoutMs) == [300, 20_000])
        #expect(endpoint.longPollTimeoutMs(waitMs: 10_000) == 10_300)
        #expect(endpoint.longPollTimeoutMs(waitMs: 0) == 300)
    }

    @Test func theCoordinatorEndpointCoversEveryReplica() {
        var config = ClusterConfig.defaults
        config.coordinator.backend = .etcd
        config.coordinator.replicas = 3
        let endpoint = ServiceEndpoint.coordinator(config, token: "t", transport: ScriptedTransport([:]), timeoutMs: 5_000)
        #expect(endpoint.baseURLs == ["http://127.0.0.1:7401", "http://127.0.0.1:7405", "http://127.0.0.1:7406"])
        #expect(endpoint.attemptTimeoutMs == config.coordinator.grantTtlMs / 4)
        let single = ServiceEndpoint.coordinator(.defaults, token: "t", transport: ScriptedTransport([:]), timeoutMs: 5_000)
        #expect(single.baseURLs == ["http://127.0.0.1:7401"])
    }

    /// After a failover the lowest replica is tried first again once `returnAfterMs` has
    /// passed, so every client comes back to it after its restart.
    @Test func theLowestReplicaIsTriedFirstAgainAfterThePeriod() {
        let preference = ReplicaPreference(count: 3, returnAfterMs: 5_000)
        let start = ContinuousClock.now
        #expect(preference.attemptOrder(now: start) == [0, 1, 2])
        preference.answered(1, afterTrying: 0, now: start)
        #expect(preference.preferredIndex == 1)
        #expect(preference.attemptOrder(now: start + .seconds(4)) == [1, 2, 0])
        #expect(preference.attemptOrder(now: start + .seconds(5)) == [0, 1, 2])
        // A long-poll never goes back first: to a paused replica it would hang for its wait.
        #expect(preference.attemptOrder(mayReturnToLowest: false, now: start + .seconds(5)) == [1, 2, 0])
        // Replica 1 still does not answer: 2 (index 1) stays preferred for another period.
        preference.answered(1, afterTrying: 0, now: start + .seconds(5))
        #expect(preference.attemptOrder(now: start + .seconds(9)) == [1, 2, 0])
        #expect(preference.attemptOrder(now: start + .seconds(10)) == [0, 1, 2])
        // It is back: everybody returns to it.
        preference.answered(0, afterTrying: 0, now: start + .seconds(10))
        #expect(preference.preferredIndex == 0)
        #expect(preference.attemptOrder(now: start + .seconds(100)) == [0, 1, 2])
    }
}

extension ServiceEndpointFailoverTests {
    /// Through the endpoint: after the period an ordinary call tries the lowest replica first
    /// again; a long-poll (an explicit timeout) stays with the preferred one.
    @Test func onlyOrdinaryCallsTryTheLowestReplicaAgain() async throws {
        let transport = ScriptedTransport(["http://r1:1": .unreachable, "http://r2:2": .status(200)])
        let endpoint = ServiceEndpoint(baseURLs: ["http://r1:1", "http://r2:2"], token: "t", transport: transport, timeoutMs: 5_000, attemptTimeoutMs: 300)
        let _: Served = try await endpoint.call(.GET, "/v1/members")
        #expect(endpoint.baseURL == "http://r2:2")
        // Pretend the period has passed: the failover was confirmed long ago.
        endpoint.preference.answered(1, afterTrying: 0, now: .now - .seconds(60))
        transport.clear()
        let _: Served = try await endpoint.call(.GET, "/v1/assignments", timeoutMs: 10_300)
        #expect(transport.tried == ["http://r2:2"], "a long-poll goes to the preferred replica")
        transport.set("http://r1:1", .status(200))
        transport.clear()
        let served: Served = try await endpoint.call(.GET, "/v1/members")
        #expect(transport.tried == ["http://r1:1"])
        #expect(served.servedBy == "http://r1:1")
        #expect(endpoint.baseURL == "http://r1:1", "replica 1 is back and preferred again")
    }
}
