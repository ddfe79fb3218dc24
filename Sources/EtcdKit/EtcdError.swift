/// A gRPC status code as the gateway reports it in an error body's `code`.
public struct EtcdStatusCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let ok = EtcdStatusCode(rawValue: 0)
    public static let cancelled = EtcdStatusCode(rawValue: 1)
    /// Also what the gateway reports for its own call deadline ("context deadline exceeded").
    public static let unknown = EtcdStatusCode(rawValue: 2)
    /// "etcdserver: key is not provided", malformed base64 or JSON in the request.
    public static let invalidArgument = EtcdStatusCode(rawValue: 3)
    public static let deadlineExceeded = EtcdStatusCode(rawValue: 4)
    /// "etcdserver: requested lease not found".
    public static let notFound = EtcdStatusCode(rawValue: 5)
    public static let alreadyExists = EtcdStatusCode(rawValue: 6)
    public static let permissionDenied = EtcdStatusCode(rawValue: 7)
    /// "etcdserver: mvcc: database space exceeded" (the NOSPACE alarm), too many requests.
    public static let resourceExhausted = EtcdStatusCode(rawValue: 8)
    public static let failedPrecondition = EtcdStatusCode(rawValue: 9)
    public static let aborted = EtcdStatusCode(rawValue: 10)
    /// "mvcc: required revision has been compacted", "… is a future revision".
    public static let outOfRange = EtcdStatusCode(rawValue: 11)
    public static let unimplemented = EtcdStatusCode(rawValue: 12)
    public static let `internal` = EtcdStatusCode(rawValue: 13)
    /// "etcdserver: no leader", "etcdserver: request timed out": this member cannot serve now.
    public static let unavailable = EtcdStatusCode(rawValue: 14)
    public static let dataLoss = EtcdStatusCode(rawValue: 15)
    public static let unauthenticated = EtcdStatusCode(rawValue: 16)

    static let names = [
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    ]

    public var description: String {
        Self.names.indices.contains(rawValue) ? "\(Self.names[rawValue]) (\(rawValue))" : "gRPC code \(rawValue)"
    }
}

/// A request the cluster answered with an error: the gateway's HTTP status, the gRPC code and
/// etcd's own message.
public struct EtcdGatewayStatus: Sendable, Hashable, CustomStringConvertible {
    public var httpStatus: Int
    public var code: EtcdStatusCode
    /// etcd's message, e.g. "etcdserver: requested lease not found".
    public var message: String

    public init(httpStatus: Int, code: EtcdStatusCode, message: String) {
        self.httpStatus = httpStatus
        self.code = code
        self.message = message
    }

    public var description: String { "\"\(message)\" (\(code), HTTP \(httpStatus))" }

    /// Whether the answer is about the member, not the request, so another member may serve it:
    /// it has no leader, or timed out waiting for its quorum (the gateway's own call deadline
    /// comes back as UNKNOWN "context deadline exceeded", seen on a member cut from its quorum).
    var isMemberUnavailable: Bool {
        code == .unavailable || code == .deadlineExceeded
            || (code == .unknown && (message.contains("context deadline exceeded") || message.contains("context canceled")))
    }
}

/// Why one endpoint did not answer a request.
public struct EtcdEndpointFailure: Sendable, Hashable, CustomStringConvertible {
    public enum Reason: Sendable, Hashable {
        /// Nothing accepts connections there: the member is down or the URL is wrong.
        case connectionRefused(detail: String)
        /// No answer within the attempt's time: the member is paused, overloaded or cut off
        /// (the request may still be applied later).
        case timedOut(after: Duration)
        /// The connection broke before the answer (the member died mid-request; the request
        /// may have been applied).
        case connectionClosed(detail: String)
        /// The member answered that it cannot serve now (no leader, quorum timeout).
        case memberUnavailable(EtcdGatewayStatus)
        /// The member answered something that is not the gateway's JSON (a proxy, another service).
        case unexpectedResponse(httpStatus: Int, bodyExcerpt: String)
        case other(detail: String)
        /// The request's overall deadline was spent on earlier endpoints.
        case notTried
    }

