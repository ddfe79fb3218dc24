import ArgumentParser
import Foundation
import Histogram
import Logging
import MMCore
import MMServiceKit
import MMTestSupport
import ServiceLifecycle
import Synchronization
import TradingState

/// `mmbench state`: the trading-state figures of docs/PERFORMANCE.md.
///
/// 1. Durable ingest: fills/s through the GRDB repository in batches (validation, dedupe
///    lookups, inserts, position fold, cursor), each batch one committed transaction.
/// 2. Fill → position visible: a long-polling reader over HTTP on loopback while fills
///    happen at a fixed rate and are posted as the exchange role; the latency of each fill
///    is from the instant it happened to when the reader holds a view containing it.
struct StateBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state", abstract: "Benchmark: trading-state durable ingest and fill→position latency.")

    @Option(help: "Fills for the ingest benchmark.")
    var fills: Int = 200_000

    @Option(help: "Fills per transaction for the ingest benchmark.")
    var batch: Int = 1_000

    @Option(help: "Fills per second for the latency benchmark.")
    var rate: Int = 1_000

    @Option(help: "Seconds of fills for the latency benchmark.")
    var seconds: Int = 10

    @Flag(help: "Also measure ingest with synchronous=FULL.")
    var full = false

    @Option(help: "Ledger store to measure: sqlite, postgres or both (one after the other, same load).")
    var backend = "both"

    func validate() throws {
        guard ["sqlite", "postgres", "both"].contains(backend) else { throw ValidationError("--backend must be sqlite, postgres or both (got '\(backend)')") }
    }

    func run() async throws {
        LoggingBootstrap.bootstrap(label: "mmbench")
        emit("# mmbench state — \(ProcessInfo.processInfo.activeProcessorCount) CPUs")
        if backend != "postgres" {
            try await ingestBenchmark(durability: .normal)
            if full { try await ingestBenchmark(durability: .full) }
            try await latencyBenchmark()
        }
        if backend != "sqlite" {
            // A PostgreSQL 15 the benchmark starts on a private port, fsync on as in production.
            try await withPostgresServer(label: "mmbench", durable: true) { server in
                // Each measurement in a schema of its own: they reuse fill ids.
                let settings = try PostgresLedgerSettings(url: server.url + "?schema=ingest", passwordFile: server.passwordFile)
                try await postgresIngestBenchmark(settings: settings)
                try await latencyBenchmark(postgres: (server.url + "?schema=latency", server.passwordFile))
            }
        }
    }

    func postgresIngestBenchmark(settings: PostgresLedgerSettings) async throws {
        let config = ClusterConfig.defaults
        let repository = try await PostgresLedgerRepository.open(settings: settings, symbols: config.symbolNames)
        do {
            try await measureIngest(repository: repository, title: "Durable ingest (PostgreSQL 15, fsync on, synchronous_commit on)")
        } catch {
            await repository.close()
            throw error
        }
        await repository.close()
    }

    static func syntheticFill(_ seq: Int, symbols: [String]) -> Fill {
        let side: Side = (seq / 7) % 2 == 0 ? .buy : .sell
        return Fill(
            fillId: "B\(seq)", seq: Int64(seq), symbol: symbols[seq % symbols.count], side: side, price: Int64(10_000 + seq % 13),
            qty: Int64(1 + seq % 5), makerOrderId: "Q\(seq % 97)", takerOrderId: "X\(seq)", node: "n1", fencingToken: 1, tsMs: 1_700_000_000_000 + Int64(seq))
    }

    func ingestBenchmark(durability: GRDBLedgerRepository.Durability) async throws {
        let directory = NSTemporaryDirectory() + "mmbench-state-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = ClusterConfig.defaults
        let repository = try GRDBLedgerRepository(path: directory + "/state.sqlite", symbols: config.symbolNames, durability: durability)
        try await measureIngest(repository: repository, title: "Durable ingest (SQLite, synchronous=\(durability.rawValue), WAL)")
    }

    func measureIngest(repository: any LedgerRepository, title: String) async throws {
        let config = ClusterConfig.defaults
        let ledger = try await TradingLedger.open(repository: repository, validator: FillValidator(config: config), clock: MonotonicEpochClock())
        let all = (1...fills).map { Self.syntheticFill($0, symbols: config.symbolNames) }
        var perBatch = Histogram<UInt64>(highestTrackableValue: 60_000_000)
        let start = ContinuousClock.now
        var offset = 0
        while offset < all.count {
            let slice = Array(all[offset..<min(offset + batch, all.count)])
            let batchStart = ContinuousClock.now
            let commit = try await ledger.ingest(slice)
            guard commit.stoppedAt == nil, commit.recorded.count == slice.count else {
                throw ValidationError("ingest refused a synthetic fill: \(String(describing: commit.stoppedAt))")
            }
            _ = perBatch.record(UInt64((ContinuousClock.now - batchStart).microseconds))
            offset += slice.count
        }
        let elapsed = ContinuousClock.now - start
        let view = await ledger.positions()
        guard view.version == Int64(fills) else { throw ValidationError("ledger version \(view.version) ≠ \(fills) fills") }
        let rate = Double(fills) / elapsed.seconds
        emit("""

            ## \(title)
            fills: \(fills), batch: \(batch) fills/transaction
            elapsed: \(String(format: "%.2f", elapsed.seconds)) s
            throughput: \(Int(rate)) fills/s
            per-batch commit: p50 \(perBatch.valueAtPercentile(50)) µs, p99 \(perBatch.valueAtPercentile(99)) µs, max \(perBatch.max) µs
            """)
    }

    func latencyBenchmark(postgres: (url: String, passwordFile: String)? = nil) async throws {
        let directory = DataDirectory(NSTemporaryDirectory() + "mmbench-state-http-\(UUID().uuidString.prefix(8))")
        try directory.ensureExists()
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let tokens = try RoleTokens.generate(in: directory)
        var config = ClusterConfig.defaults
        if let postgres {
            config.state.backend = .postgres
            config.state.postgres = .init(url: postgres.url, passwordFile: postgres.passwordFile)
        }
        // A port base nobody else is likely to use; the exchange is absent (the ingest loop
        // just reports it unreachable, backing off), fills arrive by POST.
        config.listen.portBase = 47_000 + Int(ProcessInfo.processInfo.processIdentifier % 200) * 10
        var logger = Logger(label: "mmbench.state")
        logger.logLevel = .critical
        let environment = ServiceEnvironment(
            process: .state, role: .state, config: config, dataDirectory: directory, tokens: tokens, logger: logger)
        let repository = try await TradingStateService.openRepository(environment)
        defer { if let postgres = repository as? PostgresLedgerRepository { Task { await postgres.close() } } }
        let parts = try await TradingStateService.build(environment, repository: repository)
        let app = buildApplication(environment, router: parts.router, services: [parts.ingest])
        // Stopped gracefully at the end: cancelling a server with open connections is not
        // how the service ever stops, and NIO traps on writers torn down mid-flight.
        let serviceGroup = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let server = Task { try await serviceGroup.run() }
        do {
            try await measureLatency(config: config, tokens: tokens)
        } catch {
            await serviceGroup.triggerGracefulShutdown()
            _ = try? await server.value
            throw error
        }
        await serviceGroup.triggerGracefulShutdown()
        _ = try? await server.value
    }

    func measureLatency(config: ClusterConfig, tokens: RoleTokens) async throws {

        let baseURL = config.baseURL(of: .state)
        let writer = TradingStateClient(ServiceEndpoint(baseURL: baseURL, token: tokens.token(for: .exchange)!, transport: AHCTransport.shared, timeoutMs: 30_000))
        let reader = TradingStateClient(ServiceEndpoint(baseURL: baseURL, token: tokens.nodeToken(for: "n1")!, transport: AHCTransport.shared))
        for _ in 0..<200 {
            if (try? await reader.positions()) != nil { break }
            try await Task.sleep(for: .milliseconds(25))
        }

        let total = rate * seconds
        // Fills "happen" on a fixed schedule (one every 1/rate s). One writer posts, as soon
        // as its previous POST has answered, every fill that has happened since — what a
        // pusher or the pull loop does under load — so the rate is met and each fill's
        // latency runs from the instant it happened, batching delay included. Commits are
        // sequential, so a batch of n new fills answering version v holds versions v−n+1…v.
        let sentAtByVersion = SendInstants()
        let readerTask = Task { () throws -> [Int64: ContinuousClock.Instant] in
            var firstSeen: [Int64: ContinuousClock.Instant] = [:]
            var seen: Int64 = 0
            while seen < Int64(total) {
                let view = try await reader.positions(afterVersion: seen, waitMs: 5_000)
                let now = ContinuousClock.now
                guard view.version > seen else { continue }
                for version in (seen + 1)...view.version { firstSeen[version] = now }
                seen = view.version
            }
            return firstSeen
        }

        let interval = Duration.nanoseconds(1_000_000_000 / rate)
        let start = ContinuousClock.now
        var nextSeq = 1
        var posts = 0
        var largestBatch = 0
        while nextSeq <= total {
            let firstDue = start + interval * (nextSeq - 1)
            if firstDue > ContinuousClock.now { try await Task.sleep(until: firstDue, clock: .continuous) }
            let now = ContinuousClock.now
            var batchSeqs: [Int] = []
            while nextSeq <= total, start + interval * (nextSeq - 1) <= now {
                batchSeqs.append(nextSeq)
                nextSeq += 1
            }
            let result = try await writer.record(RecordFillsRequest(fills: batchSeqs.map { Self.syntheticFill($0, symbols: ["ACME"]) }))
            guard result.recorded.count == batchSeqs.count else { throw ValidationError("a fill was not recorded: \(result)") }
            posts += 1
            largestBatch = max(largestBatch, batchSeqs.count)
            let firstVersion = result.version - Int64(batchSeqs.count) + 1
            sentAtByVersion.times.withLock { times in
                for (offset, seq) in batchSeqs.enumerated() { times[firstVersion + Int64(offset)] = start + interval * (seq - 1) }
            }
        }
        let sendSeconds = (ContinuousClock.now - start).seconds
        let firstSeen = try await readerTask.value
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000)
        let sentAt = sentAtByVersion.times.withLock { $0 }
        for (version, sent) in sentAt {
            guard let seen = firstSeen[version] else { throw ValidationError("version \(version) was never seen by the reader") }
            _ = histogram.record(UInt64(max(0, (seen - sent).microseconds)))
        }
        emit("""

            ## Fill → position visible to a long-polling reader (HTTP, loopback, \(config.state.backend == .postgres ? "PostgreSQL" : "SQLite"))
            fills: \(total) at \(rate)/s (achieved \(Int(Double(total) / sendSeconds))/s) in \(posts) POST /v1/fills (exchange role), mean \(String(format: "%.1f", Double(total) / Double(max(posts, 1)))) fills/POST, largest \(largestBatch)
            latency: p50 \(ms(histogram.valueAtPercentile(50))) ms, p90 \(ms(histogram.valueAtPercentile(90))) ms, p99 \(ms(histogram.valueAtPercentile(99))) ms, p99.9 \(ms(histogram.valueAtPercentile(99.9))) ms, max \(ms(histogram.max)) ms (\(histogram.totalCount) samples)
            """)
    }

    /// Unbuffered, so figures already measured survive a later failure.
    private func emit(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    private func ms(_ microseconds: UInt64) -> String { String(format: "%.2f", Double(microseconds) / 1_000) }
}

/// When each ledger version's POST was sent, shared by the posting tasks.
private final class SendInstants: Sendable {
    let times = Mutex<[Int64: ContinuousClock.Instant]>([:])
}

fileprivate extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var microseconds: Int64 { components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000 }
}
