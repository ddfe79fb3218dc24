import MMCore

extension SplitMix64 {
    /// One generator per (seed, stream, index): each draw is independent of every other
    /// index, so any tick or flow order can be recomputed on its own.
    public static func stream(seed: Int64, key: UInt64, index: Int64, salt: UInt64) -> SplitMix64 {
        var mixer = SplitMix64(seed: UInt64(bitPattern: seed) ^ salt)
        let a = mixer.next() ^ key
        var second = SplitMix64(seed: a)
        let b = second.next() ^ UInt64(bitPattern: index)
        return SplitMix64(seed: SplitMix64(seed: b).peek())
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
