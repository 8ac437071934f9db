import Contracts
import DevStack
import Foundation
import ServiceKitTesting
import Testing

/// The services a stack starts end with it, even when its process is killed outright, and
/// the Postgres such a stack leaves running is taken over by the next one.
@Suite(.serialized, .timeLimit(.minutes(10))) struct ProcessLifecycleTests {
    @Test func servicesOfAKilledDevStackShutThemselvesDownAndTheNextStartTakesOverItsPostgres() async throws {
        try await withDevDirectory { directory in
            let first = devStack(in: directory, log: "dev.out")
            try first.start()
            let pids = try await servicePIDs(of: directory)
            // While its owner runs, another stack in the same directory refuses to touch its Postgres.
            do {
                let output = try await Shell.runDetached(["timeout", "60", Shell.packageExecutable("hitl").path, "dev", "--directory", directory.path])
                Issue.record("a second stack started in a directory in use: \(output.suffix(1000))")
            } catch let failure as Shell.Failure {
                #expect(failure.output.contains("in use by process"), "\(failure.output.suffix(1000))")
            }
            first.kill9()
            try await waitUntil("every service has exited", timeout: .seconds(60)) {
                pids.allSatisfy { kill($0, 0) != 0 }
            }
            #expect(FileManager.default.fileExists(atPath: postmasterPID(in: directory).path), "the killed stack's Postgres is still running")

            // A new stack in the same directory stops that leftover server and starts its own.
            try FileManager.default.removeItem(at: directory.appendingPathComponent("dev.json"))
            let second = devStack(in: directory, log: "dev-2.out")
            try second.start()
            let restarted = try await servicePIDs(of: directory)
            #expect(Set(restarted).isDisjoint(with: pids))
            // Stopped as on Ctrl-C, it takes everything with it, Postgres included.
            await second.stop(timeout: .seconds(60))
            try await waitUntil("the second stack's services and Postgres have stopped", timeout: .seconds(60)) {
                restarted.allSatisfy { kill($0, 0) != 0 } && !FileManager.default.fileExists(atPath: postmasterPID(in: directory).path)
            }
        }
    }

    @Test func aStackAskedToStopWhileStartingStopsCleanlyOnceStarted() async throws {
        try await withDevDirectory { directory in
            let dev = devStack(in: directory, log: "dev.out")
            try dev.start()
            try await waitUntil("its Postgres is starting", timeout: .seconds(60)) {
                FileManager.default.fileExists(atPath: directory.appendingPathComponent("postgres").path)
            }
            // SIGTERM before the stack is up: it finishes starting, then stops everything.
            await dev.stop(timeout: .seconds(120))
            #expect(!FileManager.default.fileExists(atPath: postmasterPID(in: directory).path), "Postgres was left running")
            let pids = recordedPIDs(of: directory) ?? []
            #expect(pids.count == 4, "the stack did not finish starting before it stopped")
            #expect(pids.allSatisfy { kill($0, 0) != 0 }, "services were left running")
        }
    }

    /// A fresh directory for `hitl dev`; the private Postgres it holds, a daemon of its own,
    /// is stopped however the test ends.
    private func withDevDirectory(_ body: (URL) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hitl-dev-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer {
            if let text = try? String(contentsOf: postmasterPID(in: directory), encoding: .utf8),
                let pid = text.split(separator: "\n").first.flatMap({ Int32($0) })
            {
                kill(pid, SIGINT)
            }
        }
        try await body(directory)
    }

    private func postmasterPID(in directory: URL) -> URL {
        directory.appendingPathComponent("postgres/data/postmaster.pid")
    }

    private func devStack(in directory: URL, log: String) -> ServiceProcess {
        let dev = ServiceProcess(
            name: "hitl dev", executable: Shell.packageExecutable("hitl"), environment: ProcessInfo.processInfo.environment,
            logFile: directory.appendingPathComponent(log), baseURL: "")
        dev.arguments = ["dev", "--directory", directory.path]
        return dev
    }

    /// The services' pids, once the stack in `directory` has written its dev.json.
    private func servicePIDs(of directory: URL) async throws -> [Int32] {
        var pids: [Int32] = []
        try await waitUntil("the dev stack is up", timeout: .seconds(120)) {
            pids = recordedPIDs(of: directory) ?? []
            return pids.count == 4
        }
        return pids
    }

    /// The services' pids in the stack's dev.json, if it wrote one.
    private func recordedPIDs(of directory: URL) -> [Int32]? {
        guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent("dev.json").path),
            let facts = try? WireCoding.decode(JSONObject.self, from: Array(data)), case .object(let byService)? = facts["pids"]
        else { return nil }
        return byService.values.compactMap { if case .number(let pid) = $0 { Int32(pid) } else { nil } }
    }
}

/// A service that cannot come up ends, instead of hanging with its loops waiting for
/// migrations that will never be applied.
@Suite(.serialized, .timeLimit(.minutes(5))) struct FailedStartTests {
    @Test func aServiceWhoseMigrationFailsExits() async throws {
        try await Stack.with { stack in
            let timeout = stack.local["timeout"]
            await timeout.stop()
            // The bookkeeping forgets the migrations, so the next start tries to create
            // tables that exist, and fails.
            _ = try await stack.sql("DELETE FROM timeout.schema_migrations")
            try timeout.start()
            let started = ContinuousClock.now
            try await waitUntil("the timeout service to exit", timeout: .seconds(60)) { !timeout.isRunning }
            #expect(ContinuousClock.now - started < .seconds(60))
            #expect(timeout.exitStatus != 0, "a service that could not start exited as if all was well")
            let log = try String(contentsOf: timeout.logFile, encoding: .utf8)
            #expect(log.contains("already exists"), "\(log.suffix(2000))")
            // Ended with a message, not a crash report.
            #expect(log.contains("hitl-timeout: stopped:") && !log.contains("Fatal error"), "\(log.suffix(2000))")
        }
    }
}
