import Crypto
import _CryptoExtras
import Foundation
import ServiceKit
import Testing

@Suite struct AccessTokensTests {
    let tokens = AccessTokens(secret: "unit-test-jwt-secret-0123456789abcdef")

    func refusal(_ token: String, now: Date = Date()) -> String? {
        do {
            _ = try tokens.verify(token, now: now)
            return nil
        } catch {
            return (error as? APIError)?.reason ?? "\(error)"
        }
    }

    @Test func aTokenItIssuedNamesItsSubjectAndRole() throws {
        let token = tokens.issue(subject: "ann@bank.example", role: .approver)
        #expect(try tokens.verify(token) == Principal(subject: "ann@bank.example", role: .approver))
    }

    @Test func tamperedExpiredForeignAndUnsignedTokensAreRefusedWithAReason() throws {
        let token = tokens.issue(subject: "agent-1", role: .agent)
        let parts = token.split(separator: ".").map(String.init)
        // The same signature over claims that make the agent an admin.
        let forged = Data(#"{"sub":"agent-1","role":"admin","exp":9999999999}"#.utf8).base64EncodedString()
            .replacingOccurrences(of: "=", with: "").replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        #expect(refusal("\(parts[0]).\(forged).\(parts[2])") == "the token's signature is not valid")
        #expect(refusal(token, now: Date().addingTimeInterval(9 * 3600)) == "the token expired")
        #expect(refusal(AccessTokens(secret: "another-secret-of-at-least-32-chars!").issue(subject: "x", role: .admin)) == "the token's signature is not valid")
        let none = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
        #expect(refusal("\(none).\(parts[1]).") == "the token must be signed with HS256")
        #expect(refusal("not-a-token") == "the token is not a JWT")
    }
}

/// Tokens from an identity provider, verified with its public key (ES256, RS256).
@Suite struct PublicKeyTokensTests {
    /// A JWT signed the way a provider signs it.
    static func token(alg: String, claims: String, sign: ([UInt8]) throws -> [UInt8]) rethrows -> String {
        let input = Signing.base64URL(Array(#"{"alg":"\#(alg)","typ":"JWT"}"#.utf8)) + "." + Signing.base64URL(Array(claims.utf8))
        return input + "." + Signing.base64URL(try sign(Array(input.utf8)))
    }

    static let claims = #"{"sub":"ann@bank.example","role":"approver","exp":\#(Int(Date().timeIntervalSince1970) + 600)}"#

    func reason(_ tokens: AccessTokens, _ token: String) -> String? {
        do {
            _ = try tokens.verify(token)
            return nil
        } catch {
            return (error as? APIError)?.reason ?? "\(error)"
        }
    }

    @Test func es256TokensVerifyWithTheProvidersKeyAndNothingElse() throws {
        let provider = P256.Signing.PrivateKey()
        let tokens = AccessTokens(secret: nil, publicKey: try .init(pem: provider.publicKey.pemRepresentation))
        let good = try Self.token(alg: "ES256", claims: Self.claims) { try Array(provider.signature(for: SHA256.hash(data: $0)).rawRepresentation) }
        #expect(try tokens.verify(good) == Principal(subject: "ann@bank.example", role: .approver))
        let other = P256.Signing.PrivateKey()
        let foreign = try Self.token(alg: "ES256", claims: Self.claims) { try Array(other.signature(for: SHA256.hash(data: $0)).rawRepresentation) }
        #expect(reason(tokens, foreign) == "the token's signature is not valid")
        // Algorithm confusion: an HS256 token keyed with the public key's text.
        let confused = Self.token(alg: "HS256", claims: Self.claims) {
            Array(HMAC<SHA256>.authenticationCode(for: $0, using: SymmetricKey(data: Array(provider.publicKey.pemRepresentation.utf8))))
        }
        #expect(reason(tokens, confused) == "the token must be signed with ES256")
    }

    @Test func rs256TokensVerifyAndSmallKeysAreRefused() throws {
        let provider = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let tokens = AccessTokens(secret: "unit-test-jwt-secret-0123456789abcdef", publicKey: try .init(pem: provider.publicKey.pemRepresentation))
        let good = try Self.token(alg: "RS256", claims: Self.claims) {
            Array(try provider.signature(for: SHA256.hash(data: $0), padding: .insecurePKCS1v1_5).rawRepresentation)
        }
        #expect(try tokens.verify(good).subject == "ann@bank.example")
        // With both configured, the shared secret's tokens still pass (hitl dev, the CLI).
        #expect(try tokens.verify(tokens.issue(subject: "ops", role: .admin)).role == .admin)
        var tampered = Array(good)
        tampered[tampered.count - 5] = tampered[tampered.count - 5] == "A" ? "B" : "A"
        #expect(reason(tokens, String(tampered)) == "the token's signature is not valid")
        #expect(throws: ConfigurationError.self) { try AccessTokens.PublicKey(pem: "not a key") }
    }
}
