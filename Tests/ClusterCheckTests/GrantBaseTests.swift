import Foundation
import MMCore
import PropertyBased
import Testing
@testable import ClusterCheck

/// `grants_never_overlap` on a compacted log (the coordinator's base + the retained events)
/// must say what it says on the whole log: the base is the fold of the pruned events, so
/// continuing from it is continuing the same fold.
@Suite("grants never overlap, incrementally from a compaction base")
struct GrantBaseTests {
    /// The base the coordinator would store after pruning `events[..<cut]`, through its JSON
    /// form (what SQLite and etcd hold and `GET /v1/events/base` answers).
    static func base(_ events: [ClusterEvent], cut: Int) throws -> EventLogBase? {
        guard cut > 0 else { return nil }
        var fold = GrantLogFold()
        for event in events[..<cut] { _ = fold.apply(event) }
        let base = EventLogBase(compactedThroughSeq: events[cut - 1].seq, headSeq: events.last?.seq ?? 0, grants: fold)
        return try MMJSON.decode(EventLogBase.self, from: try MMJSON.encode(base))
    }

    /// Everything but the evidence lines, which for pruned violations are only counted.
    static func verdict(_ result: InvariantResult) -> (Bool, [String: Int64]) {
        var counts = result.counts
        counts["compacted_through_seq"] = nil
        return (result.held, counts)
    }

    /// Arbitrary, mostly inconsistent logs: any kind, symbol, node, token and time, so every
    /// branch of the fold (overlaps, repeated tokens, orphan ends, adoption, restarts) is hit.
    static func chaoticEvents(_ codes: [Int64]) -> [ClusterEvent] {
        let kinds = ["grant", "grant", "release", "grant_expired", "revoke", "adopt", "coordinator_started", "join", "rebalance"]
        var now: Int64 = 1_700_000_000_000
        return codes.enumerated().map { index, code in
            now += code % 700
            let kind = kinds[Int(code / 700 % Int64(kinds.count))]
            let symbol = ["ACME", "BOLT", "CRUX"][Int(code / 6_300 % 3)]
            let node = "n\(code / 18_900 % 3 + 1)"
            let token = 1 + code / 56_700 % 6
            let expires = now + code / 340_200 % 3_000
            return ClusterEvent(
                seq: Int64(index + 1), tsMs: now, kind: kind, symbol: kind == "coordinator_started" ? nil : symbol, node: node,
                fencingToken: kind == "join" ? nil : token, expiresAtMs: expires, detail: "")
        }
    }

    @Test("table: a violation inside the retained window is found with its evidence; one before it is still counted")
    func table() throws {
        let clean = Fixtures.events(grantSteps([3, 9_018_001, 27_054_000, 4, 1_503_000, 7]))
        #expect(Invariants.grantsNeverOverlap(events: clean).held)
        // A clean grant of ACME long after everything, then a second one while it is open.
        var late = clean
        let later = late.last!.tsMs + 10_000
        late.append(ClusterEvent(seq: Int64(late.count + 1), tsMs: later, kind: "grant", symbol: "ACME", node: "n9", fencingToken: 99, detail: ""))
        late.append(ClusterEvent(seq: Int64(late.count + 1), tsMs: later + 1, kind: "grant", symbol: "ACME", node: "n8", fencingToken: 100, detail: ""))
        for cut in 0...(late.count - 1) {
            let base = try Self.base(late, cut: cut)
            let incremental = Invariants.grantsNeverOverlap(base: base, events: Array(late[cut...]))
            let full = Invariants.grantsNeverOverlap(events: late)
            #expect(Self.verdict(incremental) == Self.verdict(full), "cut \(cut)")
            #expect(!incremental.held && incremental.counts["overlapping"] == 1)
            // Even when the grant it overlaps was pruned (cut = count - 1): the base holds it open.
            #expect(incremental.offending.contains { $0.contains("grant #100 to n8") && $0.contains("#99 of n9") }, "cut \(cut): \(incremental.offending)")
        }
        // Every event pruned but the violation's: the base carries the open grant it overlaps.
        let base = try Self.base(late, cut: late.count - 1)
        #expect(base?.grants.openGrants ?? 0 >= 1)
        // A violation among the pruned events: counted, said to be pruned, the check still fails.
        let pruned = try Self.base(late, cut: late.count)
        let afterwards = Invariants.grantsNeverOverlap(base: pruned, events: [])
        #expect(!afterwards.held && afterwards.counts["overlapping"] == 1)
        #expect(afterwards.offending.first?.contains("pruned through seq \(late.count)") == true, "\(afterwards.offending)")
        #expect(afterwards.counts["compacted_through_seq"] == Int64(late.count))
    }

