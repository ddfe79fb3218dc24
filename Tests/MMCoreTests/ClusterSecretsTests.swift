import Foundation
import MMCore
import Testing

/// `mmctl secrets`: made once, each host given only what its processes need, a crafted file
/// refused, a multi-host start without them refused.
@Suite struct ClusterSecretsTests {
    func temporaryDirectory() -> DataDirectory {
        DataDirectory(NSTemporaryDirectory() + "mm-secrets-\(UUID().uuidString)")
    }

    func threeHosts() async throws -> ClusterConfig {
        try await ClusterConfig.load(path: nil, environment: [:], overrides: [
            "hosts.a": "10.77.0.1", "hosts.b": "10.77.0.2", "hosts.c": "10.77.0.3",
            "placement.nodes": "b,c", "placement.coordinator2": "c", "coordinator.backend": "etcd", "nodes.count": "4",
        ])
    }

    @Test func eachHostGetsOnlyWhatItsProcessesNeed() async throws {
        let config = try await threeHosts()
        let a = ClusterSecrets.needs(config: config, host: "a")
        #expect(a.sharedRoles == Set(Role.sharedTokenRoles))
        #expect(a.nodeIdentityKey && a.grantKey && a.nodes.isEmpty)
        // b runs nodes only: its nodes' own tokens, no key that makes other nodes' tokens,
        // no grant-signing key, no service tokens.
        let b = ClusterSecrets.needs(config: config, host: "b")
        #expect(b.sharedRoles == [.supervisor, .observer])
        #expect(!b.nodeIdentityKey && !b.grantKey)
        #expect(b.nodes.contains("n1") && b.nodes.contains("n3") && !b.nodes.contains("n2"))
        // c runs a coordinator replica: it signs grants and checks node tokens.
        let c = ClusterSecrets.needs(config: config, host: "c")
        #expect(c.grantKey && c.nodeIdentityKey)
    }

    @Test func exportThenImportGivesAWorkingPartialSet() async throws {
        let config = try await threeHosts()
        let admin = temporaryDirectory(), hostB = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: admin.path); try? FileManager.default.removeItem(atPath: hostB.path) }
        let full = try ClusterSecrets.initialize(in: admin, replace: false, nowMs: 1)
        #expect(throws: SecretsError.self) { try ClusterSecrets.initialize(in: admin, replace: false, nowMs: 2) }
        let bundle = try ClusterSecrets.export(from: admin, config: config, host: "b", nowMs: 3)
        #expect(bundle.files["tokens/grant-signing.key"] == nil)
        #expect(bundle.files["tokens/node-identity.key"] == nil)
        #expect(bundle.files["tokens/exchange"] == nil)
        try ClusterSecrets.importBundle(bundle, into: hostB, nowMs: 4)
        let tokens = try ClusterSecrets.tokensForStart(config: config, host: "b", dataDirectory: hostB)
        #expect(tokens.nodeToken(for: "n1") == full.nodeToken(for: "n1"))
        #expect(tokens.nodeToken(for: "n2") == nil)
        #expect(tokens.token(for: .supervisor) == full.token(for: .supervisor))
        #expect(tokens.token(for: .exchange) == nil)
        // The verifying side (full set) accepts b's node token as n1 and nothing else.
        #expect(full.caller(forToken: tokens.nodeToken(for: "n1")!) == Caller(role: .node, node: "n1"))
        // The export is for b: starting host c with it is refused.
        #expect(throws: SecretsError.self) { _ = try ClusterSecrets.tokensForStart(config: config, host: "c", dataDirectory: hostB) }
        // A host's part cannot be exported again (only init's full set can).
        #expect(throws: SecretsError.self) { _ = try ClusterSecrets.export(from: hostB, config: config, host: "b", nowMs: 5) }
    }

    @Test func multiHostStartWithoutProvisionedSecretsIsRefused() async throws {
        let config = try await threeHosts()
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        #expect(throws: SecretsError.self) { _ = try ClusterSecrets.tokensForStart(config: config, host: "a", dataDirectory: directory) }
        // One host: fresh tokens at every start, as before.
        let first = try ClusterSecrets.tokensForStart(config: .defaults, host: "local", dataDirectory: directory)
        let second = try ClusterSecrets.tokensForStart(config: .defaults, host: "local", dataDirectory: directory)
        #expect(first.token(for: .supervisor) != second.token(for: .supervisor))
    }

    @Test(arguments: ["../../etc/passwd", "tokens/../../x", "tokens/nodes/../../x", "logs/exchange.log", "tokens/root", "/tmp/x"])
    func aCraftedBundleCannotWriteOutsideTheSecrets(_ path: String) throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let bundle = ClusterSecrets.Bundle(host: "b", createdAtMs: 1, files: [path: "0123abcd"])
        #expect(throws: SecretsError.self) { try ClusterSecrets.importBundle(bundle, into: directory, nowMs: 2) }
        #expect(!ClusterSecrets.isProvisioned(directory))
    }

    @Test func aBundleWithAnUnsafeSecretOrKindIsRefused() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        #expect(throws: SecretsError.self) {
            try ClusterSecrets.importBundle(ClusterSecrets.Bundle(host: "b", createdAtMs: 1, files: ["tokens/observer": "a b\n"]), into: directory, nowMs: 2)
        }
        var other = ClusterSecrets.Bundle(host: "b", createdAtMs: 1, files: [:])
        other.kind = "something-else"
        #expect(throws: SecretsError.self) { try ClusterSecrets.importBundle(other, into: directory, nowMs: 2) }
    }
}

