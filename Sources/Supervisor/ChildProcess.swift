import Foundation
import AsyncPrimitives
import MMCore
import ProcessKit
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A spawned child: its own process group, stdin a pipe whose write end only the
/// supervisor holds (EOF = supervisor gone, however it died), stdout+stderr pumped into its
/// rotating log by a thread that blocks on read (no polling).
public final class SpawnedChild: ChildHandle {
    public let pid: Int32
    /// The write end of the child's stdin. Closed when the child is reaped.
    private let stdinWriteEnd: Int32
    /// The reap result, resolved once by the waiter thread.
    private let reaped = OnceValue<ChildExit>()

    private init(pid: Int32, stdinWriteEnd: Int32) {
        self.pid = pid
        self.stdinWriteEnd = stdinWriteEnd
    }

    /// Signals the child's whole process group, so anything it forked goes too.
    public func signalGroup(_ signal: Int32) {
        if kill(-pid, signal) != 0 { kill(pid, signal) }
    }

    public func exit() async -> ChildExit { await reaped.value() }

    /// Spawns `executable` with `arguments` (argv[0] included); a waiter thread reaps it.
    public static func spawn(executable: String, arguments: [String], log: RotatingLog?, extraFlags: Int32 = 0) throws(SupervisorError) -> SpawnedChild {
        // CLOEXEC on every end: a sibling spawned later must not inherit another child's
        // stdin write end, or that child would never see EOF. (pipe2 is _GNU_SOURCE-only in
        // Swift; pipe + fcntl is race-free here because every spawn runs on the
        // one spawner thread, one at a time, and nothing else in the process forks.)
        var stdinPipe: [Int32] = [-1, -1]
        var outputPipe: [Int32] = [-1, -1]
        func cloexecPipe(_ ends: inout [Int32]) -> Bool {
            guard pipe(&ends) == 0 else { return false }
            _ = fcntl(ends[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(ends[1], F_SETFD, FD_CLOEXEC)
            return true
        }
        guard cloexecPipe(&stdinPipe) else { throw .spawnFailed("a stdin pipe", errno: errno) }
        guard cloexecPipe(&outputPipe) else {
            close(stdinPipe[0]); close(stdinPipe[1])
            throw .spawnFailed("an output pipe", errno: errno)
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // dup2 clears CLOEXEC on the target descriptor only.
        posix_spawn_file_actions_adddup2(&actions, stdinPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, outputPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, outputPipe[1], 2)
        let closing = addCloseInheritedDescriptors(&actions)
        guard closing == 0 else {
            close(stdinPipe[0]); close(stdinPipe[1]); close(outputPipe[0]); close(outputPipe[1])
            throw .spawnFailed("\(executable) (closing inherited descriptors)", errno: closing)
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Own process group (so the group can be signalled as one), default signal handling
        // and an empty mask: the supervisor's ignored or blocked signals must not leak in.
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) | extraFlags
        if extraFlags & spawnSetSID == 0 {
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attributes, 0)
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD, SIGQUIT, SIGUSR1, SIGUSR2] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        close(stdinPipe[0])
        close(outputPipe[1])
        guard result == 0 else {
            close(stdinPipe[1])
            close(outputPipe[0])
            throw .spawnFailed("\(executable)", errno: result)
        }

        let spawnedPid = pid
        let child = SpawnedChild(pid: spawnedPid, stdinWriteEnd: stdinPipe[1])
        let outputReadEnd = outputPipe[0]
        let pump = Thread {
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(outputReadEnd, $0.baseAddress, $0.count) }
                if count == 0 { break }
                if count < 0 {
                    if errno == EINTR { continue }
                    break
                }
                buffer.withUnsafeBytes { log?.write(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            }
            close(outputReadEnd)
        }
        pump.name = "log-\(spawnedPid)"
        pump.stackSize = 256 * 1024
        pump.start()

        let waiter = Thread {
            var status: Int32 = 0
            while waitpid(spawnedPid, &status, 0) < 0 {
                if errno != EINTR { break }
            }
            close(child.stdinWriteEnd)
            child.reaped.resolve(ChildExit(status: status))
        }
        waiter.name = "wait-\(spawnedPid)"
        waiter.stackSize = 256 * 1024
        waiter.start()
        return child
    }
}
