import Foundation
import MMCore
import Synchronization
import Testing

/// The cluster view assembled from every host's supervisor (issue 15): rows tagged with their
/// host, a host that does not answer shown as unreachable rows plus one error, events merged
/// by time, and each host's clock against the local one.
@Suite struct MultiHostSnapshotTests {
    static let now: EpochMs = 1_700_000_010_000

    /// Hosts a, b, c; coordinator, state and exchange on a, the nodes round-robin over b and c,
    /// the GUI on a.
    static let config: ClusterConfig = {
        var config = ClusterConfig.defaults
        config.nodeCount = 4
        config.hosts = [.init(name: "a", address: "10.0.0.1"), .init(name: "b", address: "10.0.0.2"), .init(name: "c", address: "10.0.0.3")]
        config.placement = .init(nodes: ["b", "c"], defaultHost: "a")
        return config
    }()

    static func down(_ url: String) -> ClientError { .unreachable(TransportError(url: url, reason: "connection refused")) }

    static func row(_ name: String, pid: Int32) -> ProcessStatus {
        let process = ClusterProcess(name: name)!
        return ProcessStatus(name: name, role: process.role, pid: pid, state: .running, restarts: 0, uptimeMs: 1_000, port: config.port(of: process), lastExit: nil)
    }

    static func supervisor(pid: Int32) -> SupervisorInfo { SupervisorInfo(pid: pid, uptimeMs: 9_000, startedAtMs: now - 9_000, phase: "running") }

    /// a and b answer, c does not.
    static func inputs(cClock: ClusterSnapshotBuilder.ClockReading? = .failed(down("http://10.0.0.3:7400/v1/info"))) -> ClusterSnapshotBuilder.Inputs {
        let a = ClusterSnapshotBuilder.HostInputs(
            host: "a",
            processes: .success(ProcessList(supervisor: supervisor(pid: 100), processes: [row("gui", pid: 105), row("exchange", pid: 103), row("coordinator", pid: 101), row("state", pid: 102)])),
            events: .success([
                ClusterEvent(seq: 5, tsMs: now - 30, kind: "ready", node: nil, detail: "exchange ready"),
                ClusterEvent(seq: 4, tsMs: now - 90, kind: "spawn", node: nil, detail: "exchange spawned"),
            ]),
            clock: .sample(ClockSample(sentMs: now, receivedMs: now + 4, remoteNowMs: now + 2)))
        let b = ClusterSnapshotBuilder.HostInputs(
            host: "b",
            processes: .success(ProcessList(supervisor: supervisor(pid: 200), processes: [row("n3", pid: 203), row("n1", pid: 201)])),
            events: .success([ClusterEvent(seq: 9, tsMs: now - 50, kind: "exit", node: "n1", detail: "n1 exited")]),
            clock: .sample(ClockSample(sentMs: now, receivedMs: now + 6, remoteNowMs: now + 815)))
        let c = ClusterSnapshotBuilder.HostInputs(
            host: "c", processes: .failure(down("http://10.0.0.3:7400/v1/processes")), events: .failure(down("http://10.0.0.3:7400/v1/events")), clock: cClock)
        return ClusterSnapshotBuilder.Inputs(
            hosts: [b, c, a], // arrival order: assembly follows the configured order
            members: .success([
                NodePresence(node: "n1", address: "", joinedAtMs: 0, lastHeartbeatMs: 0, expiresAtMs: now + 1_000, expiresInMs: 1_000, status: .alive),
                NodePresence(node: "n2", address: "", joinedAtMs: 0, lastHeartbeatMs: 0, expiresAtMs: now + 1_000, expiresInMs: 1_000, status: .alive),
            ]),
            assignments: .success(AssignmentTable(version: 3, symbols: ["ACME": "n1"])),
            authority: .success(AuthorityList(authority: [AuthorityStatus(symbol: "ACME", assignedTo: "n1", node: "n1", fencingToken: 4, expiresAtMs: now + 900, expiresInMs: 900)], quietForMs: 0)),
            coordinatorEvents: .success([ClusterEvent(seq: 2, tsMs: now - 50, kind: "grant", symbol: "ACME", node: "n1", fencingToken: 4, detail: "granted")]),
            prices: .success([ReferencePrice(symbol: "ACME", price: 10_010, tickIndex: 3, tsMs: now)]),
            quotes: .success([]),
            fills: .success([]),
            positions: .success(PositionsView(version: 0, positions: [])))
    }