    public var endpoint: String
    public var reason: Reason

    public init(endpoint: String, reason: Reason) {
        self.endpoint = endpoint
        self.reason = reason
    }

    public var description: String {
        switch reason {
        case .connectionRefused(let detail): "\(endpoint): connection refused, is the member running? (\(detail))"
        case .timedOut(let after): "\(endpoint): no answer within \(after.milliseconds) ms (member paused, overloaded or partitioned?)"
        case .connectionClosed(let detail): "\(endpoint): connection closed before the answer (\(detail))"
        case .memberUnavailable(let status): "\(endpoint): member cannot serve: \(status)"
        case .unexpectedResponse(let status, let excerpt): "\(endpoint): not an etcd gateway answer: HTTP \(status) \(excerpt)"
        case .other(let detail): "\(endpoint): \(detail)"
        case .notTried: "\(endpoint): not tried, the request's deadline was spent on the endpoints before it"
        }
    }
}

/// Every way an `EtcdClient` call fails, each saying what an operator needs to act on it.
public enum EtcdError: Error, Sendable, CustomStringConvertible {
    /// No member could serve the request; one entry per endpoint, in the order tried.
    case unavailable(operation: String, failures: [EtcdEndpointFailure])
    /// The cluster answered and refused the request (a missing lease, a compacted revision,
    /// a full database, an invalid request). Retrying elsewhere would get the same answer.
    case refused(operation: String, endpoint: String, status: EtcdGatewayStatus)
    /// A keep-alive for a lease etcd does not have (expired or revoked): the gateway answers
    /// those with TTL 0, not an error.
    case leaseNotFound(leaseId: Int64, endpoint: String)
    /// The answer could not be decoded: a gateway of another version, or not etcd at all.
    case malformedResponse(operation: String, endpoint: String, detail: String, bodyExcerpt: String)
    /// etcd ended a watch: its start revision was compacted away (`compactRevision` is the
    /// oldest still available), or the watch was cancelled by the server.
    case watchCanceled(endpoint: String, reason: String, compactRevision: Int64)
    /// The client was set up wrongly (no endpoints, a URL that is not http(s)).
    case invalidConfiguration(String)
    /// The calling task was cancelled.
    case cancelled(operation: String)

    public var description: String {
        switch self {
        case .unavailable(let operation, let failures):
            "etcd \(operation) failed on every endpoint:\n" + failures.map { "  \($0)" }.joined(separator: "\n")
        case .refused(let operation, let endpoint, let status):
            "etcd refused \(operation) at \(endpoint): \(status)"
        case .leaseNotFound(let leaseId, let endpoint):
            "etcd at \(endpoint) has no lease \(leaseId) (expired or revoked): grant a new one"
        case .malformedResponse(let operation, let endpoint, let detail, let excerpt):
            "etcd \(operation) at \(endpoint) answered something this client cannot read (\(detail)): \(excerpt)"
        case .watchCanceled(let endpoint, let reason, let compactRevision):
            "etcd at \(endpoint) cancelled the watch: \(reason.isEmpty ? "no reason given" : reason)"
                + (compactRevision > 0 ? " (compacted up to revision \(compactRevision): restart the watch from there after re-reading)" : "")
        case .invalidConfiguration(let what):
            "etcd client misconfigured: \(what)"
        case .cancelled(let operation):
            "etcd \(operation) cancelled"
        }
    }

    /// The gateway's answer when the cluster refused the request.
    public var gatewayStatus: EtcdGatewayStatus? {
        if case .refused(_, _, let status) = self { return status }
        return nil
    }

    /// Whether etcd said the lease does not exist (a put or keep-alive with an expired or revoked lease).
    public var isLeaseNotFound: Bool {
        switch self {
        case .leaseNotFound: true
        case .refused(_, _, let status): status.code == .notFound && status.message.contains("lease not found")
        default: false
        }
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000 + attoseconds / 1_000_000_000_000_000
    }
}
