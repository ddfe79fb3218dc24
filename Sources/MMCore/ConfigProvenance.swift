import Foundation
import Yams

/// Where one effective configuration value came from, highest precedence first:
/// `--set`, an `MM_*` environment variable, the YAML file, the embedded default.
public enum ConfigValueSource: Sendable, Hashable, CustomStringConvertible {
    case override
    case environment(String)
    case file(String)
    case builtIn

    public var description: String {
        switch self {
        case .override: "--set"
        case .environment(let name): "env \(name)"
        case .file(let path): "file \(path)"
        case .builtIn: "default"
        }
    }
}

/// One row of `mmctl config show`.
public struct ConfigValueOrigin: Sendable, Hashable {
    public var key: String
    public var value: String
    public var source: ConfigValueSource

    public init(key: String, value: String, source: ConfigValueSource) {
        self.key = key
        self.value = value
        self.source = source
    }
}

extension ClusterConfig {
    /// Every key a file, `MM_*` variable or `--set` may name (`knownKeys` is this list as a
    /// set), in the order `etc/mmctl.yaml` documents them; per-symbol keys follow `symbols.names`.
    public static let orderedKeys: [String] = [
        "seed", "listen.host", "listen.port_base", "nodes.count", "symbols.names",
        "exchange.price_interval_ms", "exchange.price_band_ticks", "exchange.max_step_ticks",
        "exchange.max_order_qty", "exchange.max_price_ticks",
        "exchange.snapshot.every_records", "exchange.snapshot.keep", "exchange.journal.retain",
        "flow.interval_ms", "flow.cross_pct", "flow.max_qty",
        "coordinator.presence_ttl_ms", "coordinator.grant_ttl_ms", "coordinator.backend", "coordinator.replicas",
        "coordinator.etcd.endpoints", "coordinator.etcd.prefix", "coordinator.etcd.local_members", "coordinator.etcd.request_timeout_ms",
        "coordinator.events.retain",
        "state.backend", "state.replicas", "state.postgres.url", "state.postgres.password_file",
        "node.heartbeat_interval_ms", "node.renew_interval_ms", "node.safety_margin_ms",
        "node.deadman_timeout_ms", "node.refresh_interval_ms",
        "quoting.spread_ticks", "quoting.skew_ticks_at_limit", "quoting.size_lots", "quoting.position_limit_lots",
        "supervisor.backoff_initial_ms", "supervisor.backoff_max_ms", "supervisor.stable_after_ms",
        "supervisor.max_restarts", "supervisor.restart_period_ms", "supervisor.stop_grace_ms",
        "supervisor.ready_timeout_ms", "supervisor.log_max_bytes", "supervisor.log_keep",
        "http.max_body_bytes", "http.client_timeout_ms",
        "placement.default", "placement.nodes", "tls.cert", "tls.key", "tls.ca",
    ]

    /// The `MM_*` variable that sets `dottedKey` (`nodes.count` → `MM_NODES_COUNT`).
    public static func environmentVariable(for dottedKey: String) -> String { "MM_" + envName(dottedKey) }

    /// Every effective value as `key → text` (lists comma-joined), in `orderedKeys` order with
    /// each symbol's keys after `symbols.names`.
    public func flattened() -> [(key: String, value: String)] {
        var values: [String: String] = [
            "seed": "\(seed)", "listen.host": listen.host, "listen.port_base": "\(listen.portBase)", "nodes.count": "\(nodeCount)",
            "symbols.names": symbolNames.joined(separator: ","),
            "exchange.price_interval_ms": "\(exchange.priceIntervalMs)", "exchange.price_band_ticks": "\(exchange.priceBandTicks)",
            "exchange.max_step_ticks": "\(exchange.maxStepTicks)", "exchange.max_order_qty": "\(exchange.maxOrderQty)",
            "exchange.max_price_ticks": "\(exchange.maxPriceTicks)",
            "exchange.snapshot.every_records": "\(exchange.snapshotEveryRecords)", "exchange.snapshot.keep": "\(exchange.snapshotKeep)",
            "exchange.journal.retain": exchange.journalRetain.rawValue,
            "flow.interval_ms": "\(flow.intervalMs)", "flow.cross_pct": "\(flow.crossPct)", "flow.max_qty": "\(flow.maxQty)",
            "coordinator.presence_ttl_ms": "\(coordinator.presenceTtlMs)", "coordinator.grant_ttl_ms": "\(coordinator.grantTtlMs)",
            "coordinator.backend": coordinator.backend.rawValue, "coordinator.replicas": "\(coordinator.replicas)",
            "coordinator.etcd.endpoints": coordinator.etcd.endpoints.joined(separator: ","), "coordinator.etcd.prefix": coordinator.etcd.prefix,
            "coordinator.etcd.local_members": "\(coordinator.etcd.localMembers)", "coordinator.etcd.request_timeout_ms": "\(coordinator.etcd.requestTimeoutMs)",
            "coordinator.events.retain": "\(coordinator.eventsRetain)",
            "state.backend": state.backend.rawValue, "state.replicas": "\(state.replicas)",
            "state.postgres.url": state.postgres.url, "state.postgres.password_file": state.postgres.passwordFile,
            "node.heartbeat_interval_ms": "\(node.heartbeatIntervalMs)", "node.renew_interval_ms": "\(node.renewIntervalMs)",
            "node.safety_margin_ms": "\(node.safetyMarginMs)", "node.deadman_timeout_ms": "\(node.deadmanTimeoutMs)",
            "node.refresh_interval_ms": "\(node.refreshIntervalMs)",
            "quoting.spread_ticks": "\(quoting.spreadTicks)", "quoting.skew_ticks_at_limit": "\(quoting.skewTicksAtLimit)",
            "quoting.size_lots": "\(quoting.sizeLots)", "quoting.position_limit_lots": "\(quoting.positionLimitLots)",
            "supervisor.backoff_initial_ms": "\(supervisor.backoffInitialMs)", "supervisor.backoff_max_ms": "\(supervisor.backoffMaxMs)",
            "supervisor.stable_after_ms": "\(supervisor.stableAfterMs)", "supervisor.max_restarts": "\(supervisor.maxRestarts)",
            "supervisor.restart_period_ms": "\(supervisor.restartPeriodMs)", "supervisor.stop_grace_ms": "\(supervisor.stopGraceMs)",
            "supervisor.ready_timeout_ms": "\(supervisor.readyTimeoutMs)", "supervisor.log_max_bytes": "\(supervisor.logMaxBytes)",
            "supervisor.log_keep": "\(supervisor.logKeep)",
            "http.max_body_bytes": "\(http.maxBodyBytes)", "http.client_timeout_ms": "\(http.clientTimeoutMs)",
            "placement.default": placement.defaultHost, "placement.nodes": placement.nodes.joined(separator: ","),
            "tls.cert": tls.cert, "tls.key": tls.key, "tls.ca": tls.ca,
        ]
        var rows: [(key: String, value: String)] = []
        for key in Self.orderedKeys {
            rows.append((key, values.removeValue(forKey: key) ?? ""))
            if key == "symbols.names" {
                for spec in symbols {
                    rows.append(("symbols.\(spec.symbol).base_price", "\(spec.basePrice)"))
                    rows.append(("symbols.\(spec.symbol).tick_size", spec.tickSize))
                    rows.append(("symbols.\(spec.symbol).lot_size", "\(spec.lotSize)"))
                }
            }
            if key == "http.client_timeout_ms" {
                for host in hosts { rows.append(("hosts.\(host.name)", host.address)) }
                for (process, host) in placement.processes.sorted(by: { $0.key < $1.key }) { rows.append(("placement.\(process)", host)) }
            }
        }
        return rows
    }

