import Foundation
import MMCore
import Testing

/// The coordinator's backend, replicas and local etcd cluster: how they are configured and
/// which processes, ports and start order they give.
@Suite struct CoordinatorConfigTests {
    func write(_ yaml: String) throws -> String {
        let path = NSTemporaryDirectory() + "mm-config-\(UUID().uuidString).yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func embeddedIsTheDefaultWithOneCoordinatorAndNoEtcd() async throws {
        let config = try await ClusterConfig.load(path: nil, environment: [:])
        #expect(config.coordinator.backend == .embedded)
        #expect(config.coordinator.replicas == 1)
        #expect(!config.runsLocalEtcd)
        #expect(config.etcdProcesses.isEmpty)
        #expect(config.coordinatorProcesses == [.coordinator])
        #expect(config.coordinatorURLs == ["http://127.0.0.1:7401"])
    }

    @Test func etcdBackendDefaultsToThreeReplicasOverThreeLocalMembers() async throws {
        let config = try await ClusterConfig.load(path: nil, environment: [:], overrides: ["coordinator.backend": "etcd"])
        #expect(config.coordinator.backend == .etcd)
        #expect(config.coordinator.replicas == 3)
        #expect(config.runsLocalEtcd)
        #expect(config.etcdProcesses == [.etcd(1), .etcd(2), .etcd(3)])
        #expect(config.etcdEndpoints == ["http://127.0.0.1:7481", "http://127.0.0.1:7482", "http://127.0.0.1:7483"])
        #expect(config.coordinatorURLs == ["http://127.0.0.1:7401", "http://127.0.0.1:7405", "http://127.0.0.1:7406"])
    }

