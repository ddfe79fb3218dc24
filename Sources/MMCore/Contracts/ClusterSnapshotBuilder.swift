import Foundation

/// Builds the one read-only view of the whole cluster (`mmctl status`, the GUI's `/api/view`)
/// from every service's inspection endpoints. Reused over any transport: the GUI plugs in
/// AsyncHTTPClient, mmctl plugs in libcurl.
///
/// Every call runs concurrently with a short timeout, so one hung service costs one timeout,
/// not the sum; a service that does not answer is listed in `errors[]` and everything else
/// still renders, because an operator looks at status precisely when something is down.
public struct ClusterSnapshotBuilder: Sendable {
    public static let recentFillLimit = 20
    public static let recentEventLimit = 30

    public let config: ClusterConfig
    public let token: String
    public let transport: any HTTPTransport
    public let timeoutMs: Int64
    public let clock: any EpochClock

    /// `token` is normally the observer token (`DATA_DIR/tokens/observer`): every route used
    /// here is an inspection route that any role may read.
    public init(config: ClusterConfig, token: String, transport: any HTTPTransport, timeoutMs: Int64 = 1_000, clock: any EpochClock = MonotonicEpochClock()) {
        self.config = config
        self.token = token
        self.transport = transport
        self.timeoutMs = timeoutMs
        self.clock = clock
    }

    private func endpoint(_ baseURL: String) -> ServiceEndpoint {
        ServiceEndpoint(baseURL: baseURL, token: token, transport: transport, timeoutMs: timeoutMs)
    }

    /// What one host's supervisor answered: its process list, its event log, and (multi-host
    /// only) a reading of its clock.
    public struct HostInputs: Sendable {
        public var host: String
        public var processes: Result<ProcessList, ClientError>
        public var events: Result<[ClusterEvent], ClientError>
        /// Nil when not asked (a single host: one machine, one clock).
        public var clock: ClockReading?

        public init(host: String, processes: Result<ProcessList, ClientError>, events: Result<[ClusterEvent], ClientError>, clock: ClockReading? = nil) {
            self.host = host
            self.processes = processes
            self.events = events
            self.clock = clock
        }
    }

    /// The outcome of `GET /v1/info` on a host's supervisor, bracketed by the local clock.
    public enum ClockReading: Sendable {
        case sample(ClockSample)
        /// It answered without `now_ms` (a build from before the field).
        case notReported
        case failed(ClientError)
    }

    /// Everything gathered, before it is joined into a snapshot. Each part is what its
    /// service answered, or why it did not.
    public struct Inputs: Sendable {
        /// One entry per host asked, in any order (`assemble` follows the configured order).
        public var hosts: [HostInputs]
        public var members: Result<[NodePresence], ClientError>
        public var assignments: Result<AssignmentTable, ClientError>
        public var authority: Result<AuthorityList, ClientError>
        public var coordinatorEvents: Result<[ClusterEvent], ClientError>
        public var prices: Result<[ReferencePrice], ClientError>
        public var quotes: Result<[Quote], ClientError>
        public var fills: Result<[Fill], ClientError>
        public var positions: Result<PositionsView, ClientError>

        public init(
            hosts: [HostInputs],
            members: Result<[NodePresence], ClientError>, assignments: Result<AssignmentTable, ClientError>,
            authority: Result<AuthorityList, ClientError>, coordinatorEvents: Result<[ClusterEvent], ClientError>,
            prices: Result<[ReferencePrice], ClientError>, quotes: Result<[Quote], ClientError>,
            fills: Result<[Fill], ClientError>, positions: Result<PositionsView, ClientError>
        ) {
            self.hosts = hosts
            self.members = members
            self.assignments = assignments
            self.authority = authority
            self.coordinatorEvents = coordinatorEvents
            self.prices = prices
            self.quotes = quotes
            self.fills = fills
            self.positions = positions
        }

        /// A single-host cluster's inputs: its one supervisor is host `local`.
        public init(
            processes: Result<ProcessList, ClientError>, supervisorEvents: Result<[ClusterEvent], ClientError>,
            members: Result<[NodePresence], ClientError>, assignments: Result<AssignmentTable, ClientError>,
            authority: Result<AuthorityList, ClientError>, coordinatorEvents: Result<[ClusterEvent], ClientError>,
            prices: Result<[ReferencePrice], ClientError>, quotes: Result<[Quote], ClientError>,
            fills: Result<[Fill], ClientError>, positions: Result<PositionsView, ClientError>
        ) {
            self.init(
                hosts: [HostInputs(host: ClusterConfig.localHostName, processes: processes, events: supervisorEvents)],
                members: members, assignments: assignments, authority: authority, coordinatorEvents: coordinatorEvents,
                prices: prices, quotes: quotes, fills: fills, positions: positions)
        }
    }

