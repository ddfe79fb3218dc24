import CCurl
import Foundation
import MMCore
import Synchronization

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
    /// The only CA https peers are verified against (`tls.ca`); nil: libcurl's default roots.
    public let caPath: String?

    /// `caPath` defaults to the process's cluster CA (`useClusterTrust`), read now.
    public init(maxResponseBytes: Int = 64 * 1024 * 1024, connectTimeoutMs: Int64 = 1_000, caPath: String? = CurlTransport.clusterCAPath) {
        CurlGlobal.ensureInitialized()
        self.maxResponseBytes = maxResponseBytes
        self.connectTimeoutMs = connectTimeoutMs
        self.caPath = caPath
    }

    /// Makes every `CurlTransport()` made from now on trust only `config.tls.ca` (or the
    /// default roots again without `tls`). Process-wide on purpose: mmctl talks to one cluster
    /// per run, resolves its config once, and builds transports in a dozen places (status,
    /// events, start/stop, process commands); setting the trust where the config is resolved
    /// keeps every one of them right without threading the config through each. A `Mutex`
    /// because tests (and mmctl's concurrent snapshot) may make transports on any thread.
    public static func useClusterTrust(_ config: ClusterConfig) {
        clusterCA.withLock { $0 = config.tls.isEnabled ? config.tls.ca : nil }
    }

    /// The CA set by `useClusterTrust`, nil when none.
    public static var clusterCAPath: String? { clusterCA.withLock { $0 } }

    private static let clusterCA = Mutex<String?>(nil)

    public func send(_ request: TransportRequest) async throws(TransportError) -> TransportResponse {
        let maxResponseBytes = self.maxResponseBytes
        let connectTimeoutMs = self.connectTimeoutMs
        let caPath = self.caPath
        let result: Result<TransportResponse, TransportError> = await withCheckedContinuation { continuation in
            let thread = Thread {
                continuation.resume(returning: CurlTransport.perform(request, maxResponseBytes: maxResponseBytes, connectTimeoutMs: connectTimeoutMs, caPath: caPath))
            }
            thread.stackSize = 512 * 1024
            thread.start()
        }
        return try result.get()
    }

    /// One blocking request on the calling thread.
    public static func perform(_ request: TransportRequest, maxResponseBytes: Int, connectTimeoutMs: Int64, caPath: String? = nil) -> Result<TransportResponse, TransportError> {
        CurlGlobal.ensureInitialized()
        func failure(_ reason: String) -> Result<TransportResponse, TransportError> {
            .failure(TransportError(url: request.url, reason: reason))
        }
        // Allocated, not an array: libcurl keeps the pointer until the handle is cleaned up
        // (so it is freed after the handle: defers run in reverse).
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        defer { errorBuffer.deallocate() }
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
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
        // The connect timeout covers the TLS handshake too (libcurl counts it as connecting),
        // so a peer that never finishes one fails like a peer that never accepts.
        set(ccurl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, max(1, Int(min(connectTimeoutMs, request.timeoutMs)))))
        if let caPath { set(ccurl_trust_only_ca(handle, caPath)) }
        // libcurl's own sentence for a failure ("SSL certificate problem: certificate has expired").
        set(ccurl_set_error_buffer(handle, errorBuffer))
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
            let detail = String(cString: errorBuffer)
            if let tls = describeTLS(code, detail: detail, url: request.url, caPath: caPath) { return failure(tls) }
            return failure(describe(code, timeoutMs: request.timeoutMs))
        }
        var status = 0
        guard ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK else {
            return failure("no HTTP status in the response")
        }
        let data = buffer.length > 0 ? Data(bytes: buffer.data, count: buffer.length) : Data()
        return .success(TransportResponse(status: status, body: data))
    }

    /// A sentence naming host:port and TLS when `code` is a TLS failure (or plain HTTP sent to
    /// a TLS server), else nil.
    static func describeTLS(_ code: CURLcode, detail: String, url: String, caPath: String?) -> String? {
        let target = hostPort(url)
        let trust = caPath.map { "the CA in tls.ca (\($0))" } ?? "libcurl's default CAs (no tls.ca configured for this client)"
        let said = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        switch code {
        case CURLE_PEER_FAILED_VERIFICATION:
            return "TLS verification failed for \(target): \(said) (verified against \(trust))"
        case CURLE_SSL_CONNECT_ERROR:
            if said.localizedCaseInsensitiveContains("wrong version number") || said.localizedCaseInsensitiveContains("packet length too long") {
                return "TLS handshake with \(target) failed: it does not answer in TLS (a plain-HTTP server? tls.* must be set on every process or on none): \(said)"
            }
            return "TLS handshake with \(target) failed: \(said)"
        case CURLE_SSL_CACERT_BADFILE:
            return "TLS setup for \(target) failed: cannot use tls.ca \(caPath ?? ""): \(said)"
        case CURLE_GOT_NOTHING:
            // What a TLS server does with a plain-HTTP request: close without a word.
            guard !url.lowercased().hasPrefix("https:") else { return nil }
            return "\(target) closed the connection without answering: is it serving HTTPS? (tls.* set there but not here; or it is going down)"
        case CURLE_WEIRD_SERVER_REPLY:
            guard !url.lowercased().hasPrefix("https:") else { return nil }
            return "\(target) did not answer in HTTP: is it serving HTTPS? (tls.* set there but not here): \(said)"
        default:
            return nil
        }
    }

    /// `host:port` of a URL, as the operator would type it.
    static func hostPort(_ url: String) -> String {
        guard let components = URLComponents(string: url), let host = components.host else { return url }
        let shown = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        let port = components.port ?? (components.scheme == "https" ? 443 : 80)
        return "\(shown):\(port)"
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
