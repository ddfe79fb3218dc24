import Foundation
import MMCore
import Testing

/// `state.backend` and the local PostgreSQL: configuration, processes, ports, start order.
@Suite struct StateBackendConfigTests {
    @Test func sqliteIsTheDefaultAndRunsNoPostgres() async throws {
        let config = try await ClusterConfig.load(path: nil, environment: [:])
        #expect(config.state.backend == .sqlite)
        #expect(!config.runsLocalPostgres && config.postgresProcesses.isEmpty)
        #expect(!config.processes.contains(.postgres))
    }

    @Test func postgresWithoutAURLRunsALocalServerBeforeTheStateService() async throws {
        let config = try await ClusterConfig.load(path: nil, environment: [:], overrides: ["state.backend": "postgres"])
        #expect(config.runsLocalPostgres)
        let order = config.processes
        let postgres = try #require(order.firstIndex(of: .postgres))
        #expect(postgres < order.firstIndex(of: .state)! && postgres > order.firstIndex(of: .coordinator)!)
        #expect(config.port(of: .postgres) == config.listen.portBase + 9)
        #expect(config.statePostgresURL == "postgres://postgres@127.0.0.1:\(config.listen.portBase + 9)/postgres")
        #expect(ClusterProcess(name: "postgres") == .postgres && ClusterProcess.postgres.name == "postgres")
        // Its port collides with no other process of a full cluster.
        var full = config
        full.coordinator.backend = .etcd
        full.coordinator.replicas = 5
        full.nodeCount = ClusterConfig.maxNodes
        let ports = full.processes.map { full.port(of: $0) } + [full.supervisorPort]
        #expect(Set(ports).count == ports.count)
    }

    @Test func anExternalServerNeedsAURLWithoutPasswordAndAPasswordFile() async throws {
        let config = try await ClusterConfig.load(
            path: nil, environment: ["MM_STATE_BACKEND": "postgres"],
            overrides: ["state.postgres.url": "postgres://mm@db.internal:5432/ledger", "state.postgres.password_file": "/run/secrets/pg"])
        #expect(!config.runsLocalPostgres && !config.processes.contains(.postgres))
        #expect(config.statePostgresURL == "postgres://mm@db.internal:5432/ledger")
    }

    @Test(arguments: [
        (["state.backend": "mysql"], "state.backend", "'sqlite' or 'postgres'"),
        (["state.postgres.url": "db.internal:5432"], "state.postgres.url", "postgres://USER@HOST:PORT/DATABASE"),
        (["state.postgres.url": "postgres://mm:hunter2@db:5432/ledger", "state.postgres.password_file": "/p"], "state.postgres.url", "must not contain a password"),
        (["state.backend": "postgres", "state.postgres.url": "postgres://mm@db:5432/ledger"], "state.postgres.password_file", "is required"),
    ])
    func badValuesNameTheKeyNeverThePassword(overrides: [String: String], key: String, reason: String) async throws {
        do {
            _ = try await ClusterConfig.load(path: nil, environment: [:], overrides: overrides)
            Issue.record("expected \(key) to be rejected")
        } catch {
            #expect(error.key == key, "\(error)")
            #expect(error.description.contains(reason), "\(error)")
            #expect(!error.description.contains("hunter2"), "a password must never be echoed: \(error)")
        }
    }
}

@Suite struct StateReplicaConfigTests {
    @Test func replicasNeedPostgresAndGetTheirOwnPortsAndNames() async throws {
        do {
            _ = try await ClusterConfig.load(path: nil, environment: [:], overrides: ["state.replicas": "2"])
            Issue.record("two SQLite state processes accepted")
        } catch {
            #expect(error.key == "state.replicas" && error.description.contains("state.backend=postgres"))
        }
        let config = try await ClusterConfig.load(path: nil, environment: [:], overrides: ["state.backend": "postgres", "state.replicas": "3"])
        #expect(config.stateProcesses == [.state, .stateReplica(2), .stateReplica(3)])
        #expect(config.stateURLs.count == 3)
        #expect(ClusterProcess(name: "state3") == .stateReplica(3) && ClusterProcess.stateReplica(3).role == "state")
        let order = config.processes
        #expect(order.firstIndex(of: .postgres)! < order.firstIndex(of: .state)! && order.firstIndex(of: .stateReplica(3))! < order.firstIndex(of: .exchange)!)
        var full = config
        full.state.replicas = ClusterProcess.maxStateReplicas
        full.coordinator.backend = .etcd
        full.coordinator.replicas = 5
        full.nodeCount = ClusterConfig.maxNodes
        let ports = full.processes.map { full.port(of: $0) } + [full.supervisorPort]
        #expect(Set(ports).count == ports.count, "no two processes share a port")
    }
}
