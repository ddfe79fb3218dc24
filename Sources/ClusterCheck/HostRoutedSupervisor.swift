import MMCore

/// The supervisors of a cluster as one: on several hosts each supervisor runs and answers for
/// its own host's processes, so a request about a process goes to its host's supervisor and
/// the process list is every host's put together. On a single host it is that one supervisor.
public struct HostRoutedSupervisor: Sendable {
    public let config: ClusterConfig
    /// By host name (`ClusterConfig.hostNames`).
    public let clients: [String: SupervisorClient]

    public init(config: ClusterConfig, endpoint: (String) -> ServiceEndpoint) {
        self.config = config
        clients = Dictionary(uniqueKeysWithValues: config.hostNames.map { ($0, SupervisorClient(endpoint(config.supervisorURL(host: $0)))) })
    }

    /// The supervisor of the host that runs `name` (the first host's for a name it does not know).
    public func client(for name: String) -> SupervisorClient {
        clients[ClusterProcess(name: name).map(config.hostName(of:)) ?? config.hostNames[0]]!
    }

    public func client(host: String) -> SupervisorClient? { clients[host] }

    /// Every host's processes in start order. A host that does not answer leaves its rows out
    /// (a drill sees its processes as not running); throws only when no supervisor answers.
    public func processes() async throws(ClientError) -> ProcessList {
        if clients.count == 1 { return try await clients.values.first!.processes() }
        let results = await withTaskGroup(of: (String, Result<ProcessList, ClientError>).self) { group in
            for (host, client) in clients {
                group.addTask {
                    do throws(ClientError) { return (host, .success(try await client.processes())) } catch { return (host, .failure(error)) }
                }
            }
            var results: [String: Result<ProcessList, ClientError>] = [:]
            for await (host, result) in group { results[host] = result }
            return results
        }
        var lists: [ProcessList] = []
        var firstError: ClientError?
        for host in config.hostNames {
            switch results[host] {
            case .success(let list)?: lists.append(list)
            case .failure(let error)?: if firstError == nil { firstError = error }
            case nil: break
            }
        }
        guard let first = lists.first else { throw firstError ?? .unreachable(TransportError(url: config.supervisorURL, reason: "no supervisor answered")) }
        let rows = lists.flatMap(\.processes).sorted { lhs, rhs in
            switch (ClusterProcess(name: lhs.name), ClusterProcess(name: rhs.name)) {
            case (let left?, let right?): left < right
            default: lhs.name < rhs.name
            }
        }
        return ProcessList(supervisor: first.supervisor, processes: rows)
    }

    public func signal(_ name: String, signal: String) async throws(ClientError) -> ProcessStatus {
        try await client(for: name).signal(name, signal: signal)
    }

    public func restart(_ name: String) async throws(ClientError) -> ProcessStatus {
        try await client(for: name).restart(name)
    }

    public func removeNode(_ name: String) async throws(ClientError) -> ProcessStatus {
        try await client(for: name).removeNode(name)
    }

    /// Adds a node on the host of the lowest node id no host runs yet (each host adds the ids
    /// placed on it).
    public func addNode(running: Set<String>) async throws(ClientError) -> ProcessStatus {
        let next = (1...ClusterConfig.maxNodes).map { ClusterProcess.node($0) }.first { !running.contains($0.name) }
        return try await (next.map { client(for: $0.name) } ?? clients[config.hostNames[0]]!).addNode()
    }
}
