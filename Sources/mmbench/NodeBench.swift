import ArgumentParser

struct NodeBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "node", abstract: "Benchmark: node (not written yet).")
    func run() async throws {
        throw ValidationError("the node benchmark is not written yet")
    }
}