    /// Gathers every input concurrently and joins them.
    public func snapshot() async -> ClusterSnapshot {
        let inputs = await gather()
        return Self.assemble(config: config, nowMs: clock.nowMs(), inputs: inputs)
    }

    public func gather() async -> Inputs {
        let coordinator = CoordinatorClient(.coordinator(config, token: token, transport: transport, timeoutMs: timeoutMs))
        let exchange = ExchangeClient(endpoint(config.baseURL(of: .exchange)))
        let state = TradingStateClient(.state(config, token: token, transport: transport, timeoutMs: timeoutMs))
        let eventLimit = Self.recentEventLimit
        let fillLimit = Self.recentFillLimit

        // Every host's supervisor at once, alongside the services: a host that does not
        // answer costs one timeout, whichever and however many.
        async let hosts = gatherHosts()
        async let members = attempt { () async throws(ClientError) in try await coordinator.members() }
        async let assignments = attempt { () async throws(ClientError) in try await coordinator.assignments() }
        async let authority = attempt { () async throws(ClientError) in try await coordinator.authority() }
        async let coordinatorEvents = attempt { () async throws(ClientError) in try await coordinator.events(tail: eventLimit).events }
        async let prices = attempt { () async throws(ClientError) in try await exchange.prices() }
        async let quotes = attempt { () async throws(ClientError) in try await exchange.quotes() }
        async let fills = attempt { () async throws(ClientError) in try await exchange.fills(tail: fillLimit).fills }
        async let positions = attempt { () async throws(ClientError) in try await state.positions() }

        return Inputs(
            hosts: await hosts, members: await members,
            assignments: await assignments, authority: await authority, coordinatorEvents: await coordinatorEvents,
            prices: await prices, quotes: await quotes, fills: await fills, positions: await positions)
    }

    /// Each host's supervisor: processes, events and, on a multi-host cluster, its clock.
    /// A single host is asked exactly as before (its processes and events, no clock reading).
    private func gatherHosts() async -> [HostInputs] {
        await withTaskGroup(of: HostInputs.self) { group in
            for host in config.hostNames {
                group.addTask { await self.gatherHost(host) }
            }
            var answers: [HostInputs] = []
            for await answer in group { answers.append(answer) }
            return answers
        }
    }

    private func gatherHost(_ host: String) async -> HostInputs {
        let supervisor = SupervisorClient(endpoint(config.supervisorURL(host: host)))
        let eventLimit = Self.recentEventLimit
        let measureClock = config.isMultiHost
        let clock = self.clock
        async let processes = attempt { () async throws(ClientError) in try await supervisor.processes() }
        async let events = attempt { () async throws(ClientError) in try await supervisor.events(tail: eventLimit).events }
        async let reading: ClockReading? = measureClock ? Self.readClock(supervisor, clock: clock) : nil
        return HostInputs(host: host, processes: await processes, events: await events, clock: await reading)
    }

    /// `GET /v1/info` between two readings of the local clock. The same clock stamps both
    /// ends and never jumps, so the difference is the round trip that bounds the estimate.
    static func readClock(_ supervisor: SupervisorClient, clock: any EpochClock) async -> ClockReading {
        let sent = clock.nowMs()
        do {
            let info = try await supervisor.info()
            let received = clock.nowMs()
            guard let remote = info.nowMs else { return .notReported }
            return .sample(ClockSample(sentMs: sent, receivedMs: received, remoteNowMs: remote))
        } catch {
            return .failed(error)
        }
    }

    private func attempt<T: Sendable>(_ operation: () async throws(ClientError) -> T) async -> Result<T, ClientError> {
        do { return .success(try await operation()) } catch { return .failure(error) }
    }

    // MARK: Pure assembly

