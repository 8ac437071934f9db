import Foundation
import ServiceKit
import Testing

/// The address check of outbound calls, with a resolver stand-in: no connection is opened,
/// and no address outside loopback is ever dialled.
@Suite struct EgressPolicyTests {
    /// Answers from a table, as DNS would (including names that point inside).
    struct TableResolver: HostResolver {
        let table: [String: [String]]
        func addresses(of host: String) async throws -> [IPAddress] {
            guard let answers = table[host] else { throw EgressRefused("no such host") }
            return answers.compactMap(IPAddress.init)
        }
    }

    let resolver = TableResolver(table: [
        "api.partner.example": ["93.184.216.34"],
        "rebind.partner.example": ["93.184.216.34", "127.0.0.1"],
        "internal.partner.example": ["10.0.0.5"],
        "metadata.partner.example": ["169.254.169.254"],
        "v6.partner.example": ["2606:2800:220:1:248:1893:25c8:1946"],
        "mapped.partner.example": ["::ffff:127.0.0.1"],
        "other.example": ["93.184.216.35"],
    ])

    func refusal(_ host: String, _ policy: EgressPolicy) async -> String? {
        do {
            _ = try await policy.addresses(for: host, resolver: resolver)
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// Counts lookups: a name the policy cannot allow is not even resolved.
    final class CountingResolver: HostResolver, @unchecked Sendable {
        let lock = NSLock()
        var lookups = 0
        func addresses(of host: String) async throws -> [IPAddress] {
            lock.withLock { lookups += 1 }
            return [IPAddress("10.0.0.5")!]
        }
    }

    @Test func aNameNoEntryListsIsNotLookedUpAndIsRefusedAlike() async throws {
        let counting = CountingResolver()
        let names = try EgressPolicy(parsing: "api.partner.example")
        await #expect(throws: EgressRefused.self) { try await names.addresses(for: "intranet.corp", resolver: counting) }
        #expect(counting.lookups == 0)
        // With ranges listed a name must be looked up, but an unlisted one gets the same reason
        // whatever it resolves to: nothing about the inside's DNS comes back.
        let ranges = try EgressPolicy(parsing: "203.0.113.0/24")
        #expect(await refusal("internal.partner.example", ranges) == "egress refused: internal.partner.example is not in HITL_EGRESS_ALLOW")
        #expect(await refusal("no-such-name.example", ranges) == "egress refused: no-such-name.example is not in HITL_EGRESS_ALLOW")
    }

    @Test func nothingIsAllowedByDefault() async throws {
        #expect(await refusal("api.partner.example", .denyAll) == "egress refused: api.partner.example is not in HITL_EGRESS_ALLOW")
        #expect(await refusal("93.184.216.34", .denyAll) != nil)
    }

    @Test func specialAddressesNeedAnExplicitRangeWhateverTheName() async throws {
        let policy = try EgressPolicy(parsing: "*.partner.example, 203.0.113.0/24")
        #expect(await refusal("api.partner.example", policy) == nil)
        #expect(await refusal("v6.partner.example", policy) == nil)
        // A name the policy allows, pointing inside: refused, with the kind of address only.
        #expect(
            await refusal("rebind.partner.example", policy)
                == "egress refused: rebind.partner.example resolves to a loopback address, which HITL_EGRESS_ALLOW does not allow")
        #expect(await refusal("internal.partner.example", policy)?.contains("private address") == true)
        #expect(await refusal("metadata.partner.example", policy)?.contains("link-local (cloud metadata)") == true)
        #expect(await refusal("mapped.partner.example", policy)?.contains("loopback") == true)
        for literal in [
            "10.0.0.5", "172.16.4.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "127.0.0.1", "0.0.0.0", "[::1]", "fd00::1", "fe80::1", "::ffff:10.0.0.5",
            "224.0.0.1",
        ] {
            #expect(await refusal(literal, policy)?.contains("which HITL_EGRESS_ALLOW does not allow") == true, "\(literal)")
        }
        // Documentation range allowed explicitly; a name outside the suffix is not.
        #expect(await refusal("203.0.113.7", policy) == nil)
        #expect(await refusal("other.example", policy) == "egress refused: other.example is not in HITL_EGRESS_ALLOW")
        #expect(await refusal("partner.example.evil", policy) != nil)
    }

    @Test func aRangeAllowsItsAddressesAndTheNamesThatResolveIntoIt() async throws {
        let policy = try EgressPolicy(parsing: "10.0.0.0/8 ::1")
        #expect(await refusal("10.0.0.5", policy) == nil)
        #expect(await refusal("internal.partner.example", policy) == nil)
        #expect(await refusal("::1", policy) == nil)
        #expect(await refusal("11.0.0.1", policy) != nil)
        #expect(IPNetwork("::ffff:10.0.0.0/104")?.contains(IPAddress("10.9.9.9")!) == true)
        #expect(IPNetwork("192.168.0.0/33") == nil)
    }

    @Test func badEntriesAreRefusedWithoutEchoingThem() throws {
        for entry in ["http://api.example", "10.0.0.0/99", "bad_host!", "*."] {
            #expect(throws: ConfigurationError.self) { try EgressPolicy(parsing: entry) }
        }
    }

    @Test func onlyPlainHTTPURLsWithAHostAndNoUserInfoAreCalled() async throws {
        let client = EgressClient(policy: try EgressPolicy(parsing: "api.partner.example"), resolver: resolver)
        #expect(try await client.check("https://api.partner.example/pay") == IPAddress("93.184.216.34"))
        for url in ["ftp://api.partner.example/x", "file:///etc/passwd", "https://user:pw@api.partner.example/", "/relative", "gopher://api.partner.example"] {
            await #expect(throws: EgressRefused.self, "\(url)") { try await client.check(url) }
        }
    }
}
