#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Finds a free TCP port on 127.0.0.1 by letting the kernel pick one.
public enum FreePort {
    public static func find() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress -> Int32 in
                guard bind(fd, socketAddress, length) == 0 else { return -1 }
                return getsockname(fd, socketAddress, &length)
            }
        }
        precondition(bound == 0, "no free port on 127.0.0.1")
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
