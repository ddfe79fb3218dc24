import ArgumentParser
import Foundation
import MMCore
import MMTestSupport
import Synchronization

/// `--tls` of `mmbench exchange` and `mmbench coordinator`: the HTTP part measured once more,
/// over plain HTTP and over HTTPS, with the same libcurl client and settings against the same
/// in-process service (one engine, two listeners: one plain, one TLS with a throwaway CA's
/// certificate), in alternating rounds so that the VM's drift falls on both alike.
struct TLSOptions: ParsableArguments {
    @Flag(name: .customLong("tls"), help: "Also measure the HTTP load over plain HTTP and over HTTPS with one libcurl client (same service, same settings), and the cost of a new connection.")
    var enabled = false

    @Option(help: "With --tls: rounds per transport, alternating plain and TLS (ABBA order).")
    var tlsRounds = 2

    @Option(help: "With --tls: sequential requests on a new connection each, per transport (0: skip).")
    var handshakes = 300

    func validate() throws {
        guard tlsRounds >= 1 else { throw ValidationError("--tls-rounds must be at least 1") }
        guard handshakes >= 0 else { throw ValidationError("--handshakes must not be negative") }
    }
}

/// The cluster's `tls` settings for a throwaway CA (certificate for 127.0.0.1, host "local").
func tlsSettings(_ ca: ThrowawayCA) -> ClusterConfig.TLSSettings {
    ClusterConfig.TLSSettings(cert: ca.certTemplate, key: ca.keyTemplate, ca: ca.caPath)
}

/// Plain and TLS outcomes of one load, over the rounds.
struct TransportComparison {
    var plain = CurlHTTPLoad.Outcome()
    var tls = CurlHTTPLoad.Outcome()
    var rounds: [(plain: Double, tls: Double)] = []

    /// Runs `connections` against both listeners, `rounds` times each: plain first in even
    /// rounds, TLS first in odd ones (ABBA), so a warm-up or a drift of the VM does not favour
    /// one transport.
    static func measure(plainURL: String, tlsURL: String, caPath: String, connections: [[BenchRequest]], seconds: Double, rounds: Int) -> TransportComparison {
        var comparison = TransportComparison()
        for round in 0..<rounds {
            func plainRun() -> CurlHTTPLoad.Outcome { CurlHTTPLoad.run(baseURL: plainURL, caPath: nil, connections: connections, seconds: seconds) }
            func tlsRun() -> CurlHTTPLoad.Outcome { CurlHTTPLoad.run(baseURL: tlsURL, caPath: caPath, connections: connections, seconds: seconds) }
            let (plain, tls) = round % 2 == 0 ? { let p = plainRun(); return (p, tlsRun()) }() : { let t = tlsRun(); return (plainRun(), t) }()
            comparison.plain.merge(plain)
            comparison.tls.merge(tls)
            comparison.rounds.append((plain.perSecond, tls.perSecond))
        }
        return comparison
    }

    /// Two lines (plain, TLS) and the ratio. `unit` names what one response is.
    func report(indent: String, unit: String, extra: (CurlHTTPLoad.Outcome) -> String = { _ in "" }) {
        for (name, outcome) in [("plain HTTP", plain), ("HTTPS     ", tls)] {
            print(String(
                format: "%@%@: %.0f %@/s, latency p50 %.2f ms p90 %.2f ms p99 %.2f ms, CPU %.0f µs per response (client + server), %d errors, %d connections opened%@",
                indent, name, outcome.perSecond, unit, outcome.percentileMs(0.5), outcome.percentileMs(0.9), outcome.percentileMs(0.99),
                outcome.cpuMicrosPerResponse, outcome.errors, outcome.connectionsOpened, extra(outcome)))
            if let error = outcome.firstError { print("\(indent)  first error: \(error)") }
        }
        let perRound = rounds.map { String(format: "%.0f/%.0f", $0.plain, $0.tls) }.joined(separator: ", ")
        print(String(
            format: "%@TLS ÷ plain: throughput %.3f (%+.1f %%), p50 %.2f×, p99 %.2f×, CPU per response %.2f×  (per round plain/TLS: %@)",
            indent, tls.perSecond / max(plain.perSecond, 1e-9), (tls.perSecond / max(plain.perSecond, 1e-9) - 1) * 100,
            tls.percentileMs(0.5) / max(plain.percentileMs(0.5), 1e-9), tls.percentileMs(0.99) / max(plain.percentileMs(0.99), 1e-9),
            tls.cpuMicrosPerResponse / max(plain.cpuMicrosPerResponse, 1e-9), perRound))
    }

    /// The cost of a connection that is not kept alive: sequential GETs of `path`, each on a new
    /// connection, plain, HTTPS with a full handshake each time, and HTTPS resuming the session.
    static func reportNewConnections(plainURL: String, tlsURL: String, caPath: String, path: String, token: String, count: Int, indent: String) {
        guard count > 0 else { return }
        print("\(indent)new connection per request (sequential GET \(path), \(count) each, connect + request + close):")
        let cases: [(String, CurlHTTPLoad.HandshakeOutcome)] = [
            ("plain HTTP          ", CurlHTTPLoad.newConnections(url: plainURL + path, caPath: nil, token: token, count: count, resumeSessions: false)),
            ("HTTPS, full handshake", CurlHTTPLoad.newConnections(url: tlsURL + path, caPath: caPath, token: token, count: count, resumeSessions: false)),
            ("HTTPS, session resumed", CurlHTTPLoad.newConnections(url: tlsURL + path, caPath: caPath, token: token, count: count, resumeSessions: true)),
        ]
        typealias H = CurlHTTPLoad.HandshakeOutcome
        for (name, outcome) in cases {
            var line = String(
                format: "%@  %@: request p50 %.3f ms p99 %.3f ms, CPU %.0f µs per connection (client + server), %d errors",
                indent, name, H.ms(outcome.requestMicros, 0.5), H.ms(outcome.requestMicros, 0.99), outcome.cpuMicrosPerConnection, outcome.errors)
            if outcome.handshakeMicros.totalCount > 0 {
                line += String(format: "; TLS handshake p50 %.3f ms p99 %.3f ms", H.ms(outcome.handshakeMicros, 0.5), H.ms(outcome.handshakeMicros, 0.99))
            }
            print(line)
            if let error = outcome.firstError { print("\(indent)    first error: \(error)") }
        }
    }
}

/// The port a server bound, handed from its startup callback to the benchmark.
final class BoundPort: Sendable {
    private let port = Mutex<Int?>(nil)
    func set(_ value: Int) { port.withLock { $0 = value } }
    func wait(_ what: String) async throws -> Int {
        for _ in 0..<500 {
            if let value = port.withLock({ $0 }) { return value }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw ValidationError("\(what) did not start listening within 5 s")
    }
}