    /// Joins the inputs into a snapshot. Pure: no I/O, `nowMs` injected.
    public static func assemble(config: ClusterConfig, nowMs: EpochMs, inputs: Inputs) -> ClusterSnapshot {
        var errors: [ClusterSnapshot.ServiceError] = []
        func value<T>(_ result: Result<T, ClientError>, _ service: String, _ what: String) -> T? {
            switch result {
            case .success(let value): return value
            case .failure(let error):
                let message = "\(what): \(error)"
                if !errors.contains(where: { $0.service == service && $0.error == message }) {
                    errors.append(ClusterSnapshot.ServiceError(service: service, error: message))
                }
                return nil
            }
        }

        let hostPart = assembleHosts(config: config, inputs: inputs, members: (try? inputs.members.get()) ?? [])
        errors.append(contentsOf: hostPart.errors)
        let presences = value(inputs.members, "coordinator", "GET /v1/members") ?? []
        let assignmentTable = value(inputs.assignments, "coordinator", "GET /v1/assignments")
        let authorityList = value(inputs.authority, "coordinator", "GET /v1/authority")
        let coordinatorEvents = value(inputs.coordinatorEvents, "coordinator", "GET /v1/events") ?? []
        let prices = value(inputs.prices, "exchange", "GET /v1/prices")
        let quotes = value(inputs.quotes, "exchange", "GET /v1/quotes")
        let fills = value(inputs.fills, "exchange", "GET /v1/fills") ?? []
        let positions = value(inputs.positions, "state", "GET /v1/positions")

        let priceBySymbol = Dictionary((prices ?? []).map { ($0.symbol, $0.price) }, uniquingKeysWith: { _, last in last })
        let quoteBySymbol = Dictionary((quotes ?? []).map { ($0.symbol, $0) }, uniquingKeysWith: { _, last in last })
        let positionBySymbol = Dictionary((positions?.positions ?? []).map { ($0.symbol, $0) }, uniquingKeysWith: { _, last in last })
        let authorityBySymbol = Dictionary((authorityList?.authority ?? []).map { ($0.symbol, $0) }, uniquingKeysWith: { _, last in last })

        var totals = ClusterSnapshot.Totals(realizedPnl: 0, unrealizedPnl: 0, fillCount: 0)
        let symbols = config.symbols.map { spec -> ClusterSnapshot.SymbolView in
            let symbol = spec.symbol
            let referencePrice = priceBySymbol[symbol]
            let status = authorityBySymbol[symbol]
            let assignedTo = assignmentTable?.symbols[symbol] ?? status?.assignedTo
            var authority: ClusterSnapshot.Authority?
            if let status, let holder = status.node {
                // The coordinator's own countdown is authoritative; its absolute expiry is
                // the fallback so a clock difference cannot invent time left.
                let left = status.expiresInMs ?? status.expiresAtMs.map { $0 - nowMs } ?? 0
                if left > 0 { authority = ClusterSnapshot.Authority(node: holder, fencingToken: status.fencingToken, expiresInMs: left) }
            }
            let quote = quoteBySymbol[symbol].map {
                ClusterSnapshot.QuoteView(
                    node: $0.node, fencingToken: $0.fencingToken, bid: $0.bidPrice, bidQty: $0.bidQty,
                    ask: $0.askPrice, askQty: $0.askQty, updatedAtMs: $0.updatedAtMs)
            }
            let position = positionBySymbol[symbol].map { position -> ClusterSnapshot.PositionView in
                let unrealized = referencePrice.map { position.unrealizedPnl(at: $0) }
                totals.realizedPnl += position.realizedPnl
                totals.unrealizedPnl += unrealized ?? 0
                totals.fillCount += position.fillCount
                return ClusterSnapshot.PositionView(
                    netQty: position.netQty, avgPrice: position.avgPrice, realizedPnl: position.realizedPnl,
                    unrealizedPnl: unrealized, fillCount: position.fillCount)
            }
            return ClusterSnapshot.SymbolView(
                symbol: symbol, tickSize: spec.tickSize, referencePrice: referencePrice, assignedTo: assignedTo,
                authority: authority, quote: quote, position: position)
        }

        let members = presences
            .sorted { ($0.node.count, $0.node) < ($1.node.count, $1.node) }
            .map { ClusterSnapshot.Member(node: $0.node, status: $0.status, expiresInMs: $0.expiresInMs) }

        // Start order (etcd1…, coordinator, coordinator2…, state, exchange, n1…, gui), unknown
        // names last; the hosts' lists interleave by that order, not by host.
        let processes = hostPart.processes.sorted { lhs, rhs in
            switch (ClusterProcess(name: lhs.name), ClusterProcess(name: rhs.name)) {
            case (.some(let l), .some(let r)): return l < r
            case (.some, .none): return true
            case (.none, .some): return false
            case (.none, .none): return (lhs.name, lhs.host ?? "") < (rhs.name, rhs.host ?? "")
            }
        }

        let recentFills = Array(fills.sorted { $0.seq > $1.seq }.prefix(recentFillLimit))
        // Several logs with their own seq spaces (the coordinator's, each host's supervisor's):
        // time orders them, the source breaks ties stably (coordinator, then the hosts in
        // configured order), then seq. Each log is stamped on its own host's clock, so across
        // hosts the order is only as good as the clocks (`hosts[].clock_offset_ms`).
        let tagged = coordinatorEvents.map { (0, $0) } + hostPart.events.map { ($0.source + 1, $0.event) }
        let recentEvents = tagged
            .sorted { lhs, rhs in
                if lhs.1.tsMs != rhs.1.tsMs { return lhs.1.tsMs > rhs.1.tsMs }
                if lhs.0 != rhs.0 { return lhs.0 < rhs.0 }
                return lhs.1.seq > rhs.1.seq
            }
            .prefix(recentEventLimit)
            .map(\.1)

        return ClusterSnapshot(
            takenAtMs: nowMs,
            supervisor: hostPart.supervisor,
            processes: processes,
            members: members,
            assignments: assignmentTable.map { ClusterSnapshot.Assignments(version: $0.version, symbols: $0.symbols) },
            symbols: symbols,
            totals: totals,
            recentFills: recentFills,
            recentEvents: Array(recentEvents),
            errors: errors,
            hosts: hostPart.hosts,
            warnings: hostPart.warnings)
    }

