import CurlClient
import Foundation
import MMCore

/// Why the checker could not do its job: a service did not answer (exit 4) or the data
/// directory / config is not usable (exit 64-style usage problems are reported the same way).
public struct ServiceUnreachable: Error, Sendable, CustomStringConvertible {
    public var service: String
    public var reason: String

    public init(service: String, reason: String) {
        self.service = service
        self.reason = reason
    }

    public var description: String { "\(service) unreachable: \(reason)" }
}

public struct SetupError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Typed clients for one running cluster: observer token for every read, the supervisor token
/// only for the supervisor's mutating routes (drills).
public struct ClusterConnection: Sendable {
    public let config: ClusterConfig
    public let exchange: ExchangeClient
    public let state: TradingStateClient
    /// Each state replica on its own (no failover), by process name: to ask which one ingests.
    public let stateReplicas: [String: TradingStateClient]
    public let coordinator: CoordinatorClient
    /// Every host's supervisor (one on a single host), with the observer token.
    public let supervisorReader: HostRoutedSupervisor
    /// nil when the supervisor token is not readable (check needs none; drill does).
    public let supervisorControl: HostRoutedSupervisor?

    public init(config: ClusterConfig, observerToken: String, supervisorToken: String?, transport: any HTTPTransport, timeoutMs: Int64 = 3_000) {
        self.config = config
        func endpoint(_ url: String, _ token: String) -> ServiceEndpoint {
            ServiceEndpoint(baseURL: url, token: token, transport: transport, timeoutMs: timeoutMs)
        }
        exchange = ExchangeClient(endpoint(config.baseURL(of: .exchange), observerToken))
        state = TradingStateClient(.state(config, token: observerToken, transport: transport, timeoutMs: timeoutMs))
        stateReplicas = Dictionary(uniqueKeysWithValues: config.stateProcesses.map {
            ($0.name, TradingStateClient(endpoint(config.baseURL(of: $0), observerToken)))
        })
        coordinator = CoordinatorClient(.coordinator(config, token: observerToken, transport: transport, timeoutMs: timeoutMs))
        supervisorReader = HostRoutedSupervisor(config: config) { endpoint($0, observerToken) }
        supervisorControl = supervisorToken.map { token in HostRoutedSupervisor(config: config) { endpoint($0, token) } }
    }

    /// Resolves config and tokens the way every mmctl command does.
    public static func open(options: ClusterSelection, needSupervisorToken: Bool) async throws -> ClusterConnection {
        let dataDirectory = DataDirectory.resolve(flag: options.dataDir)
        let overrides: [String: String]
        do {
            overrides = try options.parsedOverrides()
        } catch {
            throw SetupError("\(error)")
        }
        let config: ClusterConfig
        // Like every mmctl command: a running cluster's resolved config (what `mmctl start` was
        // given) unless --config/--set say otherwise, so its --set flags need not be repeated.
        if options.config == nil, overrides.isEmpty, let data = FileManager.default.contents(atPath: dataDirectory.effectiveConfigPath),
           let effective = try? MMJSON.decode(ClusterConfig.self, from: data) {
            config = effective
        } else if let same = options.effectiveConfig(ifResolvedFrom: options.discoveredConfig().path) {
            // Given the very inputs the running cluster was resolved from (ConfigInputs).
            config = same
        } else {
            do {
                config = try await ClusterConfig.load(path: options.discoveredConfig().path, overrides: overrides)
            } catch {
                throw SetupError("configuration: \(error)")
            }
        }
        let observer: String
        do {
            observer = try dataDirectory.readSecret(dataDirectory.tokenPath(.observer))
        } catch {
            throw SetupError("\(error)")
        }
        var supervisor: String?
        if needSupervisorToken {
            do {
                supervisor = try dataDirectory.readSecret(dataDirectory.tokenPath(.supervisor))
            } catch {
                throw SetupError("\(error)")
            }
        }
        // Over TLS every request verifies the peer against the cluster's CA.
        CurlTransport.useClusterTrust(config)
        return ClusterConnection(
            config: config, observerToken: observer, supervisorToken: supervisor, transport: CurlTransport(),
            timeoutMs: max(1_000, config.http.clientTimeoutMs))
    }
}

