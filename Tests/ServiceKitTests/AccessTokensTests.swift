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
