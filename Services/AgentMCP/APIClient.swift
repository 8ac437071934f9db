import Contracts
import Foundation
import HITLClient
import MCP

/// The orchestrator's HTTP API with one bearer token, through the typed client generated
/// from the OpenAPI document (`HITLClient`); the `hitl` commands and the MCP tools use it
/// alike. A refusal of the API is thrown as `HITLClient.APIRefusal` with the API's reason.
public struct APIClient: Sendable {
    public let token: String?
    public let orchestrator: HITLClient.Client

    public init(baseURL: String, token: String?) throws {
        guard let url = URL(string: baseURL), url.scheme == "http" || url.scheme == "https", url.host != nil else {
            throw ToolFailure("the orchestrator's URL \(baseURL) is not an http(s) URL")
        }
        self.token = token
        orchestrator = .hitl(serverURL: url, token: token)
    }

    /// The token's `sub` (read, not verified: the API verifies the token on every call).
    public var subject: String? {
        guard let parts = token?.split(separator: ".") else { return nil }
        guard parts.count == 3, let payload = Base64URL.decode(parts[1]),
            let claims = try? WireCoding.decode(JSONObject.self, from: payload), case .string(let sub)? = claims["sub"], !sub.isEmpty
        else { return nil }
        return sub
    }

    /// A workflow's history entries, as the JSON the API answered.
    func history(_ workflowID: String) async throws -> [JSONObject] {
        let answer = try await orchestrator.getWorkflowHistory(path: .init(id: workflowID)).ok.body.json
        return try (answer.items ?? []).map(JSONBridge.object)
    }

    /// A workflow, as the JSON the API answered.
    func workflow(_ workflowID: String) async throws -> JSONObject {
        try JSONBridge.object(try await orchestrator.getWorkflow(path: .init(id: workflowID)).ok.body.json)
    }

    /// Submits a workflow given as JSON; answers its id.
    func submit(_ body: JSONObject) async throws -> (id: String, status: String?) {
        let submission: Components.Schemas.WorkflowSubmission = try JSONBridge.typed(body)
        let answer: Components.Schemas.SubmitAnswer
        switch try await orchestrator.submitWorkflow(body: .json(submission)) {
        case .created(let created): answer = try created.body.json
        case .ok(let same): answer = try same.body.json
        default: throw ToolFailure("the orchestrator answered the submission with neither 201 nor 200")
        }
        guard let id = answer.id else { throw ToolFailure("the orchestrator answered without a workflow id") }
        return (id, answer.status?.rawValue)
    }
}

/// Between the generated types and the JSON values the tools answer with. Plain coders:
/// the generated types name their wire keys themselves, and input keys stay as they are.
public enum JSONBridge {
    public static func json<T: Encodable>(_ value: T) throws -> JSONValue {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(WireCoding.formatTime(date))
        }
        return try JSONDecoder().decode(JSONValue.self, from: encoder.encode(value))
    }

    /// A JSON value as an MCP one (the arguments an approver changed, for the upstream).
    public static func value(_ json: JSONValue) throws -> Value {
        try JSONDecoder().decode(Value.self, from: JSONEncoder().encode(json))
    }

    public static func object<T: Encodable>(_ value: T) throws -> JSONObject {
        guard case .object(let object) = try json(value) else { throw ToolFailure("expected a JSON object") }
        return object
    }

    public static func typed<T: Decodable>(_ object: JSONObject) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = WireCoding.parseTime(text) else { throw ToolFailure("\(text) is not an RFC 3339 time") }
            return date
        }
        do {
            return try decoder.decode(T.self, from: JSONEncoder().encode(JSONValue.object(object)))
        } catch {
            throw ToolFailure("the request does not fit the API: \(ContractError.describe(error))")
        }
    }
}