    /// Resolves the configuration exactly as `load` does and says, for every effective value,
    /// which layer set it (`mmctl config show`).
    public static func explain(
        path: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        overrides: [String: String] = [:]
    ) async throws(ConfigError) -> (config: ClusterConfig, origins: [ConfigValueOrigin]) {
        let config = try await load(path: path, environment: environment, overrides: overrides)
        var fileKeys: Set<String> = []
        if let path, let data = FileManager.default.contents(atPath: path),
           let node = try? Yams.compose(yaml: String(decoding: data, as: UTF8.self)) {
            func walk(_ node: Yams.Node, prefix: String) {
                if let mapping = node.mapping {
                    for (keyNode, value) in mapping { walk(value, prefix: prefix.isEmpty ? (keyNode.string ?? "?") : "\(prefix).\(keyNode.string ?? "?")") }
                } else {
                    fileKeys.insert(prefix)
                }
            }
            walk(node, prefix: "")
        }
        let origins = config.flattened().map { row -> ConfigValueOrigin in
            let variable = environmentVariable(for: row.key)
            let source: ConfigValueSource =
                if overrides[row.key] != nil { .override }
                else if environment[variable] != nil { .environment(variable) }
                else if let path, fileKeys.contains(row.key) { .file(path) }
                else { .builtIn }
            return ConfigValueOrigin(key: row.key, value: row.value, source: source)
        }
        return (config, origins)
    }

    /// Every `MM_*` variable must name a configuration key: a misspelt one would otherwise be
    /// ignored without a word. Per-symbol variables (`MM_SYMBOLS_ACME_BASE_PRICE`) must name
    /// a symbol of `symbolNames` when that is given.
    public static func checkEnvironment(_ environment: [String: String], symbolNames: Set<String>? = nil) throws(ConfigError) {
        let known = Set(knownKeys.map(environmentVariable(for:)))
        for variable in environment.keys.sorted() where variable.hasPrefix("MM_") {
            if known.contains(variable) { continue }
            if variable.hasPrefix("MM_HOSTS_") { continue }
            if variable.hasPrefix("MM_PLACEMENT_"), ClusterProcess(name: String(variable.dropFirst("MM_PLACEMENT_".count)).lowercased()) != nil { continue }
            if let symbol = symbolOfEnvironmentVariable(variable) {
                if let symbolNames, !symbolNames.contains(symbol) {
                    throw ConfigError(key: variable, reason: "configures symbol '\(symbol)', which is not in symbols.names", source: "the environment")
                }
                continue
            }
            let suggestion = known.min { lhs, rhs in
                let (a, b) = (editDistance(lhs, variable), editDistance(rhs, variable))
                return a != b ? a < b : lhs < rhs
            }
            throw ConfigError(
                key: variable, reason: "is not a configuration variable\(suggestion.map { " (did you mean \($0)?)" } ?? "")",
                source: "the environment")
        }
    }

    /// `MM_SYMBOLS_ACME_BASE_PRICE` → `ACME`; nil unless the variable has that shape.
    static func symbolOfEnvironmentVariable(_ variable: String) -> String? {
        let prefix = "MM_SYMBOLS_"
        guard variable.hasPrefix(prefix) else { return nil }
        let rest = variable.dropFirst(prefix.count)
        for key in symbolKeys {
            let suffix = "_" + key.uppercased()
            if rest.hasSuffix(suffix) {
                let name = String(rest.dropLast(suffix.count))
                return isValidSymbolName(name) ? name : nil
            }
        }
        return nil
    }
}
