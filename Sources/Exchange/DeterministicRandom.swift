import MMCore

/// SplitMix64: tiny, fast and fully specified, so a price path or a flow order computed
/// today is bit-identical on any machine and any Swift version (unlike `Hasher`, which is
/// seeded per process, or the stdlib generators, whose algorithms are not promised).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in 0..<bound without modulo bias worth caring about for bound ≪ 2^64
    /// (Lemire's multiply-shift).
    public mutating func below(_ bound: UInt64) -> UInt64 {
        precondition(bound > 0)
        return next().multipliedFullWidth(by: bound).high
    }

    /// One generator per (seed, stream, index): each draw is independent of every other
    /// index, so any tick or flow order can be recomputed on its own.
    public static func stream(seed: Int64, key: UInt64, index: Int64, salt: UInt64) -> SplitMix64 {
        var mixer = SplitMix64(seed: UInt64(bitPattern: seed) ^ salt)
        let a = mixer.next() ^ key
        var second = SplitMix64(seed: a)
        let b = second.next() ^ UInt64(bitPattern: index)
        return SplitMix64(seed: SplitMix64(seed: b).peek())
    }

    private func peek() -> UInt64 {
        var copy = self
        return copy.next()
    }
}

/// FNV-1a over the symbol's UTF-8 bytes: a stable per-symbol key.
public func stableSymbolKey(_ symbol: String) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in symbol.utf8 {
        hash ^= UInt64(byte)
        hash &*= 0x0000_0100_0000_01B3
    }
    return hash
}
