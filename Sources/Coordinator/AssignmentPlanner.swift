import MMCore

/// Symbol → node as a pure function of (live member set, symbols): rendezvous
/// (highest-random-weight) hashing with an exact load bound.
///
/// Every (symbol, node) pair gets a pseudo-random weight from a fixed hash (FNV-1a + a
/// SplitMix64 finaliser, never Swift's per-process seeded `Hasher`, so every process and
/// every restart computes the same table). With S symbols on N nodes, every node holds
/// floor(S/N) or ceil(S/N) symbols, so max − min ≤ 1: a symbol goes to its heaviest node with
/// room, where a node has room below floor(S/N), or at floor(S/N) while fewer than S mod N
/// nodes have taken the extra one ("spilled" when that is not its heaviest node overall).
/// Symbols are placed in name order, so the order itself never depends on membership. See
/// docs/architecture/coordinator.md for the movement argument.
public enum AssignmentPlanner {
    /// The most symbols one node may hold: ceil(S/N). Exactly S mod N nodes hold that many
    /// when it is not a whole division; the rest hold floor(S/N).
    public static func capacity(symbolCount: Int, nodeCount: Int) -> Int {
        guard nodeCount > 0 else { return 0 }
        return (symbolCount + nodeCount - 1) / nodeCount
    }

    /// The table for `nodes` (order and duplicates do not matter). Empty when no node is live.
    public static func assign(symbols: [String], nodes: some Sequence<String>) -> [String: String] {
        let nodeNames = Array(Set(nodes)).sorted()
        guard !nodeNames.isEmpty else { return [:] }
        let nodeHashes = nodeNames.map(stableHash)
        let placed = Array(Set(symbols)).sorted()
        let floorLoad = placed.count / nodeNames.count
        // How many nodes may still take one symbol beyond floorLoad. The free slots always
        // equal the symbols left to place (N·floor + S mod N = S), so some node has room for
        // every symbol.
        var extraSlots = placed.count % nodeNames.count
        var load = [Int](repeating: 0, count: nodeNames.count)
        var table: [String: String] = [:]
        table.reserveCapacity(placed.count)
        for symbol in placed {
            let symbolHash = stableHash(symbol)
            // One pass finds the heaviest node with room; ties (practically impossible with
            // 64-bit weights) go to the smaller name because the names are sorted.
            var best = -1
            var bestWeight: UInt64 = 0
            for index in nodeNames.indices where load[index] < floorLoad || (load[index] == floorLoad && extraSlots > 0) {
                let weight = Self.weight(symbolHash: symbolHash, nodeHash: nodeHashes[index])
                if best < 0 || weight > bestWeight {
                    best = index
                    bestWeight = weight
                }
            }
            if load[best] == floorLoad { extraSlots -= 1 }
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