    @Test func twoHostsAnswerOneDoesNot() throws {
        let snapshot = ClusterSnapshotBuilder.assemble(config: Self.config, nowMs: Self.now, inputs: Self.inputs())

        // Every process of the cluster, in start order, each with its host; c's are unreachable.
        #expect(snapshot.processes.map(\.name) == ["coordinator", "state", "exchange", "n1", "n2", "n3", "n4", "gui"])
        let hostOf = Dictionary(uniqueKeysWithValues: snapshot.processes.map { ($0.name, $0.host) })
        #expect(hostOf == ["coordinator": "a", "state": "a", "exchange": "a", "gui": "a", "n1": "b", "n3": "b", "n2": "c", "n4": "c"])
        let unreachable = snapshot.processes.filter { $0.state == .unreachable }
        #expect(unreachable.map(\.name) == ["n2", "n4"])
        #expect(unreachable.allSatisfy { $0.pid == nil && $0.uptimeMs == nil && $0.host == "c" && $0.role == "node" })
        #expect(unreachable.map(\.port) == [Self.config.port(of: .node(2)), Self.config.port(of: .node(4))])
        #expect(snapshot.processes.filter { $0.host != "c" }.allSatisfy { $0.state == .running })

        // One error per thing asked of c, naming the host and its address; nothing else failed.
        #expect(snapshot.errors.count == 2)
        #expect(snapshot.errors.allSatisfy { $0.service == "supervisor" && $0.host == "c" && $0.error.hasPrefix("host c (10.0.0.3): GET /v1/") })
        #expect(snapshot.errors.first?.error.contains("connection refused") == true)

        // Hosts in configured order with what each answered.
        #expect(snapshot.hosts.map(\.name) == ["a", "b", "c"])
        #expect(snapshot.hosts.map(\.reachable) == [true, true, false])
        #expect(snapshot.hosts.map(\.address) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"])
        #expect(snapshot.hosts[1].supervisor?.pid == 200)
        #expect(snapshot.supervisor?.pid == 100, "the top-level supervisor is the first host's")
        #expect(snapshot.isMultiHost)

        // Clocks: a within 0 ± 2, b 812 ± 3 ahead (flagged against 200 ms), c unknown.
        #expect(snapshot.hosts[0].clock == ClockEstimate(offsetMs: 0, uncertaintyMs: 2))
        #expect(snapshot.hosts[1].clock == ClockEstimate(offsetMs: 812, uncertaintyMs: 3))
        #expect(snapshot.hosts.map(\.clockSkewed) == [false, true, false])
        #expect(snapshot.hosts[2].clock == nil && snapshot.hosts[2].clockError?.contains("GET /v1/info") == true)
        #expect(snapshot.warnings.map(\.kind) == ["clock_skew"])
        #expect(snapshot.warnings.first?.hosts == ["b"])
        #expect(snapshot.warnings.first?.message.contains("host b (10.0.0.2) is 812 ms ahead") == true)

        // Nothing else lost: the services on a still render.
        #expect(snapshot.members.map(\.node) == ["n1", "n2"])
        #expect(snapshot.symbols.first { $0.symbol == "ACME" }?.authority?.node == "n1")
        #expect(snapshot.symbols.first { $0.symbol == "ACME" }?.referencePrice == 10_010)
        // Events from the coordinator and both answering supervisors, newest first; at equal
        // times the coordinator, then hosts in configured order.
        #expect(snapshot.recentEvents.map(\.kind) == ["ready", "grant", "exit", "spawn"])
    }

    @Test func theUnreachableHostsNodesCountFromMembersAndReportsNotFewerThanConfigured() {
        var inputs = Self.inputs()
        // A node added at run time (n6, on c by round-robin) is known from the coordinator's members.
        inputs.members = .success([NodePresence(node: "n6", address: "", joinedAtMs: 0, lastHeartbeatMs: 0, expiresAtMs: 0, expiresInMs: 0, status: .expired)])
        let snapshot = ClusterSnapshotBuilder.assemble(config: Self.config, nowMs: Self.now, inputs: inputs)
        #expect(snapshot.processes.filter { $0.state == .unreachable }.map(\.name) == ["n2", "n4", "n6"])

        // Nobody reports a node: the configured count.
        var quiet = Self.inputs()
        quiet.members = .failure(Self.down("http://10.0.0.1:7401/v1/members"))
        let bare = ClusterSnapshotBuilder.assemble(config: Self.config, nowMs: Self.now, inputs: quiet)
        #expect(bare.processes.filter { $0.state == .unreachable }.map(\.name) == ["n2", "n4"])
    }

