import MMCommandLine
import Testing

@Suite struct DurationParserTests {
    @Test(arguments: [
        ("250ms", 250), ("2s", 2_000), ("1m", 60_000), ("1h", 3_600_000), ("90", 90_000), ("0", 0), ("0s", 0),
        ("10S", 10_000), ("500MS", 500), (" 3s ", 3_000), ("\t7ms", 7), ("+5s", 5_000), ("007s", 7_000),
        // Fractions, as mmctl has always accepted them, when they are whole milliseconds.
        ("1.5s", 1_500), ("0.25m", 15_000), (".5s", 500), ("1.50s", 1_500), ("2.", 2_000), ("1.5", 1_500),
        ("0.0000125h", 45), ("1.000ms", 1),
        ("9223372036854775807ms", Int64.max), ("2562047788015h", 2_562_047_788_015 * 3_600_000),
    ] as [(String, Int64)])
    func accepts(text: String, milliseconds: Int64) throws {
        #expect(try DurationParser.milliseconds(text, option: "--grace") == milliseconds)
    }

    @Test(arguments: [
        ("", DurationError.Problem.malformed), ("s", .malformed), ("ms", .malformed), (".", .malformed), ("soon", .malformed),
        ("10 s", .malformed), ("1.5.2s", .malformed), ("1e3s", .malformed), ("0x10s", .malformed), ("inf", .malformed),
        ("nan", .malformed), ("infs", .malformed), ("5d", .malformed), ("5sec", .malformed), ("1,5s", .malformed),
        ("1.5s garbage", .malformed), ("١٢s", .malformed), ("++5s", .malformed), ("5s5", .malformed),
        ("-1s", .negative), ("-0", .negative), (" -250ms", .negative),
        ("9223372036854775808ms", .tooLarge), ("2562047788016h", .tooLarge), ("99999999999999999999s", .tooLarge),
        ("9223372036854775807.5s", .tooLarge),
        ("1.5ms", .finerThanAMillisecond), ("0.0001s", .finerThanAMillisecond), ("0.00000001h", .finerThanAMillisecond),
        ("0.1234567891s", .finerThanAMillisecond),
    ] as [(String, DurationError.Problem)])
    func rejects(text: String, problem: DurationError.Problem) {
        #expect(throws: DurationError(option: "--grace", text: text, problem: problem)) {
            try DurationParser.milliseconds(text, option: "--grace")
        }
    }

    @Test func minimumIsEnforcedAndNamed() throws {
        #expect(try DurationParser.milliseconds("1ms", option: "--duration", atLeast: 1) == 1)
        let error = #expect(throws: DurationError.self) { try DurationParser.milliseconds("0s", option: "--duration", atLeast: 1) }
        #expect(error?.problem == .belowMinimum(1))
        #expect(error?.description == "--duration must be longer than 0 (got '0s')")
    }

    @Test func errorsNameTheOptionAndTheFix() {
        let malformed = DurationError(option: "--interval", text: "soon", problem: .malformed)
        #expect(malformed.description == "--interval takes a duration such as 250ms, 10s, 2m or 1h (a bare number is seconds); got 'soon'")
        let fine = DurationError(option: "--grace", text: "1.5ms", problem: .finerThanAMillisecond)
        #expect(fine.description == "--grace '1.5ms' is not a whole number of milliseconds; give it in ms, e.g. 1500ms")
    }

    @Test func usageVariantCarriesTheSameMessage() {
        do {
            _ = try DurationParser.option("-3s", named: "--timeout")
            Issue.record("a negative duration must be refused")
        } catch {
            #expect(error.message == "--timeout cannot be negative (got '-3s')")
        }
    }
}
