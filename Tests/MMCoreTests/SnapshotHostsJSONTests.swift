import Foundation
import MMCore
import Testing

/// The new fields of the cluster view and of `GET /v1/info` on the wire: snake_case, only
/// added (an older view still decodes), nil fields omitted.
@Suite struct SnapshotHostsJSONTests {
    func object(_ value: some Encodable) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: MMJSON.encode(value)) as? [String: Any])
    }

    @Test func hostsWarningsAndProcessHostsEncodeSnakeCase() throws {
        let snapshot = ClusterSnapshot(
            takenAtMs: 1, supervisor: nil,
            processes: [ProcessStatus(name: "n2", role: "node", pid: nil, state: .unreachable, restarts: 0, uptimeMs: nil, port: 7412, lastExit: nil, host: "c")],
            members: [], assignments: nil, symbols: [], totals: .init(realizedPnl: 0, unrealizedPnl: 0, fillCount: 0), recentFills: [], recentEvents: [],
            errors: [.init(service: "supervisor", error: "host c (10.0.0.3): GET /v1/processes: connection refused", host: "c")],
            hosts: [
                .init(name: "b", address: "10.0.0.2", reachable: true, clockOffsetMs: 812, clockUncertaintyMs: 3, clockSkewed: true),
                .init(name: "c", address: "10.0.0.3", reachable: false, clockError: "GET /v1/info: connection refused"),
            ],
            warnings: [.init(kind: "clock_skew", hosts: ["b"], message: "clock of host b …", offsetMs: 812, uncertaintyMs: 3, boundMs: 200)])
        let json = try object(snapshot)
        #expect(Set(json.keys).isSuperset(of: ["hosts", "warnings", "errors", "processes"]))

        let process = try #require((json["processes"] as? [[String: Any]])?.first)
        #expect(process["host"] as? String == "c" && process["state"] as? String == "unreachable")
        #expect(process["pid"] == nil, "nil is omitted, never null")

        let error = try #require((json["errors"] as? [[String: Any]])?.first)
        #expect(error["host"] as? String == "c")

        let hosts = try #require(json["hosts"] as? [[String: Any]])
        #expect(Set(hosts[0].keys) == ["name", "address", "reachable", "clock_offset_ms", "clock_uncertainty_ms", "clock_skewed"])
        #expect(hosts[0]["clock_offset_ms"] as? Int == 812 && hosts[0]["clock_skewed"] as? Bool == true)
        #expect(Set(hosts[1].keys) == ["name", "address", "reachable", "clock_skewed", "clock_error"])
        #expect(hosts[1]["reachable"] as? Bool == false)

        let warning = try #require((json["warnings"] as? [[String: Any]])?.first)
        #expect(Set(warning.keys) == ["kind", "hosts", "message", "offset_ms", "uncertainty_ms", "bound_ms"])

        // Round trip.
        #expect(try MMJSON.decode(ClusterSnapshot.self, from: MMJSON.encode(snapshot)) == snapshot)
    }

    @Test func aViewFromBeforeHostsStillDecodes() throws {
        let old = #"{"errors":[{"error":"GET /v1/prices: x","service":"exchange"}],"members":[],"processes":[{"name":"n1","port":7411,"restarts":0,"role":"node","state":"running"}],"recent_events":[],"recent_fills":[],"schema_version":1,"symbols":[],"taken_at_ms":5,"totals":{"fill_count":0,"realized_pnl":0,"unrealized_pnl":0}}"#
        let snapshot = try MMJSON.decode(ClusterSnapshot.self, from: Data(old.utf8))
        #expect(snapshot.hosts.isEmpty && snapshot.warnings.isEmpty && !snapshot.isMultiHost)
        #expect(snapshot.processes.first?.host == nil && snapshot.errors.first?.host == nil)
        #expect(snapshot.schemaVersion == ClusterSnapshot.currentSchemaVersion)
    }

    @Test func serviceInfoCarriesNowMsWhenSet() throws {
        let info = ServiceInfo(role: "supervisor", name: "supervisor", version: "0.1.0", pid: 7, startedAtMs: 100, configDigest: "d", nowMs: 1_700_000_000_123)
        #expect(try object(info)["now_ms"] as? Int == 1_700_000_000_123)
        let older = ServiceInfo(role: "supervisor", name: "supervisor", version: "0.1.0", pid: 7, startedAtMs: 100, configDigest: "d")
        #expect(try object(older)["now_ms"] == nil)
        let decoded = try MMJSON.decode(ServiceInfo.self, from: Data(#"{"config_digest":"d","name":"x","pid":1,"role":"x","started_at_ms":1,"version":"v"}"#.utf8))
        #expect(decoded.nowMs == nil)
    }

    @Test func multiHostIsReadFromTheHosts() {
        func view(_ hosts: [String]) -> ClusterSnapshot {
            ClusterSnapshot(
                takenAtMs: 0, supervisor: nil, processes: [], members: [], assignments: nil, symbols: [], totals: .init(realizedPnl: 0, unrealizedPnl: 0, fillCount: 0),
                recentFills: [], recentEvents: [], errors: [], hosts: hosts.map { .init(name: $0, address: "x", reachable: true) })
        }
        #expect(!view([]).isMultiHost)
        #expect(!view(["local"]).isMultiHost)
        #expect(view(["a"]).isMultiHost, "one configured host is still a configured placement")
        #expect(view(["a", "b"]).isMultiHost)
    }
}
