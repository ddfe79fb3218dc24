import Logging
import MMCore
import ServiceLifecycle

/// Polls the data directory's provisioning marker once a second and reloads the process's
/// secrets when an import or a rotation step has rewritten it: the rotation's overlap
/// (`mmctl secrets rotate`) works without restarting anything. Idle on a single host that
/// provisions nothing (no marker).
public struct SecretsReloadService: Service {
    let secrets: LiveSecrets
    let logger: Logger
    let intervalMs: Int64

    public init(secrets: LiveSecrets, logger: Logger, intervalMs: Int64 = 1_000) {
        self.secrets = secrets
        self.logger = logger
        self.intervalMs = intervalMs
    }

    public func run() async throws {
        var failing = false
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                if try secrets.reloadIfChanged() { logger.notice("reloaded the secrets in \(secrets.dataDirectory?.tokensDirectory ?? "?") (imported or rotated)") }
                failing = false
            } catch {
                // Mid-import the files come and go: say so once, keep the old secrets, retry.
                if !failing { logger.warning("cannot reload the secrets yet, keeping the current ones: \(error)") }
                failing = true
            }
            try? await Task.sleep(for: .milliseconds(intervalMs))
        }
    }
}
