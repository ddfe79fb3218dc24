import AsyncPrimitives
import Testing

@Suite struct AsyncFIFOLockTests {
    @Test func excludesAcrossSuspensionPoints() async {
        let lock = AsyncFIFOLock()
        let inside = LockedBox(0)
        let mostInside = LockedBox(0)
        let entries = LockedBox(0)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<64 {
                group.addTask {
                    await lock.withLock {
                        let now = inside.update { value -> Int in
                            value += 1
                            return value
                        }
                        mostInside.update { $0 = max($0, now) }
                        // Suspends while holding the lock, as a store write would.
                        await Task.yield()
                        try? await Task.sleep(for: .microseconds(100))
                        inside.update { $0 -= 1 }
                        entries.update { $0 += 1 }
                    }
                }
            }
        }
        #expect(mostInside.value == 1)
        #expect(entries.value == 64)
        #expect(!lock.isLocked)
    }

    @Test func handsTheLockOverInArrivalOrder() async {
        let lock = AsyncFIFOLock()
        let order = LockedBox<[Int]>([])
        await lock.lock()
        var waiters: [Task<Void, Never>] = []
        for index in 0..<100 {
            waiters.append(Task {
                await lock.lock()
                order.update { $0.append(index) }
                lock.unlock()
            })
            // Each waiter is queued before the next one starts, so arrival order is known.
            #expect(await eventually { lock.queuedCount == index + 1 })
        }
        lock.unlock()
        for waiter in waiters { await waiter.value }
        #expect(order.value == Array(0..<100))
        #expect(!lock.isLocked)
        #expect(lock.queuedCount == 0)
    }

    @Test func unlockHandsOffSoANewcomerCannotOvertake() async {
        let lock = AsyncFIFOLock()
        let order = LockedBox<[String]>([])
        await lock.lock()
        let first = Task {
            await lock.withLock { order.update { $0.append("queued") } }
        }
        #expect(await eventually { lock.queuedCount == 1 })
        lock.unlock()
        // Handed to the queued waiter, never free in between.
        #expect(lock.isLocked)
        await lock.withLock { order.update { $0.append("newcomer") } }
        await first.value
        #expect(order.value == ["queued", "newcomer"])
    }

    @Test func withLockReleasesWhenTheBodyThrows() async {
        struct Failed: Error {}
        let lock = AsyncFIFOLock()
        await #expect(throws: Failed.self) {
            try await lock.withLock { () async throws(Failed) in throw Failed() }
        }
        #expect(!lock.isLocked)
        let value = await lock.withLock { 42 }
        #expect(value == 42)
    }

    @Test func withLockRunsOnTheCallersActor() async {
        let account = Account()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<50 { group.addTask { await account.deposit(1) } }
        }
        #expect(await account.balance == 50)
        #expect(await account.maxInFlight == 1)
    }
}

/// An actor whose read-modify-write spans a suspension, made atomic by the lock.
private actor Account {
    private let lock = AsyncFIFOLock()
    private(set) var balance = 0
    private var inFlight = 0
    private(set) var maxInFlight = 0

    func deposit(_ amount: Int) async {
        await lock.withLock {
            inFlight += 1
            maxInFlight = max(maxInFlight, inFlight)
            let read = balance
            await Task.yield()
            balance = read + amount
            inFlight -= 1
        }
    }
}
