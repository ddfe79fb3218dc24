import CCurl
import Foundation
import MMCore

/// `HTTPTransport` over libcurl, for mmctl: a small CLI that must start fast and must not
/// pull an event loop in just to ask a few questions.
///
/// Each request gets its own easy handle and runs `curl_easy_perform` on its own thread:
/// the call blocks, and blocking Swift's cooperative pool (two threads on a two-core box)
/// would serialize a status snapshot behind its slowest service. Easy handles are never
/// shared between threads, which is libcurl's one thread-safety rule.
public struct CurlTransport: HTTPTransport {
    /// Responses larger than this are refused rather than buffered without bound.
    public let maxResponseBytes: Int
    /// Connecting to a loopback service takes microseconds; a refused or filtered port
    /// should fail fast even when the request's overall timeout is long (long-polls).
    public let connectTimeoutMs: Int64

    public init(maxResponseBytes: Int = 64 * 1024 * 1024, connectTimeoutMs: Int64 = 1_000) {
        CurlGlobal.ensureInitialized()
        self.maxResponseBytes = maxResponseBytes
        self.connectTimeoutMs = connectTimeoutMs
    }

    public func send(_ request: TransportRequest) async throws(TransportError) -> TransportResponse {
        let maxResponseBytes = self.maxResponseBytes
        let connectTimeoutMs = self.connectTimeoutMs
        let result: Result<TransportResponse, TransportError> = await withCheckedContinuation { continuation in
            let thread = Thread {
                continuation.resume(returning: CurlTransport.perform(request, maxResponseBytes: maxResponseBytes, connectTimeoutMs: connectTimeoutMs))
            }
            thread.stackSize = 512 * 1024
            thread.start()
        }
        return try result.get()
    }

    /// One blocking request on the calling thread.
    public static func perform(_ request: TransportRequest, maxResponseBytes: Int, connectTimeoutMs: Int64) -> Result<TransportResponse, TransportError> {
        CurlGlobal.ensureInitialized()
        func failure(_ reason: String) -> Result<TransportResponse, TransportError> {
            .failure(TransportError(url: request.url, reason: reason))
        }
        guard let handle = curl_easy_init() else { return failure("curl_easy_init failed (out of memory?)") }
        defer { curl_easy_cleanup(handle) }

        var buffer = ccurl_buffer()
        ccurl_buffer_init(&buffer, maxResponseBytes)
        defer { ccurl_buffer_free(&buffer) }

        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        for (name, value) in request.headers {
            headerList = curl_slist_append(headerList, "\(name): \(value)")
        }
        // libcurl otherwise sends "Expect: 100-continue" for larger bodies and waits a
        // second for an answer Hummingbird never sends.
        headerList = curl_slist_append(headerList, "Expect:")

        var setupError: CURLcode = CURLE_OK
        func set(_ code: CURLcode) { if setupError == CURLE_OK && code != CURLE_OK { setupError = code } }

        set(ccurl_setopt_string(handle, CURLOPT_URL, request.url))
        // Required whenever libcurl is used from several threads: no SIGALRM for timeouts.
        set(ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
        set(ccurl_setopt_long(handle, CURLOPT_TIMEOUT_MS, max(1, Int(request.timeoutMs))))
        set(ccurl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, max(1, Int(min(connectTimeoutMs, request.timeoutMs)))))
        // Cluster services are on loopback: an http_proxy in the operator's environment must
        // not reroute (or leak) control traffic.
        set(ccurl_setopt_string(handle, CURLOPT_PROXY, ""))
        set(ccurl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0))
        set(ccurl_setopt_long(handle, CURLOPT_TCP_NODELAY, 1))
        set(ccurl_setopt_pointer(handle, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(headerList)))
        set(ccurl_collect_body(handle, &buffer))

        switch request.method {
        case .GET:
            set(ccurl_setopt_long(handle, CURLOPT_HTTPGET, 1))
        case .POST:
            set(ccurl_setopt_long(handle, CURLOPT_POST, 1))
        case .PUT, .DELETE:
            set(ccurl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method.rawValue))
        }
        let body = request.body ?? (request.method == .POST || request.method == .PUT ? Data() : nil)
        if let body {
            set(ccurl_setopt_off_t(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)))
            // COPYPOSTFIELDS copies the bytes, so the Data's storage need not outlive this call.
            if body.isEmpty {
                set(ccurl_setopt_string(handle, CURLOPT_COPYPOSTFIELDS, ""))
            } else {
                body.withUnsafeBytes { raw in
                    set(ccurl_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: raw.baseAddress!)))
                }
            }
        }
        guard setupError == CURLE_OK else {
            return failure("libcurl rejected an option: \(String(cString: curl_easy_strerror(setupError)))")
        }

        let code = curl_easy_perform(handle)
        if code != CURLE_OK {
            if buffer.overflowed != 0 {
                return failure("response larger than \(maxResponseBytes) bytes")
            }
            return failure(describe(code, timeoutMs: request.timeoutMs))
        }
        var status = 0
        guard ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK else {
            return failure("no HTTP status in the response")
        }
        let data = buffer.length > 0 ? Data(bytes: buffer.data, count: buffer.length) : Data()
        return .success(TransportResponse(status: status, body: data))
    }

    static func describe(_ code: CURLcode, timeoutMs: Int64) -> String {
        switch code {
        case CURLE_COULDNT_CONNECT: "connection refused (is the service running?)"
        case CURLE_OPERATION_TIMEDOUT: "no answer within \(timeoutMs) ms"
        case CURLE_COULDNT_RESOLVE_HOST: "host name not resolvable"
        case CURLE_GOT_NOTHING: "the server closed the connection without answering"
        case CURLE_RECV_ERROR, CURLE_SEND_ERROR: "connection reset: \(String(cString: curl_easy_strerror(code)))"
        default: "libcurl error \(code.rawValue): \(String(cString: curl_easy_strerror(code)))"
        }
    }
}

/// `curl_global_init` must run once before any other libcurl call; a lazily initialized
/// static runs it exactly once (swift_once) whichever thread gets there first.
enum CurlGlobal {
    private static let initialized: Bool = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK
    }()

    static func ensureInitialized() { _ = initialized }

    /// The linked libcurl's version string, for `mmctl version`.
    public static var version: String { String(cString: curl_version()) }
}

extension CurlTransport {
    /// The linked libcurl's version string, for `mmctl version`.
    public static var libcurlVersion: String { CurlGlobal.version }
}
