import Foundation
import MMCore
#if canImport(Glibc)
import Glibc
#endif

/// Errors that stop the supervisor from doing what was asked, each saying what to do.
public enum SupervisorError: Error, Sendable, CustomStringConvertible {
    case io(String)
    case spawnFailed(String, errno: Int32)
    case alreadyRunning(dataDirectory: String, pid: Int32?)
    case portInUse(process: String, port: Int)
    case notReady(process: String, timeoutMs: Int64, logTail: [String])
    case exitedDuringStart(process: String, exit: String, logTail: [String])

    public var description: String {
        switch self {
        case .io(let what): what
        case .spawnFailed(let what, let code): "cannot start \(what): \(String(cString: strerror(code)))"
        case .alreadyRunning(let directory, let pid):
            "a cluster is already running in \(directory)\(pid.map { " (supervisor pid \($0))" } ?? ""): stop it with 'mmctl stop --data-dir \(directory)' or use another --data-dir"
        case .portInUse(let process, let port):
            "port \(port) (for \(process)) is already in use: stop whatever listens there (ss -ltnp 'sport = :\(port)') or choose another listen.port_base"
        case .notReady(let process, let timeoutMs, let tail):
            "\(process) did not become ready within \(timeoutMs) ms (supervisor.ready_timeout_ms); its log ends with:\n" + tail.map { "  \($0)" }.joined(separator: "\n")
        case .exitedDuringStart(let process, let exit, let tail):
            "\(process) \(exit) before it became ready; its log ends with:\n" + tail.map { "  \($0)" }.joined(separator: "\n")
        }
    }

    /// The exit code `mmctl` reports for this failure (documented in mmctl(1)).
    public var exitCode: Int32 {
        switch self {
        case .alreadyRunning: 2
        case .portInUse: 5
        default: 1
        }
    }
}

/// How a child ended, as waitpid reported it.
public struct ChildExit: Sendable, Hashable, CustomStringConvertible {
    public var code: Int32?
    public var signal: Int32?

    init(status: Int32) {
        // WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift does not import.
        let termination = status & 0x7f
        if termination == 0 {
            code = (status >> 8) & 0xff
            signal = nil
        } else {
            code = nil
            signal = termination
        }
    }

    public var description: String {
        if let code { return "exited with code \(code)" }
        if let signal { return "was killed by signal \(signal) (\(signalName(signal)))" }
        return "exited"
    }
}

public func signalName(_ signal: Int32) -> String {
    switch signal {
    case SIGKILL: "SIGKILL"
    case SIGTERM: "SIGTERM"
    case SIGINT: "SIGINT"
    case SIGSTOP: "SIGSTOP"
    case SIGCONT: "SIGCONT"
    case SIGSEGV: "SIGSEGV"
    case SIGABRT: "SIGABRT"
    case SIGILL: "SIGILL"
    case SIGTRAP: "SIGTRAP"
    case SIGBUS: "SIGBUS"
    case SIGHUP: "SIGHUP"
    case SIGPIPE: "SIGPIPE"
    default: "signal \(signal)"
    }
}

/// A spawned child: its own process group, stdin a pipe whose write end only the
/// supervisor holds (EOF = supervisor gone, however it died), stdout+stderr pumped into its
/// rotating log by a thread that blocks on read (no polling).
public final class SpawnedChild: Sendable {
    public let pid: Int32
    /// The write end of the child's stdin. Closed when the child is reaped.
    private let stdinWriteEnd: Int32

    private init(pid: Int32, stdinWriteEnd: Int32) {
        self.pid = pid
        self.stdinWriteEnd = stdinWriteEnd
    }

    /// Signals the child's whole process group, so anything it forked goes too.
    public func signalGroup(_ signal: Int32) {
        if kill(-pid, signal) != 0 { kill(pid, signal) }
    }

