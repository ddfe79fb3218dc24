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
        let tokens = try RoleTokens.generate(in: directory)
        let attributes = try FileManager.default.attributesOfItem(atPath: directory.tokensDirectory)
        #expect((attributes[.posixPermissions] as? Int) == 0o700)
        for role in Role.allCases {
            let fileAttributes = try FileManager.default.attributesOfItem(atPath: directory.tokenPath(role))
            #expect((fileAttributes[.posixPermissions] as? Int) == 0o600, "\(role)")
            let token = try #require(tokens.token(for: role))
            #expect(token.count == 64)
            #expect(tokens.role(forToken: token) == role)
        }
        #expect(Set(Role.allCases.compactMap { tokens.token(for: $0) }).count == Role.allCases.count, "every role has its own token")
        #expect(try RoleTokens.load(from: directory).tokens == tokens.tokens)
        #expect(tokens.role(forToken: "") == nil)
        #expect(tokens.role(forToken: String(tokens.token(for: .node)!.dropLast())) == nil)
    }

    @Test func regeneratingRotatesEveryToken() throws {
        let directory = DataDirectory(NSTemporaryDirectory() + "mm-tokens-\(UUID().uuidString)")
        let first = try RoleTokens.generate(in: directory)
        let second = try RoleTokens.generate(in: directory)
        for role in Role.allCases { #expect(first.token(for: role) != second.token(for: role)) }
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
