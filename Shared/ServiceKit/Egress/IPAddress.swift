import Foundation

/// An IPv4 or IPv6 address as its bytes (4 or 16). An IPv4-mapped IPv6 address
/// (`::ffff:a.b.c.d`) is read as the IPv4 address it carries, so it meets the same rules.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    /// Parses a literal (`10.0.0.5`, `::1`, `[::1]`); nil when `text` is not one.
    public init?(_ text: String) {
        var text = Substring(text)
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, String(text), &v4) == 1 {
            self.init(bytes: withUnsafeBytes(of: &v4) { Array($0) })
        } else if inet_pton(AF_INET6, String(text), &v6) == 1 {
            self.init(bytes: withUnsafeBytes(of: &v6) { Array($0) })
        } else {
            return nil
        }
    }

    public init(bytes: [UInt8]) {
        if bytes.count == 16, bytes[..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
            self.bytes = Array(bytes[12...])
        } else {
            self.bytes = bytes
        }
    }

    public var isIPv4: Bool { bytes.count == 4 }

    public var description: String {
        var copy = bytes
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = inet_ntop(isIPv4 ? AF_INET : AF_INET6, &copy, &buffer, socklen_t(buffer.count))
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The range this address falls in that no outbound call may reach without an explicit
    /// allow (loopback, private, link-local with the cloud metadata endpoints, CGNAT,
    /// documentation, multicast, reserved); nil for an ordinary public address.
    public var specialRange: String? {
        IPNetwork.special.first { $0.network.contains(self) }?.name
    }
}

/// An address range in CIDR notation (`10.0.0.0/8`, `fc00::/7`; a bare address is a /32 or /128).
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    public let base: IPAddress
    public let prefix: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
        guard let first = parts.first, let base = IPAddress(first) else { return nil }
        var prefix = base.bytes.count * 8
        if parts.count == 2 {
            let written = first.contains(":") ? 128 : 32
            guard let given = Int(parts[1]), (0...written).contains(given) else { return nil }
            // A mapped IPv6 range (::ffff:0:0/96 and below) counts in IPv4 bits.
            prefix = written == 128 && base.isIPv4 ? given - 96 : given
            guard prefix >= 0 else { return nil }
        }
        self.base = base
        self.prefix = prefix
    }

    public func contains(_ address: IPAddress) -> Bool {
        guard address.bytes.count == base.bytes.count else { return false }
        var left = prefix
        for (a, b) in zip(address.bytes, base.bytes) where left > 0 {
            let bits = min(8, left)
            let mask = UInt8(truncatingIfNeeded: 0xff << (8 - bits))
            if a & mask != b & mask { return false }
            left -= bits
        }
        return true
    }

    public var description: String { "\(base)/\(prefix)" }

    /// Ranges an outbound call reaches only when `HITL_EGRESS_ALLOW` names them.
    static let special: [(name: String, network: IPNetwork)] = [
        ("unspecified", "0.0.0.0/8"), ("private", "10.0.0.0/8"), ("shared address space (CGNAT)", "100.64.0.0/10"),
        ("loopback", "127.0.0.0/8"), ("link-local (cloud metadata)", "169.254.0.0/16"), ("private", "172.16.0.0/12"),
        ("IETF protocol assignments", "192.0.0.0/24"), ("documentation", "192.0.2.0/24"), ("private", "192.168.0.0/16"),
        ("benchmarking", "198.18.0.0/15"), ("documentation", "198.51.100.0/24"), ("documentation", "203.0.113.0/24"),
        ("multicast", "224.0.0.0/4"), ("reserved", "240.0.0.0/4"),
        ("unspecified", "::/128"), ("loopback", "::1/128"), ("NAT64", "64:ff9b::/96"), ("NAT64", "64:ff9b:1::/48"),
        ("discard", "100::/64"), ("documentation", "2001:db8::/32"), ("unique local (private)", "fc00::/7"),
        ("link-local", "fe80::/10"), ("multicast", "ff00::/8"),
    ].map { ($0.0, IPNetwork($0.1)!) }
}
