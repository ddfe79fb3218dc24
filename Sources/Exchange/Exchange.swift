import MMCore
import MMServiceKit

/// Entry point used by `mmd`. Placeholder until this service's issue lands: serves only
/// the common routes (/healthz, /readyz, /metrics, /v1/info).
public enum ExchangeService {
    public static func run(_ environment: ServiceEnvironment, exitWithParent: Bool) async throws {
        let router = buildServiceRouter(environment)
        let app = buildApplication(environment, router: router)
        try await runService(app, environment: environment, exitWithParent: exitWithParent)
    }
}

extension ExchangeService {
    public static func replay(_ environment: ServiceEnvironment, throughSeq: Int64?) async throws -> String {
        FillLogDigest().hexDigest()
    }
}
