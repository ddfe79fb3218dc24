import Foundation
import MMCore
import Testing

@Suite struct GrantSignerTests {
    let signer = GrantSigner(keyHex: "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")

    @Test func signedGrantVerifies() {
        let grant = signer.sign(symbol: "ACME", node: "n1", fencingToken: 3, grantedAtMs: 1_000, expiresAtMs: 3_000)
        #expect(signer.verify(grant, node: "n1", symbol: "ACME", nowMs: 2_999) == .valid)
    }

    @Test func expiredGrantIsExpired() {
        let grant = signer.sign(symbol: "ACME", node: "n1", fencingToken: 3, grantedAtMs: 1_000, expiresAtMs: 3_000)
        #expect(signer.verify(grant, node: "n1", symbol: "ACME", nowMs: 3_000) == .expired)
    }

    /// Any edit to a signed field, a borrowed grant or another key's signature is invalid.
    @Test(arguments: ["token", "expiry", "node", "symbol", "signature", "key", "garbage"])
    func tamperingIsDetected(kind: String) {
        var grant = signer.sign(symbol: "ACME", node: "n1", fencingToken: 3, grantedAtMs: 1_000, expiresAtMs: 3_000)
        var node = "n1", symbol = "ACME"
        switch kind {
        case "token": grant.fencingToken = 4
        case "expiry": grant.expiresAtMs += 60_000
        case "node": node = "n2"
        case "symbol": symbol = "BOLT"
        case "signature": grant.signature = String(grant.signature.reversed())
        case "key": grant = GrantSigner(keyHex: "ff").sign(symbol: "ACME", node: "n1", fencingToken: 3, grantedAtMs: 1_000, expiresAtMs: 3_000)
        default: grant.signature = "not hex at all"
        }
        guard case .invalid = signer.verify(grant, node: node, symbol: symbol, nowMs: 2_000) else {
            Issue.record("\(kind) tampering was accepted")
            return
        }
    }
}

@Suite struct RoleTokenTests {
    @Test func tokensAreWrittenPrivatelyAndIdentifyTheirRole() throws {
        let directory = DataDirectory(NSTemporaryDirectory() + "mm-tokens-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let tokens = try RoleTokens.generate(in: directory)
        let attributes = try FileManager.default.attributesOfItem(atPath: directory.tokensDirectory)
        #expect((attributes[.posixPermissions] as? Int) == 0o700)
        for role in Role.sharedTokenRoles {
            let fileAttributes = try FileManager.default.attributesOfItem(atPath: directory.tokenPath(role))
            #expect((fileAttributes[.posixPermissions] as? Int) == 0o600, "\(role)")
            let token = try #require(tokens.token(for: role))
            #expect(token.count == 64)
            #expect(tokens.caller(forToken: token) == Caller(role: role))
        }
        for path in [directory.nodeIdentityKeyPath, directory.grantKeyPath] {
            #expect((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) == 0o600, "\(path)")
        }
        // No shared node token: a node is known only by its own.
        #expect(tokens.token(for: .node) == nil)
        #expect(!FileManager.default.fileExists(atPath: directory.tokenPath(.node)))
        #expect(Set(Role.sharedTokenRoles.compactMap { tokens.token(for: $0) }).count == Role.sharedTokenRoles.count, "every role has its own token")
        let loaded = try RoleTokens.load(from: directory)
        #expect(loaded.tokens == tokens.tokens)
        #expect(loaded.nodeToken(for: "n7") == tokens.nodeToken(for: "n7"))
        #expect(tokens.role(forToken: "") == nil)
        #expect(tokens.role(forToken: String(tokens.token(for: .observer)!.dropLast())) == nil)
    }

    /// A node token names its node; every way of turning one into another node's is refused.
    @Test func aNodeTokenNamesItsNodeAndCannotBeBent() throws {
        let tokens = RoleTokens(tokens: [.observer: String(repeating: "a", count: 64)], nodeIdentity: NodeIdentity(keyHex: String(repeating: "5e", count: 32)))
        let n1 = try #require(tokens.nodeToken(for: "n1"))
        #expect(n1.hasPrefix("node.n1.") && n1.count == "node.n1.".count + 64)
        #expect(tokens.caller(forToken: n1) == Caller(role: .node, node: "n1"))
        #expect(tokens.caller(forToken: try #require(tokens.nodeToken(for: "edge-7"))) == Caller(role: .node, node: "edge-7"))
        #expect(tokens.nodeToken(for: "n1") != tokens.nodeToken(for: "n2"))
        let mac = String(n1.dropFirst("node.n1.".count))
        let foreign = NodeIdentity(keyHex: String(repeating: "77", count: 32)).token(for: "n1")
        let bent = [
            "node.n2." + mac,                          // another node's id on n1's MAC
            "node.n1." + String(mac.dropLast()),        // truncated
            "node.n1." + String(mac.dropLast()) + (mac.last == "0" ? "1" : "0"), // one digit changed
            "node.n1." + mac.uppercased(),              // only the canonical (lowercase) form is the token
            foreign,                                    // right shape, other cluster's key
            "node.N1." + mac, "node..\(mac)", "node.n1", "node.", "node.n1.zz",
        ]
        for token in bent {
            #expect(tokens.caller(forToken: token) == nil, "\(token) was accepted")
        }
        // A process without the key (a node given only its own token) verifies nobody.
        let keyless = RoleTokens(tokens: [:])
        #expect(keyless.caller(forToken: n1) == nil)
        #expect(keyless.nodeToken(for: "n1") == nil)
    }

    @Test func regeneratingRotatesEveryToken() throws {
        let directory = DataDirectory(NSTemporaryDirectory() + "mm-tokens-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let first = try RoleTokens.generate(in: directory)
        let second = try RoleTokens.generate(in: directory)
        for role in Role.sharedTokenRoles { #expect(first.token(for: role) != second.token(for: role)) }
        #expect(first.nodeToken(for: "n1") != second.nodeToken(for: "n1"))
        #expect(second.caller(forToken: first.nodeToken(for: "n1")!) == nil, "an old node token outlived the regeneration")
    }

    @Test func missingTokenFileNamesTheFile() {
        let directory = DataDirectory(NSTemporaryDirectory() + "mm-tokens-\(UUID().uuidString)")
        do {
            _ = try RoleTokens.load(from: directory)
            Issue.record("loading from an empty directory must fail")
        } catch {
            #expect("\(error)".contains(directory.tokenPath(.exchange)))
        }
    }
}
