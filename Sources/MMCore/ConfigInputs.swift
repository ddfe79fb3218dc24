import Crypto
import Foundation

/// What `ClusterConfig.load` reads, as one SHA-256: the file's bytes, the `MM_*` variables and
/// the `--set` overrides. The supervisor stores it beside the effective config it resolved
/// (`DATA_DIR/effective-config.inputs`), so a command given the same `--config FILE` (and the
/// same variables and overrides) can take that config instead of resolving the file again:
/// the same inputs resolve to the same config. At 1,000 symbols resolving the YAML is a
/// fifth of `mmctl status --config FILE`'s time.
public enum ConfigInputs {
    /// nil when the file cannot be read (nothing to compare: resolve it and report why).
    public static func digest(path: String?, environment: [String: String], overrides: [String: String]) -> String? {
        var bytes: Data?
        if let path {
            guard let contents = FileManager.default.contents(atPath: path) else { return nil }
            bytes = contents
        }
        return digest(fileBytes: bytes, environment: environment, overrides: overrides)
    }

    /// Every part length-prefixed, pairs sorted by key: no two different inputs frame alike.
    public static func digest(fileBytes: Data?, environment: [String: String], overrides: [String: String]) -> String {
        var hasher = SHA256()
        func part(_ bytes: some DataProtocol) {
            var length = UInt64(bytes.count).bigEndian
            withUnsafeBytes(of: &length) { hasher.update(bufferPointer: $0) }
            hasher.update(data: bytes)
        }
        func pairs(_ tag: String, _ values: [String: String]) {
            part(Data(tag.utf8))
            part(Data("\(values.count)".utf8))
            for (key, value) in values.sorted(by: { $0.key < $1.key }) {
                part(Data(key.utf8))
                part(Data(value.utf8))
            }
        }
        part(Data("mm-config-inputs/1".utf8))
        if let fileBytes { part(Data("file".utf8)); part(fileBytes) } else { part(Data("no-file".utf8)) }
        pairs("env", environment.filter { $0.key.hasPrefix("MM_") })
        pairs("set", overrides)
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
