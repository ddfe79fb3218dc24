import Synchronization

/// A value shared between the refresher task and the HTTP handlers. `Mutex` is the whole
/// synchronisation: every access goes through `withLock`, so the class is `Sendable`
/// without any unchecked conformance.
final class LockedBox<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) { mutex = Mutex(value) }

    func get() -> Value { mutex.withLock { $0 } }
    func set(_ value: Value) { mutex.withLock { $0 = value } }
    @discardableResult
    func update<Result: Sendable>(_ body: (inout Value) -> Result) -> Result { mutex.withLock { body(&$0) } }
}
