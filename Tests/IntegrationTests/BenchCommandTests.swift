import Contracts
import DevStack
import Foundation
import ServiceKitTesting
import Testing

/// `hitl bench` on a stack of its own: it runs the approve flow and prints the figures the
/// README reports. A check that the benchmark works, not a timing.
@Suite(.timeLimit(.minutes(10))) struct BenchCommandTests {
    @Test func benchRunsTheApproveFlowOnItsOwnStackAndPrintsItsFiguresAsOneJSONLine() async throws {
        // Five workflows among four workers: the last worker's share is empty.
        let output = try await Shell.runDetached([Shell.packageExecutable("hitl").path, "bench", "--workflows", "5", "--concurrency", "4", "--fresh"])
        let line = try #require(output.split(separator: "\n").last { $0.hasPrefix("{") }, "no JSON line in: \(output.suffix(2000))")
        let figures = try WireCoding.decode(JSONObject.self, from: Array(line.utf8))
        #expect(figures["workflows"] == .number(5))
        for name in ["seconds", "workflows_per_s", "pause_ms_p50", "pause_ms_p99", "resume_ms_p50", "resume_ms_p99"] {
            guard case .number(let value)? = figures[name] else {
                Issue.record("\(name) missing from \(line)")
                continue
            }
            #expect(value > 0, "\(name)")
        }
        let services = ["approval", "notifier", "orchestrator", "timeout"]
        guard case .object(let memory)? = figures["peak_rss_mib"], case .object(let cpu)? = figures["cpu_ms_per_workflow"] else {
            Issue.record("no peak_rss_mib or cpu_ms_per_workflow in \(line)")
            return
        }
        #expect(Set(memory.keys) == Set(services))
        #expect(Set(cpu.keys) == Set(services + ["machine"]))
        for case .number(let value) in Array(memory.values) + Array(cpu.values) { #expect(value > 0) }
    }

    @Test func theOpenLoopSoakStartsWorkflowsAtAFixedRateAndReportsEachQuarter() async throws {
        let output = try await Shell.runDetached([Shell.packageExecutable("hitl").path, "bench", "--rate", "4", "--seconds", "4", "--fresh"])
        let line = try #require(output.split(separator: "\n").last { $0.hasPrefix("{") }, "no JSON line in: \(output.suffix(2000))")
        let figures = try WireCoding.decode(JSONObject.self, from: Array(line.utf8))
        #expect(figures["mode"] == "open_loop" && figures["workflows"] == .number(16) && figures["rate"] == .number(4))
        #expect(figures["failed"] == .number(0), "\(figures)")
        guard case .array(let quarters)? = figures["quarters"] else {
            Issue.record("no quarters in \(line)")
            return
        }
        #expect(quarters.count == 4)
        for quarter in quarters.compactMap(\.objectValue) {
            #expect(quarter["workflows"] == .number(4) && quarter["resume_ms_p99"] != nil)
            #expect(quarter["rss_mib"]?.objectValue?.count == 4, "\(quarter)")
        }
    }
}
