import Foundation

// MARK: Supervisor control API (mmctl's daemon). Mutations: supervisor role only.

public enum SupervisorRoutes {
    public static let processes = RouteSpec.read("/v1/processes")
    /// Body `{"signal": "KILL"|"TERM"|"STOP"|"CONT"}`: for chaos drills.
    public static let signal = RouteSpec(.POST, "/v1/processes/{name}/signal", roles: [.supervisor])
    public static let restart = RouteSpec(.POST, "/v1/processes/{name}/restart", roles: [.supervisor])
    public static let addNode = RouteSpec(.POST, "/v1/nodes", roles: [.supervisor])
    public static let removeNode = RouteSpec(.DELETE, "/v1/nodes/{name}", roles: [.supervisor])
    public static let shutdown = RouteSpec(.POST, "/v1/shutdown", roles: [.supervisor])
    /// `?after=SEQ&limit=N`: spawn, exit, restart, fatal.
    public static let events = RouteSpec.read("/v1/events")
    /// `?lines=N`: the tail of a process's log.
    public static let logs = RouteSpec.read("/v1/logs/{name}")

    public static let all: [RouteSpec] = [processes, signal, restart, addNode, removeNode, shutdown, events, logs]
}

public enum ProcessState: String, Codable, Sendable, CaseIterable {
    case starting, running, backoff, fatal, stopped, stopping
    /// Never reported by a supervisor: the cluster view's row for a process whose host's
    /// supervisor did not answer, so nothing is known about it (it may well be running).
    case unreachable
}

public struct ProcessExit: Codable, Sendable, Hashable {
    public var code: Int32?
    public var signal: Int32?
    public var atMs: EpochMs
    public init(code: Int32?, signal: Int32?, atMs: EpochMs) {
        self.code = code
        self.signal = signal
        self.atMs = atMs
    }
}

public struct ProcessStatus: Codable, Sendable, Hashable {
    public var name: String
    public var role: String
    public var pid: Int32?
    public var state: ProcessState
    public var restarts: Int64
    public var uptimeMs: Int64?
    public var port: Int
    public var lastExit: ProcessExit?
    /// Why a `fatal` process was left down, e.g. "6 restarts in 30 s; last exit signal 9 (SIGKILL)".
    public var fatalReason: String?
    /// The host whose supervisor runs the process (`local` on a single-host cluster). The
    /// cluster view sets it from the supervisor it asked; optional so a supervisor's own list
    /// need not carry it.
    public var host: String?
    public init(name: String, role: String, pid: Int32?, state: ProcessState, restarts: Int64, uptimeMs: Int64?, port: Int, lastExit: ProcessExit?, fatalReason: String? = nil, host: String? = nil) {
        self.name = name
        self.role = role
        self.pid = pid
        self.state = state
        self.restarts = restarts
        self.uptimeMs = uptimeMs
        self.port = port
        self.lastExit = lastExit
        self.fatalReason = fatalReason
        self.host = host
    }
}

public struct SupervisorInfo: Codable, Sendable, Hashable {
    public var pid: Int32
    public var uptimeMs: Int64
    public var startedAtMs: EpochMs
    /// starting (spawning in order), running (every process was ready once), stopping, stopped.
    public var phase: String?
    public init(pid: Int32, uptimeMs: Int64, startedAtMs: EpochMs, phase: String? = nil) {
        self.pid = pid
        self.uptimeMs = uptimeMs
        self.startedAtMs = startedAtMs
        self.phase = phase
    }
}

public struct ProcessList: Codable, Sendable, Hashable {
    public var supervisor: SupervisorInfo
    public var processes: [ProcessStatus]
    public init(supervisor: SupervisorInfo, processes: [ProcessStatus]) {
        self.supervisor = supervisor
        self.processes = processes
    }
}

public struct SignalRequest: Codable, Sendable, Hashable {
    public var signal: String
    public init(signal: String) { self.signal = signal }
}

public struct ShutdownRequest: Codable, Sendable, Hashable {
    public var graceMs: Int64
    public init(graceMs: Int64) { self.graceMs = graceMs }
}

public struct LogTail: Codable, Sendable, Hashable {
    public var name: String
    public var lines: [String]
    public init(name: String, lines: [String]) {
        self.name = name
        self.lines = lines
    }
}

public struct SupervisorClient: Sendable {
    public let endpoint: ServiceEndpoint
    public init(_ endpoint: ServiceEndpoint) { self.endpoint = endpoint }

    public func processes() async throws(ClientError) -> ProcessList {
        try await endpoint.call(.GET, SupervisorRoutes.processes.path)
    }
    public func signal(_ name: String, signal: String) async throws(ClientError) -> ProcessStatus {
        try await endpoint.call(.POST, SupervisorRoutes.signal.path(["name": name]), body: SignalRequest(signal: signal))
    }
    public func restart(_ name: String) async throws(ClientError) -> ProcessStatus {
        try await endpoint.call(.POST, SupervisorRoutes.restart.path(["name": name]), body: Empty())
    }
    public func addNode() async throws(ClientError) -> ProcessStatus {
        try await endpoint.call(.POST, SupervisorRoutes.addNode.path, body: Empty())
    }
    public func removeNode(_ name: String) async throws(ClientError) -> ProcessStatus {
        try await endpoint.call(.DELETE, SupervisorRoutes.removeNode.path(["name": name]))
    }
    public func shutdown(graceMs: Int64) async throws(ClientError) -> Empty {
        try await endpoint.call(.POST, SupervisorRoutes.shutdown.path, body: ShutdownRequest(graceMs: graceMs))
    }
    public func events(after seq: Int64 = 0, limit: Int = 200) async throws(ClientError) -> EventPage {
        try await endpoint.call(.GET, SupervisorRoutes.events.path, query: LogCursor.after(seq, limit: limit).query)
    }
    /// The newest `count` events the supervisor holds (1…2000), in one request.
    public func events(tail count: Int) async throws(ClientError) -> EventPage {
        try await endpoint.call(.GET, SupervisorRoutes.events.path, query: LogCursor.tail(count).query)
    }
    /// `GET /v1/info`: who answers, and its clock (`now_ms`) for the clock-offset estimate.
    public func info() async throws(ClientError) -> ServiceInfo {
        try await endpoint.call(.GET, CommonRoutes.info.path)
    }
    public func logs(_ name: String, lines: Int) async throws(ClientError) -> LogTail {
        try await endpoint.call(.GET, SupervisorRoutes.logs.path(["name": name]), query: [("lines", "\(lines)")])
    }
}
