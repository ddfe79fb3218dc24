import AsyncPrimitives
import Testing

@Suite struct OnceValueTests {
    @Test func theFirstResolveWinsAndLaterOnesChangeNothing() async {
        let once = OnceValue<Int>()
        #expect(once.decided == nil)
        #expect(once.resolve(1))
        #expect(!once.resolve(2))
        #expect(once.decided == 1)
        #expect(await once.value() == 1)
    }

    @Test func everyParkedWaiterGetsTheValue() async {
        let once = OnceValue<String>()
        let waiters = (0..<20).map { _ in Task { await once.value() } }
        // Whether each parks first or arrives after the decision, it sees the same value.
        for _ in 0..<100 { await Task.yield() }
        once.resolve("reaped")
        for waiter in waiters { #expect(await waiter.value == "reaped") }
    }
}
