import CProcessShims
import Foundation
import MMCore
#if canImport(Glibc)
import Glibc
#endif

// Process primitives shared by the supervisor (`mmd supervise`) and the thin `mmctl` client:
// nothing here links the server stack, so mmctl starts fast.

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

    public init(code: Int32?, signal: Int32?) {
        self.code = code
        self.signal = signal
    }

    public init(status: Int32) {
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

    /// "exit code 3" or "signal 9 (SIGKILL)": the short form used in fatal reasons.
    public var shortDescription: String {
        if let code { return "exit code \(code)" }
        if let signal { return "signal \(signal) (\(signalName(signal)))" }
        return "exit"
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

/// POSIX_SPAWN_SETSID (glibc ≥ 2.26) is behind _GNU_SOURCE, which Swift does not define.
public let spawnSetSID: Int32 = 0x80

// MARK: Ports, pids, locks

public enum HostChecks {
    /// Whether `address` (IPv4 or IPv6) is assigned to this machine (in this network
    /// namespace): binding it to an ephemeral port succeeds only then.
    public static func isLocalAddress(_ address: String) -> Bool {
        if address.contains(":") {
            var socketAddress = sockaddr_in6()
            socketAddress.sin6_family = sa_family_t(AF_INET6)
            guard inet_pton(AF_INET6, address.trimmingCharacters(in: CharacterSet(charactersIn: "[]")), &socketAddress.sin6_addr) == 1 else { return false }
            let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            return withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            } == 0
        }
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        guard inet_pton(AF_INET, address == "localhost" ? "127.0.0.1" : address, &socketAddress.sin_addr) == 1 else { return false }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    /// The argv of a live process, from /proc (empty when it is gone or not ours to read).
    public static func commandLine(of pid: Int32) -> [String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return [] }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Whether `pid` is an `mmd` (a service or `mmd supervise`) of the cluster in `dataDirectory`,
    /// an `etcd` member whose data is under its DATA_DIR/etcd/, or the local PostgreSQL whose data
    /// is DATA_DIR/postgres/data: the only processes a sweep
    /// may kill, so a recycled pid is never hit.
    public static func isClusterProcess(pid: Int32, dataDirectory: DataDirectory) -> Bool {
        isClusterCommandLine(commandLine(of: pid), dataDirectory: dataDirectory)
    }

    public static func isClusterCommandLine(_ argv: [String], dataDirectory: DataDirectory) -> Bool {
        guard let program = argv.first else { return false }
        let base = (program as NSString).lastPathComponent
        // The local PostgreSQL's postmaster: its data directory is DATA_DIR/postgres/data.
        if base == "postgres", let flag = argv.firstIndex(of: "-D"), flag + 1 < argv.count {
            return DataDirectory(argv[flag + 1]).path == dataDirectory.postgresDataPath
        }
        guard base == "mmd" || base == "mmctl" || base == "etcd" else { return false }
        guard let flag = argv.firstIndex(of: "--data-dir"), flag + 1 < argv.count else { return false }
        let path = DataDirectory(argv[flag + 1]).path
        // An etcd member, or the `mmd exec … -- etcd …` it is for an instant before its execve.
        if base == "etcd" || (base == "mmd" && argv.count > 1 && argv[1] == "exec") {
            return path.hasPrefix(dataDirectory.etcdDirectory + "/")
        }
        return path == dataDirectory.path
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

/// Makes a posix_spawn child inherit only descriptors 0, 1 and 2 (the actions' own dup2s
/// come first). Sockets that libraries open without CLOEXEC would otherwise live on in every
/// child: a connection its owner closed stays half-open while any child holds a copy, and a
/// server draining that connection on shutdown waits until it is killed. 0 or an errno.
public func addCloseInheritedDescriptors(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>) -> Int32 {
    mm_spawn_file_actions_close_from(actions, 3)
}

/// Starts `mmd supervise …` as a daemon: its own session (no controlling terminal, so a
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
        let closing = addCloseInheritedDescriptors(&actions)
        guard closing == 0 else { throw .spawnFailed("\(executable) (closing inherited descriptors)", errno: closing) }
        return try cleanSpawn(executable: executable, arguments: arguments, actions: &actions, extraFlags: spawnSetSID)
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

/// Starts a program in this terminal: same session and process group (Ctrl-C reaches it),
/// stdin, stdout and stderr inherited.
public enum AttachedSpawn {
    public static func spawn(executable: String, arguments: [String]) throws(SupervisorError) -> Int32 {
        try cleanSpawn(executable: executable, arguments: arguments, actions: nil, extraFlags: 0)
    }
}

/// posix_spawn with an empty signal mask and default dispositions for the signals mmctl
/// changes (it ignores SIGINT/SIGTERM while it waits on a foreground supervisor), so nothing
/// of mmctl's signal state leaks into the supervisor.
private func cleanSpawn(
    executable: String, arguments: [String], actions: UnsafeMutablePointer<posix_spawn_file_actions_t>?, extraFlags: Int32
) throws(SupervisorError) -> Int32 {
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    posix_spawnattr_setflags(&attributes, Int16(Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) | extraFlags))
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
    let result = posix_spawn(&pid, executable, actions, &attributes, argv, environ)
    guard result == 0 else { throw .spawnFailed(executable, errno: result) }
    return pid
}

/// The path of the running executable (mmctl finds the mmd beside it).
public func currentExecutablePath() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}

/// Kills processes recorded in DATA_DIR/pids/ by a supervisor that died without cleaning up
/// (parent-death signal and stdin EOF normally end them; this is the last line of defence).
/// Only pids whose command line is an mmd of this data directory are touched.
public enum LeftoverSweep {
    @discardableResult
    public static func run(_ dataDirectory: DataDirectory) -> [Int32] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dataDirectory.pidsDirectory)) ?? []
        var killed: [Int32] = []
        for file in files where file.hasSuffix(".pid") {
            let path = (dataDirectory.pidsDirectory as NSString).appendingPathComponent(file)
            defer { try? FileManager.default.removeItem(atPath: path) }
            guard let text = try? String(contentsOfFile: path, encoding: .utf8),
                  let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1 else { continue }
            guard HostChecks.isClusterProcess(pid: pid, dataDirectory: dataDirectory) else { continue }
            kill(-pid, SIGKILL)
            kill(pid, SIGKILL)
            killed.append(pid)
        }
        // Give the kernel a moment to release their ports before the port check.
        for _ in 0..<100 where killed.contains(where: { HostChecks.isAlive($0) }) { usleep(20_000) }
        return killed
    }
}

/// A child of the supervisor ends with it, however the supervisor dies.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the process:
/// the supervisor therefore spawns every child from one long-lived spawner thread (see
/// `PosixChildSpawner`), and only children that it started that way ask for it (`mmd
/// --supervised-by PID`). Setting it races with the parent's death, so the parent pid is
/// compared afterwards: if it is no longer the supervisor, the supervisor is already gone.
public enum ParentDeathSignal {
    public enum Outcome: Sendable, Equatable {
        case armed
        /// The supervisor died before the signal was armed: the caller must exit now.
        case parentAlreadyGone(currentParent: Int32)
        case failed(errno: Int32)
    }

    public static func arm(signal: Int32 = SIGKILL, expectedParent: Int32) -> Outcome {
        guard mm_set_parent_death_signal(signal) == 0 else { return .failed(errno: errno) }
        let parent = getppid()
        return parent == expectedParent ? .armed : .parentAlreadyGone(currentParent: parent)
    }
}
