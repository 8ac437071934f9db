import ArgumentParser
import AsyncHTTPClient
import Contracts
import Crypto
import Foundation

/// `hitl receipt verify|keygen`: checks a decision receipt offline against the approval
/// service's published keys, and makes a signing key for `HITL_RECEIPT_KEYS`.
struct Receipts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receipt", abstract: "Decision receipts: verify one, or make a signing key.", subcommands: [Verify.self, Keygen.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify a receipt's signature against a key set, and optionally that it approved exactly an input; prints its claims.",
            discussion: "Exits 0 when valid, 1 with the reason when not.")

        @Argument(help: "The receipt (a compact JWS), or - to read it from standard input.")
        var receipt: String
        @Option(help: "The key set: a file, or the URL of the approval service's /.well-known/jwks.json.")
        var jwks: String
        @Option(help: "A JSON file with the input about to be acted on: it must hash to the receipt's input_sha256.")
        var input: String?

        func run() async throws {
            let text = receipt == "-" ? (readLine(strippingNewline: true) ?? "") : receipt
            let keys = try WireCoding.decode(JWKSet.self, from: try await Self.load(jwks))
            let claims: DecisionReceipt.Claims
            do {
                claims = try DecisionReceipt.verify(text.trimmingCharacters(in: .whitespacesAndNewlines), keys: keys)
            } catch {
                print("invalid: \(error.description)")
                throw ExitCode(1)
            }
            if let input {
                let object = try WireCoding.decode(JSONObject.self, from: Array(try Data(contentsOf: URL(fileURLWithPath: input))))
                guard DecisionReceipt.sha256(of: object) == claims.inputSha256 else {
                    print("invalid: the input is not the one approved (sha256 \(DecisionReceipt.sha256(of: object)), approved \(claims.inputSha256))")
                    throw ExitCode(1)
                }
            }
            print(String(decoding: try WireCoding.encode(claims), as: UTF8.self))
        }

        static func load(_ location: String) async throws -> [UInt8] {
            guard location.hasPrefix("http://") || location.hasPrefix("https://") else {
                return Array(try Data(contentsOf: URL(fileURLWithPath: location)))
            }
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: location), timeout: .seconds(10))
            guard response.status == .ok else { throw ValidationError("\(location) answered \(response.status.code)") }
            return Array(buffer: try await response.body.collect(upTo: 1 << 20))
        }
    }

    struct Keygen: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a new signing key, as HITL_RECEIPT_KEYS takes it after 'kid:'.")

        func run() {
            print(P256.Signing.PrivateKey().rawRepresentation.base64EncodedString())
        }
    }
}
