import Foundation

/// The JSON error envelope every service returns for every 4xx/5xx:
/// `{"error": {"code": "stale_fencing_token", "message": "...", "details": {...}}}`.
public struct ErrorEnvelope: Codable, Sendable, Hashable, Error {
    public struct Body: Codable, Sendable, Hashable {
        public var code: String
        public var message: String
        public var details: [String: String]?
    }

    public var error: Body

    public init(code: String, message: String, details: [String: String]? = nil) {
        self.error = Body(code: code, message: message, details: details)
    }
}

/// A typed API failure: the HTTP status, a stable machine code and a message that says
/// what to fix. Services throw it; the scaffolding renders it as an `ErrorEnvelope`.
public struct APIError: Error, Sendable, Hashable, CustomStringConvertible {
    public var status: Int
    public var code: String
    public var message: String
    public var details: [String: String]?

    public init(status: Int, code: String, message: String, details: [String: String]? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
    }

    public var envelope: ErrorEnvelope { ErrorEnvelope(code: code, message: message, details: details) }
    public var description: String { "\(status) \(code): \(message)" }

    // The stable codes shared by every service. Service-specific codes are listed in docs/API.md.
    public static func malformedBody(_ why: String) -> APIError { APIError(status: 400, code: "malformed_body", message: why) }
    public static func invalidField(_ field: String, _ why: String) -> APIError {
        APIError(status: 400, code: "invalid_field", message: "'\(field)' \(why)", details: ["field": field])
    }
    public static func bodyTooLarge(limit: Int) -> APIError {
        APIError(status: 413, code: "body_too_large", message: "request body exceeds \(limit) bytes")
    }
    public static func unknownSymbol(_ symbol: String) -> APIError {
        APIError(status: 404, code: "unknown_symbol", message: "no symbol '\(symbol)' in this cluster's config", details: ["symbol": symbol])
    }
    public static func notFound(_ what: String) -> APIError { APIError(status: 404, code: "not_found", message: what) }
    public static let missingToken = APIError(
        status: 401, code: "missing_token",
        message: "send 'Authorization: Bearer <token>' with a role token from DATA_DIR/tokens/")
    public static let invalidToken = APIError(
        status: 401, code: "invalid_token",
        message: "the bearer token matches no role of this cluster (tokens are regenerated at each 'mmctl start')")
    public static func forbiddenRole(_ role: Role, allowed: [Role]) -> APIError {
        APIError(
            status: 403, code: "forbidden_role",
            message: "role '\(role.rawValue)' may not call this endpoint; allowed: \(allowed.map(\.rawValue).joined(separator: ", "))",
            details: ["role": role.rawValue])
    }
    /// A node's token used for a request that acts as another node.
    public static func nodeMismatch(tokenNode: String, named: String) -> APIError {
        APIError(
            status: 403, code: "node_mismatch",
            message: "the token names node '\(tokenNode)'; it may not act as node '\(named)' (each node uses its own token)",
            details: ["token_node": tokenNode, "node": named])
    }
    public static func unavailable(_ why: String) -> APIError { APIError(status: 503, code: "unavailable", message: why) }
    public static func internalError(_ why: String) -> APIError { APIError(status: 500, code: "internal", message: why) }
}