    /// A supervisor from before `supervise --host` lists every process of the config: each
    /// is shown once, from the host its placement names.
    @Test func aProcessListedByTwoSupervisorsIsShownOnceFromItsHost() {
        var inputs = Self.inputs()
        let bIndex = inputs.hosts.firstIndex { $0.host == "b" }!
        inputs.hosts[bIndex].processes = .success(ProcessList(
            supervisor: Self.supervisor(pid: 200),
            processes: [Self.row("coordinator", pid: 901), Self.row("n3", pid: 203), Self.row("n1", pid: 201)]))
        // And a, asked first, lists n1, which b runs.
        let aIndex = inputs.hosts.firstIndex { $0.host == "a" }!
        inputs.hosts[aIndex].processes = inputs.hosts[aIndex].processes.map { list in
            ProcessList(supervisor: list.supervisor, processes: list.processes + [Self.row("n1", pid: 902)])
        }
        let snapshot = ClusterSnapshotBuilder.assemble(config: Self.config, nowMs: Self.now, inputs: inputs)
        let coordinators = snapshot.processes.filter { $0.name == "coordinator" }
        #expect(coordinators.count == 1 && coordinators.first?.host == "a" && coordinators.first?.pid == 101)
        let n1 = snapshot.processes.filter { $0.name == "n1" }
        #expect(n1.count == 1 && n1.first?.host == "b" && n1.first?.pid == 201)
        #expect(snapshot.processes.map(\.name) == ["coordinator", "state", "exchange", "n1", "n2", "n3", "n4", "gui"])
    }

    @Test func everyHostDownIsStillAView() {
        var inputs = Self.inputs()
        inputs.hosts = inputs.hosts.map { host in
            ClusterSnapshotBuilder.HostInputs(host: host.host, processes: .failure(Self.down(host.host)), events: .failure(Self.down(host.host)), clock: .failed(Self.down(host.host)))
        }
        let snapshot = ClusterSnapshotBuilder.assemble(config: Self.config, nowMs: Self.now, inputs: inputs)
        #expect(snapshot.supervisor == nil)
        #expect(snapshot.processes.count == 8 && snapshot.processes.allSatisfy { $0.state == .unreachable })
        #expect(Set(snapshot.errors.compactMap(\.host)) == ["a", "b", "c"])
        #expect(snapshot.hosts.allSatisfy { !$0.reachable })
        #expect(snapshot.warnings.isEmpty)
    }

    @Test func anOlderSupervisorWithoutNowMsIsNotGuessedAt() {
        let snapshot = ClusterSnapshotBuilder.assemble(config: Self.config, nowMs: Self.now, inputs: Self.inputs(cClock: .notReported))
        #expect(snapshot.hosts[2].clockError?.contains("now_ms") == true)
        #expect(snapshot.hosts[2].clockOffsetMs == nil && !snapshot.hosts[2].clockSkewed)
    }

    @Test func aSingleHostReadsAsBeforeWithItsOneHostNamedLocal() {
        let config = ClusterConfig.defaults
        let inputs = ClusterSnapshotBuilder.Inputs(
            processes: .failure(Self.down("http://127.0.0.1:7400/v1/processes")), supervisorEvents: .success([]),
            members: .success([]), assignments: .failure(Self.down("c")), authority: .failure(Self.down("c")), coordinatorEvents: .success([]),
            prices: .success([]), quotes: .success([]), fills: .success([]), positions: .success(PositionsView(version: 0, positions: [])))
        let snapshot = ClusterSnapshotBuilder.assemble(config: config, nowMs: Self.now, inputs: inputs)
        #expect(!snapshot.isMultiHost)
        #expect(snapshot.hosts == [ClusterSnapshot.HostView(name: "local", address: config.listen.host, reachable: false)])
        let supervisorErrors = snapshot.errors.filter { $0.service == "supervisor" }
        #expect(supervisorErrors.count == 1 && supervisorErrors[0].error.hasPrefix("GET /v1/processes: "), "\(supervisorErrors)")
        #expect(supervisorErrors.allSatisfy { $0.host == nil }, "single-host errors keep their old shape")
        // As before: no supervisor, no process table (the header says the supervisor is down).
        #expect(snapshot.processes.isEmpty)
        #expect(snapshot.warnings.isEmpty)
    }

    // MARK: gather over a transport