    @Test func everyKeyIsReadFromFileEnvironmentAndSet() async throws {
        let path = try write("""
            coordinator:
              backend: etcd
              replicas: 2
              etcd:
                endpoints: ["http://10.0.0.5:2379", "https://10.0.0.6:2379"]
                prefix: /desk1/
                request_timeout_ms: 400
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try await ClusterConfig.load(
            path: path, environment: ["MM_COORDINATOR_ETCD_LOCAL_MEMBERS": "5"], overrides: ["coordinator.replicas": "4"])
        #expect(config.coordinator.replicas == 4)
        #expect(config.coordinator.etcd.endpoints == ["http://10.0.0.5:2379", "https://10.0.0.6:2379"])
        #expect(config.coordinator.etcd.prefix == "/desk1/")
        #expect(config.coordinator.etcd.localMembers == 5)
        #expect(config.coordinator.etcd.requestTimeoutMs == 400)
        // Endpoints given: the operator's etcd is used and no local member runs.
        #expect(!config.runsLocalEtcd)
        #expect(config.etcdProcesses.isEmpty)
        #expect(config.etcdEndpoints == ["http://10.0.0.5:2379", "https://10.0.0.6:2379"])
        #expect(config.processes(nodeCount: 1).map(\.name) == ["coordinator", "coordinator2", "coordinator3", "coordinator4", "state", "exchange", "n1", "gui"])
    }

    /// A bad value stops everything with an error that names the key.
    @Test(arguments: [
        (["coordinator.backend": "zookeeper"], "coordinator.backend", "'embedded' or 'etcd'"),
        (["coordinator.replicas": "2"], "coordinator.replicas", "coordinator.backend=etcd"),
        (["coordinator.backend": "etcd", "coordinator.replicas": "6"], "coordinator.replicas", "1...5"),
        (["coordinator.backend": "etcd", "coordinator.etcd.local_members": "2"], "coordinator.etcd.local_members", "1, 3 or 5"),
        (["coordinator.etcd.prefix": "mm"], "coordinator.etcd.prefix", "start and end with '/'"),
        (["coordinator.etcd.prefix": "/"], "coordinator.etcd.prefix", "start and end with '/'"),
        (["coordinator.etcd.endpoints": "10.0.0.5:2379"], "coordinator.etcd.endpoints", "etcd client URL"),
        (["coordinator.backend": "etcd", "coordinator.etcd.request_timeout_ms": "5000"], "coordinator.etcd.request_timeout_ms", "grant_ttl_ms"),
        (["coordinator.replicas": "many"], "coordinator.replicas", "integer"),
    ])
    func badValueNamesTheKey(overrides: [String: String], key: String, reason: String) async throws {
        do {
            _ = try await ClusterConfig.load(path: nil, environment: [:], overrides: overrides)
            Issue.record("expected \(key) to be rejected for \(overrides)")
        } catch {
            #expect(error.key == key, "\(error)")
            #expect(error.description.contains(reason), "\(error)")
        }
    }

    /// The README's external-etcd command: endpoints as one comma-separated --set value.
    @Test func endpointsFromOneSetValueAndNoLocalEtcd() async throws {
        let config = try await ClusterConfig.load(
            path: nil, environment: [:],
            overrides: ["coordinator.backend": "etcd", "coordinator.etcd.endpoints": "http://10.0.0.5:2379,http://10.0.0.6:2379"])
        #expect(config.coordinator.etcd.endpoints == ["http://10.0.0.5:2379", "http://10.0.0.6:2379"])
        #expect(config.etcdEndpoints == config.coordinator.etcd.endpoints)
        #expect(!config.runsLocalEtcd && config.etcdProcesses.isEmpty)
        #expect(config.coordinatorProcesses.count == 3)
    }

    @Test func aBadEndpointInTheFileNamesTheKeyAndTheFile() async throws {
        let path = try write("coordinator:\n  backend: etcd\n  etcd:\n    endpoints: [\"ftp://10.0.0.5:2379\"]\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try await ClusterConfig.load(path: path, environment: [:])
            Issue.record("an ftp endpoint must be rejected")
        } catch {
            #expect(error.key == "coordinator.etcd.endpoints")
            #expect(error.description.contains("ftp://10.0.0.5:2379"))
            #expect(error.description.contains(path))
        }
    }

    // MARK: Processes

    @Test func processNamesRoundTrip() {
        let all: [ClusterProcess] = [.coordinator, .state, .exchange, .gui]
            + (2...ClusterProcess.maxCoordinatorReplicas).map { .coordinatorReplica($0) }
            + (1...ClusterProcess.maxEtcdMembers).map { .etcd($0) }
            + [.node(1), .node(17), .node(ClusterConfig.maxNodes)]
        for process in all {
            #expect(ClusterProcess(name: process.name) == process, "\(process.name)")
        }
        #expect(ClusterProcess.coordinatorReplica(2).name == "coordinator2")
        #expect(ClusterProcess.etcd(3).name == "etcd3")
        #expect(ClusterProcess.coordinator(replica: 1) == .coordinator)
        #expect(ClusterProcess.coordinator(replica: 4) == .coordinatorReplica(4))
        #expect(ClusterProcess.coordinatorReplica(3).role == "coordinator")
        #expect(ClusterProcess.etcd(1).role == "etcd")
        #expect(ClusterProcess.coordinator.coordinatorReplicaIndex == 1)
        #expect(ClusterProcess.coordinatorReplica(5).coordinatorReplicaIndex == 5)
        #expect(ClusterProcess.etcd(1).coordinatorReplicaIndex == nil)
        #expect(!ClusterProcess.etcd(2).isMMD)
        #expect(ClusterProcess.coordinatorReplica(2).isMMD)
        for bad in ["coordinator1", "coordinator6", "coordinator0", "etcd0", "etcd6", "etcd", "etcdx", "coordinatorX", "n0"] {
            #expect(ClusterProcess(name: bad) == nil, "\(bad)")
        }
    }

    @Test func portsOfReplicasAndEtcdMembersNeverCollide() {
        var config = ClusterConfig.defaults
        config.listen.portBase = 9000
        config.coordinator.backend = .etcd
        config.coordinator.replicas = 5
        config.coordinator.etcd.localMembers = 5
        #expect(config.port(of: .coordinator) == 9001)
        #expect(config.port(of: .coordinatorReplica(2)) == 9005)
        #expect(config.port(of: .coordinatorReplica(5)) == 9008)
        #expect(config.port(of: .etcd(1)) == 9081)
        #expect(config.etcdPeerPort(1) == 9091)
        #expect(config.etcdPeerPort(5) == 9095)
        let processes = config.processes(nodeCount: ClusterConfig.maxNodes)
        let ports = [config.supervisorPort] + processes.map { config.port(of: $0) } + (1...5).map { config.etcdPeerPort($0) }
        #expect(Set(ports).count == ports.count, "every listening port is distinct: \(ports.sorted())")
    }

    /// Start order: etcd members, coordinator replicas, state, exchange, nodes, GUI; stop order
    /// is the reverse, so every coordinator stops before etcd.
    @Test func startOrderPutsEtcdFirstAndCoordinatorsBeforeState() {
        var config = ClusterConfig.defaults
        config.coordinator.backend = .etcd
        config.coordinator.replicas = 3
        let names = config.processes(nodeCount: 2).map(\.name)
        #expect(names == ["etcd1", "etcd2", "etcd3", "coordinator", "coordinator2", "coordinator3", "state", "exchange", "n1", "n2", "gui"])
        let shuffled = config.processes(nodeCount: 2).shuffled()
        #expect(shuffled.sorted().map(\.name) == names)
        #expect(shuffled.sorted().reversed().map(\.name).suffix(3) == ["etcd3", "etcd2", "etcd1"])
    }
}
