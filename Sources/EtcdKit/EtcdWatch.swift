import AsyncHTTPClient
import Foundation
import NIOCore

/// What to watch: one key, a range `[key, rangeEnd)` or a prefix, from a revision on.
public struct EtcdWatchRequest: Sendable, Hashable {
    public var key: [UInt8]
    public var rangeEnd: [UInt8]?
    /// Replay every change since this revision first (0: only changes after the watch starts).
    /// A compacted revision ends the watch with `EtcdError.watchCanceled`.
    public var startRevision: Int64
    /// Send each event with the key as it was before.
    public var previousKeyValue: Bool
    /// Ask for periodic empty responses (every 10 minutes by default on the server) carrying the
    /// current revision.
    public var progressNotify: Bool

    public init(key: [UInt8], rangeEnd: [UInt8]? = nil, startRevision: Int64 = 0, previousKeyValue: Bool = false, progressNotify: Bool = false) {
        self.key = key
        self.rangeEnd = rangeEnd
        self.startRevision = startRevision
        self.previousKeyValue = previousKeyValue
        self.progressNotify = progressNotify
    }

    public static func key(_ key: String, startRevision: Int64 = 0, previousKeyValue: Bool = false) -> EtcdWatchRequest {
        EtcdWatchRequest(key: Array(key.utf8), startRevision: startRevision, previousKeyValue: previousKeyValue)
    }

    public static func prefix(_ prefix: String, startRevision: Int64 = 0, previousKeyValue: Bool = false) -> EtcdWatchRequest {
        EtcdWatchRequest(key: Array(prefix.utf8), rangeEnd: EtcdKeys.prefixRangeEnd(prefix), startRevision: startRevision, previousKeyValue: previousKeyValue)
    }
}

public struct EtcdWatchEvent: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case put
        case delete
    }

    public var kind: Kind
    /// The key after the change; for a delete only the key and `modRevision` (the deletion's revision).
    public var keyValue: EtcdKeyValue
    /// The key before the change, when asked for and it existed.
    public var previous: EtcdKeyValue?
}

/// One message of a watch: its first has `created` set and no events; later ones carry the
/// events of one or more revisions, in revision order.
public struct EtcdWatchResponse: Sendable, Hashable {
    public var header: EtcdResponseHeader
    public var created: Bool
    public var events: [EtcdWatchEvent]
}

