import Foundation

/// The documented, stable schema of `mmctl status --json` and of the GUI's `/api/view`.
/// Fields are only ever added; `schema_version` changes only if one is ever removed.
public struct ClusterSnapshot: Codable, Sendable, Hashable {
    public static let currentSchemaVersion = 1

    public struct Member: Codable, Sendable, Hashable {
        public var node: String
        public var status: PresenceStatus
        public var expiresInMs: Int64
        public init(node: String, status: PresenceStatus, expiresInMs: Int64) {
            self.node = node
            self.status = status
            self.expiresInMs = expiresInMs
        }
    }

    public struct Authority: Codable, Sendable, Hashable {
        public var node: String
        public var fencingToken: Int64
        public var expiresInMs: Int64
        public init(node: String, fencingToken: Int64, expiresInMs: Int64) {
            self.node = node
            self.fencingToken = fencingToken
            self.expiresInMs = expiresInMs
        }
    }

    public struct QuoteView: Codable, Sendable, Hashable {
        public var node: String
        public var fencingToken: Int64
        public var bid: Ticks?
        public var bidQty: Lots
        public var ask: Ticks?
        public var askQty: Lots
        public var updatedAtMs: EpochMs
        public init(node: String, fencingToken: Int64, bid: Ticks?, bidQty: Lots, ask: Ticks?, askQty: Lots, updatedAtMs: EpochMs) {
            self.node = node
            self.fencingToken = fencingToken
            self.bid = bid
            self.bidQty = bidQty
            self.ask = ask
            self.askQty = askQty
            self.updatedAtMs = updatedAtMs
        }
    }

    public struct PositionView: Codable, Sendable, Hashable {
        public var netQty: Lots
        public var avgPrice: Ticks
        public var realizedPnl: Int64
        public var unrealizedPnl: Int64?
        public var fillCount: Int64
        public init(netQty: Lots, avgPrice: Ticks, realizedPnl: Int64, unrealizedPnl: Int64?, fillCount: Int64) {
            self.netQty = netQty
            self.avgPrice = avgPrice
            self.realizedPnl = realizedPnl
            self.unrealizedPnl = unrealizedPnl
            self.fillCount = fillCount
        }
    }

    public struct SymbolView: Codable, Sendable, Hashable {
        public var symbol: String
        public var tickSize: String
        public var referencePrice: Ticks?
        public var assignedTo: String?
        public var authority: Authority?
        public var quote: QuoteView?
        public var position: PositionView?
        public init(symbol: String, tickSize: String, referencePrice: Ticks?, assignedTo: String?, authority: Authority?, quote: QuoteView?, position: PositionView?) {
            self.symbol = symbol
            self.tickSize = tickSize
            self.referencePrice = referencePrice
            self.assignedTo = assignedTo
            self.authority = authority
            self.quote = quote
            self.position = position
        }
    }

    public struct Assignments: Codable, Sendable, Hashable {
        public var version: Int64
        public var symbols: [String: String]
        public init(version: Int64, symbols: [String: String]) {
            self.version = version
            self.symbols = symbols
        }
    }

    public struct Totals: Codable, Sendable, Hashable {
        public var realizedPnl: Int64
        public var unrealizedPnl: Int64
        public var fillCount: Int64
        public init(realizedPnl: Int64, unrealizedPnl: Int64, fillCount: Int64) {
            self.realizedPnl = realizedPnl
            self.unrealizedPnl = unrealizedPnl
            self.fillCount = fillCount
        }
    }

    public struct ServiceError: Codable, Sendable, Hashable {
        public var service: String
        public var error: String
        /// The host of the service that did not answer; set on multi-host clusters (a host's
        /// supervisor), absent on a single host, whose errors read as they always have.
        public var host: String?
        public init(service: String, error: String, host: String? = nil) {
            self.service = service
            self.error = error
            self.host = host
        }
    }

    /// One machine of the cluster as the view found it: whether its supervisor answered, and
    /// how far its clock is from the clock of whoever built the view (`mmctl status`, or the
    /// GUI process). Clock figures are absent on a single host (one machine, one clock) and
    /// when they could not be measured (`clock_error` says why).
    public struct HostView: Codable, Sendable, Hashable {
        public var name: String
        public var address: String
        /// Its supervisor answered `GET /v1/processes`. False: its processes are listed as
        /// `unreachable` and `errors[]` says why.
        public var reachable: Bool
        public var supervisor: SupervisorInfo?
        /// Host clock − local clock, ms (positive: the host is ahead), from its supervisor's
        /// `GET /v1/info` `now_ms` (`ClockOffset.estimate`).
        public var clockOffsetMs: Int64?
        /// The true offset lies within `clock_offset_ms ± clock_uncertainty_ms` (half the round trip).
        public var clockUncertaintyMs: Int64?
        /// |offset| − uncertainty exceeds `node.safety_margin_ms`: certainly too far (see `warnings[]`).
        public var clockSkewed: Bool
        public var clockError: String?