    @Test("table: a history the CLI reads (base + events) is judged like the array overload")
    func historyOverload() throws {
        let events = Fixtures.events(grantSteps([3, 9_018_001, 27_054_000]))
        let history = CoordinatorEventHistory(base: try Self.base(events, cut: 3), events: Array(events[3...]))
        #expect(Self.verdict(Invariants.grantsNeverOverlap(events: history)) == Self.verdict(Invariants.grantsNeverOverlap(events: events)))
        // Events at or below the base's seq (a racing reader) are not folded twice.
        let overlapping = CoordinatorEventHistory(base: history.base, events: Array(events[1...]))
        #expect(Self.verdict(Invariants.grantsNeverOverlap(events: overlapping)) == Self.verdict(Invariants.grantsNeverOverlap(events: events)))
    }

    @Test("property: clean logs with an injected overlap — base + tail equals the whole log at every cut")
    func injectedOverlaps() async {
        await propertyCheck(count: 200, input: grantCodes, Gen.int(in: 0...10_000), Gen.int(in: 0...10_000), Gen.int64(in: 1...1_000)) { codes, pick, cutPick, earlier in
            var events = Fixtures.events(grantSteps(codes))
            let grantIndexes = events.indices.filter { events[$0].kind == "grant" && (events[$0].fencingToken ?? 0) > 1 }
            var injectedAt: Int?
            if !grantIndexes.isEmpty {
                // Start the picked grant `earlier` ms before the previous holder's grant began:
                // before its end, whatever that was, so it overlaps.
                let index = grantIndexes[pick % grantIndexes.count]
                let symbol = events[index].symbol
                if let previous = events[..<index].last(where: { $0.kind == "grant" && $0.symbol == symbol }) {
                    events[index].tsMs = previous.tsMs - earlier
                    injectedAt = index
                }
            }
            let full = Invariants.grantsNeverOverlap(events: events)
            let cut = cutPick % (events.count + 1)
            let base: EventLogBase?
            do { base = try Self.base(events, cut: cut) } catch {
                Issue.record("the base did not round-trip through JSON: \(error)")
                return
            }
            let incremental = Invariants.grantsNeverOverlap(base: base, events: Array(events[cut...]))
            #expect(Self.verdict(incremental) == Self.verdict(full), "cut \(cut) of \(events.count)")
            if let injectedAt {
                #expect(!incremental.held)
                if injectedAt >= cut {
                    let seq = events[injectedAt].seq
                    #expect(incremental.offending.contains { $0.contains("(event \(seq))") }, "overlap at seq \(seq) inside the window: \(incremental.offending)")
                }
            } else {
                #expect(incremental.held)
            }
        }
    }

    @Test("property: arbitrary (mostly broken) logs — base + tail equals the whole log at every cut")
    func chaoticLogs() async {
        await propertyCheck(count: 300, input: Gen.int64(in: 0...1_000_000_000).array(of: 1...60), Gen.int(in: 0...10_000)) { codes, cutPick in
            let events = Self.chaoticEvents(codes)
            let cut = cutPick % (events.count + 1)
            let base: EventLogBase?
            do { base = try Self.base(events, cut: cut) } catch {
                Issue.record("the base did not round-trip through JSON: \(error)")
                return
            }
            let full = Invariants.grantsNeverOverlap(events: events)
            let incremental = Invariants.grantsNeverOverlap(base: base, events: Array(events[cut...]))
            #expect(Self.verdict(incremental) == Self.verdict(full), "cut \(cut): \(incremental.summary) vs \(full.summary)")
            // Every offending line of the retained window is the whole log's line too.
            let tailLines = incremental.offending.filter { !$0.contains("pruned through") }
            #expect(Set(tailLines).isSubset(of: Set(Invariants.grantsNeverOverlap(events: events).offending)) || full.offending.count == InvariantResult.evidenceLimit)
        }
    }
}
