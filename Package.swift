// swift-tools-version: 6.1
import PackageDescription

/// The HITL package: four services that talk only through `Contracts` events over Kafka,
/// the shared backbone they stand on (`ServiceKit`, `Kafka`), and the `hitl` command.
/// Dependencies point one way: Apps → Services → ServiceKit → {Contracts, Kafka → CRdKafka}.
let swiftSettings: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "hitl",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "hitl", targets: ["HITLCLI"]),
        .executable(name: "hitl-orchestrator", targets: ["OrchestratorApp"]),
        .executable(name: "hitl-approval", targets: ["ApprovalApp"]),
        .executable(name: "hitl-notifier", targets: ["NotifierApp"]),
        .executable(name: "hitl-timeout", targets: ["TimeoutApp"]),
        // The typed client of the HTTP APIs, for agents written in Swift.
        .library(name: "HITLClient", targets: ["HITLClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk.git", from: "0.12.1"),
        // The file descriptors of the MCP gateway's upstream process (the SDK's stdio transport takes them).
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.13.4"),
        .package(url: "https://github.com/swift-server/swift-openapi-async-http-client.git", from: "1.5.0"),
    ],
    targets: [
        // MARK: - Shared
        .target(
            name: "Contracts", dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            path: "Shared/Contracts", swiftSettings: swiftSettings),
        .target(name: "Forms", dependencies: ["Contracts"], path: "Shared/Forms", swiftSettings: swiftSettings),
        .target(
            name: "Slack",
            dependencies: [
                "Contracts", "ServiceKit",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Shared/Slack", swiftSettings: swiftSettings),
        .systemLibrary(
            name: "CRdKafka", path: "Shared/CRdKafka", pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        .target(
            name: "Kafka",
            dependencies: [
                "CRdKafka",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Shared/Kafka", swiftSettings: swiftSettings
        ),
        .target(
            name: "ServiceKit",
            dependencies: [
                "Contracts", "Kafka",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Shared/ServiceKit", resources: [.copy("Resources")], swiftSettings: swiftSettings
        ),
        // The whole system on one machine (a private Postgres, the mock Kafka cluster, the
        // four service processes), for `hitl dev`, the benchmarks and the end-to-end tests.
        .target(
            name: "DevStack",
            dependencies: [
                "ServiceKit", "Kafka", "Contracts",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Shared/DevStack", swiftSettings: swiftSettings
        ),
        // What only the tests share: their Postgres server and waiting for a condition.
        .target(
            name: "ServiceKitTesting",
            dependencies: [
                "DevStack", "ServiceKit", .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Shared/ServiceKitTesting", swiftSettings: swiftSettings
        ),

        // MARK: - Services
        .target(
            name: "OrchestratorService",
            dependencies: [
                "ServiceKit", "Contracts", "Forms", "AgentMCP",
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Services/Orchestrator/Sources", swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "OrchestratorApp", dependencies: ["OrchestratorService", "ServiceKit"], path: "Services/Orchestrator/App", swiftSettings: swiftSettings),
        .target(
            name: "ApprovalService",
            dependencies: [
                "ServiceKit", "Contracts", "Forms", "Slack",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Services/Approval/Sources", swiftSettings: swiftSettings
        ),
        .executableTarget(name: "ApprovalApp", dependencies: ["ApprovalService", "ServiceKit"], path: "Services/Approval/App", swiftSettings: swiftSettings),
        .target(
            name: "NotifierService",
            dependencies: [
                "ServiceKit", "Contracts", "Forms", "Slack",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Services/Notifier/Sources", swiftSettings: swiftSettings
        ),
        .executableTarget(name: "NotifierApp", dependencies: ["NotifierService", "ServiceKit"], path: "Services/Notifier/App", swiftSettings: swiftSettings),
        .target(
            name: "TimeoutService",
            dependencies: [
                "ServiceKit", "Contracts",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Services/Timeout/Sources", swiftSettings: swiftSettings
        ),
        .executableTarget(name: "TimeoutApp", dependencies: ["TimeoutService", "ServiceKit"], path: "Services/Timeout/App", swiftSettings: swiftSettings),
        .target(
            name: "HITLClient",
            dependencies: [
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIAsyncHTTPClient", package: "swift-openapi-async-http-client"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            path: "Shared/HITLClient", exclude: ["openapi-generator-config.yaml", "Generated/openapi.sha256"], swiftSettings: swiftSettings),
        .target(
            name: "AgentMCP",
            dependencies: [
                "Contracts", "HITLClient",
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Services/AgentMCP", swiftSettings: swiftSettings),
        .executableTarget(
            name: "HITLCLI",
            dependencies: [
                "ServiceKit", "Contracts", "Kafka", "DevStack", "AgentMCP", "HITLClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "MCP", package: "swift-sdk"),
            ],
            path: "Services/CLI", swiftSettings: swiftSettings
        ),

        // MARK: - Tests
        .testTarget(
            name: "ContractsTests", dependencies: ["Contracts", .product(name: "Crypto", package: "swift-crypto")], resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "KafkaTests",
            dependencies: ["Kafka", "DevStack", "ServiceKitTesting", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "ServiceKitTests",
            dependencies: [
                "ServiceKit", "DevStack", "ServiceKitTesting", "Contracts", "Kafka",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "OrchestratorTests",
            dependencies: ["OrchestratorService", "Contracts", "ServiceKit", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings),
        .testTarget(name: "ApprovalTests", dependencies: ["ApprovalService", "Contracts", "ServiceKit"], swiftSettings: swiftSettings),
        .testTarget(name: "FormsTests", dependencies: ["Forms", "Contracts"], swiftSettings: swiftSettings),
        .testTarget(
            name: "AgentMCPTests",
            dependencies: [
                "AgentMCP", "Contracts", "HITLClient", .product(name: "Crypto", package: "swift-crypto"), .product(name: "MCP", package: "swift-sdk"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(name: "NotifierTests", dependencies: ["NotifierService", "Contracts", "Slack", "ServiceKit"], swiftSettings: swiftSettings),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "DevStack", "ServiceKitTesting", "Contracts", "ServiceKit", "Kafka", "OrchestratorService", "ApprovalService", "Slack", "HITLClient",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // The scripts that drive a browser and a mail server for the tests.
            exclude: ["Scripts"],
            swiftSettings: swiftSettings
        ),
    ]
)
