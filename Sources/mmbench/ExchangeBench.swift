import ArgumentParser
import Exchange
import Foundation
import Histogram
import Logging
import MMCore
import MMServiceKit
import MMTestSupport
import ServiceLifecycle

/// `mmbench exchange`: the figures of docs/PERFORMANCE.md.
///
/// 1. In-process matching: one thread drives the pure `MatchingEngine` with a pre-generated
///    mix of passive submits, crossing IOC submits (matches) and cancels.
/// 2. HTTP quote replaces: a real exchange service (journal on disk, synchronous=FULL,
///    group commit) on loopback, C concurrent clients each replacing quotes as fast as
///    answers come back; latency per request into an HDR histogram.
/// 3. With `--tls`: the same quote replaces from a libcurl client, over plain HTTP and over
///    HTTPS against one exchange core served on two listeners (TransportComparison.swift),
///    and the cost of a new connection on each.
struct ExchangeBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "exchange", abstract: "Benchmark: exchange matching ops/s and HTTP quote replaces/s.")

    @Option(help: "Operations for the matching benchmark.")
    var ops: Int = 5_000_000

    @Option(help: "Seconds of HTTP quote replaces.")
    var seconds: Int = 10

    @Option(help: "Concurrent HTTP clients.")
    var clients: Int = 32

    @Flag(help: "Skip the HTTP benchmark.")
    var matchingOnly = false

    @OptionGroup var tls: TLSOptions

    func run() async throws {
        LoggingBootstrap.bootstrap(label: "mmbench")

        print("# mmbench exchange — \(ProcessInfo.processInfo.activeProcessorCount) CPUs")
        matching()
        if !matchingOnly { try await httpQuoteReplaces() }
        if !matchingOnly && tls.enabled { try await quoteReplacesOverTLS() }
    }

    enum Op { case passive(Side, Ticks, Lots), cross(Side, Ticks, Lots), cancel }

    func matching() {
        var random = SplitMix64(seed: 42)
        let mid: Ticks = 10_000
        var program: [Op] = []
        program.reserveCapacity(ops)
        for _ in 0..<ops {
            let side: Side = random.below(2) == 0 ? .buy : .sell
            switch random.below(4) {
            case 0, 1:
                let offset = 1 + Ticks(random.below(20))
                program.append(.passive(side, side == .buy ? mid - offset : mid + offset, 1 + Lots(random.below(10))))
            case 2:
                program.append(.cross(side, side == .buy ? mid + 25 : mid - 25, 1 + Lots(random.below(10))))
            default:
                program.append(.cancel)
            }
        }
        var engine = MatchingEngine(symbolCount: 1)
        var fills: [EngineFill] = []
        fills.reserveCapacity(64)
        var live: [Int64] = []
        live.reserveCapacity(ops)
        var cancelCursor = UInt64(7)
        var fillCount = 0
        var cancels = 0
        let start = ContinuousClock.now
        for (index, op) in program.enumerated() {
            let id = Int64(index + 1)
            switch op {
            case .passive(let side, let price, let qty):
                _ = engine.submit(symbol: 0, id: id, side: side, price: price, qty: qty, timeInForce: .gtc, owner: 0, token: 1, fills: &fills)
                live.append(id)
            case .cross(let side, let price, let qty):
                _ = engine.submit(symbol: 0, id: id, side: side, price: price, qty: qty, timeInForce: .ioc, owner: -1, token: 0, fills: &fills)
            case .cancel:
                guard !live.isEmpty else { continue }
                cancelCursor = cancelCursor &* 6364136223846793005 &+ 1442695040888963407
                let slot = Int((cancelCursor >> 33) % UInt64(live.count))
                let target = live[slot]
                live[slot] = live[live.count - 1]
                live.removeLast()
                if engine.cancel(symbol: 0, id: target) != nil { cancels += 1 }
            }
            fillCount += fills.count
            fills.removeAll(keepingCapacity: true)
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print("matching: \(ops) ops (submit/match/cancel ≈ 50/25/25%) in \(String(format: "%.3f", seconds)) s = \(Int(Double(ops) / seconds)) ops/s; \(fillCount) fills, \(cancels) effective cancels, \(engine.book(0).orders.count) resting at end")
    }

    func httpQuoteReplaces() async throws {
        let directory = DataDirectory(NSTemporaryDirectory() + "mmbench-exchange-\(UUID().uuidString.prefix(8))")
        try directory.ensureExists()
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let tokens = try RoleTokens.generate(in: directory)
        var port = 0
        for candidate in 29_000..<29_500 where LoopbackSocket.isPortFree(port: candidate) { port = candidate; break }
        let config = try await ClusterConfig.load(path: nil, environment: [:], overrides: ["flow.interval_ms": "1000000"])
        let environment = ServiceEnvironment(process: .exchange, role: .exchange, config: config, dataDirectory: directory, tokens: tokens, portOverride: port)
        let server = Task { try await ExchangeService.run(environment, exitWithParent: false) }
        defer { server.cancel() }
        let base = "http://127.0.0.1:\(port)"
        for _ in 0..<200 {
            if let response = try? await AHCTransport.shared.send(TransportRequest(method: .GET, url: base + "/readyz", timeoutMs: 500)), response.status == 200 { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        let signer = try GrantSigner(dataDirectory: directory)
        let client = ExchangeClient(ServiceEndpoint(baseURL: base, token: tokens.nodeToken(for: "n1")!, transport: AHCTransport.shared))
        let symbols = config.symbolNames
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let grants = symbols.map { signer.sign(symbol: $0, node: "n1", fencingToken: 1, grantedAtMs: now, expiresAtMs: now + 3_600_000) }
        // Requests encoded up front and sent by the lean raw-socket generator, so the client
        // side costs little of the shared cores; each connection cycles through its symbol's
        // prices so every request really changes the book.
        let cycles = try quoteCycles(config: config, grants: grants, token: tokens.nodeToken(for: "n1")!).map { $0.map(\.raw) }
        let journalBefore = try await client.endpoint.call(.GET, ExchangeRoutes.stats.path, as: ExchangeStats.self).journalSeq
        let outcome = RawHTTPLoad.run(port: port, connections: cycles, seconds: Double(seconds))
        let stats = try await client.endpoint.call(.GET, ExchangeRoutes.stats.path, as: ExchangeStats.self)
        print("http quote replaces: \(outcome.responses) in \(String(format: "%.2f", outcome.elapsedSeconds)) s = \(Int(outcome.perSecond))/s with \(clients) connections; errors \(outcome.errors)")
        print(String(format: "latency ms: p50 %.2f p90 %.2f p99 %.2f", outcome.percentileMs(0.5), outcome.percentileMs(0.9), outcome.percentileMs(0.99)))
        print("journal records written during the load: \(stats.journalSeq - journalBefore) (every accepted replace journaled, synchronous=FULL, group commit)")
        // Stopped before its directory is removed: its final snapshot, written on the way
        // out, would otherwise create the directory again and leave it in /tmp.
        server.cancel()
        _ = try? await server.value
    }

    /// Each connection's cycle: five replaces of its symbol's quote at five prices.
    func quoteCycles(config: ClusterConfig, grants: [AuthorityGrant], token: String) throws -> [[BenchRequest]] {
        let symbols = config.symbolNames
        return try (0..<clients).map { worker in
            let index = worker % symbols.count
            return try (0..<5).map { step in
                let bid = config.symbols[index].basePrice - 1 - Int64(step)
                let request = QuoteRequest(node: "n1", grant: grants[index], bidPrice: bid, bidQty: 5, askPrice: bid + 4, askQty: 5)
                return BenchRequest(
                    method: "PUT", path: ExchangeRoutes.replaceQuote.path(["symbol": symbols[index]]), token: token,
                    json: String(decoding: try MMJSON.encode(request), as: UTF8.self))
            }
        }
    }

    /// The quote-replace load once more, from libcurl, over plain HTTP and over HTTPS: a fresh
    /// exchange (own journal, same settings as above) whose one core is served on two
    /// listeners, one plain and one TLS (certificate of a throwaway CA, made here with the
    /// openssl command and removed afterwards); the client verifies the server against that CA.
    func quoteReplacesOverTLS() async throws {
        let ca = try ThrowawayCA.make()
        defer { ca.remove() }
        let directory = DataDirectory(NSTemporaryDirectory() + "mmbench-exchange-tls-\(UUID().uuidString.prefix(8))")
        try directory.ensureExists()
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let tokens = try RoleTokens.generate(in: directory)
        let config = try await ClusterConfig.load(path: nil, environment: [:], overrides: ["flow.interval_ms": "1000000"])
        var tlsConfig = config
        tlsConfig.tls = tlsSettings(ca)
        var logger = Logger(label: "mmbench.exchange")
        logger.logLevel = .warning
        let plainEnvironment = ServiceEnvironment(
            process: .exchange, role: .exchange, config: config, dataDirectory: directory, tokens: tokens, transport: AHCTransport.shared, logger: logger, portOverride: 0)
        let tlsEnvironment = ServiceEnvironment(
            process: .exchange, role: .exchange, config: tlsConfig, dataDirectory: directory, tokens: tokens, transport: AHCTransport.shared, logger: logger, portOverride: 0)
        let journal = try GRDBExchangeJournal(path: directory.databasePath("exchange"))
        let core = try ExchangeService.makeCore(plainEnvironment, journal: journal, snapshots: ExchangeService.snapshotStore(plainEnvironment))
        try await core.verifyFillTable()
        let plainPort = BoundPort()
        let tlsPort = BoundPort()
        let plainApp = buildApplication(
            plainEnvironment, router: ExchangeService.buildExchangeRouter(plainEnvironment, core: core), services: core.services(),
            onServerRunning: { plainPort.set($0) })
        let tlsApp = buildApplication(
            tlsEnvironment, router: ExchangeService.buildExchangeRouter(tlsEnvironment, core: core), onServerRunning: { tlsPort.set($0) })
        let group = ServiceGroup(configuration: .init(services: [plainApp, tlsApp], logger: logger))
        let server = Task { try await group.run() }
        defer { server.cancel() }
        let plainURL = "http://127.0.0.1:\(try await plainPort.wait("the plain exchange listener"))"
        let tlsURL = "https://127.0.0.1:\(try await tlsPort.wait("the TLS exchange listener"))"

        let signer = try GrantSigner(dataDirectory: directory)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let grants = config.symbolNames.map { signer.sign(symbol: $0, node: "n1", fencingToken: 1, grantedAtMs: now, expiresAtMs: now + 3_600_000) }
        let token = tokens.nodeToken(for: "n1")!
        let cycles = try quoteCycles(config: config, grants: grants, token: token)
        let journalBefore = await core.stats().journalSeq
        print("http quote replaces over libcurl, plain HTTP vs HTTPS (libcurl on OpenSSL \(CurlHTTPLoad.opensslVersion()) to NIOSSL/BoringSSL, verified against a throwaway CA), \(clients) keep-alive connections, \(tls.tlsRounds) round(s) × \(seconds) s per transport, alternating (ABBA); one exchange core behind both listeners:")
        let comparison = TransportComparison.measure(
            plainURL: plainURL, tlsURL: tlsURL, caPath: ca.caPath, connections: cycles, seconds: Double(seconds), rounds: tls.tlsRounds)
        comparison.report(indent: "  ", unit: "replaces")
        let journalAfter = await core.stats().journalSeq
        print("  journal records written during both loads: \(journalAfter - journalBefore) (responses: \(comparison.plain.responses + comparison.tls.responses))")
        TransportComparison.reportNewConnections(
            plainURL: plainURL, tlsURL: tlsURL, caPath: ca.caPath, path: CommonRoutes.healthz, token: token, count: tls.handshakes, indent: "  ")
        await group.triggerGracefulShutdown()
        _ = try? await server.value
    }
}

