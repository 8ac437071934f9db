import AsyncHTTPClient
import Contracts
import Crypto
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import _CryptoExtras

/// An identity provider whose tokens the APIs accept: its keys, and what its tokens must
/// say besides a valid signature. A token from it must name this `issuer` (`iss`) and this
/// `audience` among its `aud`, and may not live longer than `maxLifetime` from issue
/// (`iat`, else now) to expiry: a token the same provider signed for another application,
/// or a long-lived one, is refused.
public struct IdentityProvider: Sendable {
    public let issuer: String
    public let audience: String
    public let maxLifetime: TimeInterval
    public let keys: ProviderKeys
    /// Where the key set is fetched from, when it is not a fixed PEM key, and how often.
    public let jwksURL: String?
    public var refreshInterval: Duration = .seconds(300)

    public init(issuer: String, audience: String, maxLifetime: TimeInterval = 86_400, keys: ProviderKeys, jwksURL: String? = nil) {
        self.issuer = issuer
        self.audience = audience
        self.maxLifetime = maxLifetime
        self.keys = keys
        self.jwksURL = jwksURL
    }

    /// Reads `HITL_JWT_PUBLIC_KEY_FILE` or `HITL_JWT_JWKS_URL`, with `HITL_JWT_ISSUER`,
    /// `HITL_JWT_AUDIENCE` (both required with a provider) and `HITL_JWT_MAX_LIFETIME_SECONDS`;
    /// nil when no provider is configured.
    static func from(_ env: EnvironmentReader) throws -> IdentityProvider? {
        let file = env.optionalString("HITL_JWT_PUBLIC_KEY_FILE")
        let url = env.optionalString("HITL_JWT_JWKS_URL")
        guard file != nil || url != nil else { return nil }
        guard file == nil || url == nil else {
            throw ConfigurationError(variable: "HITL_JWT_JWKS_URL", reason: "and HITL_JWT_PUBLIC_KEY_FILE cannot both be set")
        }
        guard let issuer = env.optionalString("HITL_JWT_ISSUER") else {
            throw ConfigurationError(variable: "HITL_JWT_ISSUER", reason: "is required with an identity provider's key")
        }
        guard let audience = env.optionalString("HITL_JWT_AUDIENCE") else {
            throw ConfigurationError(variable: "HITL_JWT_AUDIENCE", reason: "is required with an identity provider's key")
        }
        let lifetime = try env.int("HITL_JWT_MAX_LIFETIME_SECONDS", default: 86_400, in: 60...2_592_000)
        let keys = ProviderKeys()
        if let file {
            guard let pem = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ConfigurationError(variable: "HITL_JWT_PUBLIC_KEY_FILE", reason: "is not a readable file")
            }
            keys.replace([nil: try AccessTokens.PublicKey(pem: pem)])
        } else if let url, let parsed = URL(string: url) {
            // Whoever could change the key set in transit could mint tokens: https, or plain
            // http to this machine only.
            let loopback = parsed.host.flatMap(IPAddress.init)?.specialRange == "loopback"
            guard parsed.scheme == "https" || (parsed.scheme == "http" && loopback) else {
                throw ConfigurationError(variable: "HITL_JWT_JWKS_URL", reason: "must be an https URL (http only to a loopback address)")
            }
        } else if url != nil {
            throw ConfigurationError(variable: "HITL_JWT_JWKS_URL", reason: "must be an https URL")
        }
        var provider = IdentityProvider(issuer: issuer, audience: audience, maxLifetime: TimeInterval(lifetime), keys: keys, jwksURL: url)
        provider.refreshInterval = .seconds(try env.int("HITL_JWT_JWKS_REFRESH_SECONDS", default: 300, in: 60...86_400))
        return provider
    }
}

/// The provider's public keys by key id (`kid`). A key read from a PEM file has no id and
/// verifies every token; keys from a JWKS verify only the tokens that name them.
public final class ProviderKeys: Sendable {
    private let keys = Mutex<[String?: AccessTokens.PublicKey]>([:])
    /// Signalled when a token names a key id not (yet) known: the key set may have rotated.
    let unknownKeySeen = Wakeup()

    public init() {}

    func key(for id: String?) -> AccessTokens.PublicKey? {
        keys.withLock { keys in
            if let fixed = keys[nil] { return fixed }
            guard let id, let key = keys[id] else {
                unknownKeySeen.signal()
                return nil
            }
            return key
        }
    }

