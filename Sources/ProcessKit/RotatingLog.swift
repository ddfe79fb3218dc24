import Foundation
import Synchronization

/// One process's log file, rotated by size: NAME.log → NAME.log.1 → … → NAME.log.KEEP
/// (the oldest is dropped). Shared by every incarnation of the process and by the
/// supervisor's own notes about it, so a crash and its restart read as one story.
public final class RotatingLog: Sendable {
    public let path: String
    let maxBytes: Int64
    let keep: Int

    private struct State {
        var descriptor: Int32
        var size: Int64
    }

    private let state: Mutex<State>

    public init(path: String, maxBytes: Int64, keep: Int) throws {
        self.path = path
        self.maxBytes = maxBytes
        self.keep = max(1, keep)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw SupervisorError.io("cannot open log \(path): \(String(cString: strerror(errno)))") }
        var info = stat()
        fstat(descriptor, &info)
        state = Mutex(State(descriptor: descriptor, size: Int64(info.st_size)))
    }

    deinit {
        state.withLock { close($0.descriptor) }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        state.withLock { state in
            if state.size > 0 && state.size + Int64(bytes.count) > maxBytes { rotate(&state) }
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(state.descriptor, base + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return // disk full or similar: losing log lines must not stop the child
                }
                offset += written
            }
            state.size += Int64(bytes.count)
        }
    }

    /// A line from the supervisor itself, marked so it stands out from the child's output.
    public func note(_ line: String) {
        let text = "[supervisor \(ISO8601DateFormatter().string(from: Date()))] \(line)\n"
        Array(text.utf8).withUnsafeBytes { write($0) }
    }

    private func rotate(_ state: inout State) {
        close(state.descriptor)
        Self.shiftFiles(path: path, keep: keep)
        state.descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        state.size = 0
    }

    /// NAME → NAME.1 → … → NAME.KEEP; the oldest is dropped and NAME no longer exists.
    static func shiftFiles(path: String, keep: Int) {
        let fileManager = FileManager.default
        try? fileManager.removeItem(atPath: "\(path).\(keep)")
        if keep > 1 {
            for index in stride(from: keep - 1, through: 1, by: -1) where fileManager.fileExists(atPath: "\(path).\(index)") {
                try? fileManager.moveItem(atPath: "\(path).\(index)", toPath: "\(path).\(index + 1)")
            }
        }
        try? fileManager.moveItem(atPath: path, toPath: "\(path).1")
    }

    /// The last `lines` lines of the current file (and of older rotations when the current
    /// one is short), read from the end so a large log costs only what is shown.
    public static func tail(path: String, lines: Int) -> [String] {
        guard lines > 0 else { return [] }
        var collected: [Substring] = []
        for candidate in [path, path + ".1"] {
            guard let handle = FileHandle(forReadingAtPath: candidate) else { continue }
            defer { try? handle.close() }
            let size = (try? handle.seekToEnd()) ?? 0
            var readFrom = size
            var chunk = Data()
            while readFrom > 0 {
                let step = min(UInt64(65_536), readFrom)
                readFrom -= step
                try? handle.seek(toOffset: readFrom)
                chunk = (handle.readData(ofLength: Int(step))) + chunk
                if chunk.reduce(0, { $0 + ($1 == 10 ? 1 : 0) }) > lines - collected.count { break }
            }
            let text = String(decoding: chunk, as: UTF8.self)
            var split = text.split(separator: "\n", omittingEmptySubsequences: false)
            if split.last == "" { split.removeLast() }
            if readFrom > 0, !split.isEmpty { split.removeFirst() } // a partial first line
            collected = split.suffix(lines - collected.count) + collected
            if collected.count >= lines { break }
        }
        return collected.suffix(lines).map(String.init)
    }
}

/// Rotates the file this process's own stdout and stderr write to: the supervisor's log, which
/// `mmctl start` opens as the detached supervisor's fd 1 and 2. Past `maxBytes` the files shift
/// (NAME.log → NAME.log.1 …) and a fresh NAME.log is dup2'ed onto fd 1 and 2. Output keeps
/// going straight to the file, never through an in-process pipe reader, so the last words of a
/// crash (a fatal error, a backtrace) can never be lost with the reader.
public enum StandardStreamRotation {
    /// True when it rotated. Does nothing when fd 2 is not `path` (a foreground supervisor
    /// writing to a terminal, or a log someone else moved away).
    @discardableResult
    public static func rotateIfNeeded(path: String, maxBytes: Int64, keep: Int) -> Bool {
        var stream = stat()
        var file = stat()
        guard fstat(2, &stream) == 0, stat(path, &file) == 0, stream.st_dev == file.st_dev, stream.st_ino == file.st_ino,
              Int64(file.st_size) > maxBytes else { return false }
        RotatingLog.shiftFiles(path: path, keep: max(1, keep))
        let fresh = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fresh >= 0 else { return false }
        // stdout shares the file only when it was given the same one (as mmctl start does).
        var out = stat()
        if fstat(1, &out) == 0, out.st_dev == stream.st_dev, out.st_ino == stream.st_ino { dup2(fresh, 1) }
        dup2(fresh, 2)
        close(fresh)
        return true
    }
}