/// `mmctl secrets rotate`: at every step of a rotation, every pair of processes that may have
/// loaded different steps still accepts each other, and the grant keys overlap the same way.
@Suite struct SecretsRotationTests {
    @Test func everyStepOverlapsTheOneBeforeAndAfter() throws {
        let directory = DataDirectory(NSTemporaryDirectory() + "mm-rotate-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        try ClusterSecrets.initialize(in: directory, replace: false, nowMs: 1)
        #expect(throws: SecretsError.self) { try ClusterSecrets.rotate(.activate, in: directory, nowMs: 2) }
        #expect(throws: SecretsError.self) { try ClusterSecrets.rotate(.finish, in: directory, nowMs: 2) }

        // What a process holds after loading each step, and the grant signer it would use.
        var steps: [(tokens: RoleTokens, signer: GrantSigner)] = []
        func load() throws { steps.append((try RoleTokens.loadProvisioned(from: directory), try GrantSigner(dataDirectory: directory))) }
        try load()
        try ClusterSecrets.rotate(.stage, in: directory, nowMs: 3)
        #expect(throws: SecretsError.self) { try ClusterSecrets.rotate(.stage, in: directory, nowMs: 3) }
        try load()
        try ClusterSecrets.rotate(.activate, in: directory, nowMs: 4)
        try load()
        try ClusterSecrets.rotate(.finish, in: directory, nowMs: 5)
        try load()

        let (before, staged, active, finished) = (steps[0], steps[1], steps[2], steps[3])
        // Staging changes nothing presented.
        #expect(staged.tokens.token(for: .observer) == before.tokens.token(for: .observer))
        #expect(active.tokens.token(for: .observer) != before.tokens.token(for: .observer))
        // Neighbouring steps accept each other's presented tokens and grants, both ways.
        for (a, b) in [(before, staged), (staged, active), (active, finished)] {
            for (presenter, checker) in [(a, b), (b, a)] {
                for role in Role.sharedTokenRoles {
                    #expect(checker.tokens.caller(forToken: presenter.tokens.token(for: role)!) == Caller(role: role))
                }
                let node = presenter.tokens.nodeToken(for: "n7")!
                #expect(checker.tokens.caller(forToken: node) == Caller(role: .node, node: "n7"))
                let grant = presenter.signer.sign(symbol: "ACME", node: "n7", fencingToken: 3, grantedAtMs: 10, expiresAtMs: 20)
                #expect(checker.signer.verify(grant, node: "n7", symbol: "ACME", nowMs: 15) == .valid)
            }
        }
        // Once finished, the original secrets are refused.
        #expect(finished.tokens.caller(forToken: before.tokens.token(for: .supervisor)!) == nil)
        #expect(finished.tokens.caller(forToken: before.tokens.nodeToken(for: "n1")!) == nil)
        let old = before.signer.sign(symbol: "ACME", node: "n1", fencingToken: 1, grantedAtMs: 10, expiresAtMs: 20)
        #expect(finished.signer.verify(old, node: "n1", symbol: "ACME", nowMs: 15) != .valid)
    }

    @Test func aRunningProcessReloadsWhenAStepIsImported() async throws {
        let config = try await ClusterConfig.load(path: nil, environment: [:], overrides: ["hosts.a": "10.0.0.1", "hosts.b": "10.0.0.2", "placement.nodes": "b"])
        let admin = DataDirectory(NSTemporaryDirectory() + "mm-rotate-admin-\(UUID().uuidString)")
        let hostB = DataDirectory(NSTemporaryDirectory() + "mm-rotate-b-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: admin.path); try? FileManager.default.removeItem(atPath: hostB.path) }
        try ClusterSecrets.initialize(in: admin, replace: false, nowMs: 1)
        try ClusterSecrets.importBundle(try ClusterSecrets.export(from: admin, config: config, host: "b", nowMs: 2), into: hostB, nowMs: 3)
        let live = LiveSecrets(try ClusterSecrets.tokensForStart(config: config, host: "b", dataDirectory: hostB), dataDirectory: hostB)
        let original = live.tokens.nodeToken(for: "n1")
        #expect(try live.reloadIfChanged() == false)
        try ClusterSecrets.rotate(.stage, in: admin, nowMs: 4)
        try ClusterSecrets.rotate(.activate, in: admin, nowMs: 5)
        try ClusterSecrets.importBundle(try ClusterSecrets.export(from: admin, config: config, host: "b", nowMs: 6), into: hostB, nowMs: 7)
        #expect(try live.reloadIfChanged() == true)
        #expect(live.tokens.nodeToken(for: "n1") != original)
        // The node host was given its nodes' tokens of both sets, never the key.
        #expect(!FileManager.default.fileExists(atPath: hostB.nodeIdentityKeyPath))
        #expect(FileManager.default.fileExists(atPath: hostB.file("tokens/previous/nodes/n1")))
    }
}
