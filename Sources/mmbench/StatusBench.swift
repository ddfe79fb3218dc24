import ArgumentParser

struct StatusBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Benchmark: status (not written yet).")
    func run() async throws {
        throw ValidationError("the status benchmark is not written yet")
    }
}
