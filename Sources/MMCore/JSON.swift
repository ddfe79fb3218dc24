import Foundation

/// The one JSON convention of the cluster: snake_case keys, sorted for byte-stable output
/// (golden files, digests), integers for every price, quantity and amount.
public enum MMJSON {
    public static func makeEncoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public static func makeDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }

    public static func encode<T: Encodable>(_ value: T, pretty: Bool = false) throws -> Data {
        try makeEncoder(pretty: pretty).encode(value)
    }

    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        // The big inspection answers (InspectionJSON.swift) and the quote replace read by hand
        // when they can: the same value, without Foundation's cost; anything unusual falls back.
        if let hot = T.self as? any HotPathJSONDecodable.Type, let value = hot.decodeHotPath([UInt8](data)) as? T {
            return value
        }
        return try makeDecoder().decode(type, from: data)
    }

    /// A human-readable description of a decoding failure that names the offending field,
    /// so a 400 tells the caller exactly what to fix.
    public static func describe(_ error: any Error) -> String {
        guard let decodingError = error as? DecodingError else { return "\(error)" }
        func path(_ codingPath: [any CodingKey]) -> String {
            let joined = codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue.snakeCased }.joined(separator: ".")
            return joined.isEmpty ? "the body" : "'\(joined)'"
        }
        switch decodingError {
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)) must be \(type): \(context.debugDescription)"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)) must be a \(type), found null"
        case .keyNotFound(let key, let context):
            let parent = context.codingPath.isEmpty ? "" : " in \(path(context.codingPath))"
            return "missing field '\(key.stringValue.snakeCased)'\(parent)"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty
                ? "malformed JSON: \(context.debugDescription)"
                : "\(path(context.codingPath)) is invalid: \(context.debugDescription)"
        @unknown default:
            return "\(decodingError)"
        }
    }
}

extension String {
    /// camelCase → snake_case, the same rule the encoder applies to keys.
    public var snakeCased: String {
        var out = ""
        for (index, character) in enumerated() {
            if character.isUppercase {
                if index > 0 { out.append("_") }
                out.append(contentsOf: character.lowercased())
            } else {
                out.append(character)
            }
        }
        return out
    }
}
