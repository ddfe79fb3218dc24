import Foundation
import MMTestSupport

/// Headless Chromium (Debian's `chromium`, installed by Scripts/install-deps), driven from its
/// command line: load a URL, let the page run for a virtual-time budget, return the DOM.
enum Chromium {
    static let path = ProcessInfo.processInfo.environment["CHROMIUM"] ?? "/usr/bin/chromium"

    static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: path) }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The DOM after `budgetMs` of virtual time. Virtual time only advances while no request
    /// is in flight, so the page's polling runs to completion however slow the machine is.
    static func dumpDOM(_ url: String, budgetMs: Int = 3_000) async throws -> String {
        try await run(["--virtual-time-budget=\(budgetMs)", "--dump-dom", url])
    }

    static func screenshot(_ url: String, to path: String, budgetMs: Int = 3_000, size: String = "1400,1000") async throws {
        try? FileManager.default.removeItem(atPath: path)
        _ = try await run(["--virtual-time-budget=\(budgetMs)", "--window-size=\(size)", "--hide-scrollbars", "--screenshot=\(path)", url])
        guard FileManager.default.fileExists(atPath: path) else { throw Failure(description: "chromium wrote no screenshot to \(path)") }
    }

    static func run(_ arguments: [String], timeout: Duration = .seconds(60)) async throws -> String {
        guard isInstalled else { throw Failure(description: "\(path) not found: run Scripts/install-deps (Debian package 'chromium')") }
        let profile = NSTemporaryDirectory() + "mm-gui-chromium-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: profile) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--disable-extensions", "--disable-background-networking", "--user-data-dir=\(profile)",
        ] + arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Read while it runs (a full pipe would block chromium), on plain threads: blocking
        // reads on the cooperative pool (two threads on this machine) would starve every task.
        async let stdout = readToEnd(output.fileHandleForReading)
        async let stderr = readToEnd(errors.fileHandleForReading)
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw Failure(description: "chromium did not finish within \(timeout): \(arguments)")
        }
        let text = String(decoding: await stdout, as: UTF8.self)
        let log = String(decoding: await stderr, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw Failure(description: "chromium exited with \(process.terminationStatus): \(log.suffix(2_000))")
        }
        return text
    }
}

private func readToEnd(_ handle: FileHandle) async -> Data {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: handle.readDataToEndOfFile()) }.start()
    }
}

/// Just enough of an HTML reader for the rendered DOM: elements by tag with their
/// attributes and their text up to the matching close tag (no nesting of the same tag,
/// which holds for the rows and list items the tests look at).
struct DOMElement {
    var tag: String
    var attributes: [String: String]
    var innerHTML: String

    subscript(_ name: String) -> String? { attributes[name] }

    /// The visible text, tags removed and entities decoded.
    var text: String {
        var text = innerHTML.replacingOccurrences(of: "<[^>]+>", with: " ", options: .regularExpression)
        for (entity, character) in [("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&nbsp;", " "), ("&#39;", "'")] {
            text = text.replacingOccurrences(of: entity, with: character)
        }
        return text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }
}

enum DOM {
    static func elements(_ tag: String, in html: String) -> [DOMElement] {
        var found: [DOMElement] = []
        let open = try! NSRegularExpression(pattern: "<\(tag)(\\s[^>]*)?>", options: [.caseInsensitive])
        let attribute = try! NSRegularExpression(pattern: "([a-zA-Z_:][-a-zA-Z0-9_:.]*)=\"([^\"]*)\"")
        let text = html as NSString
        for match in open.matches(in: html, range: NSRange(location: 0, length: text.length)) {
            var attributes: [String: String] = [:]
            if match.range(at: 1).location != NSNotFound {
                let raw = text.substring(with: match.range(at: 1))
                for pair in attribute.matches(in: raw, range: NSRange(location: 0, length: (raw as NSString).length)) {
                    let name = (raw as NSString).substring(with: pair.range(at: 1)).lowercased()
                    let value = (raw as NSString).substring(with: pair.range(at: 2))
                        .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
                    attributes[name] = value
                }
            }
            let bodyStart = match.range.location + match.range.length
            let rest = text.substring(from: bodyStart) as NSString
            let close = rest.range(of: "</\(tag)>", options: .caseInsensitive)
            let inner = close.location == NSNotFound ? "" : rest.substring(to: close.location)
            found.append(DOMElement(tag: tag, attributes: attributes, innerHTML: inner))
        }
        return found
    }

    static func body(_ html: String) -> DOMElement? { elements("body", in: html).first }
}
