import AsyncPrimitives
import PropertyBased
import Testing

@Suite struct ChangeSignalTests {
    @Test func signalWakesAParkedWait() async {
        let signal = ChangeSignal()
        let ticket = signal.version
        let waiter = Task { await signal.wait(after: ticket, timeoutMs: nil) }
        #expect(await eventually { signal.waiterCount == 1 })
        signal.signal()
        #expect(await finishes(within: .seconds(5)) { await waiter.value })
        #expect(signal.version == ticket + 1)
        #expect(signal.waiterCount == 0)
    }

    @Test func aMovedVersionReturnsAtOnce() async {
        let signal = ChangeSignal()
        let ticket = signal.version
        signal.signal()
        // The change landed between the caller's check and its park: nothing is lost.
        #expect(await finishes(within: .seconds(5)) { await signal.wait(after: ticket, timeoutMs: nil) })
        #expect(signal.waiterCount == 0)
    }

    @Test func timeoutEndsTheWait() async {
        let signal = ChangeSignal()
        let started = ContinuousClock.now
        await signal.wait(after: signal.version, timeoutMs: 50)
        let waited = ContinuousClock.now - started
        #expect(waited >= .milliseconds(45))
        #expect(waited < .seconds(5))
        #expect(signal.waiterCount == 0, "the timed-out waiter is gone")
    }

    @Test func zeroTimeoutReturnsAtOnce() async {
        let signal = ChangeSignal()
        #expect(await finishes(within: .seconds(5)) { await signal.wait(after: signal.version, timeoutMs: 0) })
        #expect(await finishes(within: .seconds(5)) { await signal.wait(after: signal.version, timeoutMs: -1) })
    }

    @Test(arguments: [nil, 60_000] as [Int64?])
    func cancellationEndsTheWait(timeoutMs: Int64?) async {
        let signal = ChangeSignal()
        let waiter = Task { await signal.wait(after: signal.version, timeoutMs: timeoutMs) }
        #expect(await eventually { signal.waiterCount == 1 })
        waiter.cancel()
        #expect(await finishes(within: .seconds(5)) { await waiter.value })
        #expect(signal.waiterCount == 0)
        #expect(signal.version == 0, "cancellation is not a change")
    }

    @Test func anAlreadyCancelledTaskDoesNotPark() async {
        let signal = ChangeSignal()
        let waiter = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            await signal.wait(after: signal.version, timeoutMs: nil)
        }
        #expect(await finishes(within: .seconds(5)) { await waiter.value })
        #expect(signal.waiterCount == 0)
    }

    @Test func closeBeforeWaitMakesEveryWaitReturnAtOnce() async {
        let signal = ChangeSignal()
        signal.close()
        #expect(signal.isClosed)
        #expect(await finishes(within: .seconds(5)) { await signal.wait(after: signal.version, timeoutMs: nil) })
        #expect(await finishes(within: .seconds(5)) { await signal.wait(after: signal.version, timeoutMs: 60_000) })
        signal.close()
        #expect(signal.isClosed, "close is idempotent")
    }

    @Test func closeDuringWaitWakesEveryWaiter() async {
        let signal = ChangeSignal()
        let ticket = signal.version
        let waiters = (0..<20).map { index in
            Task { await signal.wait(after: ticket, timeoutMs: index.isMultiple(of: 2) ? nil : 60_000) }
        }
        #expect(await eventually { signal.waiterCount == 20 })
        let started = ContinuousClock.now
        signal.close()
        #expect(await finishes(within: .seconds(5)) { for waiter in waiters { await waiter.value } })
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(signal.waiterCount == 0)
        #expect(signal.version == ticket, "closing is not a change")
    }

    @Test func oneSignalWakesEveryWaiter() async {
        let signal = ChangeSignal()
        let ticket = signal.version
        let waiters = (0..<50).map { _ in Task { await signal.wait(after: ticket, timeoutMs: nil) } }
        #expect(await eventually { signal.waiterCount == 50 })
        signal.signal()
        #expect(await finishes(within: .seconds(5)) { for waiter in waiters { await waiter.value } })
    }

    /// Readers check state owned by an actor and take their ticket in the same actor turn, as
    /// the services do; writers change it and signal from many tasks at once. Waits have no
    /// timeout, so a single lost wake-up leaves a reader parked forever and the run fails.
    @Test func noLostWakeUpWithManyReadersAndWriters() async {
        await propertyCheck(count: 60, input: Gen.int(in: 1...40), Gen.int(in: 1...200), Gen.int(in: 1...8)) { readers, changes, writers in
            let counter = Counter()
            let signal = ChangeSignal()
            let target = changes * writers
            let allSeen = await finishes(within: .seconds(20)) {
                await withTaskGroup(of: Void.self) { group in
                    for _ in 0..<readers {
                        group.addTask {
                            while true {
                                let (value, ticket) = await counter.read(signal)
                                if value >= target { return }
                                await signal.wait(after: ticket, timeoutMs: nil)
                            }
                        }
                    }
                    for _ in 0..<writers {
                        group.addTask {
                            for _ in 0..<changes {
                                await counter.increment()
                                signal.signal()
                                if Bool.random() { await Task.yield() }
                            }
                        }
                    }
                }
            }
            #expect(allSeen, "\(readers) readers, \(writers)×\(changes) changes: a reader missed the last change")
            #expect(signal.waiterCount == 0)
        }
    }

    /// The same without an actor: the ticket is read before the state, so a change after the
    /// read moves the version and the wait returns.
    @Test func noLostWakeUpWhenTheTicketIsTakenBeforeTheCheck() async {
        await propertyCheck(count: 60, input: Gen.int(in: 1...40), Gen.int(in: 1...300)) { readers, changes in
            let value = LockedBox(0)
            let signal = ChangeSignal()
            let allSeen = await finishes(within: .seconds(20)) {
                await withTaskGroup(of: Void.self) { group in
                    for _ in 0..<readers {
                        group.addTask {
                            while true {
                                let ticket = signal.version
                                if value.value >= changes { return }
                                await signal.wait(after: ticket, timeoutMs: 60_000)
                            }
                        }
                    }
                    group.addTask {
                        for _ in 0..<changes {
                            value.update { $0 += 1 }
                            signal.signal()
                        }
                    }
                }
            }
            #expect(allSeen)
        }
    }

    /// Timeouts, signals and cancellations racing each other never leave a waiter behind.
    @Test func racingTimeoutsSignalsAndCancellationLeaveNoWaiter() async {
        let signal = ChangeSignal()
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<200 {
                group.addTask {
                    let waiter = Task { await signal.wait(after: signal.version, timeoutMs: Int64(index % 5)) }
                    if index.isMultiple(of: 3) { waiter.cancel() }
                    if index.isMultiple(of: 7) { signal.signal() }
                    await waiter.value
                }
            }
        }
        #expect(signal.waiterCount == 0)
    }
}

private actor Counter {
    private var value = 0

    func increment() { value += 1 }

    /// The value and the signal's version in one actor turn.
    func read(_ signal: ChangeSignal) -> (Int, UInt64) { (value, signal.version) }
}