        public init(
            name: String, address: String, reachable: Bool, supervisor: SupervisorInfo? = nil, clockOffsetMs: Int64? = nil,
            clockUncertaintyMs: Int64? = nil, clockSkewed: Bool = false, clockError: String? = nil
        ) {
            self.name = name
            self.address = address
            self.reachable = reachable
            self.supervisor = supervisor
            self.clockOffsetMs = clockOffsetMs
            self.clockUncertaintyMs = clockUncertaintyMs
            self.clockSkewed = clockSkewed
            self.clockError = clockError
        }

        /// The offset estimate, when there is one.
        public var clock: ClockEstimate? {
            guard let clockOffsetMs, let clockUncertaintyMs else { return nil }
            return ClockEstimate(offsetMs: clockOffsetMs, uncertaintyMs: clockUncertaintyMs)
        }
    }

    /// Something wrong that is not a service failing to answer. `kind` is stable:
    /// `clock_skew` (one host's clock against the view's clock; `hosts` names it) or
    /// `clock_skew_between_hosts` (two hosts against each other; `hosts` names both).
    public struct Warning: Codable, Sendable, Hashable {
        public var kind: String
        public var hosts: [String]
        public var message: String
        /// The offset the warning is about (second host − first, or host − local) and the bound it exceeds.
        public var offsetMs: Int64?
        public var uncertaintyMs: Int64?
        public var boundMs: Int64?

        public static let clockSkew = "clock_skew"
        public static let clockSkewBetweenHosts = "clock_skew_between_hosts"

        public init(kind: String, hosts: [String], message: String, offsetMs: Int64? = nil, uncertaintyMs: Int64? = nil, boundMs: Int64? = nil) {
            self.kind = kind
            self.hosts = hosts
            self.message = message
            self.offsetMs = offsetMs
            self.uncertaintyMs = uncertaintyMs
            self.boundMs = boundMs
        }
    }

    public var schemaVersion: Int
    public var takenAtMs: EpochMs
    public var supervisor: SupervisorInfo?
    public var processes: [ProcessStatus]
    public var members: [Member]
    public var assignments: Assignments?
    public var symbols: [SymbolView]
    public var totals: Totals
    public var recentFills: [Fill]
    public var recentEvents: [ClusterEvent]
    public var errors: [ServiceError]
    /// Every host, in configured order (one, `local`, on a single-host cluster). Added in
    /// schema 1 without a version change; absent in views from older builds.
    public var hosts: [HostView]
    /// Problems that are not unreachable services (clock skew); empty when there are none.
    public var warnings: [Warning]

    /// Whether the cluster spans configured hosts (then status shows a host per process).
    public var isMultiHost: Bool { hosts.count > 1 || hosts.contains { $0.name != ClusterConfig.localHostName } }

    public init(
        schemaVersion: Int = ClusterSnapshot.currentSchemaVersion, takenAtMs: EpochMs, supervisor: SupervisorInfo?, processes: [ProcessStatus], members: [Member],
        assignments: Assignments?, symbols: [SymbolView], totals: Totals, recentFills: [Fill], recentEvents: [ClusterEvent], errors: [ServiceError],
        hosts: [HostView] = [], warnings: [Warning] = []
    ) {
        self.schemaVersion = schemaVersion
        self.takenAtMs = takenAtMs
        self.supervisor = supervisor
        self.processes = processes
        self.members = members
        self.assignments = assignments
        self.symbols = symbols
        self.totals = totals
        self.recentFills = recentFills
        self.recentEvents = recentEvents
        self.errors = errors
        self.hosts = hosts
        self.warnings = warnings
    }

    private enum CodingKeys: String, CodingKey {
        case schemaVersion, takenAtMs, supervisor, processes, members, assignments, symbols, totals, recentFills, recentEvents, errors, hosts, warnings
    }

    // Written by hand only so a view from a build before `hosts` and `warnings` (an NDJSON
    // recording, an older GUI server) still decodes, with both empty: fields are only added.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        schemaVersion = try container.decode(Int.self, forKey: .schemaVersion)
        takenAtMs = try container.decode(EpochMs.self, forKey: .takenAtMs)
        supervisor = try container.decodeIfPresent(SupervisorInfo.self, forKey: .supervisor)
        processes = try container.decode([ProcessStatus].self, forKey: .processes)
        members = try container.decode([Member].self, forKey: .members)
        assignments = try container.decodeIfPresent(Assignments.self, forKey: .assignments)
        symbols = try container.decode([SymbolView].self, forKey: .symbols)
        totals = try container.decode(Totals.self, forKey: .totals)
        recentFills = try container.decode([Fill].self, forKey: .recentFills)
        recentEvents = try container.decode([ClusterEvent].self, forKey: .recentEvents)
        errors = try container.decode([ServiceError].self, forKey: .errors)
        hosts = try container.decodeIfPresent([HostView].self, forKey: .hosts) ?? []
        warnings = try container.decodeIfPresent([Warning].self, forKey: .warnings) ?? []
    }
}
