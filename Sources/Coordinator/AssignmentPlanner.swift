import MMCore

/// Symbol → node as a pure function of (live member set, symbols): rendezvous
/// (highest-random-weight) hashing with a load bound.
///
/// Every (symbol, node) pair gets a pseudo-random weight from a fixed hash (FNV-1a + a
/// SplitMix64 finaliser, never Swift's per-process seeded `Hasher`, so every process and
/// every restart computes the same table). A symbol goes to its heaviest node unless that
/// node already holds `capacity` symbols, in which case it goes to its heaviest node with
/// room ("spilled"). Symbols are placed in name order, so the order itself never depends on
/// membership. See docs/architecture/coordinator.md for the movement argument.
public enum AssignmentPlanner {
    /// The most symbols one node may hold: ceil(S/N) + 1. The +1 of slack keeps the bound from
    /// binding for most member sets, and a non-binding bound means plain rendezvous movement.
    public static func capacity(symbolCount: Int, nodeCount: Int) -> Int {
        guard nodeCount > 0 else { return 0 }
        return (symbolCount + nodeCount - 1) / nodeCount + 1
    }

    /// The table for `nodes` (order and duplicates do not matter). Empty when no node is live.
    public static func assign(symbols: [String], nodes: some Sequence<String>) -> [String: String] {
        let nodeNames = Array(Set(nodes)).sorted()
        guard !nodeNames.isEmpty else { return [:] }
        let nodeHashes = nodeNames.map(stableHash)
        let capacity = capacity(symbolCount: symbols.count, nodeCount: nodeNames.count)
        var load = [Int](repeating: 0, count: nodeNames.count)
        var table: [String: String] = [:]
        table.reserveCapacity(symbols.count)
        for symbol in Array(Set(symbols)).sorted() {
            let symbolHash = stableHash(symbol)
            // One pass finds the heaviest node with room; ties (practically impossible with
            // 64-bit weights) go to the smaller name because the names are sorted.
            var best = -1
            var bestWeight: UInt64 = 0
            for index in nodeNames.indices where load[index] < capacity {
                let weight = Self.weight(symbolHash: symbolHash, nodeHash: nodeHashes[index])
                if best < 0 || weight > bestWeight {
                    best = index
                    bestWeight = weight
                }
            }
            // capacity * N ≥ S + N, so some node always has room.
            load[best] += 1
            table[symbol] = nodeNames[best]
        }
        return table
    }

    /// The symbol's heaviest node, ignoring load: where plain rendezvous hashing would put it.
    public static func preferredNode(symbol: String, nodes: some Sequence<String>) -> String? {
        let symbolHash = stableHash(symbol)
        var best: (node: String, weight: UInt64)?
        for node in Set(nodes).sorted() {
            let weight = weight(symbolHash: symbolHash, nodeHash: stableHash(node))
            if best == nil || weight > best!.weight { best = (node, weight) }
        }
        return best?.node
    }

    /// The moved symbols between two tables as "SYMBOL:from→to" ("-" for none), sorted.
    public static func moves(from old: [String: String], to new: [String: String]) -> [String] {
        Set(old.keys).union(new.keys).sorted().compactMap { symbol in
            let before = old[symbol]
            let after = new[symbol]
            guard before != after else { return nil }
            return "\(symbol):\(before ?? "-")→\(after ?? "-")"
        }
    }

    static func weight(symbolHash: UInt64, nodeHash: UInt64) -> UInt64 {
        mix(symbolHash ^ (nodeHash &* 0x9E37_79B9_7F4A_7C15))
    }

    /// FNV-1a over the UTF-8 bytes, finalised: stable across processes, platforms and releases.
    static func stableHash(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return mix(hash)
    }

    /// SplitMix64's finaliser: every input bit affects every output bit.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
