import ArgumentParser
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
