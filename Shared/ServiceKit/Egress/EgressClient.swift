import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Every outbound HTTP call of the services (http tasks, lifecycle callbacks, the fallback
/// decider, webhooks, Slack) goes through here:
///
/// - the URL must be `http` or `https` with a host and no user info;
/// - the host is resolved once and checked against the `EgressPolicy`, and the connection is
///   made to the address that was checked (in the URL, with the name in `Host`, for plain
///   http; through AsyncHTTPClient's `dnsOverride` for https, so TLS still verifies the
///   name), so a name that resolves elsewhere a moment later gains nothing;
/// - redirects are not followed: a 3xx is the answer;
/// - one deadline covers the whole call, head and body, so a server that trickles its body
///   cannot hold the caller; the body is bounded (`maxBodyBytes`, 1 MiB);
/// - a failure says what happened in general terms (`EgressCallFailed.reason`) and keeps
///   the transport's own words, which may name addresses and ports, in `detail` for the
///   service's log only.
public struct EgressClient: Sendable {
    public let policy: EgressPolicy
    let resolver: any HostResolver
    public var maxBodyBytes = 1 << 20

    public init(policy: EgressPolicy, resolver: any HostResolver = SystemResolver()) {
        self.policy = policy
        self.resolver = resolver
    }

    public struct Response: Sendable {
        public let status: Int
        public let headers: HTTPHeaders
        public let body: [UInt8]
    }

    /// The address `url` would be called at; throws `EgressRefused` when the policy refuses it.
    public func check(_ url: String) async throws -> IPAddress {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), ["http", "https"].contains(scheme),
            let host = parsed.host, !host.isEmpty
        else { throw EgressRefused("the URL must be absolute, http or https, with a host") }
        guard parsed.user == nil, parsed.password == nil else { throw EgressRefused("the URL must not carry user info") }
        let addresses = try await policy.addresses(for: host, resolver: resolver)
        // One address is connected to (the one checked): IPv4 first, which most servers listen on.
        return addresses.first(where: \.isIPv4) ?? addresses[0]
    }

    /// Makes the call, within `deadline` from start (the name's lookup included) to the end
    /// of the body. A call past it is cancelled and not waited for.
    public func execute(_ request: HTTPClientRequest, within deadline: Duration) async throws -> Response {
        let call = Task { try await self.call(request, within: deadline) }
        guard let outcome = await Deadline.value(within: deadline, { try await call.value }) else {
            call.cancel()
            throw EgressCallFailed("no complete answer within \(deadline)", detail: "deadline")
        }
        return try outcome.get()
    }

    /// One client for every call that can name its checked address in the URL itself: hosts
    /// that are addresses, and plain-http names (the URL then carries the address and the
    /// `Host` header the name). Its connections are kept alive between calls.
    private static let shared = HTTPClient(
        eventLoopGroup: HTTPClient.defaultEventLoopGroup,
        configuration: .init(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(10))))

    private func call(_ request: HTTPClientRequest, within deadline: Duration) async throws -> Response {
        let address = try await check(request.url)
        let limit = maxBodyBytes
        var request = request
        var client = Self.shared
        var own: HTTPClient?
        if var parts = URLComponents(string: request.url), let host = parts.host, IPAddress(host) == nil {
            if parts.scheme?.lowercased() == "http", address.isIPv4 {
                request.headers.replaceOrAdd(name: "Host", value: parts.port.map { "\(host):\($0)" } ?? host)
                parts.host = address.description
                request.url = parts.string ?? request.url
            } else {
                // https to a name: TLS must see the name, so a client of its own connects to
                // the checked address (dnsOverride) while verifying the name.
                var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
                configuration.timeout = .init(connect: .init(deadline), read: .init(deadline))
                configuration.dnsOverride = [host: address.description, host.lowercased(): address.description]
                own = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
                client = own!
            }
        }
        let outcome: Result<Response, any Error>
        do {
            let response = try await client.execute(request, timeout: .init(deadline))
            let body = try await response.body.collect(upTo: limit)
            outcome = .success(Response(status: Int(response.status.code), headers: response.headers, body: Array(buffer: body)))
        } catch {
            outcome = .failure(Self.describe(error, deadline: deadline, limit: limit))
        }
        if let own { try? await own.shutdown() }
        return try outcome.get()
    }

    static func describe(_ error: any Error, deadline: Duration, limit: Int) -> any Error {
        if error is EgressRefused || error is EgressCallFailed { return error }
        let detail = String(describing: error)
        if error is NIOTooManyBytesError {
            return EgressCallFailed("the answer is larger than \(limit) bytes", detail: detail, retryable: false)
        }
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout:
                return EgressCallFailed("no complete answer within \(deadline)", detail: detail)
            case .cancelled:
                return EgressCallFailed("the call was cancelled", detail: detail)
            default: break
            }
        }
        return EgressCallFailed("the connection failed", detail: detail)
    }
}

/// An outbound call that was made but did not give an answer.
public struct EgressCallFailed: Error, CustomStringConvertible {
    /// What happened, in terms that are safe to show whoever asked for the call.
    public let reason: String
    /// The transport's own words, for the service's log.
    public let detail: String
    /// Whether asking again may go otherwise (not for an answer that was too large).
    public let retryable: Bool

    public init(_ reason: String, detail: String, retryable: Bool = true) {
        self.reason = reason
        self.detail = detail
        self.retryable = retryable
    }

    public var description: String { reason }
}
