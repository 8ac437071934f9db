import Contracts
import Foundation
import Testing

@testable import OrchestratorService

/// Admins' gates applied to definitions, offline: inserted where missing, kept where an
/// admin's template already asks them, never skipped by a jump, never weakened by an agent.
@Suite struct GateApplicationTests {
    static let treasury = StepDefinition.Approval(
        approvers: ["cfo@bank.example", "group:treasury"], timeoutSeconds: 86_400, policy: ApprovalPolicy(quorum: .all, onExpiry: .reject))

    static func gate(
        _ name: String = "big-transfers", when: String? = "input.amount > 5000", agents: [String]? = ["payments-executor"], agentMay: [GateOption]? = nil
    ) -> GateStore.Version {
        GateStore.Version(
            name: name, version: 3,
            gate: Gate(type: "wire_transfer", when: when, approval: treasury, agents: agents, agentMay: agentMay), changedBy: "ops@bank.example",
            changedAt: Date())
    }

    func definition(_ json: String) throws -> [StepDefinition] {
        try WireCoding.decode([StepDefinition].self, from: Array(json.utf8))
    }

    static let draftThenPay = #"""
        [{"name":"draft","kind":"task","task":{"type":"agent","agent":"writer"}},
         {"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example"]}},
         {"name":"pay","kind":"task","task":{"type":"agent","agent":"payments-executor"}}]
        """#

    @Test func theRulesApprovalIsInsertedBeforeTheFirstStepThatActs() throws {
        let (steps, applied) = try GateApplication.apply([Self.gate()], to: definition(Self.draftThenPay), input: ["amount": 900_000], trusted: false)
        #expect(steps.map(\.name) == ["draft", "approve", "gate.big-transfers", "pay"])
        #expect(steps[2].approval?.approvers == Self.treasury.approvers && steps[2].approval?.policy == Self.treasury.policy && steps[2].when == nil)
        #expect(steps[2].approval?.gate == "big-transfers@3")
        #expect(applied == [.init(name: "big-transfers", version: 3, step: "gate.big-transfers", inserted: true)])
        // Below the rule's threshold nothing is added.
        #expect(try GateApplication.apply([Self.gate()], to: definition(Self.draftThenPay), input: ["amount": 100], trusted: false).applied.isEmpty)
    }

    @Test func anHTTPTaskOrCompensationActsAndWithoutAnyActingStepTheApprovalEndsTheWorkflow() throws {
        let compensating = try definition(
            #"""
            [{"name":"reserve","kind":"task","task":{"type":"noop"},"compensate":{"type":"http","url":"https://bank.example/refund"}},
             {"name":"check","kind":"task","task":{"type":"agent","agent":"checker"}}]
            """#)
        #expect(try GateApplication.apply([Self.gate()], to: compensating, input: ["amount": 6000], trusted: false).steps.first?.name == "gate.big-transfers")
        let noAction = try definition(#"[{"name":"check","kind":"task","task":{"type":"agent","agent":"checker"}}]"#)
        #expect(
            try GateApplication.apply([Self.gate()], to: noAction, input: ["amount": 6000], trusted: false).steps.map(\.name) == [
                "check", "gate.big-transfers",
            ])
    }

    @Test func anAdminsTemplateThatAlreadyAsksItIsLeftAsItIs() throws {
        var template = try definition(Self.draftThenPay)
        template[1].approval = Self.treasury
        let (steps, applied) = try GateApplication.apply([Self.gate()], to: template, input: ["amount": 6000], trusted: true)
        #expect(steps.map(\.name) == template.map(\.name) && applied == [.init(name: "big-transfers", version: 3, step: "approve", inserted: false)])
        #expect(steps[1].approval?.gate == "big-transfers@3")
        // A conditional copy does not count: it could be skipped.
        template[1].when = "input.amount > 1000000"
        #expect(try GateApplication.apply([Self.gate()], to: template, input: ["amount": 6000], trusted: true).steps.count == 4)
    }

    @Test func aJumpOverTheGatesApprovalIsRefused() throws {
        let jumping = try definition(
            #"""
            [{"name":"draft","kind":"task","task":{"type":"noop"},"next":"pay"},
             {"name":"spare","kind":"task","task":{"type":"noop"}},
             {"name":"pay","kind":"task","task":{"type":"http","url":"https://bank.example/pay"}}]
            """#)
        #expect(throws: Submissions.Invalid.self) { try GateApplication.apply([Self.gate()], to: jumping, input: ["amount": 6000], trusted: false) }
        let reserved = try definition(#"[{"name":"gate.big-transfers","kind":"approval","approval":{"approvers":["me@agent.example"]}}]"#)
        #expect(throws: Submissions.Invalid.self) { try GateApplication.apply([], to: reserved, input: [:], trusted: false) }
        let claimed = try definition(#"[{"name":"approve","kind":"approval","approval":{"approvers":["me@agent.example"],"gate":"big-transfers@3"}}]"#)
        #expect(throws: Submissions.Invalid.self) { try GateApplication.apply([], to: claimed, input: [:], trusted: true) }
        // A request for changes that would run the payment again without the gate.
        let revising = try definition(
            #"""
            [{"name":"pay","kind":"task","task":{"type":"http","url":"https://bank.example/pay"}},
             {"name":"review","kind":"approval","approval":{"approvers":["manager@bank.example"],"revise_step":"pay"}}]
            """#)
        #expect { try GateApplication.apply([Self.gate()], to: revising, input: ["amount": 6000], trusted: true) } throws: {
            "\($0)".contains("revise_step pay")
        }
    }

    @Test(arguments: [
        (#"{"approvers":["manager@bank.example"],"auto_approve_when":"true"}"#, "auto_approve_when"),
        (#"{"approvers":["manager@bank.example"],"timeout_seconds":1,"policy":{"on_expiry":"approve"}}"#, "on_expiry_approve"),
        (#"{"approvers":["manager@bank.example"],"policy":{"on_expiry":"fallback","safe_default":"approve"}}"#, "on_expiry_approve"),
        (#"{"approvers":["manager@bank.example"],"policy":{"on_expiry":"fallback"}}"#, "on_expiry_fallback"),
        (#"{"approvers":["manager@bank.example"],"policy":{"allow_self_approval":true}}"#, "allow_self_approval"),
    ])
    func anAgentsOwnDefinitionCannotWeakenTheApproval(approval: String, option: String) throws {
        let definition = try definition(#"[{"name":"approve","kind":"approval","approval":\#(approval)},{"name":"pay","kind":"task","task":{"type":"noop"}}]"#)
        // Whether or not a gate matches.
        for gates in [[], [Self.gate()]] {
            #expect { try GateApplication.apply(gates, to: definition, input: ["amount": 6000], trusted: false) } throws: { error in
                (error as? GateApplication.Refused)?.option == option && "\(error)".contains("steps[0] (approve)")
            }
        }
        // An admin's template may; so may an agent where the matching gate allows the option.
        #expect(throws: Never.self) { try GateApplication.apply([Self.gate()], to: definition, input: ["amount": 6000], trusted: true) }
        let allowing = Self.gate(agentMay: [GateOption(rawValue: option)!, .fallbackOnExpiry])
        #expect(throws: Never.self) { try GateApplication.apply([allowing], to: definition, input: ["amount": 6000], trusted: false) }
        // A gate that allows it but does not match the input allows nothing.
        #expect(throws: GateApplication.Refused.self) { try GateApplication.apply([allowing], to: definition, input: ["amount": 10], trusted: false) }
    }

    @Test func aGatesConditionFailsClosed() throws {
        let steps = try definition(Self.draftThenPay)
        for input: JSONObject in [["amount": 900_000], ["amount": "900000"], [:], ["amount": .null], ["amount": .array([1])]] {
            #expect(try GateApplication.apply([Self.gate()], to: steps, input: input, trusted: false).applied.count == 1, "\(input)")
        }
        #expect(try GateApplication.apply([Self.gate()], to: steps, input: ["amount": 10], trusted: false).applied.isEmpty)
        // Unknown stays unknown through not, and, or.
        for (when, input, applies) in [
            ("not (input.amount < 5000)", [:], true), ("input.amount > 5000 and input.kind == 'wire'", ["amount": 10], false),
            ("input.amount > 5000 or input.kind == 'wire'", ["amount": 10], true),
            ("input.amount > 5000 or input.kind == 'wire'", ["amount": 10, "kind": "card"], false),
            ("input.kind in input.kinds", ["kind": "wire"], true),
            // A value of another type than the rule compares with proves nothing: a lax
            // reader may take "true" for true, or 5 for "5".
            ("input.kind in ['wire', 'swift']", ["kind": 5], true), ("input.kind in ['wire', 'swift']", ["kind": "card"], false),
            ("input.force == true", ["force": "true"], true), ("input.force == true", ["force": false], false),
            ("input.force != false", ["force": 0], true),
        ] as [(String, JSONObject, Bool)] {
            #expect(try GateApplication.apply([Self.gate(when: when)], to: steps, input: input, trusted: false).applied.isEmpty != applies, "\(when) \(input)")
        }
    }

    @Test func agateWhoseConditionCannotBeReadAppliesAndAdminsGatesAreChecked() throws {
        let unreadable = Self.gate(when: "input.amount >")
        #expect(try GateApplication.apply([unreadable], to: definition(Self.draftThenPay), input: ["amount": 1], trusted: false).applied.count == 1)
        var weak = Self.gate().gate!
        weak.approval.autoApproveWhen = "true"
        #expect(GateRoutes.problem(in: weak)?.contains("auto_approve_when") == true)
        weak = Self.gate().gate!
        weak.approval.approvers = []
        #expect(GateRoutes.problem(in: weak)?.contains("approvers") == true)
        #expect(GateRoutes.problem(in: Self.gate().gate!) == nil)
    }
}
