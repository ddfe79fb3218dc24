import ArgumentParser
import Coordinator
import Foundation
import Logging
import MMCore
import MMServiceKit
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

    func run() async throws {
        recomputeBenchmark()
        try await httpBenchmark()
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

    private func httpBenchmark() async throws {
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
        let store = try GRDBCoordinatorStore(path: directory.databasePath("coordinator"))
        let port = PortBox()
        let app = try await buildCoordinatorApplication(environment, store: store) { port.set($0) }
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let server = Task { try await group.run() }
        defer { server.cancel() }
        let boundPort = try await port.wait()
        let endpoint = ServiceEndpoint(baseURL: "http://127.0.0.1:\(boundPort)", token: tokens.token(for: .node)!, transport: AHCTransport.shared)
        let client = CoordinatorClient(endpoint)

        // Every simulated node joins, then acquires what it is assigned.
        let nodeIds = (1...clients).map { "b\($0)" }
        for node in nodeIds { _ = try await client.heartbeat(node: node, HeartbeatRequest(address: "http://127.0.0.1:1/\(node)")) }
        let table = try await client.assignments()
        var held: [String: [AuthorityGrant]] = [:]
        for (symbol, node) in table.symbols.sorted(by: { $0.key < $1.key }) {
            held[node, default: []].append(try await client.acquire(symbol: symbol, node: node))
        }
        print("heartbeat + renew over HTTP: \(clients) clients, \(httpSymbols) symbols held, \(seconds) s per mode, \(ProcessInfo.processInfo.activeProcessorCount) cores (client and server share them)")
        for batch in [false, true] {
            let outcome = try await load(client: client, nodes: nodeIds, held: held, batch: batch)
            let elapsed = outcome.elapsed
            print(String(
                format: "  %@: %.0f requests/s (%.0f heartbeats/s, %.0f grant renewals/s), latency p50 %.2f ms p99 %.2f ms, %d errors",
                batch ? "heartbeat + batch renew" : "heartbeat + single renew",
                Double(outcome.requests) / elapsed, Double(outcome.heartbeats) / elapsed, Double(outcome.renewals) / elapsed,
                percentile(outcome.latencies, 0.5), percentile(outcome.latencies, 0.99), outcome.errors))
        }
        await group.triggerGracefulShutdown()
        _ = try? await server.value
    }

    struct LoadOutcome {
        var requests = 0, heartbeats = 0, renewals = 0, errors = 0
        var latencies: [Double] = []
        var elapsed = 0.0
    }

    private func load(client: CoordinatorClient, nodes: [String], held: [String: [AuthorityGrant]], batch: Bool) async throws -> LoadOutcome {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        let start = ContinuousClock.now
        var total = await withTaskGroup(of: LoadOutcome.self) { group in
            for node in nodes {
                let grants = held[node] ?? []
                group.addTask {
                    var outcome = LoadOutcome()
                    var index = 0
                    while ContinuousClock.now < deadline {
                        let t0 = ContinuousClock.now
                        do {
                            _ = try await client.heartbeat(node: node, HeartbeatRequest(address: "http://127.0.0.1:1/\(node)"))
                            outcome.heartbeats += 1
                        } catch { outcome.errors += 1 }
                        let t1 = ContinuousClock.now
                        outcome.latencies.append(milliseconds(t1 - t0))
                        outcome.requests += 1
                        guard !grants.isEmpty else { continue }
                        do {
                            if batch {
                                let result = try await client.renew(BatchRenewRequest(node: node, grants: grants.map { .init(symbol: $0.symbol, fencingToken: $0.fencingToken) }))
                                outcome.renewals += result.renewed.count
                                outcome.errors += result.refused.count
                            } else {
                                let grant = grants[index % grants.count]
                                index += 1
                                _ = try await client.renew(symbol: grant.symbol, RenewRequest(node: node, fencingToken: grant.fencingToken))
                                outcome.renewals += 1
                            }
                        } catch { outcome.errors += 1 }
                        outcome.latencies.append(milliseconds(ContinuousClock.now - t1))
                        outcome.requests += 1
                    }
                    return outcome
                }
            }
            var total = LoadOutcome()
            for await part in group {
                total.requests += part.requests
                total.heartbeats += part.heartbeats
                total.renewals += part.renewals
                total.errors += part.errors
                total.latencies += part.latencies
            }
            return total
        }
        total.elapsed = milliseconds(ContinuousClock.now - start) / 1_000
        total.latencies.sort()
        return total
    }
}

/// The port the server bound, handed from its startup callback to the benchmark.
private final class PortBox: Sendable {
    private let port = LockedValue<Int?>(nil)
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
