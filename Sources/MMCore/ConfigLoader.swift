import Configuration
import Foundation
import SystemPackage
import Yams

/// A configuration problem, naming the key and why, so nothing starts on a bad config.
public struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    public var key: String
    public var reason: String
    public var source: String?

    public init(key: String, reason: String, source: String? = nil) {
        self.key = key
        self.reason = reason
        self.source = source
    }

    public var description: String {
        "invalid configuration\(source.map { " in \($0)" } ?? ""): '\(key)' \(reason)"
    }
}

extension ClusterConfig {
    /// The embedded defaults: a cluster that runs with no file at all.
    public static let defaults = ClusterConfig(
        seed: 42,
        listen: Listen(host: "127.0.0.1", portBase: 7400),
        nodeCount: 3,
        symbols: [
            SymbolSpec(symbol: "ACME", tickSize: "0.01", basePrice: 10_000, lotSize: 100),
            SymbolSpec(symbol: "BOLT", tickSize: "0.01", basePrice: 2_500, lotSize: 100),
            SymbolSpec(symbol: "CRUX", tickSize: "0.01", basePrice: 15_000, lotSize: 100),
            SymbolSpec(symbol: "DYNA", tickSize: "0.01", basePrice: 5_000, lotSize: 100),
            SymbolSpec(symbol: "EVOK", tickSize: "0.05", basePrice: 800, lotSize: 100),
            SymbolSpec(symbol: "FLUX", tickSize: "0.01", basePrice: 32_000, lotSize: 100),
        ],
        exchange: ExchangeSettings(priceIntervalMs: 250, priceBandTicks: 500, maxStepTicks: 3, maxOrderQty: 100_000, maxPriceTicks: 1_000_000_000),
        flow: FlowSettings(intervalMs: 200, crossPct: 30, maxQty: 5),
        coordinator: CoordinatorSettings(presenceTtlMs: 2_000, grantTtlMs: 2_000),
        node: NodeSettings(heartbeatIntervalMs: 500, renewIntervalMs: 600, safetyMarginMs: 200, deadmanTimeoutMs: 2_000, refreshIntervalMs: 5_000),
        quoting: QuotingParameters(spreadTicks: 4, skewTicksAtLimit: 4, sizeLots: 5, positionLimitLots: 50),
        supervisor: SupervisorSettings(
            backoffInitialMs: 250, backoffMaxMs: 30_000, stableAfterMs: 60_000, maxRestarts: 5, restartPeriodMs: 30_000,
            stopGraceMs: 10_000, readyTimeoutMs: 20_000, logMaxBytes: 10_000_000, logKeep: 3),
        http: HTTPSettings(maxBodyBytes: 1_048_576, clientTimeoutMs: 5_000)
    )

    /// Every key a file, `MM_*` variable or `--set` may name; `symbols.NAME.*` keys are
    /// checked against `symbols.names`.
    public static let knownKeys: Set<String> = Set(orderedKeys)
    public static let symbolKeys: Set<String> = ["base_price", "tick_size", "lot_size"]

