import ArgumentParser
import ClusterCheck
import MMCore

/// `mmctl`: start, stop, inspect and drill the market-maker cluster. See mmctl(1).
@main
struct MMCTL: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mmctl",
        abstract: "Operate the market-maker cluster: start, stop, status, chaos drills, logs.",
        discussion: """
            Exit status: 0 all well, 1 failed, 2 already running, 3 something not running, 4 supervisor unreachable, 5 port in use, 64 usage error.
            Shell completion: mmctl --generate-completion-script bash|zsh|fish (installing it: mmctl(1), "Shell completion").
            """,
        version: MMVersion.current,
        subcommands: [
            Start.self, Stop.self, Status.self, Events.self, KillNode.self, ResumeNode.self, NodeCommand.self,
            Restart.self, Logs.self, CheckCommand.self, DrillCommand.self, ConfigCommand.self, SecretsCommand.self, Version.self,
        ]
    )
}
