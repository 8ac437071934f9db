import Contracts
import Foundation
import Hummingbird
import Logging
import ServiceKit

/// Out-of-office delegation: for a period, approvals created for an approver go to their
/// delegate instead (followed along a chain), and the delegate's votes are recorded as on
/// the approver's behalf. Approvals created before or after the period are not affected.
///
/// `POST /v1/delegations` `{"approver","delegate","starts_at"?,"ends_at","reason"?}`,
/// `GET /v1/delegations?approver=` (current and future ones), `DELETE /v1/delegations/{id}`
/// (ends it now).
struct Delegations: Sendable {
    let directory: Directory

    struct Body: Decodable {
        let approver: String
        let delegate: String
        let startsAt: Date?
        let endsAt: Date
        let reason: String?
    }

    struct View: Codable, Sendable {
        let id: Int64
        let approver: String
        let delegate: String
        let startsAt: Date
        let endsAt: Date
        let reason: String?
    }

    func register(on router: Router<ServiceRequestContext>) {
        router.post("/v1/delegations") { request, context in
            let principal = try context.require(.approver, .admin)
            var request = request
            let body = try await request.decodeJSON(Body.self)
            let approver = body.approver.trimmingCharacters(in: .whitespaces)
            guard principal.role == .admin || approver == principal.subject else {
                throw APIError(.forbidden, "not_yourself", "approvers delegate their own approvals only")
            }
            let delegate = body.delegate.trimmingCharacters(in: .whitespaces)
            guard !approver.isEmpty, !delegate.isEmpty, approver.count <= 200, delegate.count <= 200 else {
                throw APIError.badRequest("approver and delegate must be 1 to 200 characters")
            }
            guard approver != delegate else { throw APIError.badRequest("an approver cannot delegate to themselves") }
            let startsAt = body.startsAt ?? Date()
            guard body.endsAt > startsAt, body.endsAt > Date() else { throw APIError.badRequest("ends_at must be after starts_at and in the future") }
            let id = try await directory.addDelegation(
                approver: approver, delegate: delegate, startsAt: startsAt, endsAt: body.endsAt, reason: body.reason)
            return try JSONResponse.make(
                status: .created, View(id: id, approver: approver, delegate: delegate, startsAt: startsAt, endsAt: body.endsAt, reason: body.reason))
        }
        router.get("/v1/delegations") { request, context in
            let principal = try context.require(.approver, .admin)
            let approver = principal.role == .admin ? request.uri.queryParameters["approver"].map(String.init) : principal.subject
            return try JSONResponse.make(["items": try await directory.delegations(of: approver)])
        }
        router.delete("/v1/delegations/{id}") { _, context in
            let principal = try context.require(.approver, .admin)
            guard let id = Int64(try context.parameters.require("id")) else { throw APIError.notFound("no such delegation") }
            let owner = principal.role == .admin ? nil : principal.subject
            guard try await directory.endDelegation(id, owner: owner) else { throw APIError.notFound("no delegation \(id) in force or to come") }
            return Response(status: .noContent)
        }
    }
}
