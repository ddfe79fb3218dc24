import Foundation
import MMCommandLine
import MMCore
import Testing

/// The status text on several hosts: a host column only then, unreachable rows that say so,
/// a hosts section with each clock, and a clock-skew warning naming the host and its offset.
@Suite struct MultiHostStatusTests {
    let renderer = StatusRenderer(dataDirectory: "/var/mm", color: false)

    func process(_ name: String, host: String?, state: ProcessState = .running, pid: Int32? = 100) -> ProcessStatus {
        ProcessStatus(
            name: name, role: name.hasPrefix("n") ? "node" : name, pid: state == .unreachable ? nil : pid, state: state, restarts: 0,
            uptimeMs: state == .unreachable ? nil : 5_000, port: 7400, lastExit: nil, host: host)
    }

    func snapshot(hosts: [ClusterSnapshot.HostView], processes: [ProcessStatus], errors: [ClusterSnapshot.ServiceError] = [], warnings: [ClusterSnapshot.Warning] = []) -> ClusterSnapshot {
        ClusterSnapshot(
            takenAtMs: 1_700_000_000_000, supervisor: SupervisorInfo(pid: 10, uptimeMs: 60_000, startedAtMs: 1_699_999_940_000),
            processes: processes, members: [], assignments: nil, symbols: [], totals: .init(realizedPnl: 0, unrealizedPnl: 0, fillCount: 0),
            recentFills: [], recentEvents: [], errors: errors, hosts: hosts, warnings: warnings)
    }

    func processHeader(_ lines: [String]) -> String? { lines.first { $0.hasPrefix("  NAME") } }
    func row(_ lines: [String], _ name: String) -> String? { lines.first { $0.hasPrefix("  \(name) ") } }

    @Test func aSingleHostHasNoHostColumnNorHostsSection() throws {
        let view = snapshot(
            hosts: [.init(name: "local", address: "127.0.0.1", reachable: true)],
            processes: [process("coordinator", host: "local"), process("n1", host: "local")])
        let lines = renderer.render(view, previous: nil)
        let header = try #require(processHeader(lines))
        #expect(!header.contains("HOST"))
        #expect(!lines.contains { $0.hasPrefix("HOSTS") })
        #expect(lines[0].contains("supervisor pid 10"), "the header names the one supervisor, as before")
        // The same as a view from before hosts existed.
        var old = view
        old.hosts = []
        old.processes = old.processes.map { var p = $0; p.host = nil; return p }
        #expect(renderer.render(old, previous: nil) == lines)
    }

    @Test func severalHostsShowEachProcesssHostAndUnreachableRows() throws {
        let view = snapshot(
            hosts: [
                .init(name: "alpha", address: "10.0.0.1", reachable: true, supervisor: SupervisorInfo(pid: 10, uptimeMs: 60_000, startedAtMs: 0), clockOffsetMs: 0, clockUncertaintyMs: 1),
                .init(name: "b", address: "10.0.0.2", reachable: false, clockError: "GET /v1/info: connection refused"),
            ],
            processes: [process("coordinator", host: "alpha"), process("n1", host: "alpha"), process("n2", host: "b", state: .unreachable)],
            errors: [.init(service: "supervisor", error: "host b (10.0.0.2): GET /v1/processes: connection refused", host: "b")])
        let lines = renderer.render(view, previous: nil)
        let header = try #require(processHeader(lines))
        #expect(header.hasPrefix("  NAME         HOST"), "the host column follows the name: \(header)")
        let n1 = try #require(row(lines, "n1"))
        #expect(n1.contains(" alpha "))
        let n2 = try #require(row(lines, "n2"))
        #expect(n2.contains(" b ") && n2.contains("UNREACHABLE"), "\(n2)")
        #expect(!n2.contains(" 0 "), "an unreachable row shows no made-up figures: \(n2)")
        // Columns stay aligned: the state column is as wide as "UNREACHABLE".
        let stateColumn = try #require(header.range(of: "STATE")).lowerBound.utf16Offset(in: header)
        #expect(n2.dropFirst(stateColumn).hasPrefix("UNREACHABLE"))
        #expect(n1.dropFirst(stateColumn).hasPrefix("running"))

        // The header counts hosts; the hosts section says which one is down, and the error names it.
        #expect(lines[0].contains("supervisors 1 of 2 hosts answer"))
        let hostsAt = try #require(lines.firstIndex { $0.hasPrefix("HOSTS") })
        let bLine = try #require(lines[hostsAt...].first { $0.hasPrefix("  b ") })
        #expect(bLine.contains("10.0.0.2") && bLine.contains("UNREACHABLE"))
        let alphaLine = try #require(lines[hostsAt...].first { $0.hasPrefix("  alpha ") })
        #expect(alphaLine.contains("pid 10") && alphaLine.contains("+0ms ±1ms"))
        #expect(lines.contains { $0.contains("supervisor: host b (10.0.0.2): GET /v1/processes: connection refused") })
    }

    @Test func aSkewedClockIsAClearLineNamingTheHostAndItsOffset() throws {
        let warning = ClusterSnapshot.Warning(
            kind: ClusterSnapshot.Warning.clockSkew, hosts: ["b"],
            message: "clock of host b (10.0.0.2) is 812 ms ahead of this machine's (±3 ms); grants are judged safely only within 200 ms (node.safety_margin_ms): fix its time sync (NTP)",
            offsetMs: 812, uncertaintyMs: 3, boundMs: 200)
        let view = snapshot(
            hosts: [
                .init(name: "a", address: "10.0.0.1", reachable: true, clockOffsetMs: -2, clockUncertaintyMs: 1),
                .init(name: "b", address: "10.0.0.2", reachable: true, clockOffsetMs: 812, clockUncertaintyMs: 3, clockSkewed: true),
            ],
            processes: [process("coordinator", host: "a"), process("n1", host: "b")], warnings: [warning])
        let lines = renderer.render(view, previous: nil)
        let warningsAt = try #require(lines.firstIndex { $0 == "WARNINGS" })
        let line = lines[warningsAt + 1]
        #expect(line.contains("CLOCK SKEW") && line.contains("host b") && line.contains("812 ms ahead") && line.contains("200 ms"), "\(line)")
        let processesAt = try #require(lines.firstIndex { $0 == "PROCESSES" })
        #expect(warningsAt < processesAt, "warnings come before the tables")
        let hostsAt = try #require(lines.firstIndex { $0.hasPrefix("HOSTS") })
        #expect(lines[hostsAt...].first { $0.hasPrefix("  b ") }?.contains("SKEWED +812ms ±3ms") == true)
        #expect(lines[hostsAt...].first { $0.hasPrefix("  a ") }?.contains("-2ms ±1ms") == true)

        // In colour the warning is red.
        let colored = StatusRenderer(dataDirectory: "/var/mm", color: true).render(view, previous: nil)
        #expect(colored.contains { $0.contains("\u{1b}[31mCLOCK SKEW") })
    }
}
