import Contracts
import Foundation
import MCP
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

    /// A value of another type than the condition compares with does not prove the call
    /// harmless: an upstream that reads "true" or 1 as true would act on it.
    @Test func anEqualityOnAnotherTypeGates() throws {
        let policy = try Self.policy(#"{"approvers":["a@x"],"rules":[{"tool":"deploy","when":"args.force == true or args.env in ['prod']"}]}"#)
        #expect(policy.rule(for: "deploy", arguments: ["force": false, "env": "dev"], caller: "agent") == nil)
        #expect(policy.rule(for: "deploy", arguments: ["force": "true", "env": "dev"], caller: "agent") != nil)
        #expect(policy.rule(for: "deploy", arguments: ["force": false, "env": 1], caller: "agent") != nil)
    }

    @Test func aGrantServesOnlyTheRuleThatMadeIt() throws {
        let first = try Self.policy(
            #"{"approvers":["a@x"],"rules":[{"tool":"t","when":"args.n > 10","approvers":["cfo"]},{"tool":"t","grant":{"minutes":5}}]}"#)
        let big = try #require(first.rule(for: "t", arguments: ["n": 50], caller: "agent"))
        let small = try #require(first.rule(for: "t", arguments: ["n": 5], caller: "agent"))
        #expect(big.fingerprint != small.fingerprint)
        // The same rule edited is another rule.
        let edited = try Self.policy(
            #"{"approvers":["a@x"],"rules":[{"tool":"t","when":"args.n > 10","approvers":["cfo"]},{"tool":"t","grant":{"minutes":500}}]}"#)
        #expect(try #require(edited.rule(for: "t", arguments: ["n": 5], caller: "agent")).fingerprint != small.fingerprint)
        #expect(try #require(first.rule(for: "t", arguments: ["n": 6], caller: "agent")).fingerprint == small.fingerprint)
    }

    @Test func integersAnApproverCannotSeeExactlyAreRefused() {
        #expect(ToolGateway.holdsInexactInteger(.int(1 << 53 + 1)))
        #expect(ToolGateway.holdsInexactInteger(.object(["ids": .array([.int(1), .int(-(1 << 60))])])))
        #expect(!ToolGateway.holdsInexactInteger(.object(["amount": .int(6000), "rate": .double(0.5)])))
    }

    @Test func aBadPolicyIsRefusedWithTheReason() {
        let cases = [
            (#"{"rules":[{"tool":"t"}]}"#, "names no approvers"),
            (#"{"approvers":["a"],"rules":[{"tool":"t","when":"input.x > 1"}]}"#, "unknown name input"),
            (#"{"approvers":["a"],"rules":[{"tool":"t","grant":{"minutes":0}}]}"#, "grant.minutes"),
            (#"{"approvers":["a"],"rules":[{"tool":"t","grant":{"minutes":5,"same_arguments":true,"when":"args.a == 1"}}]}"#, "not both"),
            (#"{"approvers":["a"],"hold_seconds":900,"rules":[]}"#, "hold_seconds"),
            (#"{"approvers":["a"]}"#, "rules"),
            (#"{"approvers":["a"],"rules":[{"tool":"t","approver":["b"]}]}"#, "unknown key approver"),
            (#"{"approvers":["a"],"rules":[{"tool":"t","grant":{"minutes":5,"When":"args.a == 1"}}]}"#, "unknown key When"),
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
