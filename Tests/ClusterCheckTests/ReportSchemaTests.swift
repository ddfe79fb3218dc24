import Foundation
import MMCore
import Testing
@testable import ClusterCheck

/// `mmctl check -o json` and `mmctl drill -o json` carry `"schema_version": 1`, like status.
@Suite struct ReportSchemaTests {
    let check = CheckReport(ok: true, exitCode: 0, checkedAtMs: 5, elapsedMs: 3, invariants: [], unreachable: [])

    func object(_ data: Data) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func checkReportCarriesSchemaVersion1() throws {
        let json = try object(try MMJSON.encode(check))
        #expect(json["schema_version"] as? Int == 1)
        #expect(try MMJSON.decode(CheckReport.self, from: try MMJSON.encode(check)) == check)
    }

    @Test func drillReportAndItsCheckCarrySchemaVersion1() throws {
        let drill = DrillReport(
            ok: true, exitCode: 0, seed: 7, durationMs: 1_000, faultsApplied: 0, perKind: [], longestUnquotedGapMs: 0, longestUnquotedSymbol: nil,
            orphanQuoteLifetimeMaxMs: nil, fillsLost: 0, fillsDoubleCounted: 0, overlappingGrants: 0, staleAccepted: 0, goals: [], faults: [],
            check: check, problems: [])
        let json = try object(try MMJSON.encode(drill))
        #expect(json["schema_version"] as? Int == 1)
        #expect((json["check"] as? [String: Any])?["schema_version"] as? Int == 1)
    }
}
