import Contracts
import Foundation
import ServiceKitTesting
import Testing

/// The services a stack starts end with it, even when its process is killed outright.
@Suite(.serialized, .timeLimit(.minutes(10))) struct ProcessLifecycleTests {
    @Test func servicesOfAKilledDevStackShutThemselvesDown() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hitl-dev-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let dev = ServiceProcess(
            name: "hitl dev", executable: Shell.packageExecutable("hitl"), environment: ProcessInfo.processInfo.environment,
            logFile: directory.appendingPathComponent("dev.out"), baseURL: "")
        dev.arguments = ["dev", "--directory", directory.path]
        try dev.start()
        var pids: [Int32] = []
        try await waitUntil("the dev stack is up", timeout: .seconds(120)) {
            guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent("dev.json").path),
                let facts = try? WireCoding.decode(JSONObject.self, from: Array(data)), case .object(let byService)? = facts["pids"]
            else { return false }
            pids = byService.values.compactMap { if case .number(let pid) = $0 { Int32(pid) } else { nil } }
            return pids.count == 4
        }
        dev.kill9()
        // The private Postgres is a daemon of its own; stop it however this ends.
        defer {
            if let text = try? String(contentsOf: directory.appendingPathComponent("postgres/data/postmaster.pid"), encoding: .utf8),
                let pid = text.split(separator: "\n").first.flatMap({ Int32($0) })
            {
                kill(pid, SIGINT)
            }
        }
        try await waitUntil("every service has exited", timeout: .seconds(60)) {
            pids.allSatisfy { kill($0, 0) != 0 }
        }
    }
}
