#if canImport(Glibc)
import Glibc
#endif
import CCurl
import Foundation
import Histogram
import Synchronization

/// One benchmark request before it is encoded: the raw-socket generator gets its bytes
/// (`raw`), the libcurl one its method, path, headers and body.
struct BenchRequest: Sendable {
    var method: String
    var path: String
    var token: String
    var json: String?

    /// Exactly what `RawHTTPLoad.request` encodes.
    var raw: [UInt8] { RawHTTPLoad.request(method, path, token: token, json: json) }
}

/// A keep-alive HTTP/1.1 load generator over libcurl that speaks plain HTTP and HTTPS with the
/// same code, so that a plain-vs-TLS comparison differs in nothing but TLS: one OS thread and
/// one easy handle per connection (libcurl keeps the connection open and reuses it), every
/// URL, header list and body prepared before the clock starts, response bodies discarded.
/// HTTPS verifies the server against the given CA only (chain and IP subjectAltName, as
/// `CurlTransport` does), libcurl's TLS is OpenSSL, the servers' is NIOSSL (BoringSSL).
///
/// Why not `RawHTTPLoad` over TLS: it would need BoringSSL or OpenSSL bindings that no target
/// here offers (swift-nio-ssl keeps `CNIOBoringSSL` internal), while libcurl is already linked
/// for mmctl. The price is client CPU: libcurl does more per request than the raw generator
/// (option setting, header parsing), so its plain-HTTP figure is lower than `RawHTTPLoad`'s on
/// the same two shared cores; that is why both transports are measured with it and the
/// raw-socket figures stay beside them unchanged.
struct CurlHTTPLoad {
    struct Outcome {
        var responses = 0
        /// Responses whose status was not 2xx, and transfers that failed.
        var errors = 0
        /// New connections libcurl opened (CURLINFO_NUM_CONNECTS): one per connection when
        /// keep-alive held throughout.
        var connectionsOpened = 0
        var elapsedSeconds = 0.0
        /// User + system CPU of the whole process during the run: load generator *and* the
        /// in-process server.
        var cpuSeconds = 0.0
        var firstError: String?
        var latencyMicros = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)

        var perSecond: Double { Double(responses) / max(elapsedSeconds, 1e-9) }
        func percentileMs(_ quantile: Double) -> Double { Double(latencyMicros.valueAtPercentile(quantile * 100)) / 1_000 }
        /// CPU microseconds (client + server) per response.
        var cpuMicrosPerResponse: Double { cpuSeconds * 1e6 / Double(max(responses, 1)) }