    /// Resolves the configuration. `path == nil` means embedded defaults (plus env and
    /// overrides); a path that does not exist is an error, never silently ignored.
    public static func load(
        path: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        overrides: [String: String] = [:]
    ) async throws(ConfigError) -> ClusterConfig {
        for key in overrides.keys { try checkKnown(key, symbolNames: nil, source: "--set") }
        try checkEnvironment(environment)
        var providers: [any ConfigProvider] = []
        if !overrides.isEmpty {
            providers.append(EnvironmentVariablesProvider(environmentVariables: Dictionary(uniqueKeysWithValues: overrides.map { (envName($0.key), $0.value) })))
        }
        let prefixed = environment.filter { $0.key.hasPrefix("MM_") }
        // Only when there is one to read: every key asked of a provider is encoded for it, and
        // a 1,000-symbol cluster asks 3,000 keys (a sixth of `mmctl status`'s time).
        if !prefixed.isEmpty {
            providers.append(EnvironmentVariablesProvider(environmentVariables: Dictionary(uniqueKeysWithValues: prefixed.map { (String($0.key.dropFirst(3)), $0.value) })))
        }
        var fileKeys: [String] = []
        if let path {
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw ConfigError(key: "--config", reason: "names '\(path)', which does not exist or cannot be read")
            }
            do {
                // One parse gives the values and the keys to check (ConfigYAMLSnapshot).
                let provider = try await FileProvider<ConfigYAMLSnapshot>(filePath: FilePath(path))
                fileKeys = (provider.snapshot() as? ConfigYAMLSnapshot)?.keys ?? []
                providers.append(provider)
            } catch var error as ConfigError {
                error.source = path
                throw error
            } catch {
                throw ConfigError(key: "--config", reason: "is not valid YAML: \(error)", source: path)
            }
        }
        // ConfigReader needs at least one provider: no file, no MM_* variable, no --set.
        if providers.isEmpty { providers.append(InMemoryProvider(values: [:])) }
        let reader = ConfigReader(providers: providers)
        var config = try await read(reader, source: path)
        try await readPlacement(reader, into: &config, hostNames: hostNames(fileKeys: fileKeys, overrides: overrides, environment: environment), source: path)
        // A file's section for a symbol it does not list is a mistake in the file, unless the
        // list was replaced from outside (--set or MM_SYMBOLS_NAMES, e.g. a subset of the symbols
        // of the discovered etc/mmctl.yaml): then its other sections are merely unused.
        let namesFromOutside = overrides["symbols.names"] != nil || environment[environmentVariable(for: "symbols.names")] != nil
        // One set for every key: a 1,000-symbol file has 3,000 symbol keys.
        let symbolNames = Set(config.symbolNames)
        for key in fileKeys { try checkKnown(key, symbolNames: namesFromOutside ? nil : symbolNames, source: path) }
        try checkEnvironment(environment, symbolNames: symbolNames)
        try config.validate(source: path)
        return config
    }

    static func envName(_ dottedKey: String) -> String {
        dottedKey.uppercased().replacingOccurrences(of: ".", with: "_")
    }

    private static func checkKnown(_ key: String, symbolNames: Set<String>?, source: String?) throws(ConfigError) {
        if knownKeys.contains(key) { return }
        let parts = key.split(separator: ".").map(String.init)
        if parts.count == 2, parts[0] == "hosts" {
            if isValidHostName(parts[1]) { return }
            throw ConfigError(key: key, reason: "names host '\(parts[1])': a host name is 1–32 characters a–z, 0–9 and '-'", source: source)
        }
        if parts.count == 2, parts[0] == "placement" {
            if ClusterProcess(name: parts[1]) != nil { return }
            throw ConfigError(key: key, reason: "names no process: use coordinator, coordinatorK, etcdK, postgres, state, stateK, exchange, gui or nK (e.g. placement.n3: b)", source: source)
        }
        if parts.count == 3, parts[0] == "symbols", symbolKeys.contains(parts[2]) {
            if let symbolNames, !symbolNames.contains(parts[1]) {
                throw ConfigError(key: key, reason: "configures symbol '\(parts[1])', which is not in symbols.names", source: source)
            }
            return
        }
        let suggestion = knownKeys.min { editDistance($0, key) < editDistance($1, key) }
        throw ConfigError(key: key, reason: "is not a known key\(suggestion.map { " (did you mean '\($0)'?)" } ?? "")", source: source)
    }

    /// The host names `hosts.NAME` keys give, from the file, `--set` and `MM_HOSTS_NAME`
    /// (environment names are upper-case; host names are lower-case).
    static func hostNames(fileKeys: [String], overrides: [String: String], environment: [String: String]) -> [String] {
        var names: Set<String> = []
        for key in fileKeys + Array(overrides.keys) {
            let parts = key.split(separator: ".").map(String.init)
            if parts.count == 2, parts[0] == "hosts" { names.insert(parts[1]) }
        }
        for variable in environment.keys where variable.hasPrefix("MM_HOSTS_") {
            names.insert(String(variable.dropFirst("MM_HOSTS_".count)).lowercased().replacingOccurrences(of: "_", with: "-"))
        }
        return names.sorted()
    }

    /// Every name a `placement.NAME` key may have: each process a cluster can run.
    static let placeableProcessNames: [String] =
        ["coordinator"] + (2...ClusterProcess.maxCoordinatorReplicas).map { "coordinator\($0)" }
        + (1...ClusterProcess.maxEtcdMembers).map { "etcd\($0)" } + ["postgres", "state"]
        + (2...ClusterProcess.maxStateReplicas).map { "state\($0)" } + ["exchange", "gui"]
        + (1...ClusterConfig.maxNodes).map { "n\($0)" }

    private static func readPlacement(_ reader: ConfigReader, into config: inout ClusterConfig, hostNames: [String], source: String?) async throws(ConfigError) {
        func string(_ key: String) async throws(ConfigError) -> String {
            do { return try await reader.fetchString(forKey: ConfigKey(key.split(separator: ".").map(String.init)), default: "") } catch {
                throw ConfigError(key: key, reason: "must be a string", source: source)
            }
        }
        for name in hostNames {
            guard isValidHostName(name) else {
                throw ConfigError(key: "hosts.\(name)", reason: "names host '\(name)': a host name is 1–32 characters a–z, 0–9 and '-'", source: source)
            }
            config.hosts.append(ClusterConfig.HostSpec(name: name, address: try await string("hosts.\(name)")))
        }
        for name in placeableProcessNames {
            let host = try await string("placement.\(name)")
            if !host.isEmpty { config.placement.processes[name] = host }
        }
        config.placement.defaultHost = try await string("placement.default")
        do {
            config.placement.nodes = try await reader.fetchStringArray(forKey: ["placement", "nodes"], default: [])
        } catch {
            throw ConfigError(key: "placement.nodes", reason: "must be a list of host names", source: source)
        }
        config.tls = ClusterConfig.TLSSettings(cert: try await string("tls.cert"), key: try await string("tls.key"), ca: try await string("tls.ca"))
        try config.validatePlacement(source: source)
    }

    /// The dotted paths of every leaf of a YAML document, to catch misspelled keys that a
    /// key-value reader would silently ignore.
    private static func read(_ reader: ConfigReader, source: String?) async throws(ConfigError) -> ClusterConfig {
        let d = ClusterConfig.defaults
        func int(_ key: String, _ fallback: Int64) async throws(ConfigError) -> Int64 {
            do { return Int64(try await reader.fetchInt(forKey: ConfigKey(key.split(separator: ".").map(String.init)), default: Int(fallback))) } catch {
                throw ConfigError(key: key, reason: "must be an integer", source: source)
            }
        }
        func string(_ key: String, _ fallback: String) async throws(ConfigError) -> String {
            do { return try await reader.fetchString(forKey: ConfigKey(key.split(separator: ".").map(String.init)), default: fallback) } catch {
                throw ConfigError(key: key, reason: "must be a string (quote decimals such as tick sizes: \"0.01\")", source: source)
            }
        }
        func strings(_ key: String, _ fallback: [String]) async throws(ConfigError) -> [String] {
            do { return try await reader.fetchStringArray(forKey: ConfigKey(key.split(separator: ".").map(String.init)), default: fallback) } catch {
                throw ConfigError(key: key, reason: "must be a list of strings", source: source)
            }
        }

        func coordinatorSettings() async throws(ConfigError) -> CoordinatorSettings {
            let backendName = try await string("coordinator.backend", d.coordinator.backend.rawValue)
            guard let backend = CoordinatorBackend(rawValue: backendName) else {
                throw ConfigError(key: "coordinator.backend", reason: "must be 'embedded' or 'etcd' (got '\(backendName)')", source: source)
            }
            // 0 = not set: one process for embedded, three replicas for etcd.
            let replicas = Int(try await int("coordinator.replicas", 0))
            return CoordinatorSettings(
                presenceTtlMs: try await int("coordinator.presence_ttl_ms", d.coordinator.presenceTtlMs),
                grantTtlMs: try await int("coordinator.grant_ttl_ms", d.coordinator.grantTtlMs),
                backend: backend,
                replicas: replicas != 0 ? replicas : (backend == .etcd ? 3 : 1),
                etcd: EtcdSettings(
                    endpoints: try await strings("coordinator.etcd.endpoints", d.coordinator.etcd.endpoints),
                    prefix: try await string("coordinator.etcd.prefix", d.coordinator.etcd.prefix),
                    localMembers: Int(try await int("coordinator.etcd.local_members", Int64(d.coordinator.etcd.localMembers))),
                    requestTimeoutMs: try await int("coordinator.etcd.request_timeout_ms", d.coordinator.etcd.requestTimeoutMs)),
                eventsRetain: try await int("coordinator.events.retain", d.coordinator.eventsRetain))
        }

        func stateSettings() async throws(ConfigError) -> StateSettings {
            let backendName = try await string("state.backend", d.state.backend.rawValue)
            guard let backend = StateBackend(rawValue: backendName) else {
                throw ConfigError(key: "state.backend", reason: "must be 'sqlite' or 'postgres' (got '\(backendName)')", source: source)
            }
            return StateSettings(
                backend: backend,
                replicas: Int(try await int("state.replicas", Int64(d.state.replicas))),
                postgres: PostgresSettings(
                    url: try await string("state.postgres.url", d.state.postgres.url),
                    passwordFile: try await string("state.postgres.password_file", d.state.postgres.passwordFile)))
        }

        let names = try await strings("symbols.names", d.symbols.map(\.symbol))
        var symbols: [SymbolSpec] = []
        for name in names {
            // Checked before the per-symbol keys are read, so a bad name is reported as such.
            guard isValidSymbolName(name) else {
                throw ConfigError(key: "symbols.names", reason: "has '\(name)': a symbol is 1–16 characters A–Z and 0–9", source: source)
            }
            let fallback = d.symbol(name) ?? SymbolSpec(symbol: name, tickSize: "0.01", basePrice: 0, lotSize: 100)
            let basePrice = try await int("symbols.\(name).base_price", fallback.basePrice)
            if basePrice == 0 && d.symbol(name) == nil {
                throw ConfigError(key: "symbols.\(name).base_price", reason: "is required for a symbol that has no embedded default", source: source)
            }
            symbols.append(SymbolSpec(
                symbol: name,
                tickSize: try await string("symbols.\(name).tick_size", fallback.tickSize),
                basePrice: basePrice,
                lotSize: try await int("symbols.\(name).lot_size", fallback.lotSize)))
        }
        func journalRetention() async throws(ConfigError) -> ClusterConfig.JournalRetention {
            let name = try await string("exchange.journal.retain", d.exchange.journalRetain.rawValue)
            guard let retention = ClusterConfig.JournalRetention(rawValue: name) else {
                throw ConfigError(key: "exchange.journal.retain", reason: "must be 'all' or 'snapshots' (got '\(name)')", source: source)
            }
            return retention
        }
        return ClusterConfig(
            seed: try await int("seed", d.seed),
            listen: Listen(host: try await string("listen.host", d.listen.host), portBase: Int(try await int("listen.port_base", Int64(d.listen.portBase)))),
            nodeCount: Int(try await int("nodes.count", Int64(d.nodeCount))),
            symbols: symbols,
            exchange: ExchangeSettings(
                priceIntervalMs: try await int("exchange.price_interval_ms", d.exchange.priceIntervalMs),
                priceBandTicks: try await int("exchange.price_band_ticks", d.exchange.priceBandTicks),
                maxStepTicks: try await int("exchange.max_step_ticks", d.exchange.maxStepTicks),
                maxOrderQty: try await int("exchange.max_order_qty", d.exchange.maxOrderQty),
                maxPriceTicks: try await int("exchange.max_price_ticks", d.exchange.maxPriceTicks),
                snapshotEveryRecords: try await int("exchange.snapshot.every_records", d.exchange.snapshotEveryRecords),
                snapshotKeep: try await int("exchange.snapshot.keep", d.exchange.snapshotKeep),
                journalRetain: try await journalRetention()),
            flow: FlowSettings(
                intervalMs: try await int("flow.interval_ms", d.flow.intervalMs),
                crossPct: try await int("flow.cross_pct", d.flow.crossPct),
                maxQty: try await int("flow.max_qty", d.flow.maxQty)),
            coordinator: try await coordinatorSettings(),
            state: try await stateSettings(),
            node: NodeSettings(
                heartbeatIntervalMs: try await int("node.heartbeat_interval_ms", d.node.heartbeatIntervalMs),
                renewIntervalMs: try await int("node.renew_interval_ms", d.node.renewIntervalMs),
                safetyMarginMs: try await int("node.safety_margin_ms", d.node.safetyMarginMs),
                deadmanTimeoutMs: try await int("node.deadman_timeout_ms", d.node.deadmanTimeoutMs),
                refreshIntervalMs: try await int("node.refresh_interval_ms", d.node.refreshIntervalMs)),
            quoting: QuotingParameters(
                spreadTicks: try await int("quoting.spread_ticks", d.quoting.spreadTicks),
                skewTicksAtLimit: try await int("quoting.skew_ticks_at_limit", d.quoting.skewTicksAtLimit),
                sizeLots: try await int("quoting.size_lots", d.quoting.sizeLots),
                positionLimitLots: try await int("quoting.position_limit_lots", d.quoting.positionLimitLots)),
            supervisor: SupervisorSettings(
                backoffInitialMs: try await int("supervisor.backoff_initial_ms", d.supervisor.backoffInitialMs),
                backoffMaxMs: try await int("supervisor.backoff_max_ms", d.supervisor.backoffMaxMs),
                stableAfterMs: try await int("supervisor.stable_after_ms", d.supervisor.stableAfterMs),
                maxRestarts: try await int("supervisor.max_restarts", d.supervisor.maxRestarts),
                restartPeriodMs: try await int("supervisor.restart_period_ms", d.supervisor.restartPeriodMs),
                stopGraceMs: try await int("supervisor.stop_grace_ms", d.supervisor.stopGraceMs),
                readyTimeoutMs: try await int("supervisor.ready_timeout_ms", d.supervisor.readyTimeoutMs),
                logMaxBytes: try await int("supervisor.log_max_bytes", d.supervisor.logMaxBytes),
                logKeep: try await int("supervisor.log_keep", d.supervisor.logKeep)),
            http: HTTPSettings(
                maxBodyBytes: Int(try await int("http.max_body_bytes", Int64(d.http.maxBodyBytes))),
                clientTimeoutMs: try await int("http.client_timeout_ms", d.http.clientTimeoutMs))
        )
    }

    /// Cross-field rules. Each failure names the key to change.
    public func validate(source: String? = nil) throws(ConfigError) {
        func require(_ condition: Bool, _ key: String, _ reason: String) throws(ConfigError) {
            if !condition { throw ConfigError(key: key, reason: reason, source: source) }
        }
        try require(!listen.host.isEmpty, "listen.host", "must not be empty")
        try require((1024...65_000).contains(listen.portBase), "listen.port_base", "must be in 1024...65000 (got \(listen.portBase))")
        try require((1...ClusterConfig.maxNodes).contains(nodeCount), "nodes.count", "must be in 1...\(ClusterConfig.maxNodes) (got \(nodeCount))")
        try require(!symbols.isEmpty, "symbols.names", "must list at least one symbol")
        try require(Set(symbolNames).count == symbols.count, "symbols.names", "lists a symbol twice")
        for spec in symbols {
            try require(isValidSymbolName(spec.symbol), "symbols.names", "has '\(spec.symbol)': a symbol is 1–16 characters A–Z and 0–9")
            try require(spec.basePrice > exchange.priceBandTicks, "symbols.\(spec.symbol).base_price",
                        "must exceed exchange.price_band_ticks (\(exchange.priceBandTicks)) so the price stays > 0 (got \(spec.basePrice))")
            try require(spec.basePrice + exchange.priceBandTicks <= exchange.maxPriceTicks, "symbols.\(spec.symbol).base_price", "plus the band exceeds exchange.max_price_ticks")
            try require(Decimal(string: spec.tickSize).map { $0 > 0 } ?? false, "symbols.\(spec.symbol).tick_size", "must be a positive decimal string such as \"0.01\" (got '\(spec.tickSize)')")
            try require(spec.lotSize > 0, "symbols.\(spec.symbol).lot_size", "must be > 0")
        }
        try require(exchange.priceIntervalMs >= 10, "exchange.price_interval_ms", "must be ≥ 10")
        try require(exchange.snapshotEveryRecords == 0 || (exchange.snapshotEveryRecords >= 100 && exchange.snapshotEveryRecords <= 100_000_000),
                    "exchange.snapshot.every_records", "must be 0 (no snapshots) or in 100...100000000")
        try require(exchange.snapshotKeep >= 1 && exchange.snapshotKeep <= 100, "exchange.snapshot.keep", "must be in 1...100")
        try require(exchange.journalRetain == .all || exchange.snapshotEveryRecords > 0, "exchange.journal.retain",
                    "'snapshots' needs exchange.snapshot.every_records > 0 (no snapshot would ever cover the pruned records)")
        try require(exchange.priceBandTicks >= 1, "exchange.price_band_ticks", "must be ≥ 1")
        try require(exchange.maxStepTicks >= 1 && exchange.maxStepTicks <= exchange.priceBandTicks, "exchange.max_step_ticks", "must be in 1...price_band_ticks")
        try require(exchange.maxOrderQty >= 1 && exchange.maxOrderQty <= 1_000_000_000, "exchange.max_order_qty", "must be in 1...1000000000")
        try require(exchange.maxPriceTicks >= 1 && exchange.maxPriceTicks <= 1_000_000_000_000, "exchange.max_price_ticks", "must be in 1...10^12")
        try require(flow.intervalMs >= 1, "flow.interval_ms", "must be ≥ 1")
        try require((0...100).contains(flow.crossPct), "flow.cross_pct", "is a percentage: 0...100")
        try require(flow.maxQty >= 1 && flow.maxQty <= exchange.maxOrderQty, "flow.max_qty", "must be in 1...exchange.max_order_qty")
        try require(coordinator.presenceTtlMs >= 100, "coordinator.presence_ttl_ms", "must be ≥ 100")
        try require(coordinator.grantTtlMs >= 100, "coordinator.grant_ttl_ms", "must be ≥ 100")
        try require((1...ClusterProcess.maxCoordinatorReplicas).contains(coordinator.replicas), "coordinator.replicas",
                    "must be in 1...\(ClusterProcess.maxCoordinatorReplicas) (got \(coordinator.replicas))")
        try require(coordinator.backend == .etcd || coordinator.replicas == 1, "coordinator.replicas",
                    "must be 1 with coordinator.backend=embedded (its SQLite file has one writer); use coordinator.backend=etcd for replicas")
        try require([1, 3, 5].contains(coordinator.etcd.localMembers), "coordinator.etcd.local_members", "must be 1, 3 or 5 (got \(coordinator.etcd.localMembers))")
        try require(coordinator.eventsRetain >= 100, "coordinator.events.retain",
                    "must be ≥ 100 (got \(coordinator.eventsRetain)): the most recent events are what `mmctl events` and the GUI show")
        try require(coordinator.etcd.prefix.hasPrefix("/") && coordinator.etcd.prefix.hasSuffix("/") && coordinator.etcd.prefix.count >= 2,
                    "coordinator.etcd.prefix", "must start and end with '/', e.g. \"/mm/\" (got '\(coordinator.etcd.prefix)')")
        for endpoint in coordinator.etcd.endpoints {
            try require((endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) && URL(string: endpoint)?.host != nil, "coordinator.etcd.endpoints",
                        "has '\(endpoint)': each endpoint is an etcd client URL such as http://10.0.0.5:2379")
        }
        try require(coordinator.backend != .etcd || (coordinator.etcd.requestTimeoutMs >= 50 && coordinator.etcd.requestTimeoutMs < coordinator.grantTtlMs), "coordinator.etcd.request_timeout_ms",
                    "must be ≥ 50 and below coordinator.grant_ttl_ms, so a slow etcd is given up on while grants still run")
        try require((1...ClusterProcess.maxStateReplicas).contains(state.replicas), "state.replicas",
                    "must be in 1...\(ClusterProcess.maxStateReplicas) (got \(state.replicas))")
        try require(state.replicas == 1 || state.backend == .postgres, "state.replicas",
                    "must be 1 with state.backend=sqlite (one process owns the file); use state.backend=postgres for replicas")
        if !state.postgres.url.isEmpty {
            let url = URL(string: state.postgres.url)
            try require(
                (state.postgres.url.hasPrefix("postgres://") || state.postgres.url.hasPrefix("postgresql://")) && url?.host != nil && url?.user != nil
                    && !(url?.path ?? "").dropFirst().isEmpty,
                "state.postgres.url", "must look like postgres://USER@HOST:PORT/DATABASE")
            try require(url?.password == nil, "state.postgres.url", "must not contain a password: put it in the file state.postgres.password_file names")
            try require(!state.postgres.passwordFile.isEmpty || state.backend != .postgres, "state.postgres.password_file",
                        "is required with state.postgres.url (a file holding the password)")
        }
        try require(node.heartbeatIntervalMs >= 10 && node.heartbeatIntervalMs * 2 <= coordinator.presenceTtlMs, "node.heartbeat_interval_ms",
                    "must be ≥ 10 and at most half of coordinator.presence_ttl_ms, so one lost heartbeat does not expire a node")
        try require(node.renewIntervalMs >= 10 && node.renewIntervalMs * 2 <= coordinator.grantTtlMs, "node.renew_interval_ms",
                    "must be ≥ 10 and at most half of coordinator.grant_ttl_ms, so one slow renewal does not lapse a grant")
        try require(node.safetyMarginMs >= 0 && node.safetyMarginMs + node.renewIntervalMs < coordinator.grantTtlMs, "node.safety_margin_ms",
                    "plus node.renew_interval_ms must stay below coordinator.grant_ttl_ms")
        try require(node.deadmanTimeoutMs >= node.renewIntervalMs * 2, "node.deadman_timeout_ms", "must be at least twice node.renew_interval_ms (it is re-armed each renewal round)")
        try require(node.refreshIntervalMs >= 100 && node.refreshIntervalMs <= 5_000, "node.refresh_interval_ms", "must be in 100...5000 (quotes are refreshed at least every 5 s)")
        try require(quoting.spreadTicks >= 1, "quoting.spread_ticks", "must be ≥ 1 so a quote is never crossed or locked")
        try require(quoting.skewTicksAtLimit >= 0, "quoting.skew_ticks_at_limit", "must be ≥ 0")
        try require(quoting.sizeLots >= 1 && quoting.sizeLots <= exchange.maxOrderQty, "quoting.size_lots", "must be in 1...exchange.max_order_qty")
        try require(quoting.positionLimitLots >= quoting.sizeLots, "quoting.position_limit_lots", "must be ≥ quoting.size_lots")
        try require(supervisor.backoffInitialMs >= 10 && supervisor.backoffInitialMs <= supervisor.backoffMaxMs, "supervisor.backoff_initial_ms", "must be in 10...backoff_max_ms")
        try require(supervisor.maxRestarts >= 1, "supervisor.max_restarts", "must be ≥ 1")
        try require(supervisor.restartPeriodMs >= 1_000, "supervisor.restart_period_ms", "must be ≥ 1000")
        try require(supervisor.stableAfterMs >= 1_000, "supervisor.stable_after_ms", "must be ≥ 1000")
        try require(supervisor.stopGraceMs >= 100, "supervisor.stop_grace_ms", "must be ≥ 100")
        try require(supervisor.readyTimeoutMs >= 1_000, "supervisor.ready_timeout_ms", "must be ≥ 1000")
        try require(supervisor.logMaxBytes >= 4_096, "supervisor.log_max_bytes", "must be ≥ 4096")
        try require(supervisor.logKeep >= 1 && supervisor.logKeep <= 100, "supervisor.log_keep", "must be in 1...100")
        try require(http.maxBodyBytes >= 1_024, "http.max_body_bytes", "must be ≥ 1024")
        try require(http.clientTimeoutMs >= 100, "http.client_timeout_ms", "must be ≥ 100")
    }
}

