import Crypto
import Foundation
import MMCore

/// Why a snapshot cannot be used. Never fatal: recovery falls back to an older snapshot or a
/// full replay, and says which and why.
public enum SnapshotError: Error, CustomStringConvertible, Equatable {
    case unreadable(String)
    case corrupt(String)
    case version(found: Int)
    case mismatch(String)

    public var description: String {
        switch self {
        case .unreadable(let reason): "cannot be read: \(reason)"
        case .corrupt(let reason): "is damaged: \(reason)"
        case .version(let found): "is format version \(found); this build reads version \(ExchangeSnapshot.formatVersion)"
        case .mismatch(let reason): "does not fit this configuration: \(reason)"
        }
    }
}

/// Everything a restart needs that the journal up to `journalSeq` built: the books, highest
/// fencing tokens, counters, the fencing audit and the fill-log chain head.
public struct ExchangeSnapshot: Sendable, Hashable {
    /// 2: the exchange state keeps its plain orders' submission queue (bounded records).
    public static let formatVersion = 2
    public static let formatName = "mm-exchange-snapshot"

    public var journalSeq: Int64
    public var state: ExchangeState.Persisted
    public var audit: FencingAudit
    public var digest: FillLogDigest
    /// The exchange's own position fold, served to checkers (`GET /v1/fills/fold`).
    public var fold: FoldHistory

    public init(journalSeq: Int64, state: ExchangeState.Persisted, audit: FencingAudit, digest: FillLogDigest, fold: FoldHistory) {
        self.journalSeq = journalSeq
        self.state = state
        self.audit = audit
        self.digest = digest
        self.fold = fold
    }

    /// The first line of the file: what the body is, and how to know it is whole.
    struct Header: Codable, Hashable {
        var format: String
        var version: Int
        var journalSeq: Int64
        var fillCount: Int64
        var fillLogHead: String
        /// SHA-256 of the configuration parts `apply` depends on (symbols in order).
        var configFingerprint: String
        var bodyBytes: Int
        var bodySha256: String
    }

    struct Body: Codable {
        var state: ExchangeState.Persisted
        var audit: FencingAudit
        var fold: FoldHistory
    }

    /// The symbols in order are all of the configuration a replay depends on (`apply` never
    /// reads limits); a snapshot of another symbol list must not be restored.
    public static func configFingerprint(_ config: ClusterConfig) -> String {
        sha256Hex(Data(config.symbolNames.joined(separator: "\n").utf8))
    }

    /// Header line, "\n", body.
    public func encoded(config: ClusterConfig) throws -> Data {
        let body = try MMJSON.encode(Body(state: state, audit: audit, fold: fold))
        let header = Header(
            format: Self.formatName, version: Self.formatVersion, journalSeq: journalSeq, fillCount: digest.count, fillLogHead: digest.hexDigest(),
            configFingerprint: Self.configFingerprint(config), bodyBytes: body.count, bodySha256: sha256Hex(body))
        var data = try MMJSON.encode(header)
        data.append(UInt8(ascii: "\n"))
        data.append(body)
        return data
    }

    public static func decode(_ data: Data, config: ClusterConfig) throws(SnapshotError) -> ExchangeSnapshot {
        guard let newline = data.firstIndex(of: UInt8(ascii: "\n")) else { throw .corrupt("no header line") }
        let header: Header
        do { header = try MMJSON.makeDecoder().decode(Header.self, from: data[data.startIndex..<newline]) } catch {
            throw .corrupt("header: \(MMJSON.describe(error))")
        }
        guard header.format == formatName else { throw .corrupt("not an exchange snapshot (format '\(header.format)')") }
        guard header.version == formatVersion else { throw .version(found: header.version) }
        let body = data[data.index(after: newline)...]
        guard body.count == header.bodyBytes else { throw .corrupt("truncated: body is \(body.count) bytes, the header says \(header.bodyBytes)") }
        guard sha256Hex(body) == header.bodySha256 else { throw .corrupt("body checksum does not match the header") }
        guard header.configFingerprint == configFingerprint(config) else {
            throw .mismatch("it was written for another symbol list (symbols.names changed)")
        }
        let decoded: Body
        do { decoded = try MMJSON.makeDecoder().decode(Body.self, from: Data(body)) } catch {
            throw .corrupt("body: \(MMJSON.describe(error))")
        }
        guard let digest = FillLogDigest(headHex: header.fillLogHead, count: header.fillCount) else { throw .corrupt("fill-log head is not 32 bytes of hex") }
        guard decoded.state.journalSeq == header.journalSeq, decoded.state.fillCount == header.fillCount else {
            throw .corrupt("header and body disagree on the journal seq or fill count")
        }
        return ExchangeSnapshot(journalSeq: header.journalSeq, state: decoded.state, audit: decoded.audit, digest: digest, fold: decoded.fold)
    }
}