        /// Adds another run's counts (for rounds of the same transport).
        mutating func merge(_ other: Outcome) {
            responses += other.responses
            errors += other.errors
            connectionsOpened += other.connectionsOpened
            elapsedSeconds += other.elapsedSeconds
            cpuSeconds += other.cpuSeconds
            firstError = firstError ?? other.firstError
            latencyMicros.add(other.latencyMicros)
        }
    }

    /// Runs every connection's request cycle (round-robin, one request in flight per
    /// connection) against `baseURL` (`http://…` or `https://…`) for `seconds`. `caPath`: the
    /// only CA an https server is verified against.
    static func run(baseURL: String, caPath: String?, connections: [[BenchRequest]], seconds: Double) -> Outcome {
        initializeLibcurl()
        let total = Mutex(Outcome())
        let done = DispatchGroup()
        let cpuBefore = processCPUSeconds()
        let start = ContinuousClock.now
        let deadline = start + .milliseconds(Int64(seconds * 1_000))
        for cycle in connections {
            done.enter()
            let thread = Thread {
                let part = runConnection(baseURL: baseURL, caPath: caPath, cycle: cycle, deadline: deadline)
                total.withLock { total in
                    total.merge(part)
                }
                done.leave()
            }
            thread.start()
        }
        done.wait()
        var outcome = total.withLock { $0 }
        outcome.elapsedSeconds = secondsOf(ContinuousClock.now - start)
        outcome.cpuSeconds = processCPUSeconds() - cpuBefore
        return outcome
    }

    /// One prepared request: C strings and header list that libcurl reads during the transfer.
    private struct Prepared {
        let url: UnsafeMutablePointer<CChar>
        let method: UnsafeMutablePointer<CChar>
        let body: UnsafeMutablePointer<CChar>
        let bodyCount: Int
        let headers: UnsafeMutablePointer<curl_slist>?

        init(baseURL: String, _ request: BenchRequest) {
            url = strdup(baseURL + request.path)
            method = strdup(request.method)
            let bytes = Array((request.json ?? "").utf8)
            bodyCount = bytes.count
            let body = UnsafeMutablePointer<CChar>.allocate(capacity: max(bytes.count, 1))
            bytes.withUnsafeBytes { raw in
                if let base = raw.baseAddress { UnsafeMutableRawPointer(body).copyMemory(from: base, byteCount: bytes.count) }
            }
            self.body = body
            var list: UnsafeMutablePointer<curl_slist>?
            list = curl_slist_append(list, "Authorization: Bearer \(request.token)")
            if request.json != nil { list = curl_slist_append(list, "Content-Type: application/json") }
            // No "Expect: 100-continue" wait (Hummingbird never answers one).
            list = curl_slist_append(list, "Expect:")
            headers = list
        }

        func free() {
            Glibc.free(url)
            Glibc.free(method)
            body.deallocate()
            curl_slist_free_all(headers)
        }
    }

    /// The options every handle of both generators gets: no signals (threads), no proxy,
    /// TCP_NODELAY, HTTP/1.1 (no ALPN h2 offer, so plain and TLS speak the same protocol),
    /// bodies discarded, and trust in `caPath` only.
    private static func configure(_ handle: UnsafeMutableRawPointer, caPath: String?, errorBuffer: UnsafeMutablePointer<CChar>) -> CURLcode {
        var result: CURLcode = CURLE_OK
        func set(_ code: CURLcode) { if result == CURLE_OK && code != CURLE_OK { result = code } }
        set(ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
        set(ccurl_setopt_string(handle, CURLOPT_PROXY, ""))
        set(ccurl_setopt_long(handle, CURLOPT_TCP_NODELAY, 1))
        set(ccurl_setopt_long(handle, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_1_1)))
        set(ccurl_setopt_long(handle, CURLOPT_TIMEOUT_MS, 10_000))
        set(ccurl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, 2_000))
        set(ccurl_setopt_write_function(handle) { _, size, count, _ in size * count })
        set(ccurl_set_error_buffer(handle, errorBuffer))
        if let caPath { set(ccurl_trust_only_ca(handle, caPath)) }
        return result
    }

    private static func runConnection(baseURL: String, caPath: String?, cycle: [BenchRequest], deadline: ContinuousClock.Instant) -> Outcome {
        var outcome = Outcome()
        guard !cycle.isEmpty, let handle = curl_easy_init() else {
            outcome.errors += 1
            return outcome
        }
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let prepared = cycle.map { Prepared(baseURL: baseURL, $0) }
        defer {
            curl_easy_cleanup(handle)  // closes the connection; then the buffers it pointed at
            prepared.forEach { $0.free() }
            errorBuffer.deallocate()
        }
        var setup = configure(handle, caPath: caPath, errorBuffer: errorBuffer)
        if setup == CURLE_OK { setup = ccurl_setopt_long(handle, CURLOPT_POST, 1) }
        guard setup == CURLE_OK else {
            outcome.errors += 1
            outcome.firstError = "libcurl rejected an option: \(String(cString: curl_easy_strerror(setup)))"
            return outcome
        }
        var index = 0
        while ContinuousClock.now < deadline {
            let request = prepared[index % prepared.count]
            index += 1
            _ = ccurl_setopt_pointer(handle, CURLOPT_URL, request.url)
            _ = ccurl_setopt_pointer(handle, CURLOPT_CUSTOMREQUEST, request.method)
            _ = ccurl_setopt_long(handle, CURLOPT_POSTFIELDSIZE, request.bodyCount)
            _ = ccurl_setopt_pointer(handle, CURLOPT_POSTFIELDS, request.body)
            _ = ccurl_setopt_pointer(handle, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(request.headers))
            let sent = ContinuousClock.now
            let code = curl_easy_perform(handle)
            let elapsed = ContinuousClock.now - sent
            var connects = 0
            _ = ccurl_getinfo_long(handle, CURLINFO_NUM_CONNECTS, &connects)
            outcome.connectionsOpened += connects
            guard code == CURLE_OK else {
                // As RawHTTPLoad: a failed transfer ends this connection's run.
                outcome.errors += 1
                let detail = String(cString: errorBuffer)
                outcome.firstError = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
                return outcome
            }
            var status = 0
            _ = ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
            outcome.latencyMicros.record(micros(elapsed))
            outcome.responses += 1
            if !(200..<300).contains(status) {
                outcome.errors += 1
                if outcome.firstError == nil { outcome.firstError = "HTTP \(status) from \(String(cString: request.method)) \(String(cString: request.url))" }
            }
        }
        return outcome
    }

    struct HandshakeOutcome {
        var connections = 0
        var errors = 0
        var firstError: String?
        /// Whole request on a new connection: connect (+ handshake) + request + response.
        var requestMicros = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        /// TLS handshake alone (CURLINFO_APPCONNECT_TIME_T − CURLINFO_CONNECT_TIME_T); empty over plain HTTP.
        var handshakeMicros = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        var cpuSeconds = 0.0

        static func ms(_ histogram: Histogram<UInt64>, _ quantile: Double) -> Double { Double(histogram.valueAtPercentile(quantile * 100)) / 1_000 }
        var cpuMicrosPerConnection: Double { cpuSeconds * 1e6 / Double(max(connections, 1)) }
    }

    /// `count` sequential GETs of `url`, each on a new connection (CURLOPT_FRESH_CONNECT +
    /// FORBID_REUSE): the price of a connection that is not kept alive. Without
    /// `resumeSessions` libcurl's TLS session cache is off, so every TLS handshake is a full
    /// one (certificate verification, ECDHE and the server's signature); with it, libcurl
    /// offers the session it kept from the previous connection.
    static func newConnections(url: String, caPath: String?, token: String, count: Int, resumeSessions: Bool) -> HandshakeOutcome {
        initializeLibcurl()
        var outcome = HandshakeOutcome()
        guard let handle = curl_easy_init() else {
            outcome.errors = count
            return outcome
        }
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let headers: UnsafeMutablePointer<curl_slist>? = curl_slist_append(nil, "Authorization: Bearer \(token)")
        defer {
            curl_easy_cleanup(handle)
            curl_slist_free_all(headers)
            errorBuffer.deallocate()
        }
        var setup = configure(handle, caPath: caPath, errorBuffer: errorBuffer)
        for (option, value) in [(CURLOPT_FRESH_CONNECT, 1), (CURLOPT_FORBID_REUSE, 1), (CURLOPT_SSL_SESSIONID_CACHE, resumeSessions ? 1 : 0), (CURLOPT_HTTPGET, 1)]
        where setup == CURLE_OK {
            setup = ccurl_setopt_long(handle, option, value)
        }
        if setup == CURLE_OK { setup = ccurl_setopt_string(handle, CURLOPT_URL, url) }
        if setup == CURLE_OK { setup = ccurl_setopt_pointer(handle, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(headers)) }
        guard setup == CURLE_OK else {
            outcome.errors = count
            outcome.firstError = "libcurl rejected an option: \(String(cString: curl_easy_strerror(setup)))"
            return outcome
        }
        let cpuBefore = processCPUSeconds()
        for _ in 0..<count {
            let start = ContinuousClock.now
            let code = curl_easy_perform(handle)
            let elapsed = ContinuousClock.now - start
            var status = 0
            _ = ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
            guard code == CURLE_OK, (200..<300).contains(status) else {
                outcome.errors += 1
                let detail = String(cString: errorBuffer)
                outcome.firstError = outcome.firstError ?? (code != CURLE_OK ? (detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail) : "HTTP \(status)")
                continue
            }
            outcome.connections += 1
            outcome.requestMicros.record(micros(elapsed))
            var connected: curl_off_t = 0
            var appConnected: curl_off_t = 0
            _ = ccurl_getinfo_off_t(handle, CURLINFO_CONNECT_TIME_T, &connected)
            _ = ccurl_getinfo_off_t(handle, CURLINFO_APPCONNECT_TIME_T, &appConnected)
            if appConnected > 0 { outcome.handshakeMicros.record(UInt64(max(0, appConnected - connected))) }
        }
        outcome.cpuSeconds = processCPUSeconds() - cpuBefore
        return outcome
    }

    /// The OpenSSL version libcurl reports (its TLS library here).
    static func opensslVersion() -> String {
        String(cString: curl_version()).split(separator: " ").first { $0.hasPrefix("OpenSSL/") }.map { String($0.dropFirst("OpenSSL/".count)) } ?? "?"
    }

    /// `curl_global_init` once per process, before any thread makes a handle.
    private static let libcurlInitialized: Bool = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK
    private static func initializeLibcurl() { _ = libcurlInitialized }

    private static func micros(_ duration: Duration) -> UInt64 {
        let parts = duration.components
        return UInt64(max(0, parts.seconds)) * 1_000_000 + UInt64(max(0, parts.attoseconds) / 1_000_000_000_000)
    }

    private static func secondsOf(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// User + system CPU seconds of this process so far.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}
