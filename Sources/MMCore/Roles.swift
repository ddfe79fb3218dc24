import Crypto
import Foundation

/// Who a caller is, proven by its bearer token. Every role but `node` has one token per
/// cluster; each node has a token of its own that names its id (see `NodeIdentity`).
public enum Role: String, Codable, Sendable, CaseIterable {
    case exchange, state, coordinator, node, observer, supervisor

    /// The roles with one shared token each (DATA_DIR/tokens/ROLE).
    public static let sharedTokenRoles: [Role] = allCases.filter { $0 != .node }
}

/// The caller a bearer token proves: its role and, for a node, the node id its token names.
public struct Caller: Sendable, Hashable {
    public let role: Role
    /// Set for `.node` callers only: node-scoped requests must name this node.
    public let node: String?

    public init(role: Role, node: String? = nil) {
        self.role = role
        self.node = node
    }
}

/// Per-node tokens: `node.<id>.<hex HMAC-SHA256(key, "mm-node-identity.v1|<id>")>`. A service
/// holding the key checks any node's token without a list of nodes (nodes added at run time
/// need nothing provisioned), and a node holding only its own token cannot act as another:
/// forging one needs the key.
public struct NodeIdentity: Sendable {
    public static let prefix = "node."
    // SymmetricKey is not Sendable; the raw bytes are, and a key is cheap to rebuild.
    private let keyBytes: [UInt8]

    public init(keyHex: String) {
        keyBytes = Array(keyHex.utf8)
    }

    public func token(for node: String) -> String {
        Self.prefix + node + "." + mac(node).lowercaseHex
    }

    /// The node id `presented` names, if it is exactly that node's token under this key.
    public func node(forToken presented: some StringProtocol) -> String? {
        let bytes = Array(presented.utf8)
        let prefix = Array(Self.prefix.utf8)
        guard bytes.starts(with: prefix), let dot = bytes.lastIndex(of: UInt8(ascii: ".")), dot > prefix.count else { return nil }
        let node = String(decoding: bytes[prefix.count..<dot], as: UTF8.self)
        guard NodeID.isValid(node) else { return nil }
        return constantTimeEqual(bytes, Array(token(for: node).utf8)) ? node : nil
    }

    private func mac(_ node: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Data("mm-node-identity.v1|\(node)".utf8), using: SymmetricKey(data: keyBytes)))
    }
}

/// The tokens of one cluster, read from (or written to) `DATA_DIR/tokens/`: one per shared
/// role, and the node-identity key from which each node's own token is derived.
public struct RoleTokens: Sendable {
    public let tokens: [Role: String]
    public let nodeIdentity: NodeIdentity?
    /// Node tokens held as such (a host given only its own nodes' tokens by `mmctl secrets
    /// export`, without the key that derives them), by node id.
    public let nodeTokens: [String: String]
    /// Other sets accepted too, never presented: during a rotation (`mmctl secrets rotate`)
    /// the staged next set, then the retiring previous one.
    public let alsoAccepted: [RoleTokens]
    /// The tokens' bytes, converted once: every request is checked against all of them.
    private let expectedBytes: [(role: Role, bytes: [UInt8])]

    public init(tokens: [Role: String], nodeIdentity: NodeIdentity? = nil, nodeTokens: [String: String] = [:], alsoAccepted: [RoleTokens] = []) {
        self.tokens = tokens.filter { $0.key != .node }
        self.nodeIdentity = nodeIdentity
        self.nodeTokens = nodeTokens
        self.alsoAccepted = alsoAccepted
        self.expectedBytes = Role.sharedTokenRoles.compactMap { role in tokens[role].map { (role, Array($0.utf8)) } }
    }

    /// A shared role's token; nil for `.node`, whose tokens are per node (`nodeToken(for:)`).
    public func token(for role: Role) -> String? { tokens[role] }

    /// Node `node`'s own token (nil when this process does not hold the node-identity key).
    public func nodeToken(for node: String) -> String? { nodeIdentity?.token(for: node) ?? nodeTokens[node] }

    /// The token a caller of `role` presents: the role's shared one, or for `.node` the one
    /// naming node `node`.
    public func token(for role: Role, node: String) -> String? {
        role == .node ? nodeToken(for: node) : token(for: role)
    }

    /// The role whose token equals `presented`.
    public func role(forToken presented: some StringProtocol) -> Role? { caller(forToken: presented)?.role }

    /// Who `presented` proves the caller to be. Shared role tokens are compared in constant
    /// time against every role, so the time taken reveals neither which role nor how many
    /// bytes matched; a node token is recomputed from its id and compared in constant time.
    public func caller(forToken presented: some StringProtocol) -> Caller? {
        if let caller = ownCaller(forToken: presented) { return caller }
        for set in alsoAccepted { if let caller = set.ownCaller(forToken: presented) { return caller } }
        return nil
    }

