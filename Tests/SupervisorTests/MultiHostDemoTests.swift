import Foundation
import MMTestSupport
import Testing

/// The cluster across three hosts, made by Scripts/multihost-demo as network namespaces on a
/// bridge of their own (or, where namespaces cannot be made, loopback addresses): secrets
/// provisioned once and handed out per host, each host's supervisor started on its own, the
/// whole cluster seen from host a, a partition of host b and the death of every process of
/// host c survived, and `mmctl check --full` holding at the end.
@Suite(.serialized) struct MultiHostDemoTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path

    /// "#1 partition-host b: recovered in 2143 ms, …" → 2143.
    static func recoveryMs(of fault: String, in output: String) -> Int? {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("#1 \(fault)") }),
              let range = line.range(of: "recovered in ") else { return nil }
        return Int(line[range.upperBound...].prefix { $0.isNumber })
    }

    @Test(.timeLimit(.minutes(6))) func threeHostsSurviveAPartitionAndAHostDeath() async throws {
        let result = try await runCommand(
            "/bin/bash", [Self.repositoryRoot + "/Scripts/multihost-demo"],
            environment: ["MMCTL_SKIP_BUILD": "1", "MMCTL": TestPaths.mmctl, "MMD_BINARY": TestPaths.mmd],
            timeout: .seconds(330))
        let output = result.stdout + result.stderr
        #expect(result.code == 0, "\(output.suffix(8_000))")
        let namespaces = !output.contains("loopback addresses 127.0.0.2-4")
        // Every host was given its part of the secrets and started by its own supervisor.
        for host in ["a", "b", "c"] { #expect(output.contains("host \(host) of the cluster is up"), "host \(host) did not start") }
        // Status on host a lists every host's processes, with their host.
        #expect(output.contains("supervisors 3 of 3 hosts answer"))
        // Commands about another host's process were answered by that host's supervisor.
        #expect(output.contains("kill-node n3 (host b), restart coordinator3 (host c), logs n2 (host c): done"))
        // A host's nodes' symbols moved to another host's nodes within the grant TTL (2 s) plus
        // slack for a loaded machine; the invariants held after each fault.
        let grantTtlMs = 2_000
        if namespaces {
            let partition = try #require(Self.recoveryMs(of: "partition-host b", in: output), "no partition-host recovery in \(output.suffix(3_000))")
            #expect(partition <= grantTtlMs + 3_000)
        }
        let kill = try #require(Self.recoveryMs(of: "kill-host c", in: output), "no kill-host recovery in \(output.suffix(3_000))")
        #expect(kill <= grantTtlMs + 3_000)
        #expect(output.contains("overlapping grants: 0   stale accepted: 0"))
        #expect(!output.contains("NOT recovered") && !output.contains("NOT back"))
        #expect(output.components(separatedBy: "all 5 invariants held").count - 1 == (namespaces ? 3 : 2))
        // Nothing left behind: no namespace, no process of the demo.
        let leftovers = try await runCommand("/bin/sh", ["-c", "ip netns list 2>/dev/null | grep -c '^mmh' || true"])
        #expect(leftovers.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
    }
}
