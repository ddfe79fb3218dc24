import AsyncPrimitives
import Foundation
import Hummingbird
import Logging
import MMCore
import Metrics
import Prometheus
import ServiceLifecycle
import Synchronization

/// What `/readyz` reports: ready, or not yet and why.
public struct Readiness: Sendable {
    public var ready: Bool
    public var detail: String
    public init(ready: Bool, detail: String) {
        self.ready = ready
        self.detail = detail
    }
    public static let ready = Readiness(ready: true, detail: "ready")
}

public struct HealthBody: Codable, Sendable {
    public var status: String
    public var detail: String
}

/// The router every service starts from: error envelope, request metrics, and the common
/// routes (`/healthz`, `/readyz`, `/metrics`, `GET /v1/info`).
public func buildServiceRouter(
    _ environment: ServiceEnvironment,
    readiness: @escaping @Sendable () async -> Readiness = { .ready }
) -> AuthorizedRouter {
    BodyLimit.set(environment.config.http.maxBodyBytes)
    let authorized = AuthorizedRouter(secrets: environment.secrets)
    authorized.router.add(middleware: RequestMetricsMiddleware())
    authorized.openGet(CommonRoutes.healthz) { _, _ in
        try jsonResponse(HealthBody(status: "ok", detail: environment.process.name))
    }
    authorized.openGet(CommonRoutes.readyz) { _, _ in
        let state = await readiness()
        return try jsonResponse(
            HealthBody(status: state.ready ? "ready" : "not_ready", detail: state.detail),
            status: state.ready ? .ok : .serviceUnavailable)
    }
    authorized.openGet(CommonRoutes.metrics) { _, _ in metricsResponse() }
    // Built once (the config digest hashes the whole config); the clock is read per request,
    // so `now_ms` is the answer's time and status can estimate this host's clock offset.
    let info = environment.info
    authorized.on(CommonRoutes.info) { _, _ in
        var answer = info
        answer.nowMs = environment.clock.nowMs()
        return answer
    }
    return authorized
}

/// The process's metrics in the Prometheus text format (`GET /metrics`).
public func metricsResponse() -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "text/plain; version=0.0.4"
    return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: MetricsBootstrap.registry.emitToString())))
}

/// Builds the Hummingbird application bound to the service's address: HTTPS with its host's
/// certificate when `tls` is configured (a TLS file that cannot be used ends `run()` with a
/// `TLSSetupError` naming the key and path), plain HTTP otherwise.
public func buildApplication(
    _ environment: ServiceEnvironment,
    router: AuthorizedRouter,
    services: [any Service] = [],
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    Application(
        router: router.router,
        server: TLSServerSetup.serverBuilder(environment.config, host: environment.hostName),
        configuration: .init(address: .hostname(environment.host, port: environment.port), serverName: "mmd-\(environment.process.name)"),
        services: services,
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? environment.port) },
        logger: environment.logger
    )
}

/// Runs a service until SIGTERM/SIGINT, or until its parent (the supervisor) goes away
/// when `exitWithParent` is set: the supervisor holds the write end of the child's stdin,
/// so EOF on stdin means the supervisor is gone, however it died.
///
/// `onShutdown` runs the moment graceful shutdown begins. Services end their long-polls there
/// (`ChangeSignal.close()`): Hummingbird drains its HTTP server *before* it stops the
/// application's own services, and the drain waits for every in-flight request, so a
/// long-poll ended only by a service's own shutdown would hold the process for its full wait.
public func runService(
    _ application: some ApplicationProtocol & Service,
    environment: ServiceEnvironment,
    exitWithParent: Bool,
    onShutdown: (@Sendable () async -> Void)? = nil
) async throws {
    var services: [any Service] = [onShutdown.map { ShutdownHooked(application, onShutdown: $0) } ?? application]
    if exitWithParent { services.append(ParentWatchService(logger: environment.logger)) }
    services.append(SecretsReloadService(secrets: environment.secrets, logger: environment.logger))
    let group = ServiceGroup(
        configuration: .init(
            services: services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: environment.logger))
    try await group.run()
}

