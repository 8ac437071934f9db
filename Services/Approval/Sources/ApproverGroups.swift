import Contracts
import Foundation
import Hummingbird
import Logging
import ServiceKit

/// Groups approvers are named by (`group:<name>`): those of `HITL_APPROVAL_GROUPS`, and
/// those admins manage over the API. A group is resolved to its members when an approval is
/// created (or escalated), so changing it later never changes an open or past approval.
///
/// `PUT /v1/groups/{name}` `{"members":[…]}` (creates or replaces), `GET /v1/groups`,
/// `GET /v1/groups/{name}`, `DELETE /v1/groups/{name}`; admins only. A group defined by
/// configuration cannot be changed here (409).
struct ApproverGroups: Sendable {
    let directory: Directory
    var configured: [String: [String]] { directory.configured }

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

    func register(on router: Router<ServiceRequestContext>) {
        router.put("/v1/groups/{name}") { request, context in
            let principal = try context.require(.admin)
            let name = try Self.checkName(context.parameters.require("name"))
            var request = request
            let members = try Self.check(try await request.decodeJSON(Body.self).members)
            guard configured[name] == nil else {
                throw APIError(.conflict, "configured_group", "group \(name) is defined by HITL_APPROVAL_GROUPS; change it there")
            }
            guard let stored = try await directory.putGroup(name, members: members, by: principal.subject) else {
                throw APIError(.internalServerError, "not_stored", "the group was not stored")
            }
            return try JSONResponse.make(
                status: stored.created ? .created : .ok,
                View(name: name, members: members, source: "api", updatedBy: principal.subject, updatedAt: stored.updatedAt))
        }
        router.get("/v1/groups") { _, context in
            _ = try context.require(.admin)
            return try JSONResponse.make(["items": try await list(name: nil)])
        }
        router.get("/v1/groups/{name}") { _, context in
            _ = try context.require(.admin)
            let name = try context.parameters.require("name")
            guard let group = try await list(name: name).first else { throw APIError.notFound("no group \(name)") }
            return try JSONResponse.make(group)
        }
        router.delete("/v1/groups/{name}") { _, context in
            _ = try context.require(.admin)
            let name = try context.parameters.require("name")
            guard configured[name] == nil else {
                throw APIError(.conflict, "configured_group", "group \(name) is defined by HITL_APPROVAL_GROUPS; change it there")
            }
            guard try await directory.deleteGroup(name) else { throw APIError.notFound("no group \(name)") }
            return Response(status: .noContent)
        }
    }

    private func list(name: String?) async throws -> [View] {
        var views = configured.filter { name == nil || $0.key == name }
            .map { View(name: $0.key, members: $0.value, source: "configuration", updatedBy: nil, updatedAt: nil) }
        views += try await directory.storedGroups(named: name).filter { configured[$0.name] == nil }
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
