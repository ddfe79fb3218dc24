import Foundation
import MMCore
import Testing
@testable import Exchange

/// Plain orders' records are bounded: the oldest finished ones go, resting ones stay, and the
/// evictions are part of replay (a snapshot restores the same queue).
@Suite("Exchange state: plain order records are bounded")
struct PlainOrderRetentionTests {
    func submit(_ driver: inout StateDriver, _ id: String, side: Side, price: Ticks, tif: TimeInForce) throws {
        guard case .accept(let entries) = try driver.state.decideSubmitOrder(
            Fixture.order(id, side: side, price: price, qty: 1, tif: tif), signer: Fixture.signer, nowMs: Fixture.startMs)
        else { Issue.record("\(id) was taken for a resubmission"); return }
        driver.commit(entries)
    }

    @Test("past the limit the oldest finished records go; resting ones and the newest stay")
    func evictsOldestFinished() async throws {
        var driver = StateDriver(config: try await Fixture.config())
        // o0 rests (a GTC sell far from the market); o1…o9 are IOC buys that find nothing: finished.
        try submit(&driver, "o0", side: .sell, price: 20_000, tif: .gtc)
        for index in 1...9 { try submit(&driver, "o\(index)", side: .buy, price: 9_000, tif: .ioc) }
        #expect(driver.state.plainOrders.count == 10)
        driver.state.evictFinishedPlainOrders(beyond: 4)
        #expect(driver.state.plainOrders.count == 4)
        // The resting o0 and the three newest finished ones remain.
        #expect(driver.state.originalAck(node: "n1", clientOrderId: "o0")?.status == .resting)
        for index in 7...9 { #expect(driver.state.originalAck(node: "n1", clientOrderId: "o\(index)") != nil) }
        for index in 1...6 { #expect(driver.state.originalAck(node: "n1", clientOrderId: "o\(index)") == nil) }
        // An evicted id is a new order when sent again (its old ack is gone)…
        let again = try driver.state.decideSubmitOrder(Fixture.order("o1", side: .buy, price: 9_000, qty: 1, tif: .ioc), signer: Fixture.signer, nowMs: Fixture.startMs)
        if case .duplicate = again { Issue.record("an evicted client_order_id is still answered from its old record") }
        // …and a kept one is still idempotent.
        let kept = try driver.state.decideSubmitOrder(Fixture.order("o9", side: .buy, price: 9_000, qty: 1, tif: .ioc), signer: Fixture.signer, nowMs: Fixture.startMs)
        guard case .duplicate = kept else { Issue.record("o9 should be a resubmission"); return }
        // The resting order is still there to be filled and its record follows.
        #expect(driver.state.plainOrders.values.contains { $0.ack.clientOrderId == "o0" })
    }

    @Test("a snapshot restores the bounded records exactly (same state as the live one)")
    func snapshotKeepsTheQueue() async throws {
        let config = try await Fixture.config()
        var driver = StateDriver(config: config)
        try submit(&driver, "r", side: .sell, price: 20_000, tif: .gtc)
        for index in 1...20 { try submit(&driver, "x\(index)", side: .buy, price: 9_000, tif: .ioc) }
        driver.state.evictFinishedPlainOrders(beyond: 5)
        var restored = try ExchangeState(config: config, restoring: driver.state.persisted)
        #expect(restored.persisted == driver.state.persisted)
        // Both go on evicting the same records.
        driver.state.evictFinishedPlainOrders(beyond: 3)
        restored.evictFinishedPlainOrders(beyond: 3)
        #expect(restored.persisted == driver.state.persisted)
        #expect(Set(restored.plainOrders.values.map(\.ack.clientOrderId)) == ["r", "x19", "x20"])
    }
}
