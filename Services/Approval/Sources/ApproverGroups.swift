import Contracts
import Foundation
import Hummingbird
import Logging
import PostgresNIO
import ServiceKit

/// Groups approvers are named by (`group:<name>`): those of `HITL_APPROVAL_GROUPS`, and
/// those admins manage over the API. A group is resolved to its members when an approval is
/// created (or escalated), so changing it later never changes an open or past approval.
///
/// `PUT /v1/groups/{name}` `{"members":[…]}` (creates or replaces), `GET /v1/groups`,
/// `GET /v1/groups/{name}`, `DELETE /v1/groups/{name}`; admins only. A group defined by
/// configuration cannot be changed here (409).
struct ApproverGroups: Sendable {
    let runtime: ServiceRuntime
    let configured: [String: [String]]

    /// Every group: configured ones, then those from the API.
    static func all(configured: [String: [String]], in transaction: Transaction) async throws -> [String: [String]] {
        var groups = configured
        let rows = try await transaction.query("SELECT name, members::text FROM approver_groups")
        for try await (name, members) in rows.decode((String, String).self) where groups[name] == nil {
            groups[name] = try WireCoding.decode([String].self, from: Array(members.utf8))
        }
        return groups
    }

    struct Body: Decodable {
        let members: [String]
    }

    struct View: Codable, Sendable {
        let name: String
        let members: [String]
        /// `configuration` or `api`.
        let source: String
        let updatedBy: String?
        let updatedAt: Date?
    }

    func register(on router: Router<BasicRequestContext>) {
        router.put("/v1/groups/{name}") { request, context in
            let principal = try Principal.require(.admin)
            let name = try Self.checkName(context.parameters.require("name"))
            var request = request
            let members = try Self.check(try await request.decodeJSON(Body.self).members)
            guard configured[name] == nil else {
                throw APIError(.conflict, "configured_group", "group \(name) is defined by HITL_APPROVAL_GROUPS; change it there")
            }
            let json = try JSONColumn.text(members)
            let rows = try await runtime.database.query(
                """
                INSERT INTO approver_groups (name, members, updated_by) VALUES (\(name), \(json)::jsonb, \(principal.subject))
                ON CONFLICT (name) DO UPDATE SET members = excluded.members, updated_by = excluded.updated_by, updated_at = now()
                RETURNING updated_at, (xmax = 0)
                """)
            for try await (updatedAt, created) in rows.decode((Date, Bool).self) {
                return try JSONResponse.make(
                    status: created ? .created : .ok, View(name: name, members: members, source: "api", updatedBy: principal.subject, updatedAt: updatedAt))
            }
            throw APIError(.internalServerError, "not_stored", "the group was not stored")
        }
        router.get("/v1/groups") { _, _ in
            _ = try Principal.require(.admin)
            return try JSONResponse.make(["items": try await list(name: nil)])
        }
        router.get("/v1/groups/{name}") { _, context in
            _ = try Principal.require(.admin)
            let name = try context.parameters.require("name")
            guard let group = try await list(name: name).first else { throw APIError.notFound("no group \(name)") }
            return try JSONResponse.make(group)
        }
        router.delete("/v1/groups/{name}") { _, context in
            _ = try Principal.require(.admin)
            let name = try context.parameters.require("name")
            guard configured[name] == nil else {
                throw APIError(.conflict, "configured_group", "group \(name) is defined by HITL_APPROVAL_GROUPS; change it there")
            }
            let rows = try await runtime.database.query("DELETE FROM approver_groups WHERE name = \(name) RETURNING 1")
            for try await _ in rows { return Response(status: .noContent) }
            throw APIError.notFound("no group \(name)")
        }
    }

    private func list(name: String?) async throws -> [View] {
        var views = configured.filter { name == nil || $0.key == name }
            .map { View(name: $0.key, members: $0.value, source: "configuration", updatedBy: nil, updatedAt: nil) }
        let rows = try await runtime.database.query(
            "SELECT name, members::text, updated_by, updated_at FROM approver_groups WHERE \(name)::text IS NULL OR name = \(name)")
        for try await (group, members, updatedBy, updatedAt) in rows.decode((String, String, String?, Date).self) where configured[group] == nil {
            views.append(
                View(
                    name: group, members: try WireCoding.decode([String].self, from: Array(members.utf8)), source: "api", updatedBy: updatedBy,
                    updatedAt: updatedAt))
        }
        return views.sorted { $0.name < $1.name }
    }

    static func checkName(_ name: String) throws -> String {
        guard name.wholeMatch(of: /[a-z0-9][a-z0-9._-]{0,63}/) != nil else {
            throw APIError(.unprocessableContent, "invalid_group", "a group name is 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit")
        }
        return name
    }

    static func check(_ members: [String]) throws -> [String] {
        let trimmed = members.map { $0.trimmingCharacters(in: .whitespaces) }
        guard !trimmed.isEmpty, trimmed.count <= 500 else { throw APIError(.unprocessableContent, "invalid_group", "a group has 1 to 500 members") }
        if let bad = trimmed.first(where: { $0.isEmpty || $0.count > 254 }) {
            throw APIError(.unprocessableContent, "invalid_group", "member \"\(bad)\" must be 1 to 254 characters")
        }
        if let nested = trimmed.first(where: { $0.hasPrefix("group:") }) {
            throw APIError(.unprocessableContent, "invalid_group", "\(nested): groups hold users, not other groups")
        }
        guard Set(trimmed).count == trimmed.count else { throw APIError(.unprocessableContent, "invalid_group", "a member is listed twice") }
        return trimmed
    }
}
