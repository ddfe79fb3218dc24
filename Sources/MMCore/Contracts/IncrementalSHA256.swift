import Crypto
import Foundation

/// SHA-256 that can be fed piece by piece and read at any point without being consumed.
/// Not Sendable: it owns a running hash state, confined to one task (an actor's or a loop's).
public struct IncrementalSHA256 {
    private var hasher = SHA256()

    public init() {}

    public mutating func update(_ data: Data) { hasher.update(data: data) }

    public func hexDigest() -> String {
        hasher.finalize().lowercaseHex
    }
}
