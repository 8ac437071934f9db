import Contracts
import Forms
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServiceKit
import Slack

/// `POST /slack/interactions`: Slack's interactivity requests (button clicks, modal
/// submissions). Each is verified first (v0 signature, five-minute window: 401 otherwise),
/// then the Slack user is mapped to an approver (`HITL_SLACK_USERS`); the approval service
/// decides as for any channel (`slack`), so only assignees decide and the first decision
/// wins. A click that cannot decide (not an assignee, already decided, expired) gets an
/// ephemeral answer saying why, and who decided, how and when. A button whose decision
/// needs the form's fields opens the form as a modal (`views.open`); its submission is
/// checked like the web form's, with problems shown under their fields.
struct SlackInteractions: Sendable {
    static let path = "/slack/interactions"
    let store: ApprovalStore
    let slack: SlackSettings
    let signingSecret: String
    let client: SlackClient

    func register(on router: Router<ServiceRequestContext>) {
        router.post(RouterPath(stringLiteral: Self.path)) { request, context in
            var request = request
            let body = try await request.rawBody()
            let timestamp = request.headers[HTTPField.Name("X-Slack-Request-Timestamp")!]
            let signature = request.headers[HTTPField.Name("X-Slack-Signature")!]
            do throws(SlackSignature.Refusal) {
                try SlackSignature.verify(secret: signingSecret, timestamp: timestamp, signature: signature, body: body)
            } catch {
                throw APIError(.unauthorized, "invalid_signature", error.description)
            }
            guard let text = try URLEncodedForm.parse(String(decoding: body, as: UTF8.self))["payload"],
                let payload = try? WireCoding.decode(JSONObject.self, from: Array(text.utf8), nestedAtMost: WireCoding.inboundDepth)
            else { throw APIError.badRequest("an interaction is a form with a JSON payload field") }
            switch payload["type"]?.stringValue {
            case "block_actions": return try await click(payload, logger: context.logger)
            case "view_submission": return try await submit(payload, logger: context.logger)
            default: return Response(status: .ok)
            }
        }
    }

    // MARK: - Buttons

    private func click(_ payload: JSONObject, logger: Logger) async throws -> Response {
        guard case .array(let actions)? = payload["actions"], let action = actions.first?.objectValue,
            let value = action["value"]?.stringValue, let (approvalID, decision) = Self.parse(value)
        else { return Response(status: .ok) }  // the web-page link button, or not ours
        let responseURL = payload["response_url"]?.stringValue
        guard let approver = approver(of: payload) else {
            try await tell(responseURL, "Your Slack account is not linked to an approver, so this click decided nothing.")
            return Response(status: .ok)
        }
        let approval = try await store.find(id: approvalID)
        if let approval, let form = approval.form, form.requiresInput, decision != .reject, approval.status == .pending,
            let trigger = payload["trigger_id"]?.stringValue
        {
            let label = form.buttons?.first { $0.decision == decision }.map(FormRendering.text(of:)) ?? FormRendering.decisionName(decision)
            let view = FormRendering(form: form, facts: approval.context).slackModal(approvalID: approval.id, decision: decision, submitLabel: label)
            do {
                try await client.call("views.open", ["trigger_id": .string(trigger), "view": view])
            } catch let failure as SlackClient.Failure {
                // The trigger is good for three seconds only: no retry, the approver clicks again.
                try await tell(responseURL, "The form could not be opened (\(failure.description)); please click again, or use the web page.")
            }
            return Response(status: .ok)
        }
        do {
            _ = try await store.decide(id: approvalID, DecisionRequest(decision: decision, approver: approver, channel: "slack"), logger: logger)
        } catch let refusal as DecisionRefusal {
            try await tell(responseURL, Self.friendly(refusal))
        }
        return Response(status: .ok)
    }

    // MARK: - Modals

    private func submit(_ payload: JSONObject, logger: Logger) async throws -> Response {
        guard let view = payload["view"]?.objectValue, view["callback_id"]?.stringValue == FormRendering.slackModalCallbackID,
            let metadata = view["private_metadata"]?.stringValue, let (approvalID, decision) = Self.parse(metadata)
        else { return Response(status: .ok) }
        guard let approver = approver(of: payload) else {
            return try Self.modalErrors(["comment": "Your Slack account is not linked to an approver."])
        }
        guard let approval = try await store.find(id: approvalID) else {
            return try Self.modalErrors(["comment": "This approval no longer exists."])
        }
        var values = FormRendering.slackModalValues(view["state"]?.objectValue?["values"]?.objectValue ?? [:])
        let comment = values.removeValue(forKey: "comment")
        let form = approval.form ?? ApprovalForm(title: approval.workflowType)
        do {
            _ = try await store.decide(
                id: approvalID,
                DecisionRequest(decision: decision, approver: approver, comment: comment, fields: FormInput.typed(values, for: form), channel: "slack"),
                logger: logger)
            return try JSONResponse.make(["response_action": "clear"])
        } catch DecisionRefusal.invalidFields(let problems) {
            // Each problem under its field; the rest under the comment.
            var errors = problems.byField
            let others = problems.problems.filter { !problems.byField.values.contains($0) }
            if !others.isEmpty { errors["comment"] = others.joined(separator: "; ") }
            return try Self.modalErrors(errors)
        } catch let refusal as DecisionRefusal {
            return try Self.modalErrors(["comment": Self.friendly(refusal)])
        }
    }

    // MARK: - Helpers

    private func approver(of payload: JSONObject) -> String? {
        payload["user"]?.objectValue?["id"]?.stringValue.flatMap(slack.users.approver(of:))
    }

    /// An ephemeral note to the one who clicked.
    private func tell(_ responseURL: String?, _ text: String) async throws {
        guard let responseURL else { return }
        try await client.respond(to: responseURL, ["response_type": "ephemeral", "replace_original": false, "text": .string(text)])
    }

    static func friendly(_ refusal: DecisionRefusal) -> String {
        switch refusal {
        case .closed(.approved, _, _, _, _), .closed(.rejected, _, _, _, _), .closed(.changesRequested, _, _, _, _):
            "Nothing changed: this was already decided — \(refusal.reason)."
        case .notAnApprover: "Nothing changed: you are not an approver of this request."
        case .ownRequest: "Nothing changed: you requested this, so someone else must decide it."
        default: "Nothing changed: \(refusal.reason)."
        }
    }

    static func parse(_ value: String) -> (ApprovalID, Decision)? {
        let parts = value.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, let id = ApprovalID(String(parts[0])), let decision = Decision(rawValue: parts[1]) else { return nil }
        return (id, decision)
    }

    static func modalErrors(_ errors: [String: String]) throws -> Response {
        try JSONResponse.make(["response_action": JSONValue.string("errors"), "errors": .object(errors.mapValues(JSONValue.string))])
    }
}
