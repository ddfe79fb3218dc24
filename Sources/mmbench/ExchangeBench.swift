import ArgumentParser

struct ExchangeBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "exchange", abstract: "Benchmark: exchange (not written yet).")
    func run() async throws {
        throw ValidationError("the exchange benchmark is not written yet")
    }
}