    /// The per-host half of the view: every host's process rows tagged with it, its events,
    /// its entry in `hosts[]` with the clock figures, and what went wrong.
    struct HostPart {
        var processes: [ProcessStatus] = []
        /// (host index in configured order, event).
        var events: [(source: Int, event: ClusterEvent)] = []
        /// The first configured host's supervisor (the one `config.supervisorURL` names).
        var supervisor: SupervisorInfo?
        var hosts: [ClusterSnapshot.HostView] = []
        var errors: [ClusterSnapshot.ServiceError] = []
        var warnings: [ClusterSnapshot.Warning] = []
    }

    /// Pure. A host whose supervisor does not answer is an error naming it and its address,
    /// and (multi-host) a row in state `unreachable` for each process placed on it, never a
    /// failed view.
    static func assembleHosts(config: ClusterConfig, inputs: Inputs, members: [NodePresence]) -> HostPart {
        var part = HostPart()
        let multiHost = config.isMultiHost
        let byHost = Dictionary(inputs.hosts.map { ($0.host, $0) }, uniquingKeysWith: { first, _ in first })
        let boundMs = config.node.safetyMarginMs

        func fail(_ host: String, _ what: String, _ error: ClientError) {
            // A single host reads exactly as before: the service, what was asked, the error.
            let message = multiHost ? "host \(host) (\(config.address(ofHost: host))): \(what): \(error)" : "\(what): \(error)"
            guard !part.errors.contains(where: { $0.service == "supervisor" && $0.error == message }) else { return }
            part.errors.append(ClusterSnapshot.ServiceError(service: "supervisor", error: message, host: multiHost ? host : nil))
        }

        var unreachableHosts: [String] = []
        for (index, host) in config.hostNames.enumerated() {
            let address = config.address(ofHost: host)
            let answer = byHost[host]
            var view = ClusterSnapshot.HostView(name: host, address: address, reachable: false)
            switch answer?.processes {
            case .success(let list):
                view.reachable = true
                view.supervisor = list.supervisor
                if index == 0 { part.supervisor = list.supervisor }
                part.processes += list.processes.map { process in
                    var row = process
                    // The supervisor that answered is the host's: it lists only its own processes.
                    row.host = host
                    return row
                }
            case .failure(let error):
                fail(host, "GET /v1/processes", error)
                unreachableHosts.append(host)
            case nil:
                fail(host, "GET /v1/processes", .unreachable(TransportError(url: config.supervisorURL(host: host), reason: "not asked")))
                unreachableHosts.append(host)
            }
            switch answer?.events {
            case .success(let events): part.events += events.map { (source: index, event: $0) }
            case .failure(let error): fail(host, "GET /v1/events", error)
            case nil: break
            }
            switch answer?.clock {
            case .sample(let sample):
                if let estimate = ClockOffset.estimate(sample) {
                    view.clockOffsetMs = estimate.offsetMs
                    view.clockUncertaintyMs = estimate.uncertaintyMs
                    view.clockSkewed = ClockOffset.isSkewed(estimate, boundMs: boundMs)
                } else {
                    view.clockError = "the local clock went backwards during GET /v1/info"
                }
            case .notReported:
                view.clockError = "its supervisor's GET /v1/info has no now_ms (an older build)"
            case .failed(let error):
                view.clockError = "GET /v1/info: \(error)"
            case nil:
                break
            }
            part.hosts.append(view)
        }

        // A process listed by two supervisors (one from before `supervise --host` lists every
        // process of the config) is shown once: from the host the placement puts it on.
        if multiHost {
            var placed: [String: ProcessStatus] = [:]
            var order: [String] = []
            for row in part.processes {
                guard let kept = placed[row.name] else {
                    placed[row.name] = row
                    order.append(row.name)
                    continue
                }
                let home = ClusterProcess(name: row.name).map { config.hostName(of: $0) }
                if kept.host != home && row.host == home { placed[row.name] = row }
            }
            part.processes = order.compactMap { placed[$0] }
        }

        // On one host a silent supervisor leaves the process table empty, as it always has
        // (the header says the supervisor is down); across hosts the others still answer,
        // so the silent host's processes are listed, as unreachable, where they belong.
        if multiHost && !unreachableHosts.isEmpty {
            let nodeCount = inferredNodeCount(config: config, reported: part.processes, members: members)
            for host in unreachableHosts {
                part.processes += config.processes(onHost: host, nodeCount: nodeCount).map { process in
                    ProcessStatus(
                        name: process.name, role: process.role, pid: nil, state: .unreachable, restarts: 0, uptimeMs: nil,
                        port: config.port(of: process), lastExit: nil, host: host)
                }
            }
        }
        part.warnings = clockWarnings(part.hosts, boundMs: boundMs)
        return part
    }

