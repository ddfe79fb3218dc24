import Crypto
import Foundation

/// Signs and verifies authority grants with the key the coordinator shares with the exchange,
/// so the exchange can check a grant without calling the coordinator and no node can invent
/// a token, borrow another node's grant or stretch an expiry.
public struct GrantSigner: Sendable {
    // SymmetricKey is not Sendable; the raw bytes are, and a key is cheap to rebuild.
    private let keyBytes: [UInt8]
    private var key: SymmetricKey { SymmetricKey(data: keyBytes) }

    public init(keyHex: String) {
        self.keyBytes = Array(keyHex.utf8)
    }

    public init(dataDirectory: DataDirectory) throws {
        self.init(keyHex: try dataDirectory.readSecret(dataDirectory.grantKeyPath))
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
        return HMAC<SHA256>.isValidAuthenticationCode(presented, authenticating: message, using: key)
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
