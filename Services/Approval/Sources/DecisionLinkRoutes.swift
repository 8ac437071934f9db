import Contracts
import Foundation
import Hummingbird
import ServiceKit

/// `GET /v1/links/{token}` says what the signed link will do and changes nothing (mail
/// scanners follow links); `POST /v1/links/{token}` (optional `{"comment"}`) decides, once,
/// as the approver the link was made for. The link is the credential: no bearer token.
struct DecisionLinkRoutes: Sendable {
    static let prefix = "/v1/links/"
    let store: ApprovalStore
    let tokens: DecisionTokens

    struct Preview: Encodable {
        let approvalId: String
        let workflowType: String
        let step: String
        let approver: String
        let decision: Decision
        let expiresAt: Date
        let status: String
        let context: JSONObject
        let confirm: String
    }

    struct Body: Decodable {
        let comment: String?
    }

    func register(on router: Router<ServiceRequestContext>) {
        router.get("/v1/links/{token}") { _, context in
            let claims = try tokens.checked(try context.parameters.require("token"))
            guard let id = ApprovalID(claims.approvalID),
                let approval = try await store.find(id: id)
            else { throw APIError.notFound("no approval \(claims.approvalID)") }
            return try JSONResponse.make(
                Preview(
                    approvalId: approval.id, workflowType: approval.workflowType, step: approval.step, approver: claims.approver,
                    decision: claims.decision, expiresAt: claims.expiresAt, status: approval.status.rawValue, context: approval.context,
                    confirm: "POST this link to \(claims.decision.rawValue) as \(claims.approver)"))
        }
        router.post("/v1/links/{token}") { request, context in
            let claims = try tokens.checked(try context.parameters.require("token"))
            var request = request
            let body = request.head.headerFields[.contentType] == nil ? Body(comment: nil) : try await request.decodeJSON(Body.self)
            guard let id = ApprovalID(claims.approvalID) else { throw APIError.notFound("no approval \(claims.approvalID)") }
            let view = try await store.decide(
                id: id,
                DecisionRequest(decision: claims.decision, approver: claims.approver, comment: body.comment, channel: "link", linkTokenID: claims.tokenID),
                logger: context.logger)
            return try JSONResponse.make(status: view.status == .pending ? .accepted : .ok, view)
        }
    }
}