    /// How many nodes the cluster has, to list an unreachable host's nodes: the highest node
    /// the answering hosts or the coordinator's members name, and never fewer than configured
    /// (nodes added at run time are known only from those; the configured count covers a host
    /// holding the highest-numbered nodes, which nobody else can report).
    static func inferredNodeCount(config: ClusterConfig, reported: [ProcessStatus], members: [NodePresence]) -> Int {
        let names = reported.map(\.name) + members.map(\.node)
        let highest = names.compactMap { name -> Int? in
            if case .node(let index) = ClusterProcess(name: name) { return index }
            return nil
        }.max() ?? 0
        return max(highest, config.nodeCount)
    }

    /// Pure. One warning per host whose clock is certainly more than `boundMs` from the local
    /// clock, and one per pair of hosts certainly more than `boundMs` apart although neither is
    /// that far from the local clock (+150 ms and −150 ms against a bound of 200 ms): the skew
    /// that matters is between the machines that decide and judge grants, whoever looks. A pair
    /// with a host already flagged adds nothing, so one bad clock is one warning.
    public static func clockWarnings(_ hosts: [ClusterSnapshot.HostView], boundMs: Int64) -> [ClusterSnapshot.Warning] {
        var warnings: [ClusterSnapshot.Warning] = []
        let measured = hosts.compactMap { host in host.clock.map { (host, $0) } }
        for (host, estimate) in measured where ClockOffset.isSkewed(estimate, boundMs: boundMs) {
            let direction = estimate.offsetMs > 0 ? "ahead of" : "behind"
            warnings.append(ClusterSnapshot.Warning(
                kind: ClusterSnapshot.Warning.clockSkew, hosts: [host.name],
                message: "clock of host \(host.name) (\(host.address)) is \(abs(estimate.offsetMs)) ms \(direction) this machine's (±\(estimate.uncertaintyMs) ms); "
                    + "grants are judged safely only within \(boundMs) ms (node.safety_margin_ms): fix its time sync (NTP)",
                offsetMs: estimate.offsetMs, uncertaintyMs: estimate.uncertaintyMs, boundMs: boundMs))
        }
        let flagged = Set(warnings.flatMap(\.hosts))
        let unflagged = measured.filter { !flagged.contains($0.0.name) }
        for (i, first) in unflagged.enumerated() {
            for second in unflagged.dropFirst(i + 1) {
                let relative = ClockOffset.between(first.1, second.1)
                guard ClockOffset.isSkewed(relative, boundMs: boundMs) else { continue }
                warnings.append(ClusterSnapshot.Warning(
                    kind: ClusterSnapshot.Warning.clockSkewBetweenHosts, hosts: [first.0.name, second.0.name],
                    message: "clocks of hosts \(first.0.name) and \(second.0.name) differ by \(abs(relative.offsetMs)) ms (±\(relative.uncertaintyMs) ms); "
                        + "grants are judged safely only within \(boundMs) ms (node.safety_margin_ms)",
                    offsetMs: relative.offsetMs, uncertaintyMs: relative.uncertaintyMs, boundMs: boundMs))
            }
        }
        return warnings
    }
}
