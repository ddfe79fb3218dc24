import Foundation

/// Prices and PnL as money, the way the operator dashboard shows them (its `formatTicks` and
/// `sumTicks`): ticks × tick_size, exactly, with integer arithmetic only — never a floating
/// point value on the price path. `formatTicks(10005, tickSize: "0.01") == "100.05"`.
public enum PriceFormat {
    /// A tick size such as "0.05" as mantissa 5 and scale 2; nil unless a plain decimal.
    public struct TickSize: Sendable, Hashable {
        public var mantissa: Int64
        public var scale: Int

        public init?(_ text: String) {
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            let parts = trimmed.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
            guard let whole = parts.first, !whole.isEmpty, whole.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            let fraction = parts.count > 1 ? parts[1] : ""
            guard parts.count == 1 || !fraction.isEmpty, fraction.allSatisfy({ $0.isASCII && $0.isNumber }), fraction.count <= 18,
                  let mantissa = Int64(whole + fraction) else { return nil }
            self.mantissa = mantissa
            self.scale = fraction.count
        }
    }

    /// `value` × 10^-scale as a decimal with thousands separators ("-1,234.50").
    public static func scaled(_ value: Int64, scale: Int) -> String {
        let negative = value < 0
        // The magnitude as digits without negating (Int64.min has no positive counterpart).
        var digits = String(value.magnitude)
        var fraction = ""
        if scale > 0 {
            if digits.count < scale + 1 { digits = String(repeating: "0", count: scale + 1 - digits.count) + digits }
            fraction = "." + digits.suffix(scale)
            digits = String(digits.dropLast(scale))
        }
        var grouped = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { grouped.append(",") }
            grouped.append(digit)
        }
        return (negative ? "-" : "") + grouped + fraction
    }

    /// ticks × tick size; "N ticks" when the tick size is not a plain decimal or the product
    /// does not fit in 64 bits.
    public static func money(_ ticks: Int64, tickSize: String) -> String {
        guard let tick = TickSize(tickSize) else { return "\(ticks) ticks" }
        let (product, overflow) = ticks.multipliedReportingOverflow(by: tick.mantissa)
        return overflow ? "\(ticks) ticks" : scaled(product, scale: tick.scale)
    }

    /// Σ amounts[i] × tickSizes[i] at the finest scale among them (the dashboard's totals);
    /// nil when a tick size is not a plain decimal or the sum does not fit.
    public static func sum(_ items: [(amount: Int64, tickSize: String)]) -> String? {
        var parsed: [(Int64, TickSize)] = []
        for item in items {
            guard let tick = TickSize(item.tickSize) else { return nil }
            parsed.append((item.amount, tick))
        }
        let scale = parsed.map(\.1.scale).max() ?? 0
        var total: Int64 = 0
        for (amount, tick) in parsed {
            var factor: Int64 = tick.mantissa
            for _ in 0..<(scale - tick.scale) {
                let (next, overflow) = factor.multipliedReportingOverflow(by: 10)
                guard !overflow else { return nil }
                factor = next
            }
            let (term, overflow) = amount.multipliedReportingOverflow(by: factor)
            guard !overflow else { return nil }
            let (next, sumOverflow) = total.addingReportingOverflow(term)
            guard !sumOverflow else { return nil }
            total = next
        }
        return scaled(total, scale: scale)
    }
}
