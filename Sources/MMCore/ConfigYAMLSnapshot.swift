import Configuration
import Foundation
import Synchronization
import Yams

/// The config file as swift-configuration's `FileProvider` reads it, parsed once for both the
/// values and the list of keys the loader checks. It reads values exactly as the library's
/// `YAMLSnapshot` does (the same Yams parser and scalar constructors, so `8080`, `"8080"`,
/// `yes` and `[a, b]` mean the same), but walks the document in linear time: `YAMLSnapshot`
/// drains a queue from its front, quadratic in the keys of one mapping, and with the loader's
/// own parse for the key list that was 45% of `mmctl status` at 1,000 symbols.
public final class ConfigYAMLSnapshot: FileConfigSnapshot, Sendable {
    public typealias ParsingOptions = YAMLSnapshot.ParsingOptions

    enum Leaf {
        case scalar(Yams.Node.Scalar)
        case sequence([Yams.Node.Scalar])
    }

    public let providerName: String
    /// Every leaf key of the file, dot-separated, in document order.
    public let keys: [String]
    /// Yams' nodes are not Sendable; they are only read, under the lock.
    private let values: Mutex<[String: Leaf]>

    public init(data: RawSpan, providerName: String, parsingOptions: ParsingOptions) throws {
        self.providerName = providerName
        let text = data.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
        var keys: [String] = []
        var values: [String: Leaf] = [:]
        // No implicit tag resolution: it runs Yams' regular expressions on every plain scalar
        // (half the parse of a 1,000-symbol file), and the values are converted on request
        // below, the way `YAMLSnapshot` does, from their text (bools re-resolved there).
        guard let root = try Yams.compose(yaml: text, .basic) else {
            self.keys = []
            self.values = Mutex([:])
            return
        }
        guard root.mapping != nil else {
            throw ConfigError(key: "--config", reason: "must be a YAML mapping of keys at its top level")
        }
        func walk(_ node: Yams.Node, path: String) throws {
            if let mapping = node.mapping {
                for (keyNode, value) in mapping {
                    guard let key = keyNode.string else {
                        throw ConfigError(key: path.isEmpty ? "--config" : path, reason: "has a key that is not a string")
                    }
                    try walk(value, path: path.isEmpty ? key : "\(path).\(key)")
                }
            } else if let sequence = node.sequence {
                let scalars = try sequence.enumerated().map { index, element in
                    guard let scalar = element.scalar else {
                        throw ConfigError(key: path, reason: "has a list whose item \(index + 1) is not a plain value")
                    }
                    return scalar
                }
                keys.append(path)
                values[path] = .sequence(scalars)
            } else if let scalar = node.scalar {
                keys.append(path)
                values[path] = .scalar(scalar)
            } else {
                throw ConfigError(key: path, reason: "has a value that is neither a plain value, a list nor a mapping")
            }
        }
        try walk(root, path: "")
        self.keys = keys
        self.values = Mutex(values)
    }

    struct NotConvertible: Error, CustomStringConvertible {
        var key: String
        var type: ConfigType
        var description: String { "'\(key)' cannot be read as \(type)" }
    }

    public func value(forKey key: AbsoluteConfigKey, type: ConfigType) throws -> LookupResult {
        let encodedKey = key.components.joined(separator: ".")
        let content: ConfigContent? = try values.withLock { values in
            guard let leaf = values[encodedKey] else { return nil }
            return try Self.content(of: leaf, as: type, key: encodedKey)
        }
        return LookupResult(encodedKey: encodedKey, value: content.map { ConfigValue($0, isSecret: false) })
    }

    /// `YAMLSnapshot`'s conversions, type by type.
    private static func content(of leaf: Leaf, as type: ConfigType, key: String) throws -> ConfigContent {
        func mismatch() -> NotConvertible { NotConvertible(key: key, type: type) }
        func scalar() throws -> Yams.Node.Scalar {
            guard case .scalar(let scalar) = leaf else { throw mismatch() }
            return scalar
        }
        func array<Value>(_ transform: (Yams.Node.Scalar) -> Value?) throws -> [Value] {
            guard case .sequence(let items) = leaf else { throw mismatch() }
            return try items.map { item in
                guard let value = transform(item) else { throw mismatch() }
                return value
            }
        }
        switch type {
        case .string: return .string(try scalar().string)
        case .int:
            guard let value = Int.construct(from: try scalar()) else { throw mismatch() }
            return .int(value)
        case .double:
            guard let value = Double.construct(from: try scalar()) else { throw mismatch() }
            return .double(value)
        case .bool:
            guard let value = bool(try scalar()) else { throw mismatch() }
            return .bool(value)
        case .stringArray: return .stringArray(try array { $0.string })
        case .intArray: return .intArray(try array(Int.construct))
        case .doubleArray: return .doubleArray(try array(Double.construct))
        case .boolArray: return .boolArray(try array(bool))
        default:
            // Bytes: no key of this config is binary.
            throw mismatch()
        }
    }

    /// A bool as the default resolver reads one: only a plain (unquoted) scalar is resolved,
    /// so `yes` is true and `"yes"` is a string.
    private static func bool(_ scalar: Yams.Node.Scalar) -> Bool? {
        guard scalar.style == .plain || scalar.style == .any else { return nil }
        return Bool.construct(from: Yams.Node.Scalar(scalar.string, Tag(.bool)))
    }

    public var description: String { "\(providerName)[\(keys.count) values]" }
    public var debugDescription: String { description }
}
