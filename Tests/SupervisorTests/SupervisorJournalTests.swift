import MMCore
import Testing
@testable import Supervisor

/// The supervisor's event log as `GET /v1/events` pages it: forward from a cursor, or its
/// newest entries in one read (`tail=N`), over a log that has dropped its oldest entries.
struct SupervisorJournalTests {
    @Test func tailIsTheNewestEntriesOfWhatIsHeld() {
        let journal = SupervisorJournal(clock: ManualClock(startMs: 1_000))
        #expect(journal.eventPage(.tail(5)) == EventPage(events: [], headSeq: 0))
        let recorded = SupervisorJournal.eventCapacity + 5
        for index in 1...recorded { journal.record("note", process: nil, "event \(index)") }

        let tail = journal.eventPage(.tail(5))
        #expect(tail.headSeq == Int64(recorded))
        #expect(tail.events.map(\.seq) == Array(Int64(recorded - 4)...Int64(recorded)))
        #expect(tail.events.last?.detail == "event \(recorded)")
        // Past what is held: everything held, oldest first, the same as paging from 0.
        let held = journal.eventPage(.tail(SupervisorJournal.eventCapacity))
        #expect(held.events.count == SupervisorJournal.eventCapacity && held.events.first?.seq == 6)
        #expect(held.events == journal.eventPage(.after(0, limit: SupervisorJournal.eventCapacity)).events)
        #expect(journal.eventPage(.after(0, limit: 3)).events.map(\.seq) == [6, 7, 8])
    }
}
