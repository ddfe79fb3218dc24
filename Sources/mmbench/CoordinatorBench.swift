import ArgumentParser

struct CoordinatorBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "coordinator", abstract: "Benchmark: coordinator (not written yet).")
    func run() async throws {
        throw ValidationError("the coordinator benchmark is not written yet")
    }
}
