import Contracts
import Foundation
import ServiceKitTesting
import Testing

/// Email over a real SMTP server (aiosmtpd: STARTTLS and AUTH required): the message each
/// approver receives, its signed link followed (GET confirms only, POST decides once), and
/// an address the server refuses (permanent: one attempt, reported failed).
@Suite(.serialized, .timeLimit(.minutes(10))) struct EmailTests {
    @Test func approversGetTheirOwnMailAndItsLinkDecidesOnlyFromTheConfirmationPage() async throws {
        try await LocalSMTPServer.with { smtp in
            try await Stack.with(environment: smtp.environment) { stack in
                let steps =
                    #"[{"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example","nobody@bank.example"]}},{"name":"execute","kind":"task","task":{"type":"noop"}}]"#
                let id = try await stack.submit(key: "mail-1", input: #"{"amount":6000,"beneficiary":"ACME <GmbH>"}"#, steps: steps)
                let approval = try await stack.pendingApproval(of: id)
                var mail: JSONObject = [:]
                try await waitUntil("the approval mail arrives") {
                    mail = try smtp.messages().first { $0["to"] == "manager@bank.example" } ?? [:]
                    return !mail.isEmpty
                }
                #expect(mail["tls"] == true && mail["auth_login"] == .string(LocalSMTPServer.user))
                #expect(mail["content_type"] == "multipart/alternative" && mail["rcpt_tos"] == .array(["manager@bank.example"]))
                #expect(mail["mail_from"] == "approvals@hitl.example" && mail["subject"] == "Approval needed: wire_transfer")
                let text = try #require(mail["text"]?.stringValue)
                let html = try #require(mail["html"]?.stringValue)
                #expect(text.contains("beneficiary: ACME <GmbH>") && html.contains("ACME &lt;GmbH&gt;"))
                let approveLink = try #require(text.firstMatch(of: /Approve: (\S+)/).map { String($0.1) })
                #expect(html.contains(approveLink) && text.contains("Open it in your browser: \(stack.approval)/ui/sign-in/"))

                // The refused address: one attempt (550 is permanent), reported failed, the rest unaffected.
                try await waitUntil("the refused delivery is reported") {
                    try await stack.count(
                        "SELECT count(*)::int FROM notifier.deliveries WHERE recipient = 'nobody@bank.example' AND status = 'failed' AND attempts = 1") == 1
                }
                let failed = try await stack.events(on: .notificationOutcomes).filter { $0.type == .notificationFailed }
                let reason = try failed.first?.decode(NotificationFailed.self).error ?? ""
                #expect(failed.count == 1 && reason.contains("550"))

                // Following the link (as a mail scanner does) only shows the confirmation page.
                let confirm = try await API.get(approveLink, token: nil)
                #expect(confirm.status == 200 && confirm.text.contains("Confirm: Approve as manager@bank.example"))
                #expect(try await API.get("\(stack.approval)/v1/approvals/\(approval)").string("status") == "pending")

                let decided = try await API.postForm(approveLink, ["comment": "approved from my inbox"])
                #expect(decided.status == 200 && decided.text.contains("Approved by manager@bank.example via a decision link"))
                try await stack.waitForStatus(id, "completed")
                let again = try await API.postForm(approveLink, [:])
                #expect(again.status == 409 && again.text.contains("this link was already used"))
                #expect(try await API.get(approveLink, token: nil).text.contains("Approved by manager@bank.example"))

                // Everyone still asked is told it is decided.
                try await waitUntil("the decided mail arrives") {
                    try smtp.messages().contains { $0["to"] == "manager@bank.example" && $0["subject"] == "Decided: wire_transfer" }
                }
            }
        }
    }
}
