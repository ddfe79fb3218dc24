import ArgumentParser
import Exchange
import Foundation
import MMCore
import MMServiceKit

/// `mmbench exchange-restart`: what an exchange restart costs as the fill history grows.
///
/// `--generate` writes a real journal (SQLite, the exchange's own tables) of N fills — quotes
/// of one node on every symbol, then one external IOC order per fill — and snapshots exactly
/// as the running exchange would: one every `exchange.snapshot.every_records` records, so the
/// last one is up to that many records behind the end (the worst case of a `kill -9`).
/// Without `--generate` it opens that directory as a restarting exchange does (in a fresh
/// process, so the figure and the RSS are the restart's alone) and prints the time to a core
/// ready to serve, how it recovered, and the process's RSS.
struct ExchangeRestartBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exchange-restart", abstract: "Benchmark: exchange restart time and memory against history (see Scripts/bench-soak).")

    @Option(help: "Directory holding the journal and snapshots.")
    var dir: String

    @Flag(help: "Write a journal of --fills fills into --dir (which must not hold one).")
    var generate = false

    @Option(help: "Fills to generate.")
    var fills: Int = 1_000_000

    @Option(help: "Journal records between snapshots (exchange.snapshot.every_records); 0: no snapshots.")
    var snapshotEvery: Int = 20_000

    @Flag(help: "Also write a snapshot at the very end (what a graceful stop leaves).")
    var finalSnapshot = false

    @Option(help: "After --fills, go on without snapshots for this many journal records (the kill -9 worst case: the newest snapshot that far behind).")
    var tail: Int = 0

    @Flag(help: "Restart with snapshots ignored (a full replay of the journal).")
    var fullReplay = false

    func run() async throws {
        LoggingBootstrap.bootstrap(label: "mmbench")
        let config = try await ClusterConfig.load(
            path: nil, environment: [:], overrides: ["exchange.snapshot.every_records": "\(snapshotEvery)"])
        let journalPath = dir + "/exchange.sqlite"
        let store = ExchangeSnapshotStore(directory: dir + "/exchange-snapshots", keep: Int(config.exchange.snapshotKeep))
        if generate {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            guard !FileManager.default.fileExists(atPath: journalPath) else { throw ValidationError("\(journalPath) exists: generate into an empty directory") }
            try await write(config: config, journal: GRDBExchangeJournal(path: journalPath), store: store)
            return
        }
        let started = ContinuousClock.now
        let journal = try GRDBExchangeJournal(path: journalPath)
        let core = try ExchangeCore(
            config: config, signer: GrantSigner(keyHex: Self.keyHex), clock: MonotonicEpochClock(), journal: journal, snapshots: fullReplay ? nil : store)
        try await core.verifyFillTable()
        let elapsed = ContinuousClock.now - started
        let stats = await core.stats()
        let page = try await core.fillPage(after: 0, limit: 100)
        let milliseconds = Double(elapsed.components.seconds) * 1_000 + Double(elapsed.components.attoseconds) / 1e15
        print(String(format: "restart: %.0f ms to a ready core; %@; %lld fills, %lld journal records; RSS %lld MB; oldest page served: %d fills",
                     milliseconds, "\(core.recovery)", stats.fillCount, stats.journalSeq, Self.residentMegabytes(), page.fills.count))
    }

    static let keyHex = String(repeating: "5a", count: 32)

    func write(config: ClusterConfig, journal: GRDBExchangeJournal, store: ExchangeSnapshotStore) async throws {
        let signer = GrantSigner(keyHex: Self.keyHex)
        let startMs: EpochMs = 1_800_000_000_000
        _ = try journal.firstStartMs(recordingIfAbsent: startMs)
        var state = ExchangeState(config: config)
        var audit = FencingAudit()
        var digest = FillLogDigest()
        var fold = FoldHistory()
        var records: [JournalRecord] = []
        var stored: [StoredFill] = []
        var lastSnapshot: Int64 = 0
        let began = ContinuousClock.now

        func commit(_ entries: [JournalEntry], at ts: EpochMs) async throws {
            for entry in entries {
                state.apply(entry, tsMs: ts)
                audit.observe(entry)
                records.append(JournalRecord(seq: state.journalSeq, tsMs: ts, entry: entry))
                for fill in state.takeNewFills() {
                    stored.append(StoredFill.chaining(fill, onto: &digest))
                    fold.apply(fill)
                }
                if records.count >= 20_000 { try await flush() }
                if snapshotting, state.journalSeq - lastSnapshot >= snapshotEvery { try await snapshot() }
            }
        }
        func flush() async throws {
            try await journal.append(records, fills: stored)
            records.removeAll(keepingCapacity: true)
            stored.removeAll(keepingCapacity: true)
        }
        func snapshot() async throws {
            try await flush()
            lastSnapshot = state.journalSeq
            try store.write(ExchangeSnapshot(journalSeq: state.journalSeq, state: state.persisted, audit: audit, digest: digest, fold: fold), config: config)
        }

        var ts = startMs
        var flowIndex: Int64 = 0
        var snapshotting = snapshotEvery > 0
        var target = Int64(fills)
        func more() -> Bool { digest.count < target || (!snapshotting && state.journalSeq < lastSnapshot + Int64(tail)) }
        while more() {
            for spec in config.symbols where more() {
                ts += 1
                let book = state.engine.book(state.index(of: spec.symbol)!)
                if book.bestBid == nil || book.bestAsk == nil {
                    let grant = signer.sign(symbol: spec.symbol, node: "n1", fencingToken: 1, grantedAtMs: startMs, expiresAtMs: Int64.max / 2)
                    let quote = QuoteRequest(node: "n1", grant: grant, bidPrice: spec.basePrice - 1, bidQty: 1_000, askPrice: spec.basePrice + 1, askQty: 1_000)
                    try await commit(try state.decideReplaceQuote(symbol: spec.symbol, quote, signer: signer, nowMs: ts), at: ts)
                }
                flowIndex += 1
                let buy = flowIndex % 2 == 0
                let intent = ExternalOrderIntent(symbol: spec.symbol, side: buy ? .buy : .sell, price: spec.basePrice + (buy ? 1 : -1), qty: 1,
                                                 flowIndex: flowIndex, aggressive: true)
                try await commit(state.decideExternal(intent), at: ts)
            }
            if digest.count % 1_000_000 < Int64(config.symbols.count) { print("  \(digest.count) fills …") }
            if digest.count >= target, snapshotting, tail > 0 {
                snapshotting = false
                target = 0
            }
        }
        try await flush()
        if finalSnapshot { try await snapshot() }
        print("generated \(digest.count) fills in \(state.journalSeq) journal records in \(ContinuousClock.now - began); last snapshot at record \(lastSnapshot)")
    }

    static func residentMegabytes() -> Int64 {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = Int64(line.split(separator: " ").dropFirst().first ?? "") else { return -1 }
        return kilobytes / 1_024
    }
}
