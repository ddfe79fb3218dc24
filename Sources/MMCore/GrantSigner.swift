import Crypto
import Foundation
import Synchronization

/// Signs and verifies authority grants with the key the coordinator shares with the exchange,
/// so the exchange can check a grant without calling the coordinator and no node can invent
/// a token, borrow another node's grant or stretch an expiry.
///
/// During a secrets rotation (`mmctl secrets rotate`) it signs with the current key and
/// accepts grants signed with the staged next key or the retiring previous one too, so a
/// coordinator and an exchange that reload the rotated secrets at different moments keep
/// agreeing. Copies share their keys: `reload` updates every copy.
public struct GrantSigner: Sendable {
    // SymmetricKey is not Sendable; the raw bytes are, and a key is cheap to rebuild.
    private let keys: KeyRing
    private var key: SymmetricKey { SymmetricKey(data: keys.current[0]) }

    private final class KeyRing: Sendable {
        private let state: Mutex<[[UInt8]]>
        init(_ keys: [[UInt8]]) { state = Mutex(keys) }
        /// The signing key first, then the others accepted.
        var current: [[UInt8]] { state.withLock { $0 } }
        func replace(_ keys: [[UInt8]]) { state.withLock { $0 = keys } }
    }

    public init(keyHex: String) {
        self.keys = KeyRing([Array(keyHex.utf8)])
    }

    public init(dataDirectory: DataDirectory) throws {
        self.keys = KeyRing(try Self.keys(in: dataDirectory))
    }

    /// The current key, then a rotation's next and previous keys when present.
    static func keys(in dataDirectory: DataDirectory) throws -> [[UInt8]] {
        var keys = [Array(try dataDirectory.readSecret(dataDirectory.grantKeyPath).utf8)]
        for set in [ClusterSecrets.TokenSet.next, .previous] {
            let path = (set.directory(in: dataDirectory) as NSString).appendingPathComponent("grant-signing.key")
            if FileManager.default.fileExists(atPath: path) { keys.append(Array(try dataDirectory.readSecret(path).utf8)) }
        }
        return keys
    }

    /// Picks up rotated keys (the secrets reload). Keeps the old keys when the files cannot be read.
    public func reload(from dataDirectory: DataDirectory) throws {
        keys.replace(try Self.keys(in: dataDirectory))
    }

    /// Every signed field, in a fixed order, unambiguously delimited (symbols and node ids
    /// cannot contain '|', see `ClusterConfig.validate` and `NodeID`).
    public static func canonicalBytes(symbol: String, node: String, fencingToken: Int64, grantedAtMs: Int64, expiresAtMs: Int64) -> Data {
        Data("grant.v1|\(symbol)|\(node)|\(fencingToken)|\(grantedAtMs)|\(expiresAtMs)".utf8)
    }

    public func sign(symbol: String, node: String, fencingToken: Int64, grantedAtMs: Int64, expiresAtMs: Int64) -> AuthorityGrant {
        let message = Self.canonicalBytes(symbol: symbol, node: node, fencingToken: fencingToken, grantedAtMs: grantedAtMs, expiresAtMs: expiresAtMs)
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: key)
        return AuthorityGrant(
            symbol: symbol, node: node, fencingToken: fencingToken, grantedAtMs: grantedAtMs,
            expiresAtMs: expiresAtMs, signature: Data(mac).lowercaseHex)
    }

    /// True when the signature covers exactly these fields (constant-time comparison).
    public func isAuthentic(_ grant: AuthorityGrant) -> Bool {
        guard let presented = Data(hexString: grant.signature) else { return false }
        let message = Self.canonicalBytes(
            symbol: grant.symbol, node: grant.node, fencingToken: grant.fencingToken,
            grantedAtMs: grant.grantedAtMs, expiresAtMs: grant.expiresAtMs)
        return keys.current.contains { HMAC<SHA256>.isValidAuthenticationCode(presented, authenticating: message, using: SymmetricKey(data: $0)) }
    }

    public enum Verdict: Sendable, Equatable {
        case valid
        /// Forged, altered, or for another node or symbol: 403 invalid_grant.
        case invalid(String)
        /// Authentic but past its expiry on the verifier's clock: 409 grant_expired.
        case expired
    }

    /// The exchange's full check of a fenced request (the fencing-token comparison is
    /// separate because it needs the exchange's per-symbol high-water mark).
    public func verify(_ grant: AuthorityGrant, node: String, symbol: String, nowMs: Int64) -> Verdict {
        guard isAuthentic(grant) else { return .invalid("grant signature does not verify") }
        guard grant.node == node else { return .invalid("grant belongs to node '\(grant.node)', not '\(node)'") }
        guard grant.symbol == symbol else { return .invalid("grant is for symbol '\(grant.symbol)', not '\(symbol)'") }
        guard nowMs < grant.expiresAtMs else { return .expired }
        return .valid
    }
}

extension Data {
    public init?(hexString: String) {
        let bytes = Array(hexString.utf8)
        guard bytes.count % 2 == 0 else { return nil }
        var data = Data(capacity: bytes.count / 2)
        var index = 0
        while index < bytes.count {
            guard let high = Self.nibble(bytes[index]), let low = Self.nibble(bytes[index + 1]) else { return nil }
            data.append(high << 4 | low)
            index += 2
        }
        self = data
    }

    private static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
