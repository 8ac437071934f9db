import Foundation
import NIOPosix

/// Where outbound calls may go (`HITL_EGRESS_ALLOW`): deny by default. Entries, separated by
/// commas or spaces:
///
/// - a host name (`hooks.slack.com`), matched exactly;
/// - a suffix (`.example.com` or `*.example.com`), matching the names under it;
/// - an address or range (`203.0.113.7`, `10.1.0.0/16`, `::1`).
///
/// A call is allowed when its host matches a name entry, or every address it resolves to is
/// in a range entry; and, whatever the name, every address in a special range (loopback,
/// private, link-local and cloud metadata, CGNAT, …; see `IPAddress.specialRange`) must be in
/// a range entry too, so a name pointing at 127.0.0.1 is refused unless 127.0.0.1 is allowed.
/// The addresses are checked after resolution, and the caller connects to the one checked.
public struct EgressPolicy: Sendable {
    enum Rule: Sendable, Hashable {
        case host(String)
        case suffix(String)
        case network(IPNetwork)
    }

    let rules: [Rule]

    /// Allows nothing.
    public static let denyAll = EgressPolicy(rules: [])

    init(rules: [Rule]) {
        self.rules = rules
    }

    /// Parses the entries of `HITL_EGRESS_ALLOW`.
    public init(parsing text: String, variable: String = "HITL_EGRESS_ALLOW") throws {
        var rules: [Rule] = []
        for entry in text.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\n" }).map({ String($0).lowercased() }) {
            if let network = IPNetwork(entry) {
                rules.append(.network(network))
            } else if entry.hasPrefix("*.") || entry.hasPrefix("."), Self.isHostName(String(entry.drop { $0 == "*" || $0 == "." })) {
                rules.append(.suffix("." + entry.drop { $0 == "*" || $0 == "." }))
            } else if Self.isHostName(entry) {
                rules.append(.host(entry))
            } else {
                throw ConfigurationError(variable: variable, reason: "has an entry that is neither a host name, a .suffix nor an address range")
            }
        }
        self.rules = rules
    }

    static func isHostName(_ text: String) -> Bool {
        text.range(of: #"^[a-z0-9]([a-z0-9-]{0,62}\.)*[a-z0-9-]{1,63}$"#, options: .regularExpression) != nil && text.count <= 253
    }

    /// The addresses `host` may be reached at, in the resolver's order; throws `EgressRefused`
    /// with the reason when the policy does not allow it.
    ///
    /// A name no entry lists is not even looked up unless ranges are listed (it could only
    /// pass by resolving into one), and a name that is not listed is refused with one and the
    /// same reason whatever it resolves to, so an agent cannot map the inside's DNS through
    /// the reasons. Only for a listed name, or an address the caller wrote, does the reason
    /// say what kind of address it is.
    public func addresses(for host: String, resolver: any HostResolver) async throws -> [IPAddress] {
        let name = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "."))
        let literal = IPAddress(name)
        let nameAllowed =
            literal == nil
            && rules.contains { rule in
                switch rule {
                case .host(let allowed): name == allowed
                case .suffix(let suffix): name.hasSuffix(suffix)
                case .network: false
                }
            }
        let notListed = EgressRefused("\(name) is not in HITL_EGRESS_ALLOW")
        let addresses: [IPAddress]
        if let literal {
            addresses = [literal]
        } else {
            guard Self.isHostName(name) else { throw EgressRefused("the URL's host is not a host name") }
            guard nameAllowed || rules.contains(where: { if case .network = $0 { true } else { false } }) else { throw notListed }
            let resolved = try? await resolver.addresses(of: name)
            guard let resolved, !resolved.isEmpty else { throw nameAllowed ? EgressRefused("\(name) could not be resolved") : notListed }
            addresses = resolved
        }
        for address in addresses where !isInAllowedRange(address) {
            if let range = address.specialRange, nameAllowed || literal != nil {
                throw EgressRefused("\(literal == nil ? "\(name) resolves to" : "\(name) is") a \(range) address, which HITL_EGRESS_ALLOW does not allow")
            }
            if !nameAllowed { throw notListed }
        }
        return addresses
    }

    func isInAllowedRange(_ address: IPAddress) -> Bool {
        rules.contains { rule in
            if case .network(let network) = rule { return network.contains(address) }
            return false
        }
    }
}

/// An outbound call the egress policy does not allow; the reason says why, and names no more
/// than the host the caller gave and the kind of address it came to.
public struct EgressRefused: Error, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "egress refused: \(reason)" }
}

/// Resolves host names to addresses.
public protocol HostResolver: Sendable {
    func addresses(of host: String) async throws -> [IPAddress]
}

/// The system resolver (`getaddrinfo`), on NIO's blocking-IO thread pool.
public struct SystemResolver: HostResolver {
    public init() {}

    public func addresses(of host: String) async throws -> [IPAddress] {
        try await NIOThreadPool.singleton.runIfActive {
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var list: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, nil, &hints, &list)
            guard status == 0 else { throw EgressRefused("\(host) could not be resolved") }
            defer { freeaddrinfo(list) }
            var addresses: [IPAddress] = []
            var next = list
            while let entry = next?.pointee {
                if entry.ai_family == AF_INET, let raw = entry.ai_addr {
                    raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                        var address = pointer.pointee.sin_addr
                        addresses.append(IPAddress(bytes: withUnsafeBytes(of: &address) { Array($0) }))
                    }
                } else if entry.ai_family == AF_INET6, let raw = entry.ai_addr {
                    raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                        var address = pointer.pointee.sin6_addr
                        addresses.append(IPAddress(bytes: withUnsafeBytes(of: &address) { Array($0) }))
                    }
                }
                next = entry.ai_next
            }
            var seen = Set<IPAddress>()
            return addresses.filter { seen.insert($0).inserted }
        }
    }
}