/// Host names appear in status rows, file names (`{host}` in TLS paths) and `--host`.
public func isValidHostName(_ name: String) -> Bool {
    !name.isEmpty && name.count <= 32 && name.first != "-"
        && name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
}

extension ClusterConfig {
    /// The rules of `hosts`, `placement` and `tls`; each failure names the key to change.
    public func validatePlacement(source: String? = nil) throws(ConfigError) {
        func require(_ condition: Bool, _ key: String, _ reason: String) throws(ConfigError) {
            if !condition { throw ConfigError(key: key, reason: reason, source: source) }
        }
        let names = Set(hosts.map(\.name))
        for host in hosts {
            try require(!host.address.isEmpty && !host.address.contains("/") && !host.address.contains(" "), "hosts.\(host.name)",
                        "must be the address the host's processes listen on, e.g. 10.0.0.5 (got '\(host.address)')")
        }
        try require(Set(hosts.map(\.address)).count == hosts.count, "hosts", "gives two hosts the same address (every process's port is fixed by its kind, so they would collide)")
        let hostList = hosts.isEmpty ? "none: set hosts first" : hosts.map(\.name).joined(separator: ", ")
        for (process, host) in placement.processes.sorted(by: { $0.key < $1.key }) {
            try require(names.contains(host), "placement.\(process)", "names host '\(host)', which is not in hosts (\(hostList))")
        }
        for host in placement.nodes {
            try require(names.contains(host), "placement.nodes", "names host '\(host)', which is not in hosts (\(hostList))")
        }
        try require(placement.defaultHost.isEmpty || names.contains(placement.defaultHost), "placement.default",
                    "names host '\(placement.defaultHost)', which is not in hosts (\(hostList))")
        let anyTLS = !tls.cert.isEmpty || !tls.key.isEmpty || !tls.ca.isEmpty
        try require(!anyTLS || tls.isEnabled, tls.cert.isEmpty ? "tls.cert" : tls.key.isEmpty ? "tls.key" : "tls.ca",
                    "must be set too: TLS needs tls.cert, tls.key and tls.ca together")
    }
}

/// Symbols appear in URL paths, file names and the signed grant string: keep them plain.
public func isValidSymbolName(_ name: String) -> Bool {
    !name.isEmpty && name.count <= 16 && name.unicodeScalars.allSatisfy { ("A"..."Z").contains($0) || ("0"..."9").contains($0) }
}

func editDistance(_ lhs: String, _ rhs: String) -> Int {
    let a = Array(lhs), b = Array(rhs)
    var row = Array(0...b.count)
    for i in 1...max(a.count, 1) where !a.isEmpty {
        var previous = row[0]
        row[0] = i
        for j in stride(from: 1, through: b.count, by: 1) {
            let current = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
            previous = current
        }
    }
    return row[b.count]
}