/// Snapshot files in one directory, `snapshot-<journal seq, 20 digits>.json`.
///
/// A snapshot is written to a temporary file, fsynced, renamed into place and the directory
/// fsynced, so a crash at any point leaves either the previous set or the previous set plus
/// the new one, never a half file under a snapshot's name (a stray temporary is ignored and
/// removed on the next write).
public struct ExchangeSnapshotStore: Sendable {
    public let directory: String
    public let keep: Int

    public init(directory: String, keep: Int) {
        self.directory = directory
        self.keep = max(1, keep)
    }

    static let prefix = "snapshot-"
    static let suffix = ".json"

    func path(forSeq seq: Int64) -> String {
        let digits = String(seq)
        return directory + "/" + Self.prefix + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + Self.suffix
    }

    /// Every snapshot file, newest (highest journal seq) first.
    public func candidates() -> [(journalSeq: Int64, path: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name -> (Int64, String)? in
            guard name.hasPrefix(Self.prefix), name.hasSuffix(Self.suffix),
                  let seq = Int64(name.dropFirst(Self.prefix.count).dropLast(Self.suffix.count)) else { return nil }
            return (seq, directory + "/" + name)
        }.sorted { $0.0 > $1.0 }
    }

    public func load(_ path: String, config: ClusterConfig) throws(SnapshotError) -> ExchangeSnapshot {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch { throw .unreadable("\(error.localizedDescription)") }
        return try ExchangeSnapshot.decode(data, config: config)
    }

    /// Writes `snapshot` durably, then deletes all but the newest `keep`. Returns the journal
    /// seq of the oldest snapshot kept (what journal retention may prune through).
    @discardableResult
    public func write(_ snapshot: ExchangeSnapshot, config: ClusterConfig) throws -> Int64 {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let data = try snapshot.encoded(config: config)
        let final = path(forSeq: snapshot.journalSeq)
        let temporary = final + ".tmp"
        try Self.writeSynced(data, to: temporary)
        guard rename(temporary, final) == 0 else { throw SnapshotWriteError("rename \(temporary) → \(final): \(String(cString: strerror(errno)))") }
        Self.syncDirectory(directory)
        let all = candidates()
        for stale in all.dropFirst(keep) { try? FileManager.default.removeItem(atPath: stale.path) }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasSuffix(".tmp") && directory + "/" + name != temporary {
            try? FileManager.default.removeItem(atPath: directory + "/" + name)
        }
        return all.prefix(keep).last?.journalSeq ?? snapshot.journalSeq
    }

    static func writeSynced(_ data: Data, to path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw SnapshotWriteError("open \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var written = 0
        try data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
            while written < buffer.count {
                let result = Foundation.write(descriptor, buffer.baseAddress! + written, buffer.count - written)
                if result < 0 {
                    if errno == EINTR { continue }
                    throw SnapshotWriteError("write \(path): \(String(cString: strerror(errno)))")
                }
                written += result
            }
        }
        guard fsync(descriptor) == 0 else { throw SnapshotWriteError("fsync \(path): \(String(cString: strerror(errno)))") }
    }

    static func syncDirectory(_ path: String) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        close(descriptor)
    }
}

public struct SnapshotWriteError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
