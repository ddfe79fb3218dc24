import ArgumentParser

struct StateBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "state", abstract: "Benchmark: state (not written yet).")
    func run() async throws {
        throw ValidationError("the state benchmark is not written yet")
    }
}
