import AsyncPrimitives
import Testing

@Suite struct LockedBoxTests {
    @Test func getSetAndUpdate() {
        let box = LockedBox(1)
        #expect(box.value == 1)
        box.value = 5
        #expect(box.value == 5)
        let doubled = box.update { value -> Int in
            value *= 2
            return value
        }
        #expect(doubled == 10)
        #expect(box.value == 10)
    }

    @Test func updateRethrowsTypedErrorsAndKeepsTheValue() {
        struct Refused: Error {}
        let box = LockedBox([1, 2])
        #expect(throws: Refused.self) {
            try box.update { (_: inout [Int]) throws(Refused) in throw Refused() }
        }
        #expect(box.value == [1, 2])
    }

    @Test func concurrentUpdatesAreNotLost() async {
        let box = LockedBox(0)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<16 {
                group.addTask { for _ in 0..<1_000 { box.update { $0 += 1 } } }
            }
        }
        #expect(box.value == 16_000)
    }
}

@Suite struct TimeLimitTests {
    @Test func returnsTheValueWithinTheLimit() async {
        let value = await withTimeLimit(.seconds(5)) { 42 }
        #expect(value == 42)
    }

    @Test func cancelsAnOperationThatOverrunsAndReturnsNil() async {
        let cancelled = LockedBox(false)
        let started = ContinuousClock.now
        let value: Int? = await withTimeLimit(.milliseconds(50)) {
            do {
                try await Task.sleep(for: .seconds(30))
                return 1
            } catch {
                cancelled.value = true
                return 2
            }
        }
        #expect(value == nil)
        #expect(cancelled.value, "the operation saw the cancellation before the call returned")
        #expect(ContinuousClock.now - started < .seconds(5))
    }
}
