import ArgumentParser

/// `mmbench`: the benchmarks behind docs/PERFORMANCE.md (run them through Scripts/bench).
/// Each service's benchmark lives in its own file here.
@main
struct MMBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mmbench",
        abstract: "Benchmarks for the market-maker cluster (see docs/PERFORMANCE.md).",
        subcommands: [ExchangeBench.self, ExchangeRestartBench.self, StateBench.self, CoordinatorBench.self, NodeBench.self, StatusBench.self]
    )
}
