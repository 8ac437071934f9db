import Contracts
import Foundation
import Hummingbird
import Logging
import PostgresNIO
import ServiceKit

/// Out-of-office delegation: for a period, approvals created for an approver go to their
/// delegate instead (followed along a chain), and the delegate's votes are recorded as on
/// the approver's behalf. Approvals created before or after the period are not affected.
///
/// `POST /v1/delegations` `{"approver","delegate","starts_at"?,"ends_at","reason"?}`,
/// `GET /v1/delegations?approver=` (current and future ones), `DELETE /v1/delegations/{id}`
/// (ends it now).
struct Delegations: Sendable {
    let runtime: ServiceRuntime

    /// approver → delegate for the delegations in force now (the latest one wins).
    static func active(in transaction: Transaction) async throws -> [String: String] {
        let rows = try await transaction.query(
            "SELECT approver, delegate FROM delegations WHERE starts_at <= now() AND ends_at > now() ORDER BY created_at, id")
        var map: [String: String] = [:]
        for try await (approver, delegate) in rows.decode((String, String).self) { map[approver] = delegate }
        return map
    }

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

    func register(on router: Router<BasicRequestContext>) {
        router.post("/v1/delegations") { request, _ in
            let principal = try Principal.require(.approver, .admin)
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
            let rows = try await runtime.database.query(
                """
                INSERT INTO delegations (approver, delegate, starts_at, ends_at, reason)
                VALUES (\(approver), \(delegate), \(startsAt), \(body.endsAt), \(body.reason)) RETURNING id
                """)
            var id: Int64 = 0
            for try await value in rows.decode(Int64.self) { id = value }
            return try JSONResponse.make(
                status: .created, View(id: id, approver: approver, delegate: delegate, startsAt: startsAt, endsAt: body.endsAt, reason: body.reason))
        }
        router.get("/v1/delegations") { request, _ in
            let principal = try Principal.require(.approver, .admin)
            let approver = principal.role == .admin ? request.uri.queryParameters["approver"].map(String.init) : principal.subject
            let rows = try await runtime.database.query(
                """
                SELECT id, approver, delegate, starts_at, ends_at, reason FROM delegations
                WHERE ends_at > now() AND (\(approver)::text IS NULL OR approver = \(approver))
                ORDER BY starts_at, id
                """)
            var items: [View] = []
            for try await (id, approver, delegate, starts, ends, reason) in rows.decode((Int64, String, String, Date, Date, String?).self) {
                items.append(View(id: id, approver: approver, delegate: delegate, startsAt: starts, endsAt: ends, reason: reason))
            }
            return try JSONResponse.make(["items": items])
        }
        router.delete("/v1/delegations/{id}") { _, context in
            let principal = try Principal.require(.approver, .admin)
            guard let id = Int64(try context.parameters.require("id")) else { throw APIError.notFound("no such delegation") }
            let owner = principal.role == .admin ? nil : principal.subject
            let rows = try await runtime.database.query(
                """
                UPDATE delegations SET ends_at = greatest(now(), starts_at + interval '1 microsecond')
                WHERE id = \(id) AND ends_at > now() AND (\(owner)::text IS NULL OR approver = \(owner)) RETURNING id
                """)
            for try await _ in rows { return Response(status: .noContent) }
            throw APIError.notFound("no delegation \(id) in force or to come")
        }
    }
}
