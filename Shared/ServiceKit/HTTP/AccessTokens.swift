import Crypto
import Foundation
import Hummingbird
import Logging
import _CryptoExtras

/// Who may call the `/v1` APIs: `agent`s submit and follow their own workflows,
/// `approver`s see and decide what they are assigned to, `admin`s see everything and run
/// the operations.
public enum Role: String, Codable, Sendable, CaseIterable {
    case agent, approver, admin
}

/// The caller of the request being handled, as its access token says.
public struct Principal: Sendable, Equatable {
    public let subject: String
    public let role: Role

    public init(subject: String, role: Role) {
        self.subject = subject
        self.role = role
    }
}

/// JSON Web Tokens: signed with HMAC-SHA256 (`HS256`) under `HITL_JWT_SECRET`, or by an
/// identity provider (`IdentityProvider`: a PEM key in `HITL_JWT_PUBLIC_KEY_FILE` or a key
/// set at `HITL_JWT_JWKS_URL`; a P-256 key verifies `ES256`, an RSA key of 2048 bits or more
/// `RS256`). Claims `sub`, `role` (agent, approver, admin) and `exp` are required, `nbf` is
/// honoured; a provider's tokens must also carry its `iss`, its `aud` and a lifetime within
/// its maximum. Each key verifies only its
/// own algorithm, any other is refused (so `none`, or an HS256 token "signed" with the public
/// key, never passes); signatures are compared in constant time.
public struct AccessTokens: Sendable {
    /// A provider's public key, and the one algorithm it verifies.
    public enum PublicKey: Sendable {
        /// The keys' DER bytes (the key types themselves are not `Sendable`).
        case es256(der: [UInt8])
        case rs256(der: [UInt8])

        /// Reads a PEM public key (`-----BEGIN PUBLIC KEY-----`): P-256 or RSA.
        public init(pem: String) throws {
            if let key = try? P256.Signing.PublicKey(pemRepresentation: pem) {
                self = .es256(der: Array(key.derRepresentation))
            } else if let key = try? _RSA.Signing.PublicKey(pemRepresentation: pem) {
                guard key.keySizeInBits >= 2048 else {
                    throw ConfigurationError(variable: "HITL_JWT_PUBLIC_KEY_FILE", reason: "an RSA key needs at least 2048 bits")
                }
                self = .rs256(der: Array(key.derRepresentation))
            } else {
                throw ConfigurationError(variable: "HITL_JWT_PUBLIC_KEY_FILE", reason: "must hold a PEM public key, P-256 (ES256) or RSA (RS256)")
            }
        }

        var algorithm: String {
            switch self {
            case .es256: "ES256"
            case .rs256: "RS256"
            }
        }

