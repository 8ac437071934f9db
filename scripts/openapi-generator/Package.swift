// swift-tools-version: 6.1
import PackageDescription

/// Builds swift-openapi-generator for `scripts/generate-client` only, so the main package
/// does not build the generator on every clean build (CI's included): the generated client
/// is checked in, and a test says when it is older than the OpenAPI document.
let package = Package(
    name: "openapi-generator",
    dependencies: [.package(url: "https://github.com/apple/swift-openapi-generator.git", exact: "1.14.3")],
    targets: []
)
