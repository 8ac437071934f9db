import ArgumentParser

/// The `hitl` command: the local stack, bulk submission, the benchmark, dead letters and provisioning.
@main
struct HITL: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hitl",
        abstract: "Human-in-the-loop workflow orchestration: local stack, benchmark and operations.",
        subcommands: [Dev.self, Doctor.self, Submit.self, Bench.self, DeadLetters.self, DatabaseCommand.self, Receipts.self, MCPCommand.self])
}
