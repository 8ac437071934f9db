import Crypto
import DevStack
import Foundation
import Hummingbird
import Logging
import ServiceKit
import ServiceKitTesting
import ServiceLifecycle
import Synchronization
import Testing
import _CryptoExtras

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

/// Tokens from an identity provider, verified with its public key (ES256, RS256) or its key
/// set, and held to its issuer, audience and maximum lifetime.
@Suite struct PublicKeyTokensTests {
    /// A JWT signed the way a provider signs it.
    static func token(alg: String, kid: String? = nil, claims: String, sign: ([UInt8]) throws -> [UInt8]) rethrows -> String {
        let header = kid.map { #"{"alg":"\#(alg)","typ":"JWT","kid":"\#($0)"}"# } ?? #"{"alg":"\#(alg)","typ":"JWT"}"#
        let input = Signing.base64URL(Array(header.utf8)) + "." + Signing.base64URL(Array(claims.utf8))
        return input + "." + Signing.base64URL(try sign(Array(input.utf8)))
    }

    static func claims(iss: String = "https://id.bank.example", aud: String = #""hitl""#, lifetime: Int = 600) -> String {
        let now = Int(Date().timeIntervalSince1970)
        return #"{"sub":"ann@bank.example","role":"approver","iss":"\#(iss)","aud":\#(aud),"iat":\#(now),"exp":\#(now + lifetime)}"#
    }

    static func provider(_ key: AccessTokens.PublicKey?, jwksURL: String? = nil) -> IdentityProvider {
        let keys = ProviderKeys()
        if let key { keys.replace([nil: key]) }
        return IdentityProvider(issuer: "https://id.bank.example", audience: "hitl", maxLifetime: 3600, keys: keys, jwksURL: jwksURL)
    }

    func reason(_ tokens: AccessTokens, _ token: String) -> String? {
        do {
            _ = try tokens.verify(token)
            return nil
        } catch {
            return (error as? APIError)?.reason ?? "\(error)"
        }
    }

    static func es256(_ key: P256.Signing.PrivateKey, kid: String? = nil, claims: String = claims()) throws -> String {
        try token(alg: "ES256", kid: kid, claims: claims) { try Array(key.signature(for: SHA256.hash(data: $0)).rawRepresentation) }
    }

    @Test func es256TokensVerifyWithTheProvidersKeyAndNothingElse() throws {
        let provider = P256.Signing.PrivateKey()
        let tokens = AccessTokens(secret: nil, provider: Self.provider(try .init(pem: provider.publicKey.pemRepresentation)))
        #expect(try tokens.verify(Self.es256(provider)) == Principal(subject: "ann@bank.example", role: .approver))
        #expect(reason(tokens, try Self.es256(P256.Signing.PrivateKey())) == "the token's signature is not valid")
        // Algorithm confusion: an HS256 token keyed with the public key's text.
        let confused = Self.token(alg: "HS256", claims: Self.claims()) {
            Array(HMAC<SHA256>.authenticationCode(for: $0, using: SymmetricKey(data: Array(provider.publicKey.pemRepresentation.utf8))))
        }
        #expect(reason(tokens, confused) == "the token must be signed with ES256 or RS256")
        #expect(reason(tokens, Self.token(alg: "RS256", claims: Self.claims()) { _ in [1, 2, 3] }) == "the token must be signed with ES256")
    }

    @Test func aProvidersTokenMustNameItsIssuerAndAudienceAndLiveNotTooLong() throws {
        let provider = P256.Signing.PrivateKey()
        let tokens = AccessTokens(secret: nil, provider: Self.provider(try .init(pem: provider.publicKey.pemRepresentation)))
        #expect(try tokens.verify(Self.es256(provider, claims: Self.claims(aud: #"["other-app","hitl"]"#))).subject == "ann@bank.example")
        #expect(reason(tokens, try Self.es256(provider, claims: Self.claims(aud: #""other-app""#))) == "the token is not meant for this audience")
        #expect(reason(tokens, try Self.es256(provider, claims: Self.claims(iss: "https://id.evil.example"))) == "the token is not from the expected issuer")
        #expect(reason(tokens, try Self.es256(provider, claims: Self.claims(lifetime: 7200)))?.contains("at most 3600 s are accepted") == true)
        // An iat in the future cannot make a long-lived token look short.
        let now = Int(Date().timeIntervalSince1970)
        let lateIat = #"{"sub":"ann","role":"admin","iss":"https://id.bank.example","aud":"hitl","iat":\#(now + 86_000),"exp":\#(now + 86_400)}"#
        #expect(reason(tokens, try Self.es256(provider, claims: lateIat)) == "the token was issued in the future")
        let noAudience = #"{"sub":"ann","role":"admin","iss":"https://id.bank.example","exp":\#(Int(Date().timeIntervalSince1970) + 60)}"#
        #expect(reason(tokens, try Self.es256(provider, claims: noAudience)) == "the token is not meant for this audience")
    }

    @Test func rs256TokensVerifyAndSmallKeysAreRefused() throws {
        let provider = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let tokens = AccessTokens(
            secret: "unit-test-jwt-secret-0123456789abcdef", provider: Self.provider(try .init(pem: provider.publicKey.pemRepresentation)))
        let good = try Self.token(alg: "RS256", claims: Self.claims()) {
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

    /// The provider's key set served by a local server: a token verifies only with a key in
    /// the set; a rotated set is fetched when a token names a key not seen yet.
    @Test func aKeySetIsFetchedAndARotationIsPickedUp() async throws {
        let first = P256.Signing.PrivateKey(), second = P256.Signing.PrivateKey()
        let served = Mutex(JWKSServer.set(["k1": first.publicKey]))
        let server = try await JWKSServer.start { served.withLock { $0 } }
        defer { Task { await server.stop() } }
        let provider = Self.provider(nil, jwksURL: server.url)
        let tokens = AccessTokens(secret: nil, provider: provider)
        let refresher = try #require(
            tokens.keySetRefresher(egress: EgressClient(policy: try EgressPolicy(parsing: "127.0.0.1")), logger: Logger(label: "test")))
        await refresher.fetch()
        #expect(try tokens.verify(Self.es256(first, kid: "k1")).subject == "ann@bank.example")
        #expect(reason(tokens, try Self.es256(second, kid: "k2")) == "the token's key is not one of the identity provider's")
        #expect(reason(tokens, try Self.es256(second, kid: "k1")) == "the token's signature is not valid")

        // The provider rotates: k2 in, k1 out. A token naming k2 wakes the refresher.
        served.withLock { $0 = JWKSServer.set(["k2": second.publicKey]) }
        var quick = refresher
        quick.minimumGap = .milliseconds(100)
        let loop = Task { try await SupervisedService(loop: quick, watchdog: LoopWatchdog(), logger: Logger(label: "test")).run() }
        defer { loop.cancel() }
        try await waitUntil("the rotated key picked up", timeout: .seconds(10)) {
            (try? tokens.verify(Self.es256(second, kid: "k2"))) != nil
        }
        #expect(reason(tokens, try Self.es256(first, kid: "k1")) == "the token's key is not one of the identity provider's")
    }
}

/// A JWKS endpoint on loopback, serving what `keys` answers at the time of each request.
struct JWKSServer {
    let url: String
    let group: ServiceGroup
    let task: Task<Void, any Error>

    static func set(_ keys: [String: P256.Signing.PublicKey]) -> String {
        let entries = keys.map { kid, key in
            let raw = Array(key.x963Representation.dropFirst())
            return
                #"{"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":"\#(kid)","x":"\#(Signing.base64URL(Array(raw.prefix(32))))","y":"\#(Signing.base64URL(Array(raw.suffix(32))))"}"#
        }
        return #"{"keys":[\#(entries.joined(separator: ","))]}"#
    }

    static func start(_ keys: @escaping @Sendable () -> String) async throws -> JWKSServer {
        let port = FreePort.find()
        let router = Router()
        router.get("/jwks.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: keys())))
        }
        let logger = Logger(label: "jwks")
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [], logger: logger)
        let task = Task { try await group.run() }
        let url = "http://127.0.0.1:\(port)/jwks.json"
        try await waitUntil("the JWKS server") {
            (try? await EgressClient(policy: try EgressPolicy(parsing: "127.0.0.1")).execute(.init(url: url), within: .seconds(2)).status) == 200
        }
        return JWKSServer(url: url, group: group, task: task)
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}
