import Foundation
import MMCore
import ServiceLifecycle
import Synchronization

/// Group commit: the exchange actor enqueues records in the order it applies them (a cheap,
/// synchronous call), and one flush loop writes whatever has accumulated in a single
/// transaction, then releases every request waiting for those records. While one batch is
/// being fsynced the next one fills up, so the batch size adapts to the load: one record
/// per transaction when idle (lowest latency), hundreds under load (one fsync for all).
public final class GroupCommitter: Sendable {
    private struct State {
        var pending: [JournalRecord] = []
        var pendingFills: [StoredFill] = []
        var durableSeq: Int64 = 0
        var waiters: [(seq: Int64, continuation: CheckedContinuation<Void, any Error>)] = []
        var failure: String?
    }

    public let journal: any ExchangeJournal
    private let state: Mutex<State>
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    /// Told how long each batch took to become durable (the journal-commit latency metric).
    private let recordCommit: @Sendable (Duration) -> Void

    public init(journal: any ExchangeJournal, durableSeq: Int64, recordCommit: @escaping @Sendable (Duration) -> Void = { _ in }) {
        self.journal = journal
        self.recordCommit = recordCommit
        var initial = State()
        initial.durableSeq = durableSeq
        state = Mutex(initial)
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Records must arrive with consecutive seqs, in the order they were applied, each with
    /// the fills it made (stored in the same transaction).
    public func enqueue(_ record: JournalRecord, fills: [StoredFill] = []) {
        state.withLock {
            $0.pending.append(record)
            $0.pendingFills.append(contentsOf: fills)
        }
        wake.yield()
    }

    public var durableSeq: Int64 { state.withLock { $0.durableSeq } }

    /// Returns once `seq` is durable; throws if the journal failed (the command's effect
    /// must then not be acknowledged).
    public func waitDurable(_ seq: Int64) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let outcome: Result<Void, any Error>? = state.withLock { state in
                if let failure = state.failure { return .failure(APIError.unavailable("journal failed: \(failure); the exchange is restarting")) }
                if seq <= state.durableSeq { return .success(()) }
                state.waiters.append((seq, continuation))
                return nil
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }

    /// The flush loop. Runs until graceful shutdown, then writes what is still pending.
    /// A failed write is fatal: memory is ahead of the disk, so the process must exit and
    /// replay (the supervisor restarts it).
    public func run(onDurable: @escaping @Sendable (Int64) async -> Void) async throws {
        try await withGracefulShutdownHandler {
            for await _ in wakeups {
                try await flush(onDurable: onDurable)
            }
            try await flush(onDurable: onDurable)
        } onGracefulShutdown: {
            self.wake.finish()
        }
    }

    /// Writes everything pending now as one transaction.
    public func flush(onDurable: @Sendable (Int64) async -> Void) async throws {
        while true {
            let (batch, fills) = state.withLock { state -> ([JournalRecord], [StoredFill]) in
                defer {
                    state.pending.removeAll(keepingCapacity: true)
                    state.pendingFills.removeAll(keepingCapacity: true)
                }
                return (state.pending, state.pendingFills)
            }
            guard let last = batch.last else { return }
            do {
                let started = ContinuousClock.now
                try await journal.append(batch, fills: fills)
                recordCommit(ContinuousClock.now - started)
            } catch {
                let waiters = state.withLock { state in
                    state.failure = "\(error)"
                    defer { state.waiters.removeAll() }
                    return state.waiters
                }
                for waiter in waiters { waiter.continuation.resume(throwing: APIError.unavailable("journal write failed: \(error)")) }
                throw error
            }
            let released = state.withLock { state in
                state.durableSeq = last.seq
                let (done, waiting) = state.waiters.reduce(into: ([CheckedContinuation<Void, any Error>](), [(seq: Int64, continuation: CheckedContinuation<Void, any Error>)]())) { result, waiter in
                    if waiter.seq <= last.seq { result.0.append(waiter.continuation) } else { result.1.append(waiter) }
                }
                state.waiters = waiting
                return done
            }
            await onDurable(last.seq)
            for continuation in released { continuation.resume() }
        }
    }
}
