import Foundation
import MMCore
import ProcessKit
import Testing
@testable import Supervisor

/// The tree with `coordinator.backend=etcd`: local etcd members and coordinator replicas,
/// their launch arguments, start tiers, stop order and readiness.
struct ReplicaTreeTests {
    typealias Tree = ProcessTreeTests.Tree

    static func etcdConfig(_ config: inout ClusterConfig) {
        config.coordinator.backend = .etcd
        config.coordinator.replicas = 3
        config.coordinator.etcd.localMembers = 3
    }

    // MARK: Launch arguments

    @Test func anEtcdMemberRunsEtcdThroughMMDExecWithItsPortsAndDataDirectory() throws {
        var config = ClusterConfig.defaults
        Self.etcdConfig(&config)
        config.listen.portBase = 9000
        let launch = ChildLaunchSettings(mmdPath: "/opt/mmd", configPath: "/etc/mm.yaml", overrides: ["coordinator.backend=etcd"], etcdPath: "/usr/local/bin/etcd")
        let arguments = try launch.arguments(for: .etcd(2), config: config, dataDirectory: DataDirectory("/srv/mm"), incarnation: "1.7", supervisorPid: 42)
        #expect(arguments == [
            "/opt/mmd", "exec", "--supervised-by", "42", "--", "/usr/local/bin/etcd",
            "--name", "etcd2", "--data-dir", "/srv/mm/etcd/etcd2",
            "--listen-client-urls", "http://127.0.0.1:9082", "--advertise-client-urls", "http://127.0.0.1:9082",
            "--listen-peer-urls", "http://127.0.0.1:9092", "--initial-advertise-peer-urls", "http://127.0.0.1:9092",
            "--initial-cluster", "etcd1=http://127.0.0.1:9091,etcd2=http://127.0.0.1:9092,etcd3=http://127.0.0.1:9093",
            "--initial-cluster-state", "new", "--initial-cluster-token", "mm-9000",
            "--heartbeat-interval", "50", "--election-timeout", "500", "--pre-vote",
            "--auto-compaction-mode", "revision", "--auto-compaction-retention", "10000",
            "--logger", "zap", "--log-level", "warn",
        ])
        // A sweep after a supervisor's death recognises it, and nothing of another directory.
        let etcdArgv = Array(arguments[5...])
        #expect(HostChecks.isClusterCommandLine(etcdArgv, dataDirectory: DataDirectory("/srv/mm")))
        #expect(HostChecks.isClusterCommandLine(arguments, dataDirectory: DataDirectory("/srv/mm")), "the instant before execve")
        #expect(!HostChecks.isClusterCommandLine(etcdArgv, dataDirectory: DataDirectory("/srv/other")))
        // The local PostgreSQL's postmaster, by its data directory only.
        let postgresArgv = ["/usr/lib/postgresql/15/bin/postgres", "-D", "/srv/mm/postgres/data", "-p", "7409"]
        #expect(HostChecks.isClusterCommandLine(postgresArgv, dataDirectory: DataDirectory("/srv/mm")))
        #expect(!HostChecks.isClusterCommandLine(postgresArgv, dataDirectory: DataDirectory("/srv/other")))
        #expect(!HostChecks.isClusterCommandLine(["/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/postgresql/15/main"], dataDirectory: DataDirectory("/srv/mm")),
                "the machine's own PostgreSQL is never swept")
        #expect(!HostChecks.isClusterCommandLine(["/usr/bin/etcd", "--data-dir", "/srv/mm"], dataDirectory: DataDirectory("/srv/mm")))
    }

    @Test func aCoordinatorReplicaRunsMMDCoordinatorWithItsReplicaNumber() throws {
        var config = ClusterConfig.defaults
        Self.etcdConfig(&config)
        let launch = ChildLaunchSettings(mmdPath: "/opt/mmd", configPath: "/etc/mm.yaml", overrides: ["coordinator.backend=etcd"], etcdPath: nil)
        let data = DataDirectory("/srv/mm")
        let common = ["--config", "/etc/mm.yaml", "--data-dir", "/srv/mm", "--set", "coordinator.backend=etcd", "--exit-with-parent", "--supervised-by", "42"]
        #expect(try launch.arguments(for: .coordinatorReplica(2), config: config, dataDirectory: data, incarnation: "x", supervisorPid: 42)
            == ["/opt/mmd", "coordinator", "--replica", "2"] + common)
        #expect(try launch.arguments(for: .coordinator, config: config, dataDirectory: data, incarnation: "x", supervisorPid: 42)
            == ["/opt/mmd", "coordinator", "--replica", "1"] + common)
        #expect(try launch.arguments(for: .node(3), config: config, dataDirectory: data, incarnation: "9.9", supervisorPid: 42)
            == ["/opt/mmd", "node", "--id", "n3", "--incarnation", "9.9"] + common)
    }

    @Test func withoutEtcdInstalledAnEtcdMemberCannotStartAndSaysHowToInstallIt() {
        var config = ClusterConfig.defaults
        Self.etcdConfig(&config)
        let launch = ChildLaunchSettings(mmdPath: "/opt/mmd", configPath: nil, overrides: [], etcdPath: nil)
        do {
            _ = try launch.arguments(for: .etcd(1), config: config, dataDirectory: DataDirectory("/srv/mm"), incarnation: "x")
            Issue.record("no etcd: the launch must fail")
        } catch {
            #expect(error.description.contains("Scripts/install-deps"), "\(error)")
        }
        #expect(EtcdProgram.locate(environment: ["PATH": "/nonexistent", "ETCD_BINARY": "/nonexistent/etcd"]) == nil)
    }

    // MARK: The tree

    /// etcd members start together (none is healthy before a quorum runs), then the
    /// coordinator replicas one by one, then everything else, as `mmctl start` with
    /// `--set coordinator.backend=etcd` does.
    @Test func etcdMembersStartTogetherThenEveryCoordinatorReplicaInOrder() async throws {
        let tree = try Tree(etcdPath: "/opt/etcd", Self.etcdConfig)
        tree.probe.holdBack("etcd1")
        let start = Task { try await tree.started(nodes: 2) }
        // Its peers are spawned (and ready) while etcd1 is not.
        try await tree.eventually("etcd2 and etcd3 ready, etcd1 starting") { list in
            let states = Dictionary(uniqueKeysWithValues: list.processes.map { ($0.name, $0.state) })
            return states["etcd1"] == .starting && states["etcd2"] == .running && states["etcd3"] == .running
        }
        tree.clock.advance(byMs: 1_000)
        try await tree.eventually("etcd1 still starting") { list in list.processes.contains { $0.name == "etcd1" && $0.state == .starting } }
        #expect(tree.spawner.spawnOrder.sorted() == ["etcd1", "etcd2", "etcd3"], "no coordinator before every member is healthy")
        tree.probe.release("etcd1")
        while !(await tree.supervisor.phase == .running) {
            if let deadline = tree.clock.nextDeadline { tree.clock.advance(byMs: max(0, deadline - tree.clock.nowMs())) }
            try? await Task.sleep(for: .milliseconds(1))
        }
        try await start.value
        #expect(Array(tree.spawner.spawnOrderOfTiers.dropFirst(3)) == ["coordinator", "coordinator2", "coordinator3", "state", "exchange", "n1", "n2", "gui"])
        let etcd2 = try #require(tree.spawner.latest("etcd2"))
        #expect(etcd2.arguments.prefix(6) == ["/opt/mmd", "exec", "--supervised-by", "\(getpid())", "--", "/opt/etcd"])
        #expect(tree.spawner.latest("coordinator3")?.arguments.prefix(4) == ["/opt/mmd", "coordinator", "--replica", "3"])
        // The process list (what `mmctl status` and the GUI show) has every one of them.
        let list = await tree.supervisor.processList()
        #expect(list.processes.map(\.name) == ["etcd1", "etcd2", "etcd3", "coordinator", "coordinator2", "coordinator3", "state", "exchange", "n1", "n2", "gui"])
        #expect(list.processes.first { $0.name == "etcd2" }?.port == tree.config.port(of: .etcd(2)))
        #expect(list.processes.first { $0.name == "coordinator2" }?.role == "coordinator")
        await tree.shutDown()
    }

    /// One by one: a leader stopped together with its followers waits seconds for a
    /// leadership transfer that cannot happen.
    @Test func etcdMembersStopOneByOneAfterEveryCoordinator() async throws {
        let tree = try Tree(etcdPath: "/opt/etcd", Self.etcdConfig)
        try await tree.started(nodes: 1)
        let stop = Task { await tree.supervisor.stopAll(graceMs: 5_000) }
        try await tree.eventually("stopped") { $0.supervisor.phase == "stopped" }
        await stop.value
        await tree.running.value
        let exits = tree.supervisor.eventPage(after: 0, limit: 2_000).events.filter { $0.kind == "exit" }.map { String($0.detail.split(separator: " ")[0]) }
        #expect(exits.count == 10)
        #expect(exits == ["gui", "n1", "exchange", "state", "coordinator3", "coordinator2", "coordinator", "etcd3", "etcd2", "etcd1"])
        try? FileManager.default.removeItem(atPath: tree.dataDirectory.path)
    }

    @Test func aMissingEtcdFailsTheStartWithTheInstallHintAndStartsNothingAfter() async throws {
        let tree = try Tree(etcdPath: nil, Self.etcdConfig)
        do {
            try await tree.started(nodes: 1)
            Issue.record("the start must fail without etcd")
        } catch {
            #expect("\(error)".contains("Scripts/install-deps"), "\(error)")
        }
        #expect(tree.spawner.spawnOrder.isEmpty)
        let etcd1 = try #require(await tree.process("etcd1"))
        #expect(etcd1.state == .fatal)
        #expect(etcd1.fatalReason?.contains("install-deps") == true)
        #expect(await tree.process("coordinator") == nil)
        await tree.shutDown()
    }

    @Test func theSignalAndRestartRequestsReachReplicasAndEtcdMembersByName() async throws {
        let tree = try Tree(etcdPath: "/opt/etcd", Self.etcdConfig)
        try await tree.started(nodes: 1)
        _ = try await tree.supervisor.signal(named: "etcd2", signal: "KILL")
        _ = try await tree.supervisor.signal(named: "coordinator2", signal: "STOP")
        #expect(tree.spawner.latest("etcd2")?.signals == [SIGKILL])
        #expect(tree.spawner.latest("coordinator2")?.signals == [SIGSTOP])
        try await tree.eventually("etcd2 restarting") { list in list.processes.contains { $0.name == "etcd2" && $0.state == .backoff } }
        try await tree.advanceToNextTimer()
        try await tree.eventually("etcd2 back") { list in list.processes.contains { $0.name == "etcd2" && $0.state == .running && $0.restarts == 1 } }
        #expect(tree.spawner.incarnations(of: "etcd2").count == 2)
        _ = try await tree.supervisor.restart(named: "coordinator3")
        try await tree.eventually("coordinator3 restarted") { list in list.processes.contains { $0.name == "coordinator3" && $0.restarts == 1 && $0.state == .running } }
        #expect(try await tree.supervisor.logPath(named: "etcd1") == tree.dataDirectory.logPath("etcd1"))
        await tree.shutDown()
    }

    // MARK: Ports and readiness

    @Test func thePortCheckCoversEveryReplicaAndEveryEtcdPeerPort() {
        var config = ClusterConfig.defaults
        Self.etcdConfig(&config)
        let ports = SupervisorDaemon.listeningPorts(config: config, host: config.hostNames[0], nodeCount: 2)
        let base = config.listen.portBase
        #expect(ports.map(\.name) == [
            "supervisor", "etcd1", "etcd1 (peer)", "etcd2", "etcd2 (peer)", "etcd3", "etcd3 (peer)",
            "coordinator", "coordinator2", "coordinator3", "state", "exchange", "n1", "n2", "gui",
        ])
        #expect(ports.map(\.port) == [base, base + 81, base + 91, base + 82, base + 92, base + 83, base + 93, base + 1, base + 5, base + 6, base + 2, base + 3, base + 11, base + 12, base + 4])
        #expect(SupervisorDaemon.listeningPorts(config: .defaults, host: "local", nodeCount: 1).map(\.name) == ["supervisor", "coordinator", "state", "exchange", "n1", "gui"])
    }

    @Test func anEtcdMemberIsReadyOnlyWhenItReportsItselfHealthy() {
        #expect(HTTPReadinessProbe.isHealthyEtcd(status: 200, body: Data(#"{"health":"true"}"#.utf8)))
        #expect(HTTPReadinessProbe.isHealthyEtcd(status: 200, body: Data(#"{"health": "true", "reason": ""}"#.utf8)))
        #expect(!HTTPReadinessProbe.isHealthyEtcd(status: 503, body: Data(#"{"health":"false"}"#.utf8)))
        #expect(!HTTPReadinessProbe.isHealthyEtcd(status: 200, body: Data(#"{"health":"false","reason":"RAFT NO LEADER"}"#.utf8)))
    }
}
