import Contracts
import Foundation
import Testing

@testable import AgentMCP

@Suite struct GatePolicyTests {
    static func policy(_ json: String) throws -> GatePolicy {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("policy-\(UUID().uuidString).json").path
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try GatePolicy.load(from: path)
    }

    @Test func aRuleGatesUnlessItsConditionSurelyFails() throws {
        let policy = try Self.policy(#"{"approvers":["a@x"],"rules":[{"tool":"transfer","when":"args.amount > 1000"}]}"#)
        #expect(policy.rule(for: "transfer", arguments: ["amount": 5000], caller: "agent") != nil)
        #expect(policy.rule(for: "transfer", arguments: ["amount": 10], caller: "agent") == nil)
        // A missing or odd argument cannot prove the call harmless: it is gated.
        #expect(policy.rule(for: "transfer", arguments: [:], caller: "agent") != nil)
        #expect(policy.rule(for: "transfer", arguments: ["amount": "lots"], caller: "agent") != nil)
        #expect(policy.rule(for: "ping", arguments: [:], caller: "agent") == nil)
    }

    @Test func aBadPolicyIsRefusedWithTheReason() {
        let cases = [
            (#"{"rules":[{"tool":"t"}]}"#, "names no approvers"),
            (#"{"approvers":["a"],"rules":[{"tool":"t","when":"input.x > 1"}]}"#, "unknown name input"),
            (#"{"approvers":["a"],"rules":[{"tool":"t","grant":{"minutes":0}}]}"#, "grant.minutes"),
            (#"{"approvers":["a"],"rules":[{"tool":"t","grant":{"minutes":5,"same_arguments":true,"when":"args.a == 1"}}]}"#, "not both"),
            (#"{"approvers":["a"],"hold_seconds":900,"rules":[]}"#, "hold_seconds"),
            (#"{"approvers":["a"]}"#, "rules"),
        ]
        for (json, reason) in cases {
            #expect(throws: ToolFailure.self, "\(json)") { try Self.policy(json) }
            do { _ = try Self.policy(json) } catch { #expect("\(error)".contains(reason), "\(json): \(error)") }
        }
    }

    @Test func theUpstreamCommandIsSplitAsAShellWould() throws {
        #expect(try GateUpstream.words(of: #"python3 "my server.py" --name 'a b' c\ d"#) == ["python3", "my server.py", "--name", "a b", "c d"])
        #expect(try GateUpstream.words(of: "  ") == [])
        #expect(throws: ToolFailure.self) { try GateUpstream.words(of: #"python3 "open"#) }
    }
}
