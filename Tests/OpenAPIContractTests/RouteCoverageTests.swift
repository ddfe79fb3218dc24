import Foundation
import MMCore
import OperatorGUI
import Testing

/// The route tables are the single source of what each service serves; docs/openapi.yaml must
/// document exactly those routes (method + path), on the right services, with the right roles.
@Suite("docs/openapi.yaml covers every route table")
struct RouteCoverageTests {
    static let healthz = Route("GET", CommonRoutes.healthz)
    static let readyz = Route("GET", CommonRoutes.readyz)
    static let metrics = Route("GET", CommonRoutes.metrics)
    static let info = Route(CommonRoutes.info)

    /// Every route table in Sources, by the name of its declaration. A table added to the code
    /// must be added here (`everyRouteTableIsListed` fails until it is).
    static let tables: [String: [Route]] = [
        "CommonRoutes": [healthz, readyz, metrics, info],
        "ExchangeRoutes": ExchangeRoutes.all.map(Route.init),
        "TradingStateRoutes": TradingStateRoutes.all.map(Route.init),
        "CoordinatorRoutes": CoordinatorRoutes.all.map(Route.init),
        "NodeRoutes": NodeRoutes.all.map(Route.init),
        "SupervisorRoutes": SupervisorRoutes.all.map(Route.init),
        "GUIRoutes": GUIRoutes.all.map { Route("GET", $0) },
    ]

    /// The roles each table route accepts (open routes have none).
    static let specs: [Route: RouteSpec] = Dictionary(
        (ExchangeRoutes.all + TradingStateRoutes.all + CoordinatorRoutes.all + NodeRoutes.all + SupervisorRoutes.all + [CommonRoutes.info])
            .map { (Route($0), $0) },
        uniquingKeysWith: { first, second in
            precondition(first.roles == second.roles, "\(first) is in two tables with different roles")
            return first
        })

    /// What each service's router registers (see `buildServiceRouter`, `buildControlRouter`).
    static let services: [String: Set<Route>] = [
        "exchange": Set([healthz, readyz, metrics, info] + ExchangeRoutes.all.map(Route.init)),
        "state": Set([healthz, readyz, metrics, info] + TradingStateRoutes.all.map(Route.init)),
        "coordinator": Set([healthz, readyz, metrics, info] + CoordinatorRoutes.all.map(Route.init)),
        "node": Set([healthz, readyz, metrics, info] + NodeRoutes.all.map(Route.init)),
        "gui": Set([healthz, readyz, metrics, info] + GUIRoutes.all.map { Route("GET", $0) }),
        "supervisor": Set([healthz, readyz, metrics, info] + SupervisorRoutes.all.map(Route.init)),
    ]

    static let openRoutes: Set<Route> = Set([healthz, readyz, metrics] + GUIRoutes.all.map { Route("GET", $0) })

    static func sources() throws -> [(path: String, text: String)] {
        let root = OpenAPIDocument.repositoryRoot.appendingPathComponent("Sources")
        guard let enumerator = FileManager.default.enumerator(atPath: root.path) else { throw OpenAPIDocument.Problem("cannot list \(root.path)") }
        var files: [(String, String)] = []
        for case let relative as String in enumerator where relative.hasSuffix(".swift") {
            files.append((relative, try String(contentsOfFile: root.appendingPathComponent(relative).path, encoding: .utf8)))
        }
        return files.sorted { $0.0 < $1.0 }
    }

    static func matches(_ pattern: String, in text: String) -> [[String]] {
        let expression = try! NSRegularExpression(pattern: pattern)
        return expression.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { match in
            (0..<match.numberOfRanges).map { index in
                Range(match.range(at: index), in: text).map { String(text[$0]) } ?? ""
            }
        }
    }

    /// The body of `enum name { … }` in `text` (brace-matched).
    static func enumBody(_ name: String, in text: String) -> Substring? {
        guard let start = text.range(of: "enum \(name) {") else { return nil }
        var depth = 0
        var index = start.upperBound
        depth = 1
        while index < text.endIndex {
            switch text[index] {
            case "{": depth += 1
            case "}":
                depth -= 1
                if depth == 0 { return text[start.upperBound..<index] }
            default: break
            }
            index = text.index(after: index)
        }
        return nil
    }