    var isEmpty: Bool { keys.withLock { $0.isEmpty } }

    /// Sets the keys (nil: a key that verifies tokens whatever key id they name).
    public func replace(_ new: [String?: AccessTokens.PublicKey]) {
        keys.withLock { $0 = new }
    }

    /// Replaces the keys by those of a JWKS document (RFC 7517): P-256 keys (`kty` EC) verify
    /// ES256, RSA keys of 2048 bits or more RS256; keys without an id, for another use than
    /// signing or of another kind are left out. Throws when the document holds no usable key.
    public func replace(jwks: [UInt8]) throws {
        guard let document = try? WireCoding.decode(JSONObject.self, from: jwks), case .array(let entries)? = document["keys"] else {
            throw ConfigurationError(variable: "HITL_JWT_JWKS_URL", reason: "did not answer with a JSON key set")
        }
        var found: [String?: AccessTokens.PublicKey] = [:]
        for case .object(let jwk) in entries {
            guard case .string(let id)? = jwk["kid"], jwk["use"].map({ $0 == .string("sig") }) ?? true,
                let key = Self.publicKey(jwk)
            else { continue }
            found[id] = key
        }
        guard !found.isEmpty else {
            throw ConfigurationError(variable: "HITL_JWT_JWKS_URL", reason: "answered with no usable signing key (P-256 or RSA)")
        }
        replace(found)
    }

    static func publicKey(_ jwk: JSONObject) -> AccessTokens.PublicKey? {
        func bytes(_ name: String) -> [UInt8]? {
            guard case .string(let text)? = jwk[name] else { return nil }
            return Base64URL.decode(Substring(text))
        }
        switch jwk["kty"] {
        case .string("EC"):
            guard jwk["crv"] == .string("P-256"), jwk["alg"].map({ $0 == .string("ES256") }) ?? true, let x = bytes("x"), let y = bytes("y"),
                let key = try? P256.Signing.PublicKey(x963Representation: [0x04] + x + y)
            else { return nil }
            return .es256(der: Array(key.derRepresentation))
        case .string("RSA"):
            guard jwk["alg"].map({ $0 == .string("RS256") }) ?? true, let n = bytes("n"), let e = bytes("e"),
                let key = try? _RSA.Signing.PublicKey(n: n, e: e), key.keySizeInBits >= 2048
            else { return nil }
            return .rs256(der: Array(key.derRepresentation))
        default:
            return nil
        }
    }
}

/// Keeps a provider's key set (`HITL_JWT_JWKS_URL`) current: fetched at start, every
/// `interval` (`HITL_JWT_JWKS_REFRESH_SECONDS`, 300), and soon after a token names a key id
/// not in the set (a rotation), at most once per `minimumGap`. A failed fetch keeps the keys
/// there were. The fetch is an outbound call like any other (`HITL_EGRESS_ALLOW`).
public struct JWKSRefresher: SupervisedLoop {
    let url: String
    let keys: ProviderKeys
    let egress: EgressClient
    let interval: Duration
    let logger: Logger
    public var minimumGap: Duration = .seconds(30)

    public init(provider: IdentityProvider, egress: EgressClient, logger: Logger) {
        self.url = provider.jwksURL ?? ""
        self.keys = provider.keys
        self.egress = egress
        self.interval = provider.refreshInterval
        self.logger = logger
    }

    public var name: String { "jwks refresh" }
    public var stallAfter: Duration { interval + .seconds(60) }

    public func run(heartbeat: LoopWatchdog.Heartbeat) async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await heartbeat.beat()
                await fetch()
                try? await Task.sleep(for: minimumGap)
                await keys.unknownKeySeen.wait(timeout: interval - minimumGap)
            }
        }
    }

    /// Fetches the key set once; keeps the current keys when it fails.
    public func fetch() async {
        do {
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "Accept", value: "application/json")
            let response = try await egress.execute(request, within: .seconds(10))
            guard response.status == 200 else { throw EgressCallFailed("answered \(response.status)", detail: "") }
            try keys.replace(jwks: response.body)
        } catch {
            logger.warning("The identity provider's key set was not fetched; keeping the keys there were", metadata: [LoggingKeys.error: "\(error)"])
        }
    }
}
