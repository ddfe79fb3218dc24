import Foundation
import Hummingbird
import Logging
import MMCore

/// Renders every failure as the JSON error envelope: typed `APIError`s as they are,
/// Hummingbird's own errors (unknown route, wrong method) with a stable code, anything
/// else as a logged 500 that never takes the service down.
public struct ErrorEnvelopeMiddleware: RouterMiddleware {
    public typealias Context = MMRequestContext
    /// The routes served, to tell a wrong method (405 with `Allow`) from an unknown path (404).
    let catalog: RouteCatalog

    public init(catalog: RouteCatalog) { self.catalog = catalog }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return try jsonResponse(error.envelope, status: .init(code: error.status))
        } catch let error as HTTPResponseError {
            let code: String
            let message: String
            switch error.status {
            case .notFound:
                let allowed = catalog.allowedMethods(forPath: request.uri.path)
                guard allowed.isEmpty else { return try methodNotAllowed(request, allowed: allowed) }
                code = "not_found"
                message = "no route \(request.method.rawValue) \(request.uri.path) (see docs/API.md)"
            case .methodNotAllowed:
                code = "method_not_allowed"
                message = "\(request.method.rawValue) is not allowed on \(request.uri.path)"
            case .contentTooLarge:
                code = "body_too_large"
                message = "request body exceeds \(context.maxUploadSize) bytes"
            default:
                code = "http_\(error.status.code)"
                message = (error as? HTTPError)?.body ?? error.status.reasonPhrase
            }
            return try jsonResponse(ErrorEnvelope(code: code, message: message), status: error.status)
        } catch {
            context.logger.error("unhandled error on \(request.method.rawValue) \(request.uri.path): \(error)")
            return try jsonResponse(APIError.internalError("\(error)").envelope, status: .internalServerError)
        }
    }

    private func methodNotAllowed(_ request: Request, allowed: [HTTPRequest.Method]) throws -> Response {
        let list = allowed.map(\.rawValue).joined(separator: ", ")
        var response = try jsonResponse(
            ErrorEnvelope(
                code: "method_not_allowed", message: "\(request.method.rawValue) is not allowed on \(request.uri.path); allowed: \(list)",
                details: ["allowed": list]),
            status: .methodNotAllowed)
        response.headers[.allow] = list
        return response
    }
}
