import Foundation
import MMCore
import Testing

/// `hosts`, `placement` and `tls`: where each process runs and how it is reached.
@Suite struct PlacementConfigTests {
    func write(_ yaml: String) throws -> String {
        let path = NSTemporaryDirectory() + "mm-placement-\(UUID().uuidString).yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static let threeHosts = """
        hosts:
          a: 10.77.0.1
          b: 10.77.0.2
          c: 10.77.0.3
        placement:
          default: a
          coordinator2: b
          coordinator3: c
          nodes: [b, c]
        coordinator:
          backend: etcd
        nodes:
          count: 4
        """

    @Test func singleHostKeepsListenHostAndOneLocalHost() {
        let config = ClusterConfig.defaults
        #expect(!config.isMultiHost)
        #expect(config.hostNames == ["local"])
        #expect(config.hostName(of: .node(3)) == "local")
        #expect(config.baseURL(of: .exchange) == "http://127.0.0.1:7403")
        #expect(config.supervisorURL == "http://127.0.0.1:7400")
        #expect(config.processes(onHost: "local", nodeCount: 3) == config.processes(nodeCount: 3))
    }

    @Test func everyProcessIsPlacedAndReachedAtItsHost() async throws {
        let path = try write(Self.threeHosts)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try await ClusterConfig.load(path: path, environment: [:])
        #expect(config.hostNames == ["a", "b", "c"])
        // Explicit placement, the node round-robin, the default host.
        #expect(config.hostName(of: .coordinatorReplica(2)) == "b")
        #expect(config.hostName(of: .coordinatorReplica(3)) == "c")
        #expect([1, 2, 3, 4].map { config.hostName(of: .node($0)) } == ["b", "c", "b", "c"])
        #expect(config.hostName(of: .exchange) == "a")
        #expect(config.hostName(of: .gui) == "a")
        #expect(config.baseURL(of: .node(2)) == "http://10.77.0.3:7412")
        #expect(config.coordinatorURLs == ["http://10.77.0.1:7401", "http://10.77.0.2:7405", "http://10.77.0.3:7406"])
        #expect(config.supervisorURL(host: "b") == "http://10.77.0.2:7400")
        // Each host runs exactly its own processes; together they are the whole cluster.
        let perHost = config.hostNames.map { config.processes(onHost: $0, nodeCount: 4) }
        #expect(perHost[1] == [.coordinatorReplica(2), .node(1), .node(3)])
        #expect(Set(perHost.flatMap { $0 }) == Set(config.processes(nodeCount: 4)))
        #expect(perHost.map(\.count).reduce(0, +) == config.processes(nodeCount: 4).count)
    }

    @Test func placementAndTLSSettableFromOutsideTheFile() async throws {
        let config = try await ClusterConfig.load(
            path: nil, environment: ["MM_HOSTS_X": "10.1.0.1", "MM_PLACEMENT_EXCHANGE": "y"],
            overrides: ["hosts.y": "10.1.0.2", "tls.cert": "/etc/mm/{host}.crt", "tls.key": "/etc/mm/{host}.key", "tls.ca": "/etc/mm/ca.crt"])
        #expect(config.hosts.map(\.name) == ["x", "y"])
        #expect(config.hostName(of: .exchange) == "y")
        #expect(config.hostName(of: .state) == "x")
        #expect(config.tls.isEnabled)
        #expect(config.scheme == "https")
        #expect(config.baseURL(of: .exchange) == "https://10.1.0.2:7403")
        #expect(config.tls.certPath(host: "y") == "/etc/mm/y.crt")
        // etcd is not ours to serve TLS: its URLs stay plain.
        #expect(config.baseURL(of: .etcd(1)).hasPrefix("http://"))
    }

    @Test func ipv6AddressesGoInBrackets() async throws {
        let config = try await ClusterConfig.load(path: nil, environment: [:], overrides: ["hosts.a": "fd00::1"])
        #expect(config.baseURL(of: .exchange) == "http://[fd00::1]:7403")
    }

    @Test(arguments: [
        ("hosts.a=10.0.0.1 placement.exchange=z", "placement.exchange"),
        ("hosts.a=10.0.0.1 placement.nodes=a,q", "placement.nodes"),
        ("hosts.a=10.0.0.1 placement.default=q", "placement.default"),
        ("hosts.a=10.0.0.1 hosts.b=10.0.0.1", "hosts"),
        ("hosts.a=10.0.0.1 placement.n99=a", "placement.n99"),
        ("hosts.A=10.0.0.1", "hosts.A"),
        ("hosts.a=", "hosts.a"),
        ("tls.cert=/x.crt", "tls.key"),
    ])
    func badPlacementNamesTheKey(_ settings: String, _ key: String) async throws {
        let overrides = Dictionary(uniqueKeysWithValues: settings.split(separator: " ").map { item in
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        })
        do {
            _ = try await ClusterConfig.load(path: nil, environment: [:], overrides: overrides)
            Issue.record("\(settings) was accepted")
        } catch {
            #expect(error.key == key, "\(error)")
        }
    }

    @Test func misspeltPlacementInAFileIsRefused() async throws {
        let path = try write("""
            hosts: {a: 10.0.0.1}
            placement: {exchnage: a}
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        await #expect(throws: ConfigError.self) { _ = try await ClusterConfig.load(path: path, environment: [:]) }
    }

    @Test func configShowListsHostsAndPlacement() async throws {
        let path = try write(Self.threeHosts)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try await ClusterConfig.load(path: path, environment: [:])
        let rows = Dictionary(uniqueKeysWithValues: config.flattened().map { ($0.key, $0.value) })
        #expect(rows["hosts.b"] == "10.77.0.2")
        #expect(rows["placement.coordinator3"] == "c")
        #expect(rows["placement.nodes"] == "b,c")
    }
}
