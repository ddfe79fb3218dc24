import MMCore
import MMServiceKit

/// Entry point used by `mmd`. Placeholder until this service's issue lands: serves only
/// the common routes (/healthz, /readyz, /metrics, /v1/info).
public enum CoordinatorService {
    public static func run(_ environment: ServiceEnvironment, exitWithParent: Bool) async throws {
        let router = buildServiceRouter(environment)
        let app = buildApplication(environment, router: router)
        try await runService(app, environment: environment, exitWithParent: exitWithParent)
    }
}
