import Contracts
import Foundation
import Hummingbird
import ServiceKit

/// `GET|POST /v1/workflows/{id}/messages`: the workflow's conversation thread. Agents and
/// approvers add messages; the engine adds approvers' comments and a note at each status
/// change, so the thread reads as one ordered exchange. Agents' and approvers' messages are
/// passed to the approval service (`hitl.approval.thread_message.v1`) for its web pages.
///
/// Who speaks comes from the token, never from the body: an agent posts as `agent`, an
/// approver as `approver`, an admin as `note`, each under the token's subject. A body that
/// names another author or kind is refused (403), so a requester cannot put words in an
/// approver's mouth.
struct ConversationRoutes: Sendable {
    let runtime: ServiceRuntime
    let workflows: WorkflowRoutes
    static let kinds: Set<String> = ["agent", "approver", "note"]

    struct MessageBody: Decodable {
        let author: String?
        let text: String
        let kind: String?
        let step: String?
    }

    func register(on router: Router<ServiceRequestContext>) {
        router.get("/v1/workflows/{id}/messages") { _, context in
            let id = try workflows.parseID(context.parameters.require("id"))
            try await workflows.authorize(id, context: context)
            try await workflows.requireWorkflow(id)
            return try JSONResponse.make(ItemList(items: try await workflows.reads.messages(of: id)))
        }
        router.post("/v1/workflows/{id}/messages") { request, context in
            let id = try workflows.parseID(context.parameters.require("id"))
            try await workflows.authorize(id, context: context)
            var request = request
            let body = try await request.decodeJSON(MessageBody.self)
            let principal = try context.require(Role.allCases)
            let kind =
                switch principal.role {
                case .agent: "agent"
                case .approver: "approver"
                case .admin: "note"
                }
            if let asked = body.kind, asked != kind {
                guard Self.kinds.contains(asked) else { throw APIError.badRequest("kind must be agent, approver or note") }
                throw APIError(.forbidden, "not_yourself", "a \(principal.role.rawValue) token posts as \(kind), not \(asked)")
            }
            let author = principal.subject
            if let asked = body.author, asked != author {
                throw APIError(.forbidden, "not_yourself", "messages are posted as the token's subject, \(author)")
            }
            guard !body.text.isEmpty, body.text.count <= 10_000 else { throw APIError.badRequest("text must be 1 to 10000 characters") }
            let logger = context.logger
            let message = try await runtime.database.transaction(logger: logger) { transaction -> WorkflowMessage? in
                let posted = WorkflowMessage(sequence: 0, at: Date(), kind: kind, author: author, step: body.step, text: body.text)
                guard let message = try await workflows.engine.repository.post(posted, to: id, in: transaction) else { return nil }
                let workflowID = id.description
                if kind != "note" {
                    // Approvers see the exchange on the approval's web page.
                    try transaction.publish(
                        ApprovalThreadMessage(
                            workflowId: workflowID, sequence: message.sequence, kind: kind, author: author, step: body.step, text: body.text,
                            at: message.at),
                        to: .approvalRequests, subject: workflowID)
                }
                return message
            }
            guard let message else { throw APIError.notFound("no workflow \(id.description)") }
            return try JSONResponse.make(status: .created, message)
        }
    }
}
