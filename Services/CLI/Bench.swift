import ArgumentParser

/// `hitl bench`: see the README's figures.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Benchmark the skeleton flow.")
    func run() async throws {
        throw ValidationError("not built yet")
    }
}
