// swift-tools-version:6.2
import PackageDescription

// One shared contracts module (MMCore), one scaffolding module for HTTP services
// (MMServiceKit), one library per service, and two thin executables:
// `mmd` (every service role and the supervisor daemon) and `mmctl` (the operator's client).
// Services never import each other; they talk HTTP through the typed clients in MMCore.

let package = Package(
    name: "market-maker",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mmd", targets: ["mmd"]),
        .executable(name: "mmctl", targets: ["mmctl"]),
        .executable(name: "mmbench", targets: ["mmbench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0", traits: [.defaults, "YAML"]),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // Concurrency primitives the services share (a locked box, the long-poll waiter set,
        // an async FIFO lock). Standard library and Synchronization only, so every module may use it.
        .target(name: "AsyncPrimitives"),

        // Models, contracts (routes, roles, typed clients over an abstract transport),
        // cluster config, role tokens, grant signing, pure folds. No networking code.
        .target(
            name: "MMCore",
            dependencies: [
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // Hummingbird scaffolding every service reuses + the AsyncHTTPClient transport.
        .target(
            name: "MMServiceKit",
            dependencies: [
                "MMCore", "AsyncPrimitives",
                .product(name: "Hummingbird", package: "hummingbird"),
                // HTTPS for every server when `tls` is configured (over swift-nio-ssl, which
                // AsyncHTTPClient already brings in; NIOSSL builds the clients' trust roots).
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // libcurl for mmctl: curl_easy_setopt is variadic, so the shim exposes typed setters.
        .target(name: "CCurl", linkerSettings: [.linkedLibrary("curl")]),
        .target(name: "CurlClient", dependencies: ["CCurl", "MMCore"]),

        .target(name: "Exchange", dependencies: service(["GRDB"])),
        // The ledger on SQLite (GRDB, the embedded default) or on PostgreSQL (postgres-nio).
        .target(name: "TradingState", dependencies: service(["GRDB"]) + [.product(name: "PostgresNIO", package: "postgres-nio")]),
        .target(name: "Coordinator", dependencies: service(["GRDB", "EtcdKit"])),
        .target(name: "MarketMaker", dependencies: service([])),
        .target(name: "OperatorGUI", dependencies: service([])),
        // Process primitives without the server stack (locks, pids, sweeps, detached spawn,
        // rotating logs, parent-death signal), shared by the supervisor and the thin mmctl.
        .target(name: "CProcessShims"),
        .target(name: "ProcessKit", dependencies: ["MMCore", "CProcessShims"]),
        // The supervisor daemon (`mmd supervise`). posix_spawn rather than swift-subprocess:
        // see docs/architecture/supervisor.md.
        .target(name: "Supervisor", dependencies: service([]) + ["ProcessKit"]),

        // The command-line pieces every executable shares: --config/--data-dir/--set and durations.
        .target(
            name: "MMCommandLine",
            dependencies: ["MMCore", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),

        // `mmctl check` and `mmctl drill`: the cluster's promises checked from outside, under faults.
        .target(
            name: "ClusterCheck",
            dependencies: [
                "MMCore", "CurlClient", "MMCommandLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),

        .executableTarget(
            name: "mmd",
            dependencies: [
                "MMCore", "MMServiceKit", "Exchange", "TradingState", "Coordinator", "MarketMaker", "OperatorGUI",
                "Supervisor", "ProcessKit", "MMCommandLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // A client only: no Hummingbird, NIO or AsyncHTTPClient, so it starts fast.
        .executableTarget(
            name: "mmctl",
            dependencies: [
                "MMCore", "CurlClient", "ProcessKit", "ClusterCheck", "MMCommandLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            // The Swift runtime and Foundation linked in: most of mmctl's start-up was the
            // dynamic loader resolving them (docs/PERFORMANCE.md, status section). The static
            // Foundation needs its own dependencies named; the dynamic one carries them inside.
            linkerSettings: [.unsafeFlags([
                "-static-stdlib",
                "-lFoundationInternationalization", "-lFoundationEssentials", "-lCoreFoundation",
                "-l_FoundationICU", "-l_FoundationCShims", "-l_FoundationCollections",
            ])]
        ),

        // A typed client for etcd 3.4's v3 JSON gateway (HTTP/1.1), with failover across
        // members: the coordinator's authority on etcd (docs/architecture/coordinator.md).
        .target(
            name: "EtcdKit",
            dependencies: [
                "AsyncPrimitives",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Test-only helpers: real `mmd`, `etcd` and PostgreSQL processes on private ports and data directories.
        .target(
            name: "MMTestSupport",
            dependencies: [
                "MMCore", "MMServiceKit",
                // withTestService runs a service's HTTP(S) server for the TLS tests.
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // Benchmarks behind docs/PERFORMANCE.md, run through Scripts/bench.
        .executableTarget(
            name: "mmbench",
            dependencies: [
                "MMCore", "MMServiceKit", "Exchange", "TradingState", "Coordinator", "MarketMaker", "OperatorGUI", "CurlClient", "AsyncPrimitives",
                // libcurl directly: the keep-alive load generator for plain HTTP vs HTTPS (--tls).
                "CCurl",
                // Starts the etcd it measures (fsync on), as the tests do.
                "EtcdKit", "MMTestSupport", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),

        .testTarget(name: "AsyncPrimitivesTests", dependencies: ["AsyncPrimitives", .product(name: "PropertyBased", package: "swift-property-based")]),
        .testTarget(name: "MMCoreTests", dependencies: ["MMCore", .product(name: "PropertyBased", package: "swift-property-based")], resources: [.copy("Golden")]),
        .testTarget(name: "MMCommandLineTests", dependencies: ["MMCommandLine", "MMCore"]),
        .testTarget(name: "MMServiceKitTests", dependencies: ["MMServiceKit", "MMTestSupport", "AsyncPrimitives", .product(name: "HummingbirdTesting", package: "hummingbird")]),
        .testTarget(name: "CurlClientTests", dependencies: ["CurlClient", "MMServiceKit", "MMTestSupport"]),
        .testTarget(name: "EtcdKitTests", dependencies: ["EtcdKit", "MMTestSupport", "MMServiceKit", "AsyncPrimitives"]),
        .testTarget(name: "ExchangeTests", dependencies: serviceTest("Exchange")),
        .testTarget(name: "TradingStateTests", dependencies: serviceTest("TradingState") + [.product(name: "PostgresNIO", package: "postgres-nio")]),
        .testTarget(name: "CoordinatorTests", dependencies: serviceTest("Coordinator") + ["ClusterCheck", "EtcdKit", .product(name: "AsyncHTTPClient", package: "async-http-client")]),
        .testTarget(name: "MarketMakerTests", dependencies: serviceTest("MarketMaker")),
        .testTarget(name: "OperatorGUITests", dependencies: serviceTest("OperatorGUI")),
        .testTarget(name: "ClusterCheckTests", dependencies: ["ClusterCheck", "MMCore", "MMTestSupport", .product(name: "PropertyBased", package: "swift-property-based")]),
        .testTarget(name: "SupervisorTests", dependencies: serviceTest("Supervisor") + ["CurlClient", "ProcessKit"]),
        // docs/openapi.yaml against every route table and against real responses of every service, in process.
        .testTarget(
            name: "OpenAPIContractTests",
            dependencies: [
                "MMCore", "MMServiceKit", "MMTestSupport", "Exchange", "TradingState", "Coordinator", "MarketMaker", "OperatorGUI", "Supervisor",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)

func service(_ extra: [String]) -> [Target.Dependency] {
    var deps: [Target.Dependency] = [
        "MMCore", "MMServiceKit", "AsyncPrimitives",
        .product(name: "Hummingbird", package: "hummingbird"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
    ]
    if extra.contains("GRDB") { deps.append(.product(name: "GRDB", package: "GRDB.swift")) }
    deps += extra.filter { $0 != "GRDB" }.map { .byName(name: $0) }
    return deps
}

func serviceTest(_ name: String) -> [Target.Dependency] {
    [
        .byName(name: name), "MMCore", "MMServiceKit", "MMTestSupport", "AsyncPrimitives",
        .product(name: "HummingbirdTesting", package: "hummingbird"),
        .product(name: "PropertyBased", package: "swift-property-based"),
    ]
}
