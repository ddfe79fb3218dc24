import Synchronization

/// A value shared between tasks and threads, guarded by a `Mutex`.
///
/// `Mutex` is the whole synchronisation: every access goes through `withLock`, so the class is
/// `Sendable` without an unchecked conformance. Use `update` for read-modify-write; a `value`
/// read followed by a `value` write is two critical sections, not one.
public final class LockedBox<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    public init(_ value: Value) { mutex = Mutex(value) }

    public var value: Value {
        get { mutex.withLock { $0 } }
        set { mutex.withLock { $0 = newValue } }
    }

    /// Runs `body` on the value under the lock and returns what it returns. `body` must not
    /// block or touch this box again (the lock is not recursive).
    @discardableResult
    public func update<Result: Sendable, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        try mutex.withLock { (value: inout Value) throws(Failure) -> Result in try body(&value) }
    }
}
