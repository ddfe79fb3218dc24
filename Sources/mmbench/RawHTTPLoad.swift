#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Histogram
import MMServiceKit
import Synchronization

/// A lean HTTP/1.1 keep-alive load generator, in the spirit of `wrk`: one OS thread and one
/// blocking loopback socket per connection, every request encoded before the clock starts,
/// responses read only as far as the status code and Content-Length. The point is to spend as
/// little of the shared 2 cores as possible on the client side, so the figure says what the
/// server can do. An AsyncHTTPClient load generator (encode, pool, decode every response)
/// costs about as much CPU as the server it measures.
struct RawHTTPLoad {
    struct Outcome {
        var responses = 0
        /// Responses whose status was not 2xx, and connections that failed.
        var errors = 0
        var elapsedSeconds = 0.0
        var latencyMicros = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)

        var perSecond: Double { Double(responses) / max(elapsedSeconds, 1e-9) }
        func percentileMs(_ quantile: Double) -> Double { Double(latencyMicros.valueAtPercentile(quantile * 100)) / 1_000 }
    }

    /// One HTTP request, pre-encoded.
    static func request(_ method: String, _ path: String, token: String, json: String? = nil) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
        if let json {
            head += "Content-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n\r\n\(json)"
        } else {
            head += "Content-Length: 0\r\n\r\n"
        }
        return Array(head.utf8)
    }

    /// Runs every connection's request cycle (round-robin, one request in flight per
    /// connection) against 127.0.0.1:`port` for `seconds`.
    static func run(port: Int, connections: [[[UInt8]]], seconds: Double) -> Outcome {
        let total = Mutex(Outcome())
        let done = DispatchGroup()
        let start = ContinuousClock.now
        let deadline = start + .milliseconds(Int64(seconds * 1_000))
        for cycle in connections {
            done.enter()
            let thread = Thread {
                let part = runConnection(port: port, cycle: cycle, deadline: deadline)
                total.withLock { total in
                    total.responses += part.responses
                    total.errors += part.errors
                    total.latencyMicros.add(part.latencyMicros)
                }
                done.leave()
            }
            thread.start()
        }
        done.wait()
        var outcome = total.withLock { $0 }
        let elapsed = ContinuousClock.now - start
        outcome.elapsedSeconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return outcome
    }

    private static func runConnection(port: Int, cycle: [[UInt8]], deadline: ContinuousClock.Instant) -> Outcome {
        var outcome = Outcome()
        guard !cycle.isEmpty, let socket = connectLoopback(port: port) else {
            outcome.errors += 1
            return outcome
        }
        defer { close(socket) }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var index = 0
        while ContinuousClock.now < deadline {
            let request = cycle[index % cycle.count]
            index += 1
            let sent = ContinuousClock.now
            guard writeAll(socket, request), let status = readResponse(socket, buffer: &buffer) else {
                outcome.errors += 1
                return outcome
            }
            let micros = (ContinuousClock.now - sent).components
            outcome.latencyMicros.record(UInt64(micros.seconds) * 1_000_000 + UInt64(micros.attoseconds / 1_000_000_000_000))
            outcome.responses += 1
            if !(200..<300).contains(status) { outcome.errors += 1 }
        }
        return outcome
    }

    private static func connectLoopback(port: Int) -> Int32? {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return nil }
        var address = LoopbackSocket.address(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(socket)
            return nil
        }
        var one: Int32 = 1
        setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return socket
    }

    private static func writeAll(_ socket: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { send(socket, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if written <= 0 { return false }
            offset += written
        }
        return true
    }

    /// Reads one response (head + Content-Length body) and returns its status code. One request
    /// is in flight per connection, so nothing of the next response can be in the buffer.
    private static func readResponse(_ socket: Int32, buffer: inout [UInt8]) -> Int? {
        var filled = 0
        var headEnd: Int?
        while headEnd == nil {
            guard filled < buffer.count else { return nil }
            let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress! + filled, $0.count - filled, 0) }
            if count <= 0 { return nil }
            filled += count
            headEnd = findHeadEnd(buffer, filled)
        }
        guard let headEnd else { return nil }
        let head = String(decoding: buffer[0..<headEnd], as: UTF8.self)
        let lines = head.split(separator: "\r\n")
        guard let statusLine = lines.first, statusLine.count >= 12, let status = Int(statusLine.dropFirst(9).prefix(3)) else { return nil }
        var contentLength = 0
        for line in lines.dropFirst() where line.lowercased().hasPrefix("content-length:") {
            contentLength = Int(String(line.dropFirst("content-length:".count).filter { $0 != " " })) ?? 0
        }
        var bodyRead = filled - (headEnd + 4)
        while bodyRead < contentLength {
            let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress!, $0.count, 0) }
            if count <= 0 { return nil }
            bodyRead += count
        }
        return status
    }

    private static func findHeadEnd(_ buffer: [UInt8], _ filled: Int) -> Int? {
        guard filled >= 4 else { return nil }
        for index in 0...(filled - 4)
        where buffer[index] == 13 && buffer[index + 1] == 10 && buffer[index + 2] == 13 && buffer[index + 3] == 10 {
            return index
        }
        return nil
    }
}
