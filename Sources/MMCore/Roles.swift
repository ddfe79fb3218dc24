import Crypto
import Foundation

/// Who a caller is, proven by its bearer token. One token per role per cluster start.
public enum Role: String, Codable, Sendable, CaseIterable {
    case exchange, state, coordinator, node, observer, supervisor
}

/// The role tokens of one cluster, read from (or written to) `DATA_DIR/tokens/ROLE`.
public struct RoleTokens: Sendable {
    public let tokens: [Role: String]
    /// The tokens' bytes, converted once: every request is checked against all of them.
    private let expectedBytes: [(role: Role, bytes: [UInt8])]

    public init(tokens: [Role: String]) {
        self.tokens = tokens
        self.expectedBytes = Role.allCases.compactMap { role in tokens[role].map { (role, Array($0.utf8)) } }
    }

    public func token(for role: Role) -> String? { tokens[role] }

    /// The role whose token equals `presented`, compared in constant time against every role
    /// so the time taken reveals neither which role nor how many bytes matched.
    public func role(forToken presented: some StringProtocol) -> Role? {
        var found: Role?
        let presentedBytes = Array(presented.utf8)
        for expected in expectedBytes where constantTimeEqual(expected.bytes, presentedBytes) { found = expected.role }
        return found
    }

    /// Fresh random tokens for every role (256 bits each), written with mode 0600.
    @discardableResult
    public static func generate(in dataDirectory: DataDirectory) throws -> RoleTokens {
        try dataDirectory.ensureTokensDirectory()
        var tokens: [Role: String] = [:]
        for role in Role.allCases {
            let token = randomHex(bytes: 32)
            try dataDirectory.writeSecret(token, to: dataDirectory.tokenPath(role))
            tokens[role] = token
        }
        try dataDirectory.writeSecret(randomHex(bytes: 32), to: dataDirectory.grantKeyPath)
        return RoleTokens(tokens: tokens)
    }

    /// Reads every role's token. Missing files are an error naming the file, because a
    /// service started without them could not authenticate anyone.
    public static func load(from dataDirectory: DataDirectory) throws -> RoleTokens {
        var tokens: [Role: String] = [:]
        for role in Role.allCases {
            tokens[role] = try dataDirectory.readSecret(dataDirectory.tokenPath(role))
        }
        return RoleTokens(tokens: tokens)
    }

    /// Loads the tokens, generating them first when the directory has none (a service
    /// started by hand, outside `mmctl start`).
    public static func loadOrGenerate(in dataDirectory: DataDirectory) throws -> RoleTokens {
        if FileManager.default.fileExists(atPath: dataDirectory.tokenPath(.supervisor)),
           FileManager.default.fileExists(atPath: dataDirectory.grantKeyPath) {
            return try load(from: dataDirectory)
        }
        return try generate(in: dataDirectory)
    }
}

public func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    // Length is not secret (every token has the same length), the content is.
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
    return difference == 0
}

public func randomHex(bytes count: Int) -> String {
    var generator = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }.lowercaseHex
}

public func sha256Hex(_ data: some DataProtocol) -> String {
    SHA256.hash(data: data).lowercaseHex
}

extension Sequence<UInt8> {
    /// Two lowercase hex digits per byte. A table lookup, not `String(format:)`: this runs for
    /// every grant the coordinator signs, and Foundation's formatter was 9% of its CPU.
    public var lowercaseHex: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(underestimatedCount * 2)
        for byte in self {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