extension EtcdClient {
    /// Watches `request` on one member (the preferred one, or the next that accepts the watch)
    /// until the consumer stops iterating. The gateway serves watch as a streaming POST that
    /// answers with one JSON object per line.
    ///
    /// The stream does not move to another member by itself: when the member goes away, or the
    /// server cancels the watch, iteration throws an `EtcdError`; watch again from the last
    /// revision seen + 1 to miss nothing.
    public func watch(_ request: EtcdWatchRequest) -> AsyncThrowingStream<EtcdWatchResponse, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: EtcdWatchResponse.self)
        // The stream outlives this call, so its producer cannot be a child task; it ends when
        // the consumer stops iterating (onTermination) or the watch ends.
        let producer = Task { await runWatch(request, into: continuation) }
        continuation.onTermination = { _ in producer.cancel() }
        return stream
    }

    private func runWatch(_ request: EtcdWatchRequest, into continuation: AsyncThrowingStream<EtcdWatchResponse, any Error>.Continuation) async {
        let wire = WireWatchRequest(create_request: .init(
            key: WireBytes(request.key), range_end: request.rangeEnd.map(WireBytes.init),
            start_revision: request.startRevision == 0 ? nil : WireInt64(request.startRevision),
            prev_kv: request.previousKeyValue ? true : nil, progress_notify: request.progressNotify ? true : nil
        ))
        let body = Self.encode(wire)
        let first = preferred.value % endpoints.count
        var failures: [EtcdEndpointFailure] = []
        for offset in 0..<endpoints.count {
            let endpoint = endpoints[(first + offset) % endpoints.count]
            var outbound = HTTPClientRequest(url: endpoint + "/v3/watch")
            outbound.method = .POST
            outbound.headers.add(name: "Content-Type", value: "application/json")
            outbound.body = .bytes(body)
            let response: HTTPClientResponse
            do {
                // The deadline bounds only the wait for the response head, which the gateway
                // sends with the "created" message; the stream itself has no end.
                response = try await httpClient.execute(outbound, timeout: TimeAmount(configuration.attemptTimeout))
            } catch {
                if Task.isCancelled { return continuation.finish() }
                failures.append(EtcdEndpointFailure(endpoint: endpoint, reason: Self.reason(for: error, timeout: configuration.attemptTimeout)))
                continue
            }
            guard response.status == .ok else {
                let responseBody = (try? await response.body.collect(upTo: 64 * 1024)).map { Array($0.readableBytesView) } ?? []
                let status = Int(response.status.code)
                if let gateway = Self.gatewayStatus(httpStatus: status, body: responseBody), !gateway.isMemberUnavailable {
                    return continuation.finish(throwing: EtcdError.refused(operation: "watch", endpoint: endpoint, status: gateway))
                }
                let reason: EtcdEndpointFailure.Reason = Self.gatewayStatus(httpStatus: status, body: responseBody).map { .memberUnavailable($0) }
                    ?? .unexpectedResponse(httpStatus: status, bodyExcerpt: Self.excerpt(responseBody))
                failures.append(EtcdEndpointFailure(endpoint: endpoint, reason: reason))
                continue
            }
            remember(endpoint)
            await stream(response, from: endpoint, into: continuation)
            return
        }
        continuation.finish(throwing: EtcdError.unavailable(operation: "watch", failures: failures))
    }

    /// Forwards the watch's lines until it ends; every end but the consumer's is an error.
    private func stream(_ response: HTTPClientResponse, from endpoint: String, into continuation: AsyncThrowingStream<EtcdWatchResponse, any Error>.Continuation) async {
        var pending: [UInt8] = []
        do {
            for try await chunk in response.body {
                pending.append(contentsOf: chunk.readableBytesView)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = Array(pending[..<newline])
                    pending.removeSubrange(...newline)
                    guard !line.isEmpty else { continue }
                    switch Self.watchMessage(line, from: endpoint) {
                    case .success(let message): continuation.yield(message)
                    case .failure(let error): return continuation.finish(throwing: error)
                    }
                }
            }
        } catch {
            if Task.isCancelled { return continuation.finish() }
            let failure = EtcdEndpointFailure(endpoint: endpoint, reason: Self.reason(for: error, timeout: configuration.attemptTimeout))
            return continuation.finish(throwing: EtcdError.unavailable(operation: "watch", failures: [failure]))
        }
        if Task.isCancelled { return continuation.finish() }
        let failure = EtcdEndpointFailure(endpoint: endpoint, reason: .connectionClosed(detail: "the member ended the watch stream"))
        continuation.finish(throwing: EtcdError.unavailable(operation: "watch", failures: [failure]))
    }

    static func watchMessage(_ line: [UInt8], from endpoint: String) -> Result<EtcdWatchResponse, EtcdError> {
        let decoded: WireStreamLine<WireWatchResponse>
        do {
            decoded = try decoder.decode(WireStreamLine<WireWatchResponse>.self, from: Data(line))
        } catch {
            return .failure(.malformedResponse(operation: "watch", endpoint: endpoint, detail: "\(error)", bodyExcerpt: excerpt(line)))
        }
        if let error = decoded.error {
            let status = EtcdGatewayStatus(httpStatus: error.http_code ?? 200, code: EtcdStatusCode(rawValue: error.grpc_code ?? 2), message: error.message ?? "")
            return .failure(status.isMemberUnavailable
                ? .unavailable(operation: "watch", failures: [EtcdEndpointFailure(endpoint: endpoint, reason: .memberUnavailable(status))])
                : .refused(operation: "watch", endpoint: endpoint, status: status))
        }
        guard let wire = decoded.result else {
            return .failure(.malformedResponse(operation: "watch", endpoint: endpoint, detail: "neither \"result\" nor \"error\"", bodyExcerpt: excerpt(line)))
        }
        if wire.canceled == true {
            return .failure(.watchCanceled(endpoint: endpoint, reason: wire.cancel_reason ?? "", compactRevision: wire.compact_revision.orZero))
        }
        var events: [EtcdWatchEvent] = []
        for event in wire.events ?? [] {
            let kind: EtcdWatchEvent.Kind
            switch event.type ?? "PUT" {
            case "PUT": kind = .put
            case "DELETE": kind = .delete
            case let other:
                return .failure(.malformedResponse(operation: "watch", endpoint: endpoint, detail: "unknown event type \(other)", bodyExcerpt: excerpt(line)))
            }
            events.append(EtcdWatchEvent(kind: kind, keyValue: event.kv?.model ?? EtcdKeyValue(key: [], value: []), previous: event.prev_kv?.model))
        }
        return .success(EtcdWatchResponse(header: wire.header.model, created: wire.created ?? false, events: events))
    }
}
