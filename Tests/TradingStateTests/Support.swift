import Foundation
import MMCore
import MMServiceKit
@testable import TradingState

/// A fill with readable defaults; `id` defaults to "F<seq>".
func makeFill(
    _ seq: Int64, _ symbol: String = "ACME", _ side: Side = .buy, price: Int64 = 100, qty: Int64 = 1, id: String? = nil, tsMs: Int64 = 1_700_000_000_000
) -> Fill {
    Fill(
        fillId: id ?? "F\(seq)", seq: seq, symbol: symbol, side: side, price: price, qty: qty,
        makerOrderId: "Q-\(symbol)-\(side.rawValue)", takerOrderId: "X\(seq)", node: "n1", fencingToken: 1, tsMs: tsMs)
}

/// A temporary `state.sqlite` path, removed with its directory by `cleanup()`.
struct TemporaryLedgerFile {
    let directory: String
    var path: String { directory + "/state.sqlite" }

    init(_ label: String = "ledger") {
        directory = NSTemporaryDirectory() + "mm-state-test-\(label)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: directory) }
}

let testSymbols = ClusterConfig.defaults.symbolNames

func openLedger(_ file: TemporaryLedgerFile, clock: any EpochClock = ManualClock()) async throws -> TradingLedger {
    let repository = try GRDBLedgerRepository(path: file.path, symbols: testSymbols)
    return try await TradingLedger.open(repository: repository, validator: FillValidator(config: .defaults), clock: clock)
}

/// A service environment on a fresh data directory with fresh role tokens.
func makeEnvironment(_ label: String) throws -> ServiceEnvironment {
    let directory = DataDirectory(NSTemporaryDirectory() + "mm-state-env-\(label)-\(UUID().uuidString.prefix(8))")
    try directory.ensureExists()
    let tokens = try RoleTokens.generate(in: directory)
    return ServiceEnvironment(process: .state, role: .state, config: .defaults, dataDirectory: directory, tokens: tokens, clock: ManualClock())
}

/// Positions compared on their economic fields against the reference fold.
func economicMismatches(_ view: PositionsView, distinct fills: [Fill]) -> [String] {
    let expected = PositionFold.fold(fills)
    var problems: [String] = []
    for position in view.positions {
        let reference = expected[position.symbol] ?? .flat(position.symbol)
        if !PositionFold.economicallyEqual(position, reference) || position.avgPrice != reference.avgPrice {
            problems.append("\(position.symbol): got \(position), expected \(reference)")
        }
    }
    return problems
}

/// An in-memory exchange fill log whose behaviour tests script.
actor ScriptedFillLog: FillLogSource {
    var log: [Fill] = []
    var reachable = true
    /// Seqs left out of the next page that would contain them (once each).
    var dropOnce: Set<Int64> = []
    var requests = 0

    init(_ log: [Fill] = []) { self.log = log }

    func setLog(_ fills: [Fill]) { log = fills }
    func append(_ fills: [Fill]) { log += fills }
    func setReachable(_ value: Bool) { reachable = value }
    func drop(_ seq: Int64) { dropOnce.insert(seq) }

    func fills(after seq: Int64, limit: Int, waitMs: Int64) async throws(ClientError) -> FillPage {
        requests += 1
        guard reachable else { throw .unreachable(TransportError(url: "http://exchange/v1/fills", reason: "connection refused")) }
        var page: [Fill] = []
        for fill in log where fill.seq > seq {
            if page.count == limit { break }
            if dropOnce.remove(fill.seq) != nil { continue }
            page.append(fill)
        }
        return FillPage(fills: page, headSeq: log.last?.seq ?? 0)
    }
}

/// SplitMix64: a small deterministic generator for scenario shapes inside property tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
