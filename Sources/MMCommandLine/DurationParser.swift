import ArgumentParser
import Foundation

/// Durations on the command line: `250ms`, `2s`, `1m`, `1h`, or a bare number of seconds, as
/// whole milliseconds. A decimal fraction is accepted when the result is a whole number of
/// milliseconds (`1.5s`, `0.25m`); nothing else is: no sign but `+`, no exponent, no hex, no
/// inner spaces, no `inf`/`nan`, no value beyond `Int64.max` milliseconds.
public enum DurationParser {
    /// Longest suffix first, so `ms` is not read as `m`.
    static let units: [(suffix: String, milliseconds: Int64)] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)]

    /// Milliseconds in `text`, at least `minimum`; `option` names the flag in errors.
    public static func milliseconds(_ text: String, option: String, atLeast minimum: Int64 = 0) throws(DurationError) -> Int64 {
        func failure(_ problem: DurationError.Problem) -> DurationError { DurationError(option: option, text: text, problem: problem) }
        var number = Substring(text.trimmingCharacters(in: .whitespaces).lowercased())
        var factor: Int64 = 1_000
        if let unit = units.first(where: { number.hasSuffix($0.suffix) }) {
            number = number.dropLast(unit.suffix.count)
            factor = unit.milliseconds
        }
        if number.first == "+" { number = number.dropFirst() }
        if number.first == "-" { throw failure(.negative) }
        let parts = number.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let whole = parts[0]
        var fraction = parts.count > 1 ? String(parts[1]) : ""
        guard (whole + fraction).allSatisfy({ $0.isASCII && $0.isNumber }), !(whole + fraction).isEmpty else { throw failure(.malformed) }
        // "1.50s" is 1.5 s.
        while fraction.hasSuffix("0") { fraction.removeLast() }

        guard let wholeValue = whole.isEmpty ? 0 : Int64(whole) else { throw failure(.tooLarge) }
        var (total, overflow) = wholeValue.multipliedReportingOverflow(by: factor)
        guard !overflow else { throw failure(.tooLarge) }
        if !fraction.isEmpty {
            // A fraction of k digits (no trailing zero) is whole milliseconds only if 10^k divides
            // digits × factor; the largest factor, 3_600_000, is 2^7·3^2·5^5, and digits without
            // a trailing zero lack 2 or 5, so k ≤ 7. Longer fractions are finer than 1 ms.
            guard fraction.count <= 7, let digits = Int64(fraction) else { throw failure(.finerThanAMillisecond) }
            let scale = (0..<fraction.count).reduce(Int64(1)) { value, _ in value * 10 }
            let scaled = digits * factor
            guard scaled % scale == 0 else { throw failure(.finerThanAMillisecond) }
            (total, overflow) = total.addingReportingOverflow(scaled / scale)
            guard !overflow else { throw failure(.tooLarge) }
        }
        guard total >= minimum else { throw failure(.belowMinimum(minimum)) }
        return total
    }

    /// The same as a usage error (exit 64, with the command's usage), which is how
    /// ArgumentParser reports any other bad option value.
    public static func option(_ text: String, named option: String, atLeast minimum: Int64 = 0) throws(ValidationError) -> Int64 {
        do { return try milliseconds(text, option: option, atLeast: minimum) } catch { throw ValidationError(error.description) }
    }
}

public struct DurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Problem: Sendable, Equatable {
        case malformed
        case negative
        case tooLarge
        case finerThanAMillisecond
        case belowMinimum(Int64)
    }

    public var option: String
    public var text: String
    public var problem: Problem

    public init(option: String, text: String, problem: Problem) {
        self.option = option
        self.text = text
        self.problem = problem
    }

    public var description: String {
        switch problem {
        case .malformed: "\(option) takes a duration such as 250ms, 10s, 2m or 1h (a bare number is seconds); got '\(text)'"
        case .negative: "\(option) cannot be negative (got '\(text)')"
        case .tooLarge: "\(option) '\(text)' is too large (at most \(Int64.max) ms)"
        case .finerThanAMillisecond: "\(option) '\(text)' is not a whole number of milliseconds; give it in ms, e.g. 1500ms"
        case .belowMinimum(let minimum):
            minimum == 1 ? "\(option) must be longer than 0 (got '\(text)')" : "\(option) must be at least \(minimum) ms (got '\(text)')"
        }
    }
}