    /// Serves each host's supervisor by address; host c refuses; every other service refuses.
    /// `/v1/info` advances the local clock by 6 ms, as a round trip would.
    final class FakeTransport: HTTPTransport {
        let clock: ManualClock
        let remoteOffsetMs: [String: Int64]
        let calls = Mutex<[String]>([])

        init(clock: ManualClock, remoteOffsetMs: [String: Int64]) {
            self.clock = clock
            self.remoteOffsetMs = remoteOffsetMs
        }

        func send(_ request: TransportRequest) async throws(TransportError) -> TransportResponse {
            calls.withLock { $0.append(request.url) }
            let supervisorPort = ":\(MultiHostSnapshotTests.config.supervisorPort)/"
            guard let address = remoteOffsetMs.keys.first(where: { request.url.contains("//\($0)\(supervisorPort)") }) else {
                throw TransportError(url: request.url, reason: "connection refused")
            }
            let body: Data
            do {
                if request.url.contains("/v1/processes") {
                    body = try MMJSON.encode(ProcessList(supervisor: MultiHostSnapshotTests.supervisor(pid: 1), processes: []))
                } else if request.url.contains("/v1/events") {
                    body = try MMJSON.encode(EventPage(events: [], headSeq: 0))
                } else if request.url.contains("/v1/info") {
                    // The remote reads its clock halfway through the trip.
                    clock.advance(byMs: 3)
                    let info = ServiceInfo(role: "supervisor", name: "supervisor", version: "t", pid: 1, startedAtMs: 0, configDigest: "", nowMs: clock.nowMs() + remoteOffsetMs[address]!)
                    clock.advance(byMs: 3)
                    body = try MMJSON.encode(info)
                } else {
                    throw TransportError(url: request.url, reason: "not found")
                }
            } catch let error as TransportError {
                throw error
            } catch {
                throw TransportError(url: request.url, reason: "\(error)")
            }
            return TransportResponse(status: 200, body: body)
        }
    }

    @Test func gatherAsksEveryHostsSupervisorAndReadsItsClock() async throws {
        let clock = ManualClock(startMs: Self.now)
        let transport = FakeTransport(clock: clock, remoteOffsetMs: ["10.0.0.1": 0, "10.0.0.2": 450])
        let builder = ClusterSnapshotBuilder(config: Self.config, token: "t", transport: transport, timeoutMs: 100, clock: clock)
        let snapshot = await builder.snapshot()
        let calls = transport.calls.withLock { $0 }
        for address in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
            #expect(calls.contains("http://\(address):7400/v1/processes"), "\(address) asked for its processes: \(calls)")
            #expect(calls.contains("http://\(address):7400/v1/info"), "\(address) asked for its clock")
        }
        #expect(snapshot.hosts.map(\.reachable) == [true, true, false])
        // Concurrent requests share the manual clock, so only bounds are certain: the interval
        // contains the true offset.
        let a = try #require(snapshot.hosts[0].clock)
        let b = try #require(snapshot.hosts[1].clock)
        #expect(abs(a.offsetMs - 0) <= a.uncertaintyMs)
        #expect(abs(b.offsetMs - 450) <= b.uncertaintyMs)
        #expect(snapshot.hosts[1].clockSkewed == (abs(b.offsetMs) - b.uncertaintyMs > Self.config.node.safetyMarginMs))
        #expect(snapshot.processes.filter { $0.host == "c" }.allSatisfy { $0.state == .unreachable })
        #expect(snapshot.errors.contains { $0.host == "c" && $0.error.contains("10.0.0.3") })
    }

    @Test func aSingleHostIsAskedOnceAndNotForItsClock() async {
        var config = ClusterConfig.defaults
        config.listen.host = "127.0.0.9"
        let clock = ManualClock(startMs: Self.now)
        let transport = FakeTransport(clock: clock, remoteOffsetMs: ["127.0.0.9": 0])
        let builder = ClusterSnapshotBuilder(config: config, token: "t", transport: transport, timeoutMs: 100, clock: clock)
        let snapshot = await builder.snapshot()
        let calls = transport.calls.withLock { $0 }
        #expect(calls.filter { $0.hasSuffix(":7400/v1/processes") } == ["http://127.0.0.9:7400/v1/processes"])
        #expect(!calls.contains { $0.contains("/v1/info") })
        #expect(snapshot.hosts.map(\.name) == ["local"] && snapshot.hosts[0].reachable && snapshot.hosts[0].clockOffsetMs == nil)
    }
}
