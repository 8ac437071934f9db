import Contracts
import Foundation
import Hummingbird
import PostgresNIO
import ServiceKit

/// `PUT /v1/templates/{name}` stores the next version; `GET /v1/templates/{name}` shows
/// the latest, `GET /v1/templates/{name}/versions/{version}` any one.
struct TemplateRoutes: Sendable {
    let runtime: ServiceRuntime
    let templates: TemplateStore

    struct TemplateBody: Decodable {
        let description: String?
        let steps: [StepDefinition]
    }

    func register(on router: Router<ServiceRequestContext>) {
        router.put("/v1/templates/{name}") { request, context in
            _ = try context.require(.admin)
            let name = try context.parameters.require("name")
            guard TemplateStore.isValidName(name) else {
                throw APIError.badRequest("a template name is 1 to 100 letters, digits, '-', '_' or '.'")
            }
            var request = request
            let body = try await request.decodeJSON(TemplateBody.self)
            if let problem = DefinitionValidation.problem(in: body.steps) ?? GateApplication.reservedProblem(in: body.steps) {
                throw APIError(.unprocessableContent, "invalid_template", problem)
            }
            let template = try await runtime.database.transaction(logger: context.logger) { transaction in
                try await templates.put(name: name, description: body.description, steps: body.steps, in: transaction)
            }
            return try JSONResponse.make(status: .created, template)
        }
        router.get("/v1/templates/{name}") { _, context in
            try await show(context.parameters.require("name"), version: nil, context: context)
        }
        router.get("/v1/templates/{name}/versions/{version}") { _, context in
            // The column is an int4: a larger number is no version, not a failed query.
            guard let version = Int32(try context.parameters.require("version")).map(Int.init), version > 0 else {
                throw APIError.notFound("versions are numbers from 1")
            }
            return try await show(context.parameters.require("name"), version: version, context: context)
        }
    }

    /// Agents submit from templates and admins write them; approvers have no use for them.
    private func show(_ name: String, version: Int?, context: ServiceRequestContext) async throws -> Response {
        _ = try context.require(.agent, .admin)
        let found = try await runtime.database.transaction(logger: context.logger) { transaction in
            try await templates.get(name: name, version: version, in: transaction)
        }
        guard let found else { throw APIError.notFound("no template \(name)\(version.map { " version \($0)" } ?? "")") }
        return try JSONResponse.make(found)
    }
}
