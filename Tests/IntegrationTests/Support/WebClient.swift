import AsyncHTTPClient
import Foundation
import NIOCore
import ServiceKit

/// The approval web pages without a browser, for races: signs in through a link (keeping
/// the session cookie), reads a page's CSRF token, posts its form.
struct WebClient: Sendable {
    static let client = HTTPClient(
        eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .init(redirectConfiguration: .disallow))

    /// The session cookie; empty for a browser that has none.
    var cookie = ""

    /// Opens the link's page, then presses its button, as a person would.
    static func signIn(_ link: String) async throws -> WebClient {
        let page = try await WebClient().get(link)
        guard page.status == 200, page.html.contains("Sign in as") else { return WebClient() }
        var request = HTTPClientRequest(url: link)
        request.method = .POST
        let response = try await client.execute(request, timeout: .seconds(10))
        let setCookie = response.headers.first(name: "Set-Cookie") ?? ""
        return WebClient(cookie: String(setCookie.split(separator: ";").first ?? ""))
    }

    func get(_ url: String) async throws -> (status: Int, html: String) {
        var request = HTTPClientRequest(url: url)
        if !cookie.isEmpty { request.headers.add(name: "Cookie", value: cookie) }
        let response = try await Self.client.execute(request, timeout: .seconds(10))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
    }

    /// The CSRF token of the form on `url`.
    func csrfToken(_ url: String) async throws -> String? {
        try await get(url).html.firstMatch(of: /name="csrf_token" value="([^"]+)"/).map { String($0.1) }
    }

    func post(_ url: String, _ fields: [String: String]) async throws -> (status: Int, html: String) {
        try await post(url, body: URLEncodedForm.encode(fields))
    }

    /// Posts a form body as given (a name may repeat, as a forged form's would).
    func post(_ url: String, body: String) async throws -> (status: Int, html: String) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Cookie", value: cookie)
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await Self.client.execute(request, timeout: .seconds(10))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
    }
}
