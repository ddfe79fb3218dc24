/// SplitMix64: tiny, fast and fully specified, so a price path, a flow order or a drill's
/// fault sequence computed today is bit-identical on any machine and Swift version (unlike
/// `Hasher`, seeded per process, or the standard library's generators, whose algorithms are
/// not promised). The one seeded generator of the project.
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

    /// Uniform in 0..<bound (bound > 0), by rejection so no index is favoured.
    public mutating func index(below bound: Int) -> Int {
        precondition(bound > 0)
        let limit = UInt64(bound)
        let threshold = (0 &- limit) % limit
        while true {
            let value = next()
            if value >= threshold { return Int(value % limit) }
        }
    }

    /// The value `next()` would return, without advancing.
    public func peek() -> UInt64 {
        var copy = self
        return copy.next()
    }
}
