import Contracts
import Foundation
import ServiceKitTesting
import Testing

@testable import ApprovalService

/// Ten decisions on one approval at once, through every channel: the API, signed links, the
/// web form and Slack buttons. Exactly one wins; every other one is refused naming the
/// winner (409 on the API, links and web, an ephemeral note in Slack); exactly one
/// decision event is published.
@Suite(.serialized, .timeLimit(.minutes(10))) struct DecisionRaceTests {
    enum Outcome: Sendable, Equatable { case won, lost(String) }

    @Test func tenConcurrentDecisionsThroughEveryChannelHaveExactlyOneWinner() async throws {
        try await SlackStub.with { slack in
            try await Stack.with(environment: slack.environment(users: "manager@bank.example=U0MANAGER")) { stack in
                let id = try #require(try await stack.submit(API.workflow(key: "race-1")).string("id"))
                let approvalID = try await stack.pendingApproval(of: id)
                var links: [String: String] = [:]
                try await waitUntil("the notification with its links") {
                    links = await stack.webhook.accepted.items.first { $0.approvalId == approvalID }?.links ?? [:]
                    return !links.isEmpty
                }
                let page = "\(stack.approval)/ui/approvals/\(approvalID)"
                let web = try await WebClient.signIn(try #require(links["web:manager@bank.example"]))
                let csrf = try #require(try await web.csrfToken(page))
                let tokens = DecisionTokens(keys: [("new", TestTokens.newDecisionKey)])
                var clicks: [JSONObject] = []
                for _ in 0..<2 { clicks.append(await slack.click(user: "U0MANAGER", value: "\(approvalID):approve")) }

                let outcomes = try await withThrowingTaskGroup(of: Outcome.self) { group in
                    for index in 0..<3 {
                        let decision = index.isMultiple(of: 2) ? "approve" : "reject"
                        group.addTask {
                            let answer = try await stack.decide(approvalID, decision)
                            return answer.status == 200 ? .won : .lost(answer.status == 409 ? answer.string("reason") ?? "" : "HTTP \(answer.status)")
                        }
                    }
                    for index in 0..<3 {
                        let token = tokens.issue(
                            approvalID: approvalID, approver: "manager@bank.example", decision: index == 0 ? .reject : .approve,
                            expiresAt: Date().addingTimeInterval(600))
                        group.addTask {
                            let answer = try await API.post("\(stack.approval)/v1/links/\(token)", "{}", token: nil)
                            return answer.status == 200 ? .won : .lost(answer.status == 409 ? answer.string("reason") ?? "" : "HTTP \(answer.status)")
                        }
                    }
                    for decision in ["approve", "reject"] {
                        group.addTask {
                            let answer = try await web.post(page, ["csrf_token": csrf, "decision": decision])
                            return answer.status == 303 ? .won : .lost(answer.status == 409 ? answer.html : "HTTP \(answer.status)")
                        }
                    }
                    for click in clicks {
                        group.addTask {
                            let status = try await slack.interact(stack.approval, click).status
                            return status == 200 ? .won : .lost("HTTP \(status)")  // a refused click is told on its response_url, counted below
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                let approval = try await API.get("\(stack.approval)/v1/approvals/\(approvalID)")
                let winner = "by manager@bank.example via \(approval.string("channel") ?? "?")"
                try await waitUntil("the refused Slack clicks are told") {
                    await slack.responses.count + (approval.string("channel") == "slack" ? 1 : 0) == 2
                }
                let slackRefusals = await slack.responses.items.compactMap { $0["text"]?.stringValue }
                let refusals = outcomes.compactMap { if case .lost(let reason) = $0 { reason } else { nil } } + slackRefusals
                let wins = outcomes.filter { $0 == .won }.count - slackRefusals.count
                #expect(wins == 1, "\(outcomes)")
                #expect(refusals.count == 9)
                for refusal in refusals { #expect(refusal.contains(winner), "\(refusal)") }
                try await stack.waitForStatus(id, approval.string("status") == "approved" ? "completed" : "rejected")
                let decisions = try await stack.events(on: .approvalDecisions).filter { $0.type == .approvalDecided }
                #expect(decisions.count == 1)
            }
        }
    }
}
