import ArgumentParser
import AsyncHTTPClient
import AsyncPrimitives
import Coordinator
import EtcdKit
import Foundation
import Logging
import MMCore
import MMServiceKit
import MMTestSupport
import ServiceLifecycle

/// `mmbench coordinator`: assignment recompute cost and heartbeat + renew throughput over
/// HTTP on loopback (see docs/PERFORMANCE.md).
struct CoordinatorBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator", abstract: "Benchmark: assignment recompute and heartbeat + renew throughput over HTTP.")

    @Option(help: "Symbols for the recompute benchmark.") var symbols = 1_000
    @Option(help: "Nodes for the recompute benchmark.") var nodes = 100
    @Option(help: "Recompute iterations.") var iterations = 300
    @Option(help: "Seconds of HTTP load per mode.") var seconds = 5.0
    @Option(help: "Concurrent clients (one simulated node each).") var clients = 32
    @Option(help: "Symbols in the HTTP benchmark's cluster.") var httpSymbols = 128
    @Option(help: "Which store to measure: embedded, etcd or both (one after the other, same load).") var backend = "both"
    @Option(help: "Members of the etcd cluster the benchmark starts (fsync on, as in production).") var etcdMembers = 1
    @Option(help: "Acquire round trips measured for grant latency.") var grantSamples = 300
    @OptionGroup var tls: TLSOptions

    func validate() throws {
        guard ["embedded", "etcd", "both"].contains(backend) else { throw ValidationError("--backend must be embedded, etcd or both (got '\(backend)')") }
        guard [1, 3, 5].contains(etcdMembers) else { throw ValidationError("--etcd-members must be 1, 3 or 5") }
    }

    func run() async throws {
        recomputeBenchmark()
        // With --tls: one throwaway CA (openssl command) for the run, removed at the end.
        let ca = tls.enabled ? try ThrowawayCA.make() : nil
        defer { ca?.remove() }
        if backend != "etcd" { try await httpBenchmark(backend: .embedded, ca: ca) }
        if backend != "embedded" {
            try await withEtcdCluster(members: etcdMembers, label: "mmbench", durable: true) { cluster in
                try await httpBenchmark(backend: .etcd, etcdEndpoints: cluster.clientURLs, ca: ca)
            }
        }
    }

    private func recomputeBenchmark() {
        let symbolNames = (0..<symbols).map { "SYM\($0)" }
        let nodeNames = (1...nodes).map { "n\($0)" }
        _ = AssignmentPlanner.assign(symbols: symbolNames, nodes: nodeNames)  // warm-up
        var samples: [Double] = []
        var checksum = 0
        for iteration in 0..<iterations {
            // Vary the member set as a real rebalance would (one node missing).
            let members = nodeNames.enumerated().filter { $0.offset != iteration % nodes }.map(\.element)
            let start = ContinuousClock.now
            let table = AssignmentPlanner.assign(symbols: symbolNames, nodes: members)
            samples.append(milliseconds(ContinuousClock.now - start))
            checksum &+= table.count
        }
        precondition(checksum == symbols * iterations, "every symbol assigned in every iteration")
        samples.sort()
        print("assignment recompute: \(symbols) symbols × \(nodes) nodes (\(nodes - 1) live), \(iterations) runs")
        print(String(format: "  p50 %.3f ms  p99 %.3f ms  max %.3f ms  (target < 5 ms)", percentile(samples, 0.50), percentile(samples, 0.99), samples.last ?? 0))
    }

    private func httpBenchmark(backend: ClusterConfig.CoordinatorBackend, etcdEndpoints: [String] = [], ca: ThrowawayCA? = nil) async throws {
        let directory = DataDirectory(NSTemporaryDirectory() + "mmbench-coordinator-\(UUID().uuidString.prefix(8))")
        try directory.ensureExists()
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let tokens = try RoleTokens.generate(in: directory)
        var config = ClusterConfig.defaults
        config.symbols = (0..<httpSymbols).map { SymbolSpec(symbol: "S\($0)", tickSize: "0.01", basePrice: 1_000, lotSize: 100) }
        config.coordinator.presenceTtlMs = 5_000
        config.coordinator.grantTtlMs = 5_000
        var logger = Logger(label: "mmbench.coordinator")
        logger.logLevel = .warning
        let environment = ServiceEnvironment(
            process: .coordinator, role: .coordinator, config: config, dataDirectory: directory, tokens: tokens, logger: logger, portOverride: 0)
        let port = PortBox()
        let engine: CoordinatorEngine
        let etcdHTTPClient = EtcdClient.makeHTTPClient()
        switch backend {
        case .embedded:
            engine = try await makeCoordinatorEngine(environment, store: try GRDBCoordinatorStore(path: directory.databasePath("coordinator")))
        case .etcd:
            var etcdEnvironment = environment
            etcdEnvironment.config.coordinator.backend = .etcd
            etcdEnvironment.config.coordinator.etcd.endpoints = etcdEndpoints
            engine = try await makeCoordinatorEngine(etcdEnvironment, sharedStore: try makeEtcdCoordinatorStore(etcdEnvironment, httpClient: etcdHTTPClient))
            guard await engine.isHealthy else { throw ValidationError("the coordinator cannot use etcd at \(etcdEndpoints): \(await engine.storeError ?? "")") }
        }
        let app = buildCoordinatorApplication(environment, engine: engine) { port.set($0) }
        var services: [any Service] = [app]
        // With --tls, the same engine also behind a second listener, in TLS (routes only: the
        // sweeper and the other background services run once, in `app`).
        let tlsPort = BoundPort()
        if let ca {
            var tlsEnvironment = environment
            tlsEnvironment.config.tls = tlsSettings(ca)
            services.append(buildApplication(tlsEnvironment, router: buildCoordinatorRouter(tlsEnvironment, engine: engine)) { tlsPort.set($0) })
        }
        let group = ServiceGroup(configuration: .init(services: services, logger: logger))
        let server = Task { try await group.run() }
        defer { server.cancel() }
        let storeName = backend == .embedded ? "embedded (SQLite, synchronous=FULL)" : "etcd (\(etcdEndpoints.count) member(s), fsync on)"
        print("\nstore: \(storeName)")
        let boundPort = try await port.wait()
        // Each simulated node calls with its own token, as real nodes do.
        func client(_ node: String) -> CoordinatorClient {
            CoordinatorClient(ServiceEndpoint(baseURL: "http://127.0.0.1:\(boundPort)", token: tokens.nodeToken(for: node)!, transport: AHCTransport.shared))
        }

        // Every simulated node joins, then acquires what it is assigned.
        let nodeIds = (1...clients).map { "b\($0)" }
        for node in nodeIds { _ = try await client(node).heartbeat(node: node, HeartbeatRequest(address: "http://127.0.0.1:1/\(node)")) }
        let table = try await client(nodeIds[0]).assignments()
        var held: [String: [AuthorityGrant]] = [:]
        for (symbol, node) in table.symbols.sorted(by: { $0.key < $1.key }) {
            held[node, default: []].append(try await client(node).acquire(symbol: symbol, node: node))
        }
        print("heartbeat + renew over HTTP: \(clients) connections (one simulated node each), \(httpSymbols) symbols held, \(seconds) s per mode, \(ProcessInfo.processInfo.activeProcessorCount) cores (load generator and server share them)")
        for batch in [false, true] {
            let (requests, renewalsPerCycle) = try cycles(batch: batch, nodeIds: nodeIds, held: held, tokens: tokens)
            let rawCycles = requests.map { $0.map(\.raw) }
            let outcome = RawHTTPLoad.run(port: boundPort, connections: rawCycles, seconds: seconds)
            // Half the requests are heartbeats; a renew request renews one grant, a batch all of
            // a node's (the mean over nodes, since every connection runs at about the same rate).
            let renewRequests = Double(outcome.responses) / 2
            let meanBatch = Double(renewalsPerCycle.reduce(0, +)) / Double(max(renewalsPerCycle.count, 1))
            print(String(
                format: "  %@: %.0f requests/s (%.0f heartbeats/s, %.0f grant renewals/s), latency p50 %.2f ms p99 %.2f ms, %d errors",
                batch ? "heartbeat + batch renew" : "heartbeat + single renew",
                outcome.perSecond, renewRequests / outcome.elapsedSeconds, renewRequests * meanBatch / outcome.elapsedSeconds,
                outcome.percentileMs(0.5), outcome.percentileMs(0.99), outcome.errors))
        }
        if let ca {
            let plainURL = "http://127.0.0.1:\(boundPort)"
            let tlsURL = "https://127.0.0.1:\(try await tlsPort.wait("the TLS coordinator listener"))"
            print("  the same loads over libcurl, plain HTTP vs HTTPS (libcurl on OpenSSL \(CurlHTTPLoad.opensslVersion()) to NIOSSL/BoringSSL, verified against a throwaway CA), one engine behind both listeners, \(tls.tlsRounds) round(s) × \(seconds) s per transport and mode, alternating (ABBA):")
            for batch in [false, true] {
                let (requests, renewalsPerCycle) = try cycles(batch: batch, nodeIds: nodeIds, held: held, tokens: tokens)
                let meanBatch = Double(renewalsPerCycle.reduce(0, +)) / Double(max(renewalsPerCycle.count, 1))
                print("  \(batch ? "heartbeat + batch renew" : "heartbeat + single renew"):")
                let comparison = TransportComparison.measure(
                    plainURL: plainURL, tlsURL: tlsURL, caPath: ca.caPath, connections: requests, seconds: seconds, rounds: tls.tlsRounds)
                comparison.report(indent: "    ", unit: "requests") { outcome in
                    String(format: " (%.0f grant renewals/s)", outcome.perSecond / 2 * meanBatch)
                }
            }
        }
        // Every grant must still be the one acquired: the load renewed, it did not churn.
        let authority = try await client(nodeIds[0]).authority()
        let expected = Dictionary(uniqueKeysWithValues: held.values.flatMap { $0 }.map { ($0.symbol, $0.fencingToken) })
        let intact = authority.authority.filter { expected[$0.symbol] == $0.fencingToken && $0.node != nil }.count
        print("  grants still held with their original tokens after the load: \(intact)/\(expected.count)")
        try await grantLatency(client: client, held: held)
        if let ca {
            TransportComparison.reportNewConnections(
                plainURL: "http://127.0.0.1:\(boundPort)", tlsURL: "https://127.0.0.1:\(try await tlsPort.wait("the TLS coordinator listener"))",
                caPath: ca.caPath, path: CommonRoutes.healthz, token: tokens.nodeToken(for: nodeIds[0])!, count: tls.handshakes, indent: "  ")
        }
        await group.triggerGracefulShutdown()
        _ = try? await server.value
        // (A benchmark that throws exits the process, which ends this client too.)
        try? await etcdHTTPClient.shutdown()
    }

    /// Release and acquire again, one at a time, by the symbol's holder: each acquire mints a
    /// token, so it is a durable write on either store (the figure a failover waits for).
    private func grantLatency(client: (String) -> CoordinatorClient, held: [String: [AuthorityGrant]]) async throws {
        guard var grant = held.values.flatMap({ $0 }).min(by: { $0.symbol < $1.symbol }) else { return }
        let client = client(grant.node)
        var samples: [Double] = []
        for _ in 0..<grantSamples {
            _ = try await client.release(symbol: grant.symbol, RenewRequest(node: grant.node, fencingToken: grant.fencingToken))
            let start = ContinuousClock.now
            grant = try await client.acquire(symbol: grant.symbol, node: grant.node)
            samples.append(milliseconds(ContinuousClock.now - start))
        }
        samples.sort()
        print(String(format: "  grant (acquire after release, sequential, %d samples): p50 %.2f ms  p99 %.2f ms", samples.count, percentile(samples, 0.5), percentile(samples, 0.99)))
    }

    /// Each connection alternates a heartbeat with a renew of one of its grants (round-robin)
    /// or with one batch renew of all of them; also how many grants one renew request renews.
    private func cycles(batch: Bool, nodeIds: [String], held: [String: [AuthorityGrant]], tokens: RoleTokens) throws -> ([[BenchRequest]], [Int]) {
        var cycles: [[BenchRequest]] = []
        var renewalsPerCycle: [Int] = []
        for node in nodeIds {
            let grants = held[node] ?? []
            let token = tokens.nodeToken(for: node)!
            let heartbeat = BenchRequest(
                method: "POST", path: CoordinatorRoutes.heartbeat.path(["node": node]), token: token,
                json: try json(HeartbeatRequest(address: "http://127.0.0.1:1/\(node)")))
            var cycle: [BenchRequest] = []
            if batch {
                let body = BatchRenewRequest(node: node, grants: grants.map { .init(symbol: $0.symbol, fencingToken: $0.fencingToken) })
                cycle = [heartbeat, BenchRequest(method: "POST", path: CoordinatorRoutes.renewBatch.path, token: token, json: try json(body))]
            } else {
                for grant in grants {
                    cycle.append(heartbeat)
                    cycle.append(BenchRequest(
                        method: "POST", path: CoordinatorRoutes.renew.path(["symbol": grant.symbol]), token: token,
                        json: try json(RenewRequest(node: node, fencingToken: grant.fencingToken))))
                }
            }
            cycles.append(cycle.isEmpty ? [heartbeat] : cycle)
            renewalsPerCycle.append(batch ? grants.count : 1)
        }
        return (cycles, renewalsPerCycle)
    }

    private func json(_ value: some Encodable) throws -> String {
        String(decoding: try MMJSON.encode(value), as: UTF8.self)
    }
}

/// The port the server bound, handed from its startup callback to the benchmark.
private final class PortBox: Sendable {
    private let port = LockedBox<Int?>(nil)
    func set(_ value: Int) { port.value = value }
    func wait() async throws -> Int {
        for _ in 0..<500 {
            if let value = port.value { return value }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw ValidationError("the in-process coordinator did not start listening within 5 s")
    }
}

private func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1_000 + Double(duration.components.attoseconds) / 1e15
}

private func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * fraction))]
}
