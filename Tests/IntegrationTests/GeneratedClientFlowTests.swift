import Foundation
import HITLClient
import OpenAPIRuntime
import Testing

/// The README's flow ("The skeleton flow by hand") with the typed client generated from the
/// OpenAPI document, against the running services: every answer must decode as the
/// document says, and every refusal comes back as an `APIRefusal` with the API's reason.
@Suite(.serialized, .timeLimit(.minutes(5))) struct GeneratedClientFlowTests {
    @Test func theReadmeFlowWithTheGeneratedClient() async throws {
        try await Stack.with { stack in
            let agent = Client.hitl(serverURL: try #require(URL(string: stack.orchestrator)), token: TestTokens.agent("agent@bank.example"))
            let approver = Client.hitl(serverURL: try #require(URL(string: stack.approval)), token: TestTokens.approver("manager@bank.example"))
            var submission = Components.Schemas.WorkflowSubmission(
                idempotencyKey: "typed-1", _type: "wire_transfer", requester: "agent@bank.example",
                input: try OpenAPIObjectContainer(unvalidatedValue: ["amount": 6000]),
                steps: [
                    .init(name: "approve", kind: .approval, approval: .init(approvers: ["manager@bank.example"], timeoutSeconds: 3600)),
                    .init(name: "execute", kind: .task, task: .init(_type: .noop)),
                ])
            let created = try await agent.submitWorkflow(body: .json(submission)).created.body.json
            let id = try #require(created.id)
            // The same key and body again: 200 and the same workflow; another body: 409.
            #expect(try await agent.submitWorkflow(body: .json(submission)).ok.body.json.id == id)
            submission.input = try OpenAPIObjectContainer(unvalidatedValue: ["amount": 7000])
            await #expect { try await agent.submitWorkflow(body: .json(submission)) } throws: { APIRefusal.in($0)?.status == 409 }

            var approvalID: String?
            for _ in 0..<100 where approvalID == nil {
                let page = try await approver.listApprovals(query: .init(status: .pending, workflowId: id)).ok.body.json
                approvalID = page.items?.first?.id
                if approvalID == nil { try await Task.sleep(for: .milliseconds(100)) }
            }
            let approval = try #require(approvalID, "the approval was never asked")
            let decided = try await approver.decideApproval(path: .init(id: approval), body: .json(.init(decision: .approve, comment: "ok")))
            _ = try decided.ok.body.json
            // A second decision: 409 naming who decided.
            await #expect { try await approver.decideApproval(path: .init(id: approval), body: .json(.init(decision: .reject))) } throws: { error in
                guard let refusal = APIRefusal.in(error) else { return false }
                return refusal.status == 409 && refusal.reason.contains("manager@bank.example")
            }

            var status: Components.Schemas.Status?
            for _ in 0..<200 where status != .completed {
                status = try await agent.getWorkflow(path: .init(id: id)).ok.body.json.status
                if status != .completed { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(status == .completed)
            let history = try await agent.getWorkflowHistory(path: .init(id: id)).ok.body.json.items ?? []
            let approved = try #require(history.first { $0.event == "approved" })
            #expect(approved.actor?.contains("manager@bank.example") == true)
            #expect(approved.detail?.value["receipt"] is String, "the decision's receipt is in the history")
            // Another agent's workflow answers 404, as over curl.
            let stranger = Client.hitl(serverURL: try #require(URL(string: stack.orchestrator)), token: TestTokens.agent("other@bank.example"))
            await #expect { try await stranger.getWorkflow(path: .init(id: id)) } throws: { APIRefusal.in($0)?.status == 404 }
        }
    }
}
