import Exchange
import Foundation
import MMCore
import MMServiceKit
import MMTestSupport
import Testing

/// The real `mmd exchange`: quotes driven over HTTP, external flow making fills, `kill -9`
/// mid-flow, restart, and the fill log must be exactly what it was, also per the offline
/// `mmd exchange replay`.
@Suite("Exchange process", .serialized)
struct ExchangeProcessTests {
    @Test("kill -9 mid-flow: restart replays the same fill log; offline replay digest agrees")
    func killAndReplay() async throws {
        let cluster = try TestCluster("exchange-kill", overrides: [
            "symbols.names": "ACME,BOLT", "flow.interval_ms": "20", "flow.cross_pct": "80", "exchange.price_interval_ms": "50",
        ])
        defer { cluster.removeData() }
        let signer = try GrantSigner(dataDirectory: cluster.dataDirectory)
        let exchange = try await cluster.start(.exchange)
        let client = ExchangeClient(try await cluster.endpoint(.exchange, as: .node))
        let observer = ExchangeClient(try await cluster.endpoint(.exchange, as: .observer))

        func requote(token: Int64) async throws {
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            for symbol in ["ACME", "BOLT"] {
                let grant = signer.sign(symbol: symbol, node: "n1", fencingToken: token, grantedAtMs: now, expiresAtMs: now + 60_000)
                let reference = try await observer.price(symbol: symbol).price
                _ = try await client.replaceQuote(symbol: symbol, QuoteRequest(
                    node: "n1", grant: grant, bidPrice: reference - 1, bidQty: 20, askPrice: reference + 1, askQty: 20))
            }
        }

        // Keep quotes replenished until enough fills exist.
        let filled = try await eventually(timeout: .seconds(20), every: .milliseconds(30)) {
            try await requote(token: 1)
            return try await observer.stats().fillCount >= 20
        }
        #expect(filled, "external flow should hit the quotes; log: \(exchange.logTail())")
        // Flow keeps running: take the stats first, then exactly the fills they cover.
        let statsBefore = try await observer.stats()
        let n = statsBefore.fillCount
        let before = try await observer.fills(after: 0, limit: Int(n), waitMs: 0)
        #expect(n >= 20)
        #expect(before.fills.count == Int(n))
        await exchange.kill9()

        let restarted = try await cluster.start(.exchange)
        do {
            try await checkAfterRestart(cluster, client: observer, before: before, statsBefore: statsBefore, requote: requote)
        } catch {
            await restarted.stop()
            throw error
        }
        await restarted.stop()
    }

    func checkAfterRestart(
        _ cluster: TestCluster, client observer: ExchangeClient, before: FillPage, statsBefore: ExchangeStats,
        requote: (Int64) async throws -> Void
    ) async throws {
        let n = statsBefore.fillCount
        let after = try await observer.fills(after: 0, limit: 1_000, waitMs: 0)
        #expect(Array(after.fills.prefix(Int(n))) == before.fills, "fills 1…\(n) must survive kill -9 unchanged")
        #expect(after.fills.enumerated().allSatisfy { $0.element.seq == Int64($0.offset + 1) }, "gap-free seq")

        // Fresh fills after the restart continue the sequence, never reusing an id.
        let more = try await eventually(timeout: .seconds(20), every: .milliseconds(30)) {
            try await requote(2)
            return try await observer.stats().fillCount > n + 5
        }
        #expect(more)
        let stats = try await observer.stats()
        #expect(stats.staleAccepted == 0)
        let all = try await observer.fills(after: 0, limit: 1_000, waitMs: 0).fills
        #expect(Set(all.map(\.fillId)).count == all.count)

        var digest = FillLogDigest()
        before.fills.forEach { digest.append($0) }
        #expect(digest.hexDigest() == statsBefore.fillLogSha256)
        // The offline replay, while the exchange keeps running, agrees for the same N.
        let line = try runReplay(cluster, throughSeq: n)
        #expect(line == "\(statsBefore.fillLogSha256) \(n)")
        // And over the whole log as the live exchange reports it at one moment.
        let live = try await observer.stats()
        let fullLine = try runReplay(cluster, throughSeq: live.fillCount)
        #expect(fullLine == "\(live.fillLogSha256) \(live.fillCount)")
    }

    func runReplay(_ cluster: TestCluster, throughSeq: Int64) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestPaths.mmd)
        process.arguments = ["exchange", "replay", "--data-dir", cluster.dataDirectory.path, "--through-seq", "\(throughSeq)"] + cluster.setArguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
