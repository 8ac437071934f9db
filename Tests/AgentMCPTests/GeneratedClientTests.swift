import Crypto
import Foundation
import Testing

@Suite struct GeneratedClientTests {
    /// The checked-in client was generated from the document as it is now: change the API,
    /// run scripts/generate-client, commit both.
    @Test func theGeneratedClientIsNotOlderThanTheOpenAPIDocument() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let document = try Data(contentsOf: root.appendingPathComponent("Shared/ServiceKit/Resources/openapi.yaml"))
        let recorded = try String(contentsOf: root.appendingPathComponent("Shared/HITLClient/Generated/openapi.sha256"), encoding: .utf8)
        let digest = SHA256.hash(data: document).map { String(format: "%02x", $0) }.joined()
        #expect(recorded.trimmingCharacters(in: .whitespacesAndNewlines) == digest, "the OpenAPI document changed: run scripts/generate-client")
    }
}
