import ArgumentParser
import Foundation
import MMCommandLine
import MMCore
import Testing

@Suite struct ClusterOptionGroupTests {
    @Test(arguments: [
        ([], [:]),
        (["a.b=1"], ["a.b": "1"]),
        (["listen.port_base=7500", "nodes.count=5"], ["listen.port_base": "7500", "nodes.count": "5"]),
        // The value is everything after the first '=', and may be empty.
        (["symbols.names=A,B=C"], ["symbols.names": "A,B=C"]),
        (["key="], ["key": ""]),
        // A later item for the same key wins.
        (["k=1", "k=2"], ["k": "2"]),
    ] as [([String], [String: String])])
    func parsesOverrides(items: [String], expected: [String: String]) throws {
        #expect(try ConfigOverrides.parse(items) == expected)
    }

    @Test(arguments: ["novalue", "=value", "=", ""])
    func rejectsMalformedOverrides(item: String) {
        #expect(throws: ConfigOverrideError(item: item)) { try ConfigOverrides.parse(["ok=1", item]) }
    }

    @Test func flagsKeepTheirNames() throws {
        let options = try ClusterOptionGroup.parse(["--config", "etc/x.yaml", "--data-dir", "/tmp/d", "--set", "a.b=1", "--set", "c=2"])
        #expect(options.config == "etc/x.yaml")
        #expect(options.dataDir == "/tmp/d")
        #expect(options.dataDirectory.path == "/tmp/d")
        #expect(try options.parsedOverrides() == ["a.b": "1", "c": "2"])
    }

    @Test func aMalformedSetIsAUsageErrorAtParseTime() {
        do {
            _ = try ClusterOptionGroup.parse(["--set", "listen.port_base"])
            Issue.record("--set without '=' must be refused")
        } catch {
            #expect(ClusterOptionGroup.exitCode(for: error) == .validationFailure)
            #expect(ClusterOptionGroup.message(for: error).contains("--set takes key=value"))
        }
    }

    @Test func loadConfigAppliesOverridesAndNamesBadKeys() async throws {
        let options = try ClusterOptionGroup.parse(["--set", "listen.port_base=7600"])
        let config = try await options.loadConfig(extra: ["nodes.count": "2"])
        #expect(config.listen.portBase == 7600)
        #expect(config.nodeCount == 2)
        let typo = try ClusterOptionGroup.parse(["--set", "listen.port_bas=7600"])
        await #expect(throws: ValidationError.self) { try await typo.loadConfig() }
    }
}

/// The running cluster's config stands in for resolving `--config FILE` again only when it was
/// resolved from exactly the same inputs: the file's bytes, `MM_*` and `--set`.
@Suite struct EffectiveConfigReuseTests {
    @Test func theDigestCoversEveryInputAndNothingElse() {
        let file = Data("listen: {port_base: 7600}\n".utf8)
        let base = ConfigInputs.digest(fileBytes: file, environment: ["PATH": "/bin"], overrides: ["a": "1"])
        #expect(base == ConfigInputs.digest(fileBytes: file, environment: ["PATH": "/usr/bin", "HOME": "/x"], overrides: ["a": "1"]), "only MM_* variables count")
        #expect(base != ConfigInputs.digest(fileBytes: Data("listen: {port_base: 7601}\n".utf8), environment: [:], overrides: ["a": "1"]))
        #expect(base != ConfigInputs.digest(fileBytes: file, environment: ["MM_NODES_COUNT": "3"], overrides: ["a": "1"]))
        #expect(base != ConfigInputs.digest(fileBytes: file, environment: [:], overrides: ["a": "2"]))
        #expect(base != ConfigInputs.digest(fileBytes: nil, environment: [:], overrides: ["a": "1"]))
        #expect(base != ConfigInputs.digest(fileBytes: Data(), environment: [:], overrides: ["a": "1"]), "an empty file is not no file")
        // Length-prefixed: moving a character across a boundary is another input.
        #expect(ConfigInputs.digest(fileBytes: nil, environment: [:], overrides: ["ab": "c"])
                != ConfigInputs.digest(fileBytes: nil, environment: [:], overrides: ["a": "bc"]))
        #expect(ConfigInputs.digest(fileBytes: nil, environment: [:], overrides: ["x": "1", "y": "2"])
                == ConfigInputs.digest(fileBytes: nil, environment: [:], overrides: ["y": "2", "x": "1"]))
    }

    @Test func reusedOnlyForTheSameInputs() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mm-effective-reuse-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/cluster.yaml"
        try Data("listen: {port_base: 7600}\n".utf8).write(to: URL(fileURLWithPath: file))
        let dataDirectory = DataDirectory(directory + "/data")
        try FileManager.default.createDirectory(atPath: dataDirectory.path, withIntermediateDirectories: true)

        // What a supervisor would store: a config told apart from the file's (port 7777), so a
        // reuse is visible, and the digest of the inputs it was started with.
        var stored = try await ClusterConfig.load(path: nil, environment: [:])
        stored.listen.portBase = 7_777
        try MMJSON.encode(stored, pretty: true).write(to: URL(fileURLWithPath: dataDirectory.effectiveConfigPath))
        let started = try ClusterOptionGroup.parse(["--config", file, "--data-dir", dataDirectory.path, "--set", "nodes.count=3"])
        let digest = try #require(try started.configInputsDigest())
        try Data((digest + "\n").utf8).write(to: URL(fileURLWithPath: dataDirectory.effectiveConfigInputsPath))

        #expect(started.effectiveConfig(ifResolvedFrom: file)?.listen.portBase == 7_777)
        let otherSet = try ClusterOptionGroup.parse(["--config", file, "--data-dir", dataDirectory.path, "--set", "nodes.count=4"])
        #expect(otherSet.effectiveConfig(ifResolvedFrom: file) == nil)
        let noSet = try ClusterOptionGroup.parse(["--config", file, "--data-dir", dataDirectory.path])
        #expect(noSet.effectiveConfig(ifResolvedFrom: file) == nil)
        #expect(started.effectiveConfig(ifResolvedFrom: file, extra: ["nodes.count": "5"]) == nil, "extra overrides count as --set")

        // The file edited: resolve again.
        try Data("listen: {port_base: 7601}\n".utf8).write(to: URL(fileURLWithPath: file))
        #expect(started.effectiveConfig(ifResolvedFrom: file) == nil)
        try Data("listen: {port_base: 7600}\n".utf8).write(to: URL(fileURLWithPath: file))
        #expect(started.effectiveConfig(ifResolvedFrom: file)?.listen.portBase == 7_777)
        // No digest stored, a foreign one, or no file to read: resolve again.
        try Data("not a digest\n".utf8).write(to: URL(fileURLWithPath: dataDirectory.effectiveConfigInputsPath))
        #expect(started.effectiveConfig(ifResolvedFrom: file) == nil)
        try FileManager.default.removeItem(atPath: dataDirectory.effectiveConfigInputsPath)
        #expect(started.effectiveConfig(ifResolvedFrom: file) == nil)
        #expect(started.effectiveConfig(ifResolvedFrom: directory + "/missing.yaml") == nil)
    }
}
