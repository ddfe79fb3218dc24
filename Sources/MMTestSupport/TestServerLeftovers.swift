import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Servers (etcd members, PostgreSQL postmasters) left by a test process that died without
/// stopping them (a crash, a SIGKILLed `swift test`): their temporary directories are named
/// `PREFIX<owner pid>-…` and their command lines mention that directory, so the servers of
/// other, live test runs are never touched.
struct TestServerLeftovers: Sendable {
    let directoryPrefix: String
    /// The server program's file name (`etcd`, `postgres`).
    let executable: String

    private static let swept = Mutex<Set<String>>([])

    /// Sweeps once per process and prefix (the first server a test run starts).
    func sweepOnce() {
        if Self.swept.withLock({ $0.insert(directoryPrefix).inserted }) { sweep() }
    }

    /// The pid in ".../PREFIX<pid>-…", if `text` holds such a path.
    func owner(in text: String) -> Int32? {
        guard let range = text.range(of: directoryPrefix) else { return nil }
        return Int32(text[range.upperBound...].prefix { $0.isNumber })
    }

    static func isAlive(_ pid: Int32) -> Bool { Glibc.kill(pid, 0) == 0 || errno == EPERM }

    func sweep() {
        let me = getpid()
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = Int32(entry), pid != me,
                  let commandLine = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            let arguments = commandLine.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard let program = arguments.first, (program as NSString).lastPathComponent == executable,
                  let owner = arguments.lazy.compactMap(owner(in:)).first, owner != me, !Self.isAlive(owner) else { continue }
            Glibc.kill(pid, SIGKILL)
        }
        let temporary = NSTemporaryDirectory()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? [] where name.hasPrefix(directoryPrefix) {
            guard let owner = owner(in: name), owner != me, !Self.isAlive(owner) else { continue }
            try? FileManager.default.removeItem(atPath: temporary + name)
        }
    }
}

/// Runs `body` with `server` and stops it however `body` ends (returns, throws, or is
/// cancelled), so no test server outlives its test.
func withStopping<Server, Result>(
    _ server: Server, stop: (Server) async -> Void, _ body: (Server) async throws -> Result
) async throws -> Result {
    do {
        let result = try await body(server)
        await stop(server)
        return result
    } catch {
        await stop(server)
        throw error
    }
}
