import AsyncPrimitives
import Foundation
import Hummingbird
import MMCore
import NIOCore

/// The request context of every service: the caller's proven role (set by the route's
/// authorization check), the cluster's JSON conventions and its body size limit.
public struct MMRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The role whose bearer token the request carried; nil on unauthenticated routes.
    public var role: Role?
    /// For a node's token, the node id it names.
    public var node: String?
    public var bodyLimit: Int

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.role = nil
        self.node = nil
        self.bodyLimit = BodyLimit.current
    }

    public var maxUploadSize: Int { bodyLimit }

    /// Refuses (403 `node_mismatch`, before anything changes) a node-scoped request that names
    /// a node other than the one whose token it carries. Other roles cannot reach node routes.
    public func requireActing(as named: String) throws {
        // A malformed id names no node at all: the handler's own validation answers 400 for it.
        guard role == .node, NodeID.isValid(named) else { return }
        guard let node, node == named else { throw APIError.nodeMismatch(tokenNode: node ?? "?", named: named) }
    }
    public var requestDecoder: MMRequestDecoder { MMRequestDecoder() }
    public var responseEncoder: MMResponseEncoder { MMResponseEncoder() }
}

/// The process-wide request body limit (from `http.max_body_bytes`), fixed at startup.
public enum BodyLimit {
    private static let storage = LockedBox(1_048_576)
    public static var current: Int { storage.value }
    public static func set(_ bytes: Int) { storage.value = bytes }
}

/// Decodes bodies with the cluster's snake_case convention and turns every failure into a
/// 400/413 that names the field, never a 500.
public struct MMRequestDecoder: RequestDecoder {
    public init() {}

    public func decode<T: Decodable>(_ type: T.Type, from request: Request, context: some RequestContext) async throws -> T {
        let data = try await readBody(request, limit: context.maxUploadSize)
        guard !data.isEmpty else { throw APIError.malformedBody("the request needs a JSON body") }
        do {
            return try MMJSON.decode(T.self, from: data)
        } catch {
            throw APIError.malformedBody(MMJSON.describe(error))
        }
    }
}

/// Reads a request body, refusing more than `limit` bytes with 413 body_too_large.
public func readBody(_ request: Request, limit: Int) async throws -> Data {
    if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
        throw APIError.bodyTooLarge(limit: limit)
    }
    var request = request
    let buffer: ByteBuffer
    do {
        buffer = try await request.collectBody(upTo: limit)
    } catch {
        throw APIError.bodyTooLarge(limit: limit)
    }
    return Data(buffer.readableBytesView)
}

public struct MMResponseEncoder: ResponseEncoder {
    public init() {}

    public func encode(_ value: some Encodable, from request: Request, context: some RequestContext) throws -> Response {
        try jsonResponse(value, status: .ok)
    }
}

public func jsonResponse(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "application/json; charset=utf-8"
    // The coordinator's per-heartbeat and per-renewal answers skip JSONEncoder (same bytes).
    if let hot = value as? any HotPathJSONEncodable, let bytes = hot.hotPathJSON() {
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
    let data = try MMJSON.encode(value)
    return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
}