/// Runs `base` and, concurrently, `onShutdown` as soon as graceful shutdown reaches this
/// service — not when it reaches whatever `base` runs inside (see `runService`).
public struct ShutdownHooked<Base: Service>: Service {
    let base: Base
    let onShutdown: @Sendable () async -> Void

    public init(_ base: Base, onShutdown: @escaping @Sendable () async -> Void) {
        self.base = base
        self.onShutdown = onShutdown
    }

    public func run() async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await base.run()
                return true
            }
            group.addTask {
                // Throws only when cancelled: the base ended first, so there is nothing to hook.
                guard (try? await gracefulShutdown()) != nil else { return false }
                await onShutdown()
                return false
            }
            // However the base ends, the hook's child must not keep the group alive.
            while let baseEnded = try await group.next() {
                if baseEnded { group.cancelAll() }
            }
        }
    }
}

/// Returns (ending the service group gracefully) when stdin reaches EOF. If the graceful
/// shutdown itself hangs, the process is ended anyway after a few seconds, because a
/// service outliving its supervisor is the one thing that must not happen.
public struct ParentWatchService: Service {
    let logger: Logger

    public init(logger: Logger) { self.logger = logger }

    public func run() async throws {
        // The stdin reader is a plain thread: it cannot be cancelled, so the service must not
        // wait for it when the group shuts down for another reason (SIGTERM). Whichever
        // comes first, EOF or graceful shutdown, resumes the one continuation.
        let outcome = FirstOutcome()
        let parentGone = await withGracefulShutdownHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                outcome.install(continuation)
                let thread = Thread {
                    var byte: UInt8 = 0
                    while true {
                        let count = read(0, &byte, 1)
                        if count == 0 || (count < 0 && errno != EINTR) { break }
                    }
                    outcome.resume(true)
                }
                thread.start()
            }
        } onGracefulShutdown: {
            outcome.resume(false)
        }
        guard parentGone else { return }
        logger.warning("supervisor went away (stdin closed): shutting down")
        let watchdog = Thread {
            Thread.sleep(forTimeInterval: 5)
            _exit(2)
        }
        watchdog.start()
    }
}

/// Resumes a continuation exactly once with the first outcome reported, even when the
/// outcome arrives before the continuation is installed.
final class FirstOutcome: Sendable {
    private enum State {
        case empty
        case waiting(CheckedContinuation<Bool, Never>)
        case decided(Bool)
        case done
    }

    private let state = Mutex<State>(.empty)

    func install(_ continuation: CheckedContinuation<Bool, Never>) {
        let decided: Bool? = state.withLock { state in
            if case .decided(let value) = state {
                state = .done
                return value
            }
            state = .waiting(continuation)
            return nil
        }
        if let decided { continuation.resume(returning: decided) }
    }

    func resume(_ value: Bool) {
        let waiting: CheckedContinuation<Bool, Never>? = state.withLock { state in
            switch state {
            case .empty:
                state = .decided(value)
                return nil
            case .waiting(let continuation):
                state = .done
                return continuation
            case .decided, .done:
                return nil
            }
        }
        waiting?.resume(returning: value)
    }
}

/// The process-wide metrics registry, bootstrapped once (swift-metrics allows one bootstrap).
public enum MetricsBootstrap {
    public static let registry = PrometheusCollectorRegistry()
    private static let done = LockedBox(false)

    public static func bootstrap() {
        // Test-and-set in one critical section: two callers racing must not both bootstrap.
        let shouldBootstrap = done.update { done -> Bool in
            defer { done = true }
            return !done
        }
        if shouldBootstrap { MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry)) }
    }
}

/// Logs to stderr (the supervisor captures it per process) at LOG_LEVEL (default info).
public enum LoggingBootstrap {
    private static let done = LockedBox(false)

    public static func bootstrap(label: String) {
        let first = done.update { done -> Bool in
            defer { done = true }
            return !done
        }
        guard first else { return }
        let level = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