    /// Spawns `arguments[0]` with `arguments`; `onExit` runs (on the waiter thread) once the
    /// child has been reaped.
    public static func spawn(
        executable: String, arguments: [String], log: RotatingLog, extraFlags: Int32 = 0,
        onExit: @escaping @Sendable (ChildExit) -> Void
    ) throws(SupervisorError) -> SpawnedChild {
        // CLOEXEC on every end: a sibling spawned later must not inherit another child's
        // stdin write end, or that child would never see EOF. (pipe2 is _GNU_SOURCE-only in
        // Swift; pipe + fcntl is race-free here because every spawn runs on the
        // ProcessSupervisor actor, one at a time, and nothing else in the process forks.)
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
                buffer.withUnsafeBytes { log.write(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
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
            onExit(ChildExit(status: status))
        }
        waiter.name = "wait-\(spawnedPid)"
        waiter.stackSize = 256 * 1024
        waiter.start()
        return child
    }
}

/// POSIX_SPAWN_SETSID (glibc ≥ 2.26) is behind _GNU_SOURCE, which Swift does not define.
public let spawnSetSID: Int32 = 0x80

// MARK: Ports, pids, locks

public enum HostChecks {
    /// The argv of a live process, from /proc (empty when it is gone or not ours to read).
    public static func commandLine(of pid: Int32) -> [String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return [] }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Whether `pid` is an `mmd` (or `mmctl supervise`) of the cluster in `dataDirectory`:
    /// the only processes a sweep may kill, so a recycled pid is never hit.
    public static func isClusterProcess(pid: Int32, dataDirectory: DataDirectory) -> Bool {
        let argv = commandLine(of: pid)
        guard let program = argv.first else { return false }
        let base = (program as NSString).lastPathComponent
        guard base == "mmd" || base == "mmctl" else { return false }
        guard let flag = argv.firstIndex(of: "--data-dir"), flag + 1 < argv.count else { return false }
        return DataDirectory(argv[flag + 1]).path == dataDirectory.path
    }

    public static func isAlive(_ pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        if kill(pid, 0) != 0 && errno == ESRCH { return false }
        // A zombie is dead for every purpose that matters here.
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")") {
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.first == "Z" || fields.first == "X" { return false }
        }
        return true
    }
}

/// The exclusive `flock` on DATA_DIR/supervisor.lock, held for the supervisor's life. The
/// kernel drops it when the process dies, however it dies, so it can never go stale.
public final class DataDirectoryLock: Sendable {
    let descriptor: Int32

    private init(descriptor: Int32) { self.descriptor = descriptor }

    public static func acquire(_ dataDirectory: DataDirectory) throws(SupervisorError) -> DataDirectoryLock {
        let descriptor = open(dataDirectory.lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .io("cannot open \(dataDirectory.lockPath): \(String(cString: strerror(errno)))") }
        if flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            close(descriptor)
            throw .alreadyRunning(dataDirectory: dataDirectory.path, pid: SupervisorStateFile.read(dataDirectory)?.pid)
        }
        return DataDirectoryLock(descriptor: descriptor)
    }

    /// Whether some process holds the lock right now.
    public static func isHeld(_ dataDirectory: DataDirectory) -> Bool {
        let descriptor = open(dataDirectory.lockPath, O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        if flock(descriptor, LOCK_EX | LOCK_NB) != 0 { return true }
        flock(descriptor, LOCK_UN)
        return false
    }

    deinit { close(descriptor) }
}

/// DATA_DIR/supervisor.json: who supervises this directory and where its control API is.
public struct SupervisorStateFile: Codable, Sendable, Hashable {
    public var pid: Int32
    public var url: String
    public var startedAtMs: EpochMs

    public init(pid: Int32, url: String, startedAtMs: EpochMs) {
        self.pid = pid
        self.url = url
        self.startedAtMs = startedAtMs
    }

    public static func read(_ dataDirectory: DataDirectory) -> SupervisorStateFile? {
        guard let data = FileManager.default.contents(atPath: dataDirectory.supervisorStatePath) else { return nil }
        return try? MMJSON.decode(SupervisorStateFile.self, from: data)
    }

    public func write(_ dataDirectory: DataDirectory) throws {
        try MMJSON.encode(self, pretty: true).write(to: URL(fileURLWithPath: dataDirectory.supervisorStatePath), options: .atomic)
    }
}

/// Starts `mmctl supervise …` as a daemon: its own session (no controlling terminal, so a
/// closed ssh session or Ctrl-C in the starting shell does not reach it), stdin from
/// /dev/null, stdout and stderr appended to `logPath`.
public enum DetachedSpawn {
    public static func spawn(executable: String, arguments: [String], logPath: String) throws(SupervisorError) -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) | spawnSetSID))
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard result == 0 else { throw .spawnFailed(executable, errno: result) }
        return pid
    }

    /// The exit code of a child that has ended, or nil while it runs. Reaps it.
    public static func exitCodeIfEnded(_ pid: Int32) -> Int32? {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        guard result == pid else { return result < 0 ? 1 : nil }
        let exit = ChildExit(status: status)
        return exit.code ?? (128 + (exit.signal ?? 0))
    }
}

/// The path of the running executable (for re-executing mmctl as the daemon).
public func currentExecutablePath() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}
