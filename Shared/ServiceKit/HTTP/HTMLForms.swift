import Foundation
import HTTPTypes
import Hummingbird

/// HTML responses, for the server-rendered pages.
public enum HTMLResponse {
    public static func make(status: HTTPResponse.Status = .ok, _ html: String, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "text/html; charset=utf-8"
        fields[.cacheControl] = "no-store"
        // The pages run no script and embed nothing: forbid both, and framing (clickjacking).
        fields[HTTPField.Name("Content-Security-Policy")!] = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
        fields[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// 303 See Other: after a form post, the browser loads `location` with a GET.
    public static func seeOther(_ location: String, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.location] = location
        fields[.cacheControl] = "no-store"
        return Response(status: .seeOther, headers: fields)
    }
}

/// `application/x-www-form-urlencoded` bodies, as browsers and Slack post them.
public enum URLEncodedForm {
    /// Name → value, read by Hummingbird's `URLEncodedFormDecoder`. A name given twice is
    /// refused (400): no form of ours repeats a name, and a repeated `decision` or
    /// `csrf_token` is how a smuggled input would win. So is a nested name (`a[b]`): no
    /// field of ours has one.
    public static func parse(_ text: String) throws -> [String: String] {
        do {
            return try URLEncodedFormDecoder().decode([String: String].self, from: text)
        } catch let error as URLEncodedFormError where error.code == .duplicateKeys {
            throw APIError(.badRequest, "repeated_field", "the form gives the field \(error.value.prefix(64)) more than once")
        } catch let error as URLEncodedFormError {
            throw APIError(.badRequest, "invalid_form", "the form cannot be read: \(String(error.description.prefix(200)))")
        } catch {
            throw APIError(.badRequest, "invalid_form", "the form's fields must be names with one text value each")
        }
    }

    /// The body a browser would post for `fields` (in name order).
    public static func encode(_ fields: [String: String]) -> String {
        fields.sorted { $0.key < $1.key }.map { "\(escape($0.key))=\(escape($0.value))" }.joined(separator: "&")
    }

    private static let unreserved = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))

    private static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
    }

    private static func decode(_ part: Substring) -> String {
        let spaced = part.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }
}

extension Request {
    /// The whole body as bytes, answering 413 when it is larger than `maxBodyBytes`.
    public mutating func rawBody() async throws -> [UInt8] {
        do {
            return Array(buffer: try await collectBody(upTo: Self.maxBodyBytes))
        } catch {
            throw APIError(.contentTooLarge, "body_too_large", "the body is larger than \(Self.maxBodyBytes) bytes")
        }
    }
}
