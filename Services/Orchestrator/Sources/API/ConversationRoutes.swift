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

    struct Message: Encodable {
        let sequence: Int64
        let at: Date
        let kind: String
        let author: String
        let step: String?
        let text: String
    }

    func register(on router: Router<BasicRequestContext>) {
        router.get("/v1/workflows/{id}/messages") { _, context in
            let id = try workflows.parseID(context.parameters.require("id"))
            try await workflows.authorize(id)
            try await workflows.requireWorkflow(id)
            let rows = try await runtime.database.query(
                "SELECT id, at, kind, author, step, text FROM workflow_messages WHERE workflow_id = \(id) ORDER BY id")
            var items: [Message] = []
            for try await (sequence, at, kind, author, step, text) in rows.decode((Int64, Date, String, String, String?, String).self) {
                items.append(Message(sequence: sequence, at: at, kind: kind, author: author, step: step, text: text))
            }
            return try JSONResponse.make(ItemList(items: items))
        }
        router.post("/v1/workflows/{id}/messages") { request, context in
            let id = try workflows.parseID(context.parameters.require("id"))
            try await workflows.authorize(id)
            var request = request
            let body = try await request.decodeJSON(MessageBody.self)
            let principal = try Principal.require(Role.allCases)
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
            let message = try await runtime.database.transaction(logger: logger) { transaction -> Message? in
                let rows = try await transaction.query(
                    """
                    INSERT INTO workflow_messages (workflow_id, kind, author, step, text)
                    SELECT id, \(kind), \(author), \(body.step), \(body.text) FROM workflows WHERE id = \(id)
                    RETURNING id, at
                    """)
                for try await (sequence, at) in rows.decode((Int64, Date).self) {
                    let workflowID = id.uuidString.lowercased()
                    if kind != "note" {
                        // Approvers see the exchange on the approval's web page.
                        try transaction.publish(
                            ApprovalThreadMessage(
                                workflowId: workflowID, sequence: sequence, kind: kind, author: author, step: body.step, text: body.text, at: at),
                            to: .approvalRequests, subject: workflowID)
                    }
                    return Message(sequence: sequence, at: at, kind: kind, author: author, step: body.step, text: body.text)
                }
                return nil
            }
            guard let message else { throw APIError.notFound("no workflow \(id.uuidString.lowercased())") }
            return try JSONResponse.make(status: .created, message)
        }
    }
}
