import Contracts
import DevStack
import Foundation
import ServiceKitTesting

/// A real SMTP server (aiosmtpd, Scripts/smtp_server.py) on loopback that requires STARTTLS
/// with its own self-signed certificate and AUTH, and writes each message it receives,
/// parsed, to a directory.
final class LocalSMTPServer: Sendable {
    static let user = "hitl"
    static let password = "smtp-test-password"
    let port = FreePort.find()
    let directory: URL
    let process: ServiceProcess

    /// The certificate the server presents, to trust as the CA (`HITL_SMTP_CA_FILE`).
    var certificate: String { directory.appendingPathComponent("cert.pem").path }
    private var inbox: URL { directory.appendingPathComponent("inbox") }

    /// The notifier settings that send mail here.
    var environment: [String: String] {
        [
            "HITL_SMTP_HOST": "localhost", "HITL_SMTP_PORT": "\(port)", "HITL_SMTP_FROM": "approvals@hitl.example",
            "HITL_SMTP_USERNAME": Self.user, "HITL_SMTP_PASSWORD": Self.password, "HITL_SMTP_CA_FILE": certificate,
        ]
    }

    /// Runs `body` with a server, and stops the server however `body` ends.
    static func with(_ body: (LocalSMTPServer) async throws -> Void) async throws {
        let server = try await LocalSMTPServer()
        do {
            try await body(server)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    private init() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("hitl-smtp-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("inbox"), withIntermediateDirectories: true)
        let key = directory.appendingPathComponent("key.pem").path
        try await Shell.runDetached([
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", directory.appendingPathComponent("cert.pem").path,
        ])
        let script = WebPageTests.packageRoot.appendingPathComponent("Tests/IntegrationTests/Scripts/smtp_server.py")
        process = ServiceProcess(
            name: "smtp", executable: URL(fileURLWithPath: "/usr/bin/python3"), environment: ProcessInfo.processInfo.environment,
            logFile: directory.appendingPathComponent("smtp.log"), baseURL: "")
        process.arguments = [script.path, "\(port)", certificate, key, inbox.path, Self.user, Self.password]
        try process.start()
        try await waitUntil("the SMTP server listens", timeout: .seconds(30)) {
            FileManager.default.fileExists(atPath: self.inbox.appendingPathComponent("ready").path)
        }
    }

    /// The messages received so far, in order.
    func messages() throws -> [JSONObject] {
        let names = try FileManager.default.contentsOfDirectory(atPath: inbox.path).filter { $0.hasSuffix(".json") }.sorted()
        return try names.map { try WireCoding.decode(JSONObject.self, from: Array(Data(contentsOf: inbox.appendingPathComponent($0)))) }
    }

    func stop() async {
        await process.stop()
    }
}
