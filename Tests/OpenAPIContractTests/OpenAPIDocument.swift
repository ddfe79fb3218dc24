import Foundation
import MMCore
import Yams

/// A route as method and path template (`GET /v1/prices/{symbol}`).
struct Route: Hashable, Comparable, CustomStringConvertible, Sendable {
    var method: String
    var path: String

    init(_ method: String, _ path: String) {
        self.method = method.uppercased()
        self.path = path
    }

    init(_ spec: RouteSpec) { self.init(spec.method.rawValue, spec.path) }

    var description: String { "\(method) \(path)" }
    static func < (lhs: Route, rhs: Route) -> Bool { (lhs.path, lhs.method) < (rhs.path, rhs.method) }
}

/// A JSON value that keeps integers apart from fractions (what the schema's `integer` means).
indirect enum JSONValue: Decodable, Sendable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Int64.self) { self = .integer(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    static func parse(_ data: Data) throws -> JSONValue { try JSONDecoder().decode(JSONValue.self, from: data) }

    /// `value` as the services encode it (MMJSON: snake_case, optionals omitted when nil).
    static func encoding(_ value: some Encodable) throws -> JSONValue { try parse(MMJSON.encode(value)) }

    var objectKeys: Set<String>? {
        if case .object(let object) = self { return Set(object.keys) }
        return nil
    }
}

/// docs/openapi.yaml, parsed with Yams, with the little JSON Schema (2020-12) the document
/// uses: `$ref`, `type` (one or a list), `properties`, `required`, `additionalProperties`,
/// `items`, `enum`, `const`, `oneOf`, numeric and length bounds, `pattern`, integer formats.
struct OpenAPIDocument: @unchecked Sendable {
    let root: [String: Any]

    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let path = repositoryRoot.appendingPathComponent("docs/openapi.yaml").path

    /// Parsed once per test run.
    private static let cached = Result { try load() }
    static func shared() throws -> OpenAPIDocument { try cached.get() }

    static func load() throws -> OpenAPIDocument {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        guard let root = try Yams.load(yaml: text) as? [String: Any] else { throw Problem("\(path) is not a YAML mapping") }
        return OpenAPIDocument(root: root)
    }

    struct Problem: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    struct Operation: @unchecked Sendable {
        var route: Route
        var raw: [String: Any]

        var operationId: String { raw["operationId"] as? String ?? "?" }
        var tags: [String] { raw["tags"] as? [String] ?? [] }
        /// `security: []`: no token needed.
        var isOpen: Bool { (raw["security"] as? [Any])?.isEmpty ?? false }
        var roles: [String]? { raw["x-roles"] as? [String] }
        var responses: [String: Any] { raw["responses"] as? [String: Any] ?? [:] }
        var hasRequestBody: Bool { raw["requestBody"] != nil }
        var parameters: [Any] { raw["parameters"] as? [Any] ?? [] }
    }

    static let methods = ["get", "put", "post", "delete", "patch", "head", "options", "trace"]

    var paths: [String: Any] { root["paths"] as? [String: Any] ?? [:] }

    var operations: [Operation] {
        paths.flatMap { path, item -> [Operation] in
            let item = item as? [String: Any] ?? [:]
            return Self.methods.compactMap { method in
                (item[method] as? [String: Any]).map { Operation(route: Route(method, path), raw: $0) }
            }
        }
        .sorted { $0.route < $1.route }
    }

    func operation(_ route: Route) -> Operation? { operations.first { $0.route == route } }

    /// What `service` serves according to the document: operations tagged with it or `common`.
    func routes(servedBy service: String) -> Set<Route> {
        Set(operations.filter { $0.tags.contains(service) || $0.tags.contains("common") }.map(\.route))
    }

    // MARK: References

    /// The value at a local JSON pointer (`#/components/schemas/Fill/properties/seq`).
    func resolve(_ pointer: String) -> Any? {
        guard pointer.hasPrefix("#/") else { return nil }
        var current: Any = root
        for raw in pointer.dropFirst(2).split(separator: "/", omittingEmptySubsequences: false) {
            let token = raw.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            if let object = current as? [String: Any], let next = object[token] {
                current = next
            } else if let array = current as? [Any], let index = Int(token), array.indices.contains(index) {
                current = array[index]
            } else {
                return nil
            }
        }
        return current
    }

    /// `node` with its `$ref` chain followed (siblings of a `$ref` are dropped here).
    func dereferenced(_ node: Any) -> [String: Any]? {
        var current = node as? [String: Any]
        var hops = 0
        while let ref = current?["$ref"] as? String, hops < 20 {
            current = resolve(ref) as? [String: Any]
            hops += 1
        }
        return current
    }

    /// Every `$ref` anywhere in the document.
    func allReferences() -> [String] {
        var found: [String] = []
        func walk(_ node: Any) {
            if let object = node as? [String: Any] {
                if let ref = object["$ref"] as? String { found.append(ref) }
                object.values.forEach(walk)
            } else if let array = node as? [Any] {
                array.forEach(walk)
            }
        }
        walk(root)
        return found
    }

    /// Every schema object in the document with the pointer to it, for lints.
    func allSchemas() -> [(pointer: String, schema: [String: Any])] {
        var found: [(String, [String: Any])] = []
        func walk(_ node: Any, _ pointer: String) {
            if let object = node as? [String: Any] {
                if object["type"] != nil { found.append((pointer, object)) }
                for (key, value) in object { walk(value, pointer + "/" + key) }
            } else if let array = node as? [Any] {
                for (index, value) in array.enumerated() { walk(value, pointer + "/\(index)") }
            }
        }
        walk(root, "#")
        return found
    }

    // MARK: Responses

    /// The documented response of `operation` for `status` (its `$ref` followed).
    func response(_ operation: Operation, status: Int) -> [String: Any]? {
        operation.responses["\(status)"].flatMap(dereferenced)
    }

    /// The JSON schema of that response, nil when it has no JSON body.
    func jsonSchema(of response: [String: Any]) -> Any? {
        ((response["content"] as? [String: Any])?["application/json"] as? [String: Any])?["schema"]
    }

    // MARK: Validation

    /// Why `value` does not match `schema`; empty when it does.
    func validate(_ value: JSONValue, against schemaNode: Any, at path: String = "$") -> [String] {
        guard var schema = schemaNode as? [String: Any] else { return ["\(path): the schema is not an object"] }
        var problems: [String] = []
        if let ref = schema["$ref"] as? String {
            guard let target = resolve(ref) else { return ["\(path): unresolved \(ref)"] }
            problems += validate(value, against: target, at: path)
            schema["$ref"] = nil
        }
        if let alternatives = schema["oneOf"] as? [Any] {
            let matching = alternatives.filter { validate(value, against: $0, at: path).isEmpty }.count
            if matching != 1 { problems.append("\(path): matches \(matching) of the \(alternatives.count) oneOf alternatives") }
        }
        if let type = schema["type"] {
            let allowed = (type as? [String]) ?? [type as? String].compactMap { $0 }
            guard allowed.contains(where: { Self.value(value, isOfType: $0) }) else {
                return problems + ["\(path): \(Self.kind(value)) where the schema says \(allowed.joined(separator: " or "))"]
            }
        }
        if let allowed = schema["enum"] as? [Any], !allowed.contains(where: { Self.equal(value, $0) }) {
            problems.append("\(path): \(value) is not one of \(allowed)")
        }
        if let constant = schema["const"], !Self.equal(value, constant) {
            problems.append("\(path): \(value) is not the constant \(constant)")
        }
        switch value {
        case .object(let object):
            let properties = schema["properties"] as? [String: Any] ?? [:]
            for key in (schema["required"] as? [String] ?? []) where object[key] == nil {
                problems.append("\(path): required field '\(key)' is missing")
            }
            for (key, member) in object.sorted(by: { $0.key < $1.key }) {
                if let property = properties[key] {
                    problems += validate(member, against: property, at: "\(path).\(key)")
                } else if let additional = schema["additionalProperties"] {
                    if let allowed = additional as? Bool {
                        if !allowed { problems.append("\(path): field '\(key)' is not documented (additionalProperties: false)") }
                    } else {
                        problems += validate(member, against: additional, at: "\(path).\(key)")
                    }
                }
            }
            if let most = schema["maxProperties"] as? Int, object.count > most {
                problems.append("\(path): \(object.count) fields, at most \(most) documented")
            }
        case .array(let items):
            if let itemSchema = schema["items"] {
                for (index, item) in items.enumerated() { problems += validate(item, against: itemSchema, at: "\(path)[\(index)]") }
            }
            if let most = schema["maxItems"] as? Int, items.count > most { problems.append("\(path): \(items.count) items, at most \(most)") }
        case .integer(let number):
            if let minimum = schema["minimum"] as? Int, number < Int64(minimum) { problems.append("\(path): \(number) < minimum \(minimum)") }
            if let maximum = schema["maximum"] as? Int, number > Int64(maximum) { problems.append("\(path): \(number) > maximum \(maximum)") }
            if schema["format"] as? String == "int32", Int32(exactly: number) == nil { problems.append("\(path): \(number) is not an int32") }
        case .string(let text):
            let length = text.unicodeScalars.count
            if let minimum = schema["minLength"] as? Int, length < minimum { problems.append("\(path): '\(text)' is shorter than \(minimum)") }
            if let maximum = schema["maxLength"] as? Int, length > maximum { problems.append("\(path): '\(text)' is longer than \(maximum)") }
            if let pattern = schema["pattern"] as? String {
                let expression = try? NSRegularExpression(pattern: pattern)
                let range = NSRange(text.startIndex..., in: text)
                if expression?.firstMatch(in: text, range: range) == nil { problems.append("\(path): '\(text)' does not match \(pattern)") }
            }
        default:
            break
        }
        return problems
    }

    static func value(_ value: JSONValue, isOfType type: String) -> Bool {
        switch (value, type) {
        case (.null, "null"), (.bool, "boolean"), (.integer, "integer"), (.integer, "number"), (.number, "number"),
             (.string, "string"), (.array, "array"), (.object, "object"):
            true
        default:
            false
        }
    }

    static func kind(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool: "a boolean"
        case .integer: "an integer"
        case .number: "a fraction"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    static func equal(_ value: JSONValue, _ yaml: Any) -> Bool {
        switch value {
        case .string(let text): (yaml as? String) == text
        case .integer(let number): (yaml as? Int).map { Int64($0) == number } ?? false
        case .bool(let flag): (yaml as? Bool) == flag
        default: false
        }
    }
}

extension JSONValue: CustomStringConvertible {
    var description: String {
        switch self {
        case .null: "null"
        case .bool(let flag): "\(flag)"
        case .integer(let number): "\(number)"
        case .number(let number): "\(number)"
        case .string(let text): "\"\(text)\""
        case .array(let items): "[\(items.map(\.description).joined(separator: ","))]"
        case .object(let object): "{\(object.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ","))}"
        }
    }
}
