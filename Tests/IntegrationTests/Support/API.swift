import AsyncHTTPClient
import Contracts
import Foundation
import NIOCore
import ServiceKit

/// A JSON answer from one of the services.
struct Answer: Sendable {
    let status: Int
    let body: JSONObject
    let text: String

    subscript(_ key: String) -> JSONValue? { body[key] }
    func string(_ key: String) -> String? {
        if case .string(let text)? = body[key] { return text }
        return nil
    }
    var items: [JSONObject] {
        guard case .array(let values)? = body["items"] else { return [] }
        return values.compactMap(\.objectValue)
    }
}

/// The bearer tokens of the tests: every stack's services accept tokens under this key.
enum TestTokens {
    static let secret = "integration-jwt-secret-0123456789abcdef"
    static let tokens = AccessTokens(secret: secret)
    static let admin = tokens.issue(subject: "ops@bank.example", role: .admin)
    static func approver(_ subject: String) -> String { tokens.issue(subject: subject, role: .approver) }
    static func agent(_ subject: String) -> String { tokens.issue(subject: subject, role: .agent) }
    /// Decision link keys: `new` signs, `old` still verifies (a rotation in progress).
    static let newDecisionKey = "integration-decision-key-new-0123456789"
    static let oldDecisionKey = "integration-decision-key-old-0123456789"
    static let decisionKeys = "new:\(newDecisionKey),old:\(oldDecisionKey)"
}

/// Calls the services' HTTP APIs, as an admin unless another token is given.
enum API {
    static func call(
        _ method: String, _ url: String, json: String? = nil, bytes: [UInt8]? = nil, contentType: String = "application/json", token: String? = TestTokens.admin
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = .init(rawValue: method)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let payload = bytes ?? json.map({ Array($0.utf8) }) {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(bytes: payload))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let data = Array(buffer: try await response.body.collect(upTo: 16 << 20))
        return Answer(
            status: Int(response.status.code), body: (try? WireCoding.decode(JSONObject.self, from: data)) ?? [:],
            text: String(decoding: data, as: UTF8.self))
    }

    static func get(_ url: String, token: String? = TestTokens.admin) async throws -> Answer { try await call("GET", url, token: token) }
    static func post(_ url: String, _ json: String, token: String? = TestTokens.admin) async throws -> Answer {
        try await call("POST", url, json: json, token: token)
    }

    /// The skeleton workflow: one approval step, then a no-op task.
    static func workflow(key: String, approver: String = "manager@bank.example", timeout: Int = 3600, amount: Int = 6000) -> String {
        """
        {"idempotency_key":"\(key)","type":"wire_transfer","requester":"agent@bank.example",
         "input":{"amount":\(amount),"currency":"EUR"},
         "steps":[{"name":"approve","kind":"approval","approval":{"approvers":["\(approver)"],"timeout_seconds":\(timeout)}},
                  {"name":"execute","kind":"task","task":{"type":"noop"}}]}
        """
    }
}

extension API {
    /// Posts an HTML form (`application/x-www-form-urlencoded`), as a browser does.
    static func postForm(_ url: String, _ fields: [String: String]) async throws -> Answer {
        try await call("POST", url, bytes: Array(URLEncodedForm.encode(fields).utf8), contentType: "application/x-www-form-urlencoded", token: nil)
    }
}
