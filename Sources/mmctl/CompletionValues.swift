import ArgumentParser
import Foundation
import MMCommandLine
import MMCore

/// Shell-completion values (`CompletionKind.custom`): process and symbol names of the cluster
/// the command line is about. Read from files only (the data directory's effective config and
/// pid files, else the discovered config file, else the built-ins), never over the network,
/// so a completion never hangs.
enum CompletionValues {
    @Sendable static func processes(_ words: [String], _ index: Int, _ prefix: String) async -> [String] {
        let (config, dataDirectory) = await cluster(words)
        return matching(prefix, names(config, dataDirectory))
    }

    /// `kill-node`/`resume-node` targets: what has a peer to take over.
    @Sendable static func drillTargets(_ words: [String], _ index: Int, _ prefix: String) async -> [String] {
        let (config, dataDirectory) = await cluster(words)
        return matching(prefix, names(config, dataDirectory).filter { name in
            switch ClusterProcess(name: name) {
            case .node, .coordinator, .coordinatorReplica, .etcd, .postgres, .state, .stateReplica: true
            default: false
            }
        })
    }

    @Sendable static func nodes(_ words: [String], _ index: Int, _ prefix: String) async -> [String] {
        let (config, dataDirectory) = await cluster(words)
        return matching(prefix, names(config, dataDirectory).filter { if case .node = ClusterProcess(name: $0) { true } else { false } })
    }

    @Sendable static func logServices(_ words: [String], _ index: Int, _ prefix: String) async -> [String] {
        let (config, dataDirectory) = await cluster(words)
        return matching(prefix, names(config, dataDirectory) + ["supervisor"])
    }

    @Sendable static func symbols(_ words: [String], _ index: Int, _ prefix: String) async -> [String] {
        matching(prefix, await cluster(words).config.symbolNames)
    }

    private static func matching(_ prefix: String, _ names: [String]) -> [String] {
        names.filter { $0.hasPrefix(prefix) }
    }

    /// The config's processes plus any process the supervisor has a pid file for (nodes added
    /// at run time), in start order.
    private static func names(_ config: ClusterConfig, _ dataDirectory: DataDirectory) -> [String] {
        var processes = Set(config.processes)
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dataDirectory.pidsDirectory)) ?? []
        for file in files where file.hasSuffix(".pid") {
            if let process = ClusterProcess(name: String(file.dropLast(4))) { processes.insert(process) }
        }
        return processes.sorted().map(\.name)
    }

    /// The data directory and config a partial command line names.
    static func cluster(_ words: [String]) async -> (config: ClusterConfig, dataDirectory: DataDirectory) {
        func value(of flag: String) -> String? {
            for (index, word) in words.enumerated() {
                if word == flag, index + 1 < words.count { return words[index + 1] }
                if word.hasPrefix(flag + "=") { return String(word.dropFirst(flag.count + 1)) }
            }
            return nil
        }
        let dataDirectory = DataDirectory.resolve(flag: value(of: "--data-dir"))
        if let data = FileManager.default.contents(atPath: dataDirectory.effectiveConfigPath),
           let config = try? MMJSON.decode(ClusterConfig.self, from: data) {
            return (config, dataDirectory)
        }
        let path = ConfigDiscovery.resolve(flag: value(of: "--config")).path
        let config = (try? await ClusterConfig.load(path: path, environment: [:])) ?? ClusterConfig.defaults
        return (config, dataDirectory)
    }
}