    private func ownCaller(forToken presented: some StringProtocol) -> Caller? {
        if presented.hasPrefix(NodeIdentity.prefix) {
            return nodeIdentity?.node(forToken: presented).map { Caller(role: .node, node: $0) }
        }
        var found: Role?
        let presentedBytes = Array(presented.utf8)
        for expected in expectedBytes where constantTimeEqual(expected.bytes, presentedBytes) { found = expected.role }
        return found.map { Caller(role: $0) }
    }

    /// Fresh random tokens for every shared role, a node-identity key and a grant-signing
    /// key (256 bits each), written with mode 0600.
    @discardableResult
    public static func generate(in dataDirectory: DataDirectory) throws -> RoleTokens {
        try dataDirectory.ensureTokensDirectory()
        var tokens: [Role: String] = [:]
        for role in Role.sharedTokenRoles {
            let token = randomHex(bytes: 32)
            try dataDirectory.writeSecret(token, to: dataDirectory.tokenPath(role))
            tokens[role] = token
        }
        let identityKey = randomHex(bytes: 32)
        try dataDirectory.writeSecret(identityKey, to: dataDirectory.nodeIdentityKeyPath)
        // A shared node token from an older version would still be on disk: nothing accepts it.
        try? FileManager.default.removeItem(atPath: dataDirectory.tokenPath(.node))
        try dataDirectory.writeSecret(randomHex(bytes: 32), to: dataDirectory.grantKeyPath)
        return RoleTokens(tokens: tokens, nodeIdentity: NodeIdentity(keyHex: identityKey))
    }

    /// Reads what `mmctl secrets import` gave this host: the shared tokens present, the
    /// node-identity key if present, and any node tokens under tokens/nodes/. A host holds only
    /// what its processes need (`ClusterSecrets.needs`), so absent files are not an error here.
    /// A rotation's next and previous sets, when present, are accepted as well.
    public static func loadProvisioned(from dataDirectory: DataDirectory) throws -> RoleTokens {
        let current = try loadSet(dataDirectory, directory: ClusterSecrets.TokenSet.current.directory(in: dataDirectory))
        var others: [RoleTokens] = []
        for set in [ClusterSecrets.TokenSet.next, .previous] where FileManager.default.fileExists(atPath: set.directory(in: dataDirectory)) {
            others.append(try loadSet(dataDirectory, directory: set.directory(in: dataDirectory)))
        }
        return RoleTokens(tokens: current.tokens, nodeIdentity: current.nodeIdentity, nodeTokens: current.nodeTokens, alsoAccepted: others)
    }

    /// One set's files in `directory` (DATA_DIR/tokens, or its next/ or previous/).
    static func loadSet(_ dataDirectory: DataDirectory, directory: String) throws -> RoleTokens {
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        var tokens: [Role: String] = [:]
        for role in Role.sharedTokenRoles where FileManager.default.fileExists(atPath: path(role.rawValue)) {
            tokens[role] = try dataDirectory.readSecret(path(role.rawValue))
        }
        let identity = FileManager.default.fileExists(atPath: path("node-identity.key"))
            ? NodeIdentity(keyHex: try dataDirectory.readSecret(path("node-identity.key"))) : nil
        var nodeTokens: [String: String] = [:]
        for node in (try? FileManager.default.contentsOfDirectory(atPath: path("nodes"))) ?? [] where NodeID.isValid(node) {
            nodeTokens[node] = try dataDirectory.readSecret(path("nodes/\(node)"))
        }
        return RoleTokens(tokens: tokens, nodeIdentity: identity, nodeTokens: nodeTokens)
    }

    /// Reads every shared role's token and the node-identity key. Missing files are an error
    /// naming the file, because a service started without them could not authenticate anyone.
    public static func load(from dataDirectory: DataDirectory) throws -> RoleTokens {
        var tokens: [Role: String] = [:]
        for role in Role.sharedTokenRoles {
            tokens[role] = try dataDirectory.readSecret(dataDirectory.tokenPath(role))
        }
        return RoleTokens(tokens: tokens, nodeIdentity: NodeIdentity(keyHex: try dataDirectory.readSecret(dataDirectory.nodeIdentityKeyPath)))
    }

    /// Loads the tokens, generating them first when the directory has none (a service
    /// started by hand, outside `mmctl start`).
    public static func loadOrGenerate(in dataDirectory: DataDirectory) throws -> RoleTokens {
        if ClusterSecrets.isProvisioned(dataDirectory) { return try loadProvisioned(from: dataDirectory) }
        if FileManager.default.fileExists(atPath: dataDirectory.tokenPath(.supervisor)),
           FileManager.default.fileExists(atPath: dataDirectory.nodeIdentityKeyPath),
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

extension Array<UInt8> {
    /// Parses lowercase (or uppercase) hex, two digits per byte; nil for anything else.
    public init?(lowercaseHex text: String) {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        func value(_ digit: UInt8) -> UInt8? {
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = value(utf8[index]), let low = value(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        self = bytes
    }
}
