import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#else
    import Darwin
#endif

/// Finds a free TCP port on 127.0.0.1 for a server a stack or a test starts.
///
/// Ports are picked at random below the kernel's ephemeral range: a port the kernel hands
/// out for `bind(0)` is also what it gives the next outgoing connection (to Postgres, Kafka),
/// which could take it before the server binds it ("Address already in use"). A port is
/// handed out once per process.
public enum FreePort {
    private static let handedOut = Mutex<Set<Int>>([])

    public static func find() -> Int {
        let candidates = 10_000..<min(32_768, ephemeralRangeStart())
        for _ in 0..<1000 {
            let port = Int.random(in: candidates)
            guard handedOut.withLock({ $0.insert(port).inserted }) else { continue }
            if isFree(port) { return port }
        }
        preconditionFailure("no free port on 127.0.0.1 in \(candidates)")
    }

    /// Where the kernel's ephemeral ports begin (Linux), or 32768.
    private static func ephemeralRangeStart() -> Int {
        guard let range = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8),
            let low = range.split(whereSeparator: \.isWhitespace).first.flatMap({ Int($0) }), low > 10_001
        else { return 32_768 }
        return low
    }

    private static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let length = socklen_t(MemoryLayout<sockaddr_in>.size)
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 }
        }
    }
}
