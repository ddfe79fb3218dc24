import ArgumentParser

/// What a command prints on stdout: lines for people (`text`) or JSON for programs (`json`:
/// one object, or one object per line for commands that stream).
public enum OutputFormat: String, CaseIterable, Sendable, ExpressibleByArgument {
    case text, json
}

/// `-o json|text` (`--output`), with `--json` kept as the older spelling of `-o json`. Every
/// mmctl command that prints takes this group.
public struct OutputOptions: ParsableArguments, Sendable {
    @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp("Output format: text or json.", valueName: "format"))
    public var output: OutputFormat?

    @Flag(name: .customLong("json"), help: "Same as -o json.")
    public var jsonFlag = false

    public init() {}

    public mutating func validate() throws {
        if jsonFlag, output == .text { throw ValidationError("--json and -o text contradict each other; give one") }
    }

    public var format: OutputFormat { jsonFlag ? .json : (output ?? .text) }
    public var json: Bool { format == .json }
}
