#if canImport(Glibc)
import Glibc
#endif

/// The IPv4 socket address and the port probe that the supervisor (before it spawns), the test
/// harness (choosing port blocks) and the benchmarks (connecting, choosing a port) all need.
public enum LoopbackSocket {
    /// `host:port` as a `sockaddr_in` ("localhost" means 127.0.0.1).
    public static func address(host: String = "127.0.0.1", port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr(host == "localhost" ? "127.0.0.1" : host)
        return address
    }

    /// Whether `host:port` can be bound right now. SO_REUSEADDR, the option the services bind
    /// with: a port in TIME_WAIT is free for them too.
    public static func isPortFree(host: String = "127.0.0.1", port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var reuse: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = address(host: host, port: port)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return result == 0
    }
}