/// Runs one typed call, naming the service when it cannot be reached so the operator knows
/// which process to look at.
func fetch<T>(_ service: String, _ body: () async throws(ClientError) -> T) async throws -> T {
    do {
        return try await body()
    } catch {
        switch error {
        case .unreachable(let transport): throw ServiceUnreachable(service: service, reason: transport.reason)
        case .api(let status, let envelope):
            throw ServiceUnreachable(service: service, reason: "answered \(status) \(envelope.error.code): \(envelope.error.message)")
        case .undecodable(let url, let status, let reason):
            throw ServiceUnreachable(service: service, reason: "\(url) answered \(status) outside the contract: \(reason)")
        }
    }
}

/// Reads whole logs page by page.
enum LogReader {
    static func exchangeFills(_ exchange: ExchangeClient) async throws -> (fills: [Fill], headSeq: Int64) {
        var fills: [Fill] = []
        var after: Int64 = 0
        var head: Int64 = 0
        while true {
            let page = try await fetch("exchange") { () async throws(ClientError) in try await exchange.fills(after: after, limit: 1_000, waitMs: 0) }
            head = max(head, page.headSeq)
            fills += page.fills
            guard let last = page.fills.last, last.seq < page.headSeq else { break }
            after = last.seq
        }
        return (fills, head)
    }

    static func exchangeHead(_ exchange: ExchangeClient) async throws -> Int64 {
        try await fetch("exchange") { () async throws(ClientError) in try await exchange.fills(after: 0, limit: 1, waitMs: 0) }.headSeq
    }

    /// The whole ledger, or one symbol's fills.
    static func ledger(_ state: TradingStateClient, symbol: String? = nil) async throws -> [Fill] {
        var fills: [Fill] = []
        var after: Int64 = 0
        while true {
            let page = try await fetch("state") { () async throws(ClientError) in try await state.ledger(symbol: symbol, after: after, limit: 5_000) }
            fills += page.fills
            guard let next = page.nextAfter, !page.fills.isEmpty else { break }
            after = next
        }
        return fills
    }

    /// The compaction base, then every event after it. Retention may prune while the pages are
    /// read; a page that reports pruning past where it was asked to start (`compacted_through_seq`
    /// above `after`) means a gap, so the read starts again from the newer base rather than
    /// judge an incomplete history. A coordinator without the base route (404, an older
    /// version) never prunes: its whole log is read as before.
    static func coordinatorEvents(_ coordinator: CoordinatorClient, attempts: Int = 5) async throws -> CoordinatorEventHistory {
        for _ in 0..<max(1, attempts) {
            let base: EventLogBase? = try await fetch("coordinator") { () async throws(ClientError) -> EventLogBase? in
                do throws(ClientError) {
                    return try await coordinator.eventsBase()
                } catch {
                    if case .api(404, _) = error { return nil }
                    throw error
                }
            }
            let start = base?.compactedThroughSeq ?? 0
            var events: [ClusterEvent] = []
            var after = start
            var outran = false
            while true {
                let page = try await fetch("coordinator") { () async throws(ClientError) in try await coordinator.events(after: after, limit: 1_000, waitMs: 0) }
                if page.skipsPrunedEvents(after: after) {
                    outran = true
                    break
                }
                events += page.events
                guard let last = page.events.last, last.seq < page.headSeq else { break }
                after = last.seq
            }
            if !outran { return CoordinatorEventHistory(base: start > 0 ? base : nil, events: events) }
        }
        throw ServiceUnreachable(service: "coordinator", reason: EventLogOutran(attempts: attempts).description)
    }
}