        func isValid(_ signature: [UInt8], for input: [UInt8]) -> Bool {
            switch self {
            case .es256(let der):
                guard let key = try? P256.Signing.PublicKey(derRepresentation: der),
                    let signature = try? P256.Signing.ECDSASignature(rawRepresentation: signature)
                else { return false }
                return key.isValidSignature(signature, for: SHA256.hash(data: input))
            case .rs256(let der):
                guard let key = try? _RSA.Signing.PublicKey(derRepresentation: der) else { return false }
                return key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: input), padding: .insecurePKCS1v1_5)
            }
        }
    }

    private let secret: [UInt8]?
    public let provider: IdentityProvider?

    public init(secret: String) {
        self.secret = Array(secret.utf8)
        provider = nil
    }

    public init(secret: String?, provider: IdentityProvider?) {
        self.secret = secret.map { Array($0.utf8) }
        self.provider = provider
    }

    /// Reads `HITL_JWT_SECRET` (at least 32 characters) and the identity provider's settings
    /// (`IdentityProvider.from`); at least one of them is required.
    public init(environment env: EnvironmentReader) throws {
        let secret = env.optionalString("HITL_JWT_SECRET")
        if let secret, secret.count < 32 { throw ConfigurationError(variable: "HITL_JWT_SECRET", reason: "must be at least 32 characters") }
        let provider = try IdentityProvider.from(env)
        guard secret != nil || provider != nil else {
            throw ConfigurationError(
                variable: "HITL_JWT_SECRET",
                reason: "is required (or HITL_JWT_PUBLIC_KEY_FILE or HITL_JWT_JWKS_URL): the APIs need a key to check bearer tokens")
        }
        self.init(secret: secret, provider: provider)
    }

    /// The loop that keeps the provider's key set current, when it comes from a URL.
    public func keySetRefresher(egress: EgressClient, logger: Logger) -> JWKSRefresher? {
        guard let provider, provider.jwksURL != nil else { return nil }
        return JWKSRefresher(provider: provider, egress: egress, logger: logger)
    }

    struct Claims: Codable {
        let sub: String
        let role: Role
        let exp: Int
        var nbf: Int?
        var iat: Int?
        var iss: String?
        var aud: Audience?
    }

    /// `aud`: one string or an array of them (RFC 7519).
    struct Audience: Codable {
        let values: [String]

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let many = try? container.decode([String].self) {
                values = many
            } else {
                values = [try container.decode(String.self)]
            }
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(values)
        }
    }

    /// A token for `subject` in `role`, valid for `lifetime` (HS256: needs the secret).
    public func issue(subject: String, role: Role, lifetime: TimeInterval = 8 * 3600, now: Date = Date()) -> String {
        let header = Signing.base64URL(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let claims = Claims(sub: subject, role: role, exp: Int(now.timeIntervalSince1970 + lifetime), iat: Int(now.timeIntervalSince1970))
        let payload = Signing.base64URL((try? JSONEncoder().encode(claims)).map(Array.init) ?? [])
        let signingInput = header + "." + payload
        let key = SymmetricKey(data: secret ?? [])
        return signingInput + "." + Signing.base64URL(Array(HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: key)))
    }

    /// The principal of a valid token; throws `APIError` 401 saying what is wrong.
    public func verify(_ token: String, now: Date = Date()) throws -> Principal {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = Signing.decodeBase64URL(parts[0]), let payloadBytes = Signing.decodeBase64URL(parts[1]),
            let signature = Signing.decodeBase64URL(parts[2])
        else { throw Self.refusal("the token is not a JWT") }
        let algorithms = (secret == nil ? [] : ["HS256"]) + (provider == nil ? [] : ["ES256", "RS256"])
        guard let header = try? JSONDecoder().decode([String: String].self, from: Data(headerBytes)), let algorithm = header["alg"],
            algorithms.contains(algorithm)
        else {
            throw Self.refusal("the token must be signed with \(algorithms.joined(separator: " or "))")
        }
        let signingInput = Array("\(parts[0]).\(parts[1])".utf8)
        let fromProvider = algorithm != "HS256"
        if fromProvider {
            // Each key verifies its own algorithm only.
            guard let key = provider?.keys.key(for: header["kid"]) else { throw Self.refusal("the token's key is not one of the identity provider's") }
            guard key.algorithm == algorithm else { throw Self.refusal("the token must be signed with \(key.algorithm)") }
            guard key.isValid(signature, for: signingInput) else { throw Self.refusal("the token's signature is not valid") }
        } else if let secret {
            guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signingInput, using: SymmetricKey(data: secret)) else {
                throw Self.refusal("the token's signature is not valid")
            }
        }
        guard let claims = try? JSONDecoder().decode(Claims.self, from: Data(payloadBytes)) else {
            throw Self.refusal("the token needs the claims sub, role (agent, approver or admin) and exp")
        }
        let seconds = Int(now.timeIntervalSince1970)
        guard claims.exp > seconds else { throw Self.refusal("the token expired") }
        if let nbf = claims.nbf, nbf > seconds { throw Self.refusal("the token is not valid yet") }
        guard !claims.sub.isEmpty else { throw Self.refusal("the token names no subject") }
        if fromProvider, let provider {
            guard claims.iss == provider.issuer else { throw Self.refusal("the token is not from the expected issuer") }
            guard claims.aud?.values.contains(provider.audience) == true else { throw Self.refusal("the token is not meant for this audience") }
            // An `iat` in the future would shorten the lifetime it claims: it is refused, and
            // the lifetime counts from now at the latest.
            if let iat = claims.iat, iat > seconds + 60 { throw Self.refusal("the token was issued in the future") }
            let lifetime = claims.exp - min(claims.iat ?? seconds, seconds)
            guard Double(lifetime) <= provider.maxLifetime else {
                throw Self.refusal("the token lives \(lifetime) s; at most \(Int(provider.maxLifetime)) s are accepted")
            }
        }
        return Principal(subject: claims.sub, role: claims.role)
    }

    private static func refusal(_ reason: String) -> APIError {
        APIError(.unauthorized, "unauthorized", reason)
    }
}

/// Requires a valid bearer token on every `/v1` request and puts its principal in the
/// request's context (`ServiceRequestContext.principal`, checked by `context.require`).
/// Health, metrics and the API documents stay open.
public struct AuthenticationMiddleware: RouterMiddleware {
    public typealias Context = ServiceRequestContext
    let tokens: AccessTokens
    /// Paths under `/v1` that carry their own credential (signed links).
    let openPrefixes: [String]

    public init(tokens: AccessTokens, openPrefixes: [String] = []) {
        self.tokens = tokens
        self.openPrefixes = openPrefixes
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // The route the router matched (its pattern, e.g. `/v1/templates/{name}`), never the
        // path as the client spelled it: the router collapses `//`, so `//v1/templates/x`
        // reaches the same route and must meet the same check. Runs after routing, because
        // Hummingbird wraps each route added after this middleware in it.
        let path = context.endpointPath ?? request.uri.path
        guard path.hasPrefix("/v1/") || path == "/v1", !openPrefixes.contains(where: { path.hasPrefix($0) }) else {
            return try await next(request, context)
        }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw APIError(.unauthorized, "unauthorized", "this API needs Authorization: Bearer <token>")
        }
        let principal = try tokens.verify(String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces))
        var context = context
        context.principal = principal
        return try await next(request, context)
    }
}
