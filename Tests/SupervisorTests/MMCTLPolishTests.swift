import Foundation
import MMCore
import MMTestSupport
import ProcessKit
import Testing

/// mmctl's operator polish through the real binary: config discovery and provenance, the
/// MM_* typo error, durations, -o json, events, status SYMBOL and money, --wait, completion.
@Suite(.serialized) struct MMCTLPolishTests {
    /// `cd DIR && mmctl ARGS` with `environment` (MMCTL_CONFIG cleared unless given).
    func mmctl(in directory: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> CLIResult {
        var env = [ConfigDiscoveryEnv.name: ""]
        for (key, value) in environment { env[key] = value }
        let quoted = ([TestPaths.mmctl] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        return try await runCommand("/bin/bash", ["-c", "cd '\(directory)' && exec \(quoted)"], environment: env)
    }

    func scratchDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "mm-polish-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path + "/etc", withIntermediateDirectories: true)
        return path
    }

    /// `config show -o json`: the seed's value and source.
    func seed(in directory: String, _ arguments: [String] = [], environment: [String: String] = [:]) async throws -> (value: String, source: String, file: String?) {
        let result = try await mmctl(in: directory, ["config", "show", "-o", "json"] + arguments, environment: environment)
        try #require(result.code == 0, "config show failed: \(result.stderr)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(document["schema_version"] as? Int == 1)
        let values = try #require(document["values"] as? [[String: Any]])
        let seed = try #require(values.first { $0["key"] as? String == "seed" })
        let source = seed["source"] as? String ?? "?"
        let detail = (seed["path"] as? String).map { " " + $0 } ?? (seed["variable"] as? String).map { " " + $0 } ?? ""
        return (seed["value"] as? String ?? "?", source + detail, document["config_file"] as? String)
    }

    @Test func configDiscoveryOrderAndProvenance() async throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Nothing: the built-ins.
        var seed = try await self.seed(in: directory)
        #expect(seed.value == "42" && seed.source == "default" && seed.file == nil)
        let text = try await mmctl(in: directory, ["config", "show"])
        #expect(text.stdout.contains("config file: none (built-in defaults)"))
        #expect(text.stdout.split(separator: "\n").contains { $0.hasPrefix("listen.port_base") && $0.hasSuffix("default") })

        // ./etc/mmctl.yaml when present.
        try "seed: 5\n".write(toFile: directory + "/etc/mmctl.yaml", atomically: true, encoding: .utf8)
        seed = try await self.seed(in: directory)
        #expect(seed.value == "5" && seed.source == "file \(directory)/etc/mmctl.yaml")

        // $MMCTL_CONFIG beats it.
        try "seed: 6\n".write(toFile: directory + "/env.yaml", atomically: true, encoding: .utf8)
        seed = try await self.seed(in: directory, environment: [ConfigDiscoveryEnv.name: "env.yaml"])
        #expect(seed.value == "6" && seed.source == "file \(directory)/env.yaml")

        // --config beats both.
        try "seed: 7\n".write(toFile: directory + "/flag.yaml", atomically: true, encoding: .utf8)
        seed = try await self.seed(in: directory, ["--config", "flag.yaml"], environment: [ConfigDiscoveryEnv.name: "env.yaml"])
        #expect(seed.value == "7" && seed.source == "file \(directory)/flag.yaml")

        // MM_* beats the file; --set beats MM_*.
        seed = try await self.seed(in: directory, environment: ["MM_SEED": "8"])
        #expect(seed.value == "8" && seed.source == "env MM_SEED")
        seed = try await self.seed(in: directory, ["--set", "seed=9"], environment: ["MM_SEED": "8"])
        #expect(seed.value == "9" && seed.source == "--set")
    }