    @Test func everyRouteTableIsListed() throws {
        var declared: [String: Substring] = [:]
        for (path, text) in try Self.sources() {
            for match in Self.matches(#"\benum\s+([A-Za-z_][A-Za-z0-9_]*Routes)\b"#, in: text) {
                declared[match[1]] = Self.enumBody(match[1], in: text)
                #expect(Self.tables[match[1]] != nil, "route table \(match[1]) (Sources/\(path)) is not listed in RouteCoverageTests.tables: add it, and its routes to docs/openapi.yaml")
            }
        }
        #expect(Set(declared.keys) == Set(Self.tables.keys), "tables listed but not declared: \(Set(Self.tables.keys).subtracting(declared.keys).sorted())")
        // Every route a table declares is in what the table lists (`all`), so nothing
        // registered from a table escapes the comparison below.
        for (name, body) in declared {
            let declarations = Self.matches(#"static\s+let\s+(?!all\b)([A-Za-z_][A-Za-z0-9_]*)\s*(?::[^=]+)?=\s*(RouteSpec[.(]|")"#, in: String(body))
            #expect(declarations.count == Self.tables[name]?.count, "\(name) declares \(declarations.map { $0[1] }) but its list has \(Self.tables[name]?.count ?? 0) routes: is one missing from `all`?")
        }
    }

    @Test func everyRouteIsRegisteredFromATable() throws {
        for (path, text) in try Self.sources() where path != "MMServiceKit/Routing.swift" {
            let registrations = Self.matches(#"\.(openGet|onResponse|on)\(\s*([A-Za-z_][A-Za-z0-9_]*)"#, in: text)
            for registration in registrations {
                #expect(Self.tables[registration[2]] != nil, "Sources/\(path) registers a route with .\(registration[1])(\(registration[2])…): register routes from a route table so docs/openapi.yaml can be checked against it")
            }
            let direct = Self.matches(#"\brouter\.(get|post|put|patch|delete|head|on)\(\s*(RouterPath|")"#, in: text)
            #expect(direct.isEmpty, "Sources/\(path) registers a Hummingbird route directly (\(direct.map { $0[0] })): use AuthorizedRouter with a route table")
        }
    }

    @Test(arguments: ["exchange", "state", "coordinator", "node", "gui", "supervisor"])
    func documentedRoutesAreExactlyTheServedOnes(service: String) throws {
        let document = try OpenAPIDocument.shared()
        let documented = document.routes(servedBy: service)
        let served = try #require(Self.services[service])
        #expect(served.subtracting(documented).isEmpty, "served by \(service) but missing from docs/openapi.yaml (or not tagged '\(service)'): \(served.subtracting(documented).sorted())")
        #expect(documented.subtracting(served).isEmpty, "tagged for \(service) in docs/openapi.yaml but in none of its route tables: \(documented.subtracting(served).sorted())")
    }

    @Test func everyDocumentedOperationIsInARouteTable() throws {
        let document = try OpenAPIDocument.shared()
        let known = Set(Self.tables.values.joined())
        let serviceTags = Set(Self.services.keys).union(["common"])
        for operation in document.operations {
            let inATable = known.contains(operation.route)
            #expect(inATable, "\(operation.route) is documented but no route table has it")
            let tagged = !Set(operation.tags).intersection(serviceTags).isEmpty
            #expect(tagged, "\(operation.route) has no service tag (\(operation.tags))")
            let unknownTags = Set(operation.tags).subtracting(serviceTags)
            #expect(unknownTags.isEmpty, "\(operation.route) has an unknown tag")
        }
        let missing = known.subtracting(document.operations.map(\.route))
        #expect(missing.isEmpty, "route table entries missing from docs/openapi.yaml")
    }

    @Test func rolesAndSecurityMatchTheRouteTables() throws {
        let document = try OpenAPIDocument.shared()
        for operation in document.operations {
            if Self.openRoutes.contains(operation.route) {
                #expect(operation.isOpen, "\(operation.route) needs no token: it must say `security: []`")
                #expect(operation.roles == nil, "\(operation.route) needs no token: it must not list x-roles")
            } else {
                guard let spec = Self.specs[operation.route] else {
                    Issue.record("\(operation.route) needs a token but is in no RouteSpec table")
                    continue
                }
                #expect(!operation.isOpen, "\(operation.route) needs a token but says `security: []`")
                let documented = Set(operation.roles ?? [])
                #expect(documented == Set(spec.roles.map(\.rawValue)), "\(operation.route): x-roles \(documented.sorted()) but the route table allows \(spec.roles.map(\.rawValue).sorted())")
                #expect(operation.responses["401"] != nil, "\(operation.route) needs a token but documents no 401")
                if spec.roles != Set(Role.allCases) {
                    #expect(operation.responses["403"] != nil, "\(operation.route) refuses some roles but documents no 403")
                }
            }
        }
    }
}

/// The document's own rules: integers only, the error envelope, the statuses every input can
/// cause, request and response variants of one model agreeing.
@Suite("docs/openapi.yaml lints")
struct DocumentLintTests {
    @Test func everyReferenceResolves() throws {
        let document = try OpenAPIDocument.shared()
        for reference in document.allReferences() {
            #expect(document.resolve(reference) != nil, "unresolved \(reference)")
        }
    }

    @Test func numbersAreIntegersWithAFormat() throws {
        let document = try OpenAPIDocument.shared()
        for (pointer, schema) in document.allSchemas() {
            let types = (schema["type"] as? [String]) ?? [schema["type"] as? String].compactMap { $0 }
            #expect(!types.contains("number"), "\(pointer): `type: number`: every number of the API is an integer")
            if types.contains("integer") {
                #expect(["int32", "int64"].contains(schema["format"] as? String), "\(pointer): an integer needs `format: int64` (or int32 for Int32 fields)")
            }
        }
    }

    @Test func errorsUseTheEnvelopeAndInputsDocumentTheirRefusals() throws {
        let document = try OpenAPIDocument.shared()
        for operation in document.operations {
            for (status, _) in operation.responses {
                let code = Int(status) ?? 0
                guard code >= 400, let response = document.response(operation, status: code) else { continue }
                let schema = document.jsonSchema(of: response) as? [String: Any]
                if operation.route.path == CommonRoutes.readyz && code == 503 {
                    #expect(schema?["$ref"] as? String == "#/components/schemas/HealthBody")
                } else {
                    #expect(schema?["$ref"] as? String == "#/components/schemas/ErrorEnvelope", "\(operation.route) \(status) is not the error envelope")
                }
            }
            #expect(operation.responses["500"] != nil, "\(operation.route) documents no 500")
            if operation.hasRequestBody {
                #expect(operation.responses["400"] != nil, "\(operation.route) takes a body but documents no 400")
                #expect(operation.responses["413"] != nil, "\(operation.route) takes a body but documents no 413")
            }
            let integerQuery = operation.parameters.compactMap(document.dereferenced).contains {
                $0["in"] as? String == "query" && (($0["schema"] as? [String: Any])?["type"] as? String) == "integer"
            }
            if integerQuery { #expect(operation.responses["400"] != nil, "\(operation.route) has integer query parameters but documents no 400") }
            let pathParameters = operation.parameters.compactMap(document.dereferenced).filter { $0["in"] as? String == "path" }
            for parameter in pathParameters {
                #expect(operation.route.path.contains("{\(parameter["name"] as? String ?? "?")}"), "\(operation.route): path parameter \(parameter["name"] ?? "?") is not in the path")
            }
            let placeholders = RouteCoverageTests.matches(#"\{([a-z_]+)\}"#, in: operation.route.path).map { $0[1] }
            #expect(Set(placeholders) == Set(pathParameters.compactMap { $0["name"] as? String }), "\(operation.route): path placeholders and parameters differ")
        }
    }

    @Test(arguments: [("AuthorityGrant", "AuthorityGrantInput"), ("Fill", "FillInput")])
    func requestVariantsMatchTheirResponseModels(closed: String, open: String) throws {
        let document = try OpenAPIDocument.shared()
        let response = try #require(document.resolve("#/components/schemas/\(closed)") as? [String: Any])
        let request = try #require(document.resolve("#/components/schemas/\(open)") as? [String: Any])
        #expect(response["additionalProperties"] as? Bool == false, "\(closed) is a response model: additionalProperties: false")
        #expect(request["additionalProperties"] == nil, "\(open) is a request model: unknown fields are ignored, not refused")
        #expect(Set(response["required"] as? [String] ?? []) == Set(request["required"] as? [String] ?? []))
        #expect(Set((response["properties"] as? [String: Any] ?? [:]).keys) == Set((request["properties"] as? [String: Any] ?? [:]).keys))
    }
}