    @Test func aMisspeltMMVariableIsAUsageErrorWithASuggestion() async throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for arguments in [["config", "show"], ["start", "--data-dir", directory + "/var"]] {
            let result = try await mmctl(in: directory, arguments, environment: ["MM_NODE_COUNT": "5"])
            #expect(result.code == 64, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains("MM_NODE_COUNT") && result.stderr.contains("did you mean MM_NODES_COUNT?"), "\(result.stderr)")
        }
        #expect(clusterPids(DataDirectory(directory + "/var")).isEmpty, "nothing may start on a bad environment")
    }

    @Test func configValidate() async throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let good = try await mmctl(in: directory, ["config", "validate", TestPaths.repositoryRoot + "/etc/mmctl.yaml"])
        #expect(good.code == 0 && good.stdout == "ok\n", "\(good.stderr)")

        try "quoting:\n  spread_ticks: 0\n".write(toFile: directory + "/bad.yaml", atomically: true, encoding: .utf8)
        let bad = try await mmctl(in: directory, ["config", "validate", "bad.yaml"])
        #expect(bad.code == 1)
        #expect(bad.stderr.contains("quoting.spread_ticks") && bad.stderr.contains("bad.yaml"), "\(bad.stderr)")
        let json = try await mmctl(in: directory, ["config", "validate", "bad.yaml", "-o", "json"])
        #expect(json.code == 1 && json.stdout.contains("\"key\" : \"quoting.spread_ticks\""), "\(json.stdout)")

        let missing = try await mmctl(in: directory, ["config", "validate", "nope.yaml"])
        #expect(missing.code == 1 && missing.stderr.contains("nope.yaml"))
        let usage = try await mmctl(in: directory, ["config", "validate"])
        #expect(usage.code == 64)
    }

    @Test func durationsAndOutputFormatsAreUsageCheckedBeforeAnythingRuns() async throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cases: [[String]] = [
            ["check", "--settle", "soon"], ["drill", "--recovery-timeout", "-1s"], ["drill", "--orphan-slack", "1.5ms"],
            ["events", "--since", "5 minutes"], ["stop", "--grace", "x"], ["restart", "n1", "--timeout", "1s"],
            ["status", "-o", "yaml"], ["status", "--json", "-o", "text"],
        ]
        for arguments in cases {
            let result = try await mmctl(in: directory, arguments + ["--data-dir", directory + "/var"])
            #expect(result.code == 64, "\(arguments) must be a usage error: \(result.stderr)")
        }
    }

    @Test func completionScriptsAreValidShell() async throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for (shell, check) in [("bash", ["bash", "-n"]), ("zsh", ["zsh", "-n"]), ("fish", ["fish", "--no-execute"])] {
            let script = try await mmctl(in: directory, ["--generate-completion-script", shell])
            #expect(script.code == 0 && script.stdout.contains("mmctl"), "\(shell): \(script.stderr)")
            let path = "\(directory)/mmctl.\(shell)"
            try script.stdout.write(toFile: path, atomically: true, encoding: .utf8)
            let which = try await runCommand("/bin/bash", ["-c", "command -v \(check[0])"])
            guard which.code == 0 else {
                print("skipped: \(check[0]) is not installed, its completion script was not syntax-checked")
                if shell == "bash" { Issue.record("bash must be installed") }
                continue
            }
            let parsed = try await runCommand("/usr/bin/env", check + [path])
            #expect(parsed.code == 0, "\(check.joined(separator: " ")) rejected the \(shell) completion script: \(parsed.stderr)")
        }
        // Process names are completion values: bash's completion of `mmctl kill-node ` offers n1.
        let bash = """
            source '\(directory)/mmctl.bash'
            COMP_WORDS=(mmctl kill-node ''); COMP_CWORD=2; COMP_LINE='mmctl kill-node '; COMP_POINT=${#COMP_LINE}
            _mmctl mmctl '' kill-node; printf '%s\\n' "${COMPREPLY[@]}"
            """
        let completed = try await runCommand("/bin/bash", ["-c", "cd '\(directory)' && PATH='\((TestPaths.mmctl as NSString).deletingLastPathComponent):'$PATH && \(bash)"])
        #expect(completed.stdout.split(separator: "\n").contains("n1"), "kill-node completion: \(completed.stdout)\(completed.stderr)")
    }

    /// One live cluster for the rest: events through jq, status SYMBOL with money, --wait,
    /// schema_version on check, -o json on start and stop.
    @Test func liveCluster() async throws {
        let cluster = CLICluster("polish")
        defer { cluster.forceCleanup() }
        let started = try await cluster.mmctl(["start", "--nodes", "2", "-o", "json"] + cluster.setArguments, timeout: .seconds(90))
        try #require(started.code == 0, "start failed: \(started.stderr)")
        #expect(!started.stderr.contains("\u{1b}["), "no progress when stderr is not a terminal")
        let startDocument = try #require(try JSONSerialization.jsonObject(with: Data(started.stdout.utf8)) as? [String: Any])
        #expect(startDocument["schema_version"] as? Int == 1 && (startDocument["processes"] as? [Any])?.count == 6)

        // The supervisor stored what it resolved its config from (the discovered file, MM_*,
        // --set); status given those same inputs takes the stored config, other inputs resolve.
        let environment = ProcessInfo.processInfo.environment
        let conventional = FileManager.default.currentDirectoryPath + "/etc/mmctl.yaml"
        let discovered = environment["MMCTL_CONFIG"].flatMap { $0.isEmpty ? nil : $0 } ?? (FileManager.default.fileExists(atPath: conventional) ? conventional : nil)
        let storedInputs = try String(contentsOfFile: cluster.dataDirectory.effectiveConfigInputsPath, encoding: .utf8)
        #expect(storedInputs.trimmingCharacters(in: .whitespacesAndNewlines)
                == ConfigInputs.digest(path: discovered, environment: environment, overrides: cluster.settings.merging(["nodes.count": "2"]) { _, new in new }),
                "start passes --nodes 2 on as --set nodes.count=2")
        if let discovered {
            for extra in [["--set", "nodes.count=2"], ["--set", "supervisor.stop_grace_ms=600"]] {
                let viaFile = try await cluster.mmctl(["status", "--json", "--config", discovered] + cluster.setArguments + extra)
                #expect([0, 3].contains(viaFile.code), "status --config \(extra): \(viaFile.stderr)")
                #expect((try? MMJSON.decode(ClusterSnapshot.self, from: Data(viaFile.stdout.utf8)))?.processes.count == 6)
            }
        }

        let data = cluster.dataDirectory.path
        let mmctl = TestPaths.mmctl
        // Wait until every symbol is granted, so the log has grants.
        let granted = await eventually(timeout: .seconds(20), every: .milliseconds(200)) {
            ((try? await cluster.snapshot())?.symbols.allSatisfy { $0.authority != nil && $0.quote != nil }) ?? false
        }
        #expect(granted)

        // events -o json | jq, in a pipe.
        func pipe(_ command: String, pipefail: Bool = true) async throws -> CLIResult {
            try await runCommand("/bin/bash", (pipefail ? ["-o", "pipefail"] : []) + ["-c", command], timeout: .seconds(30))
        }
        let all = try await pipe("\(mmctl) events -o json --data-dir \(data) | jq -e -s 'length > 0 and all(.[]; (.seq | type) == \"number\" and (.kind | type) == \"string\") and any(.[]; .kind == \"grant\")'")
        #expect(all.code == 0, "events | jq: \(all.stdout)\(all.stderr)")
        let acme = try await pipe("\(mmctl) events -o json --symbol ACME --since 5m --data-dir \(data) | jq -e -s 'length > 0 and all(.[]; .symbol == \"ACME\")'")
        #expect(acme.code == 0, "events --symbol ACME | jq: \(acme.stdout)\(acme.stderr)")
        let tail = try await pipe("\(mmctl) events -n 3 --data-dir \(data) | wc -l")
        #expect(tail.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "3")
        let text = try await cluster.mmctl(["events", "--node", "n1"])
        #expect(text.code == 0 && !text.stdout.isEmpty && text.stdout.split(separator: "\n").allSatisfy { $0.contains(" n1 ") })

        // -f follows: a kill of n2 moves its symbols to n1, and the follower sees the grants.
        async let followed = pipe("timeout 20 \(mmctl) events -f -n 0 -o json --node n1 --data-dir \(data) | head -n 1 | jq -e 'select(.kind == \"grant\" or .kind == \"adopt\") | .node == \"n1\"'", pipefail: false) // mmctl ends at its next write (EPIPE) or the timeout
        try await Task.sleep(for: .milliseconds(700))
        #expect(try await cluster.mmctl(["kill-node", "n2"]).code == 0)
        let follow = try await followed
        #expect(follow.code == 0, "events -f: \(follow.stdout)\(follow.stderr)")

        // status SYMBOL: only that symbol, prices as money unless --ticks.
        let status = try await cluster.mmctl(["status", "ACME"])
        let rows = status.stdout.split(separator: "\n").map(String.init)
        let acmeRow = try #require(rows.first { $0.hasPrefix("  ACME") })
        #expect(!rows.contains { $0.hasPrefix("  BOLT") }, "status ACME shows only ACME")
        let reference = try #require(acmeRow.split(separator: " ").dropFirst().first.map(String.init))
        #expect(reference.range(of: #"^\d{2,3}\.\d{2}$"#, options: .regularExpression) != nil, "money, e.g. 100.05: \(acmeRow)")
        let ticks = try await cluster.mmctl(["status", "ACME", "--ticks"])
        let tickRow = try #require(ticks.stdout.split(separator: "\n").first { $0.hasPrefix("  ACME") })
        let tickReference = try #require(tickRow.split(separator: " ").dropFirst().first.flatMap { Int64($0) })
        #expect((9_000...11_000).contains(tickReference), "raw ticks: \(tickRow)")
        let limited = try await pipe("\(mmctl) status ACME BOLT -o json --data-dir \(data) | jq -e '[.symbols[].symbol] == [\"ACME\",\"BOLT\"] and all(.recent_fills[]; .symbol == \"ACME\" or .symbol == \"BOLT\")'", pipefail: false) // exit 3 while n2 restarts
        #expect(limited.code == 0, "\(limited.stdout)\(limited.stderr)")
        #expect(try await cluster.mmctl(["status", "NOPE"]).code == 64)

        // --wait: restart returns once the new process is running and ready.
        let before = try #require(try await cluster.process("n1")?.pid)
        let restarted = try await cluster.mmctl(["restart", "n1", "--wait", "--timeout", "30s", "-o", "json"])
        #expect(restarted.code == 0, "\(restarted.stderr)")
        let after = try #require(try await cluster.process("n1"))
        #expect(after.state == .running && after.pid != before)
        #expect(restarted.stdout.contains("\"state\" : \"running\"") && restarted.stdout.contains("\"waited_ms\""))
        let added = try await cluster.mmctl(["node", "add", "--wait"])
        #expect(added.code == 0 && added.stdout.contains("ready after"), "\(added.stdout)\(added.stderr)")
        #expect(try await cluster.process("n3")?.state == .running)

        // check: schema_version in its JSON, durations and the old -ms spellings.
        let check = try await pipe("\(mmctl) check -o json --settle 10s --max-quote-age 5s --data-dir \(data) | jq -e '.schema_version == 1 and .ok'")
        #expect(check.code == 0, "\(check.stdout)\(check.stderr)")
        let legacy = try await pipe("\(mmctl) check --json --settle-ms 10000 --ingest-timeout-ms 10000 --data-dir \(data) | jq -e '.schema_version == 1'")
        #expect(legacy.code == 0, "\(legacy.stdout)\(legacy.stderr)")

        // stop on a terminal (script(1) gives it one): progress on stderr, then the JSON.
        let stopped = try await runCommand("/usr/bin/script", ["-qec", "\(mmctl) stop -o json --data-dir \(data)", "/dev/null"], timeout: .seconds(60))
        #expect(stopped.code == 0, "\(stopped.stdout)\(stopped.stderr)")
        #expect(stopped.stdout.contains("stopping: ") && stopped.stdout.contains("\u{1b}[K"), "progress on a terminal: \(stopped.stdout)")
        #expect(stopped.stdout.contains("\"stopped_processes\" : 7"), "7 = coordinator, state, exchange, n1, n2, n3, gui: \(stopped.stdout)")
        #expect(clusterPids(cluster.dataDirectory).isEmpty)
    }
}

enum ConfigDiscoveryEnv {
    static let name = "MMCTL_CONFIG"
}
