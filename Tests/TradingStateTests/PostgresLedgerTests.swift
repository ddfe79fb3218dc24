import AsyncPrimitives
import Foundation
import MMCore
import MMTestSupport
import PostgresNIO
import Testing
@testable import TradingState

extension LedgerStorageTests {
    /// What only the PostgreSQL ledger has to show: conflicts that never abort the valid
    /// prefix, writers in several processes that never interleave, a schema newer than this
    /// build, and connection errors an operator can act on.
    @Suite("PostgreSQL ledger")
    struct PostgresLedgerTests {
        enum Conflict: String, CaseIterable, Sendable {
            case conflictingDuplicate = "same fill_id, other qty"
            case seqConflict = "same seq, other fill_id"
        }

        @Test("a batch with a conflicting fill in the middle commits exactly the valid prefix", arguments: Conflict.allCases)
        func validPrefixCommits(_ conflict: Conflict) async throws {
            try await withLedgerStore(.postgres) { store in
                let ledger = try await store.open()
                switch conflict {
                case .conflictingDuplicate: _ = try await ledger.record([makeFill(3, "BOLT", qty: 7)])
                case .seqConflict: _ = try await ledger.record([makeFill(3, "BOLT", qty: 7, id: "OTHER")])
                }
                let batch = [makeFill(1, price: 101, qty: 2), makeFill(2, "BOLT", .sell, qty: 1), makeFill(3, "BOLT", qty: 1), makeFill(4), makeFill(5)]
                let commit = try await ledger.ingest(batch)
                #expect(commit.recorded == ["F1", "F2"])
                #expect(commit.cursor == 2)
                #expect(commit.view.version == 3)
                switch (conflict, commit.stoppedAt) {
                case (.conflictingDuplicate, .conflictingDuplicate(let id, let fields, _, _)?):
                    #expect(id == "F3")
                    #expect(fields == ["qty"])
                case (.seqConflict, .seqConflict(let seq, let stored, let presented)?):
                    #expect(seq == 3 && stored == "OTHER" && presented == "F3")
                default:
                    Issue.record("expected a \(conflict.rawValue) at seq 3, got \(String(describing: commit.stoppedAt))")
                }

                // What another process reads: the prefix committed, nothing after the conflict.
                let other = try await store.repository()
                let stored = try await other.ledger(symbol: nil, after: 0, limit: 10).fills
                #expect(stored.map(\.seq) == [1, 2, 3])
                #expect(stored.last?.qty == 7)
                #expect(try await other.fill(seq: 4) == nil)
                let state = try await other.cursorState()
                #expect(state.cursor == 2)
                #expect(state.version == 3)
                let view = try await other.positions()
                #expect(view == commit.view)
                #expect(economicMismatches(view, distinct: stored).isEmpty)

                // The same batch again: the prefix is duplicates now, the conflict still stops it.
                let again = try await ledger.ingest(Array(batch[2...]))
                #expect(again.recorded.isEmpty && again.cursor == 2 && again.stoppedAt != nil)
            }
        }

        @Test("two repositories (two processes) writing at once never interleave a batch and never count a fill twice")
        func concurrentWritersSerialize() async throws {
            try await withLedgerStore(.postgres, label: "concurrent") { store in
                var random = SplitMix64(seed: 14)
                let fills: [Fill] = (1...240).map { seq in
                    makeFill(
                        Int64(seq), testSymbols[Int(random.next() % 3)], random.next() % 2 == 0 ? .buy : .sell,
                        price: Int64(95 + random.next() % 10), qty: Int64(1 + random.next() % 6))
                }
                let writers = [try await store.postgresRepository(), try await store.postgresRepository()]
                let commits = LockedBox<[(recorded: [String], version: Int64)]>([])

                // Push: both writers record overlapping windows of the first half at once, each
                // window also redelivering fills from before it.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (index, writer) in writers.enumerated() {
                        group.addTask {
                            var random = SplitMix64(seed: UInt64(100 + index))
                            var start = 0
                            while start < 120 {
                                let end = min(120, start + 1 + Int(random.next() % 15))
                                var batch = Array(fills[start..<end])
                                if start > 0 { batch.append(fills[Int(random.next() % UInt64(start))]) }
                                let commit = try await writer.record(batch.shuffled(using: &random), atMs: 1)
                                commits.update { $0.append((commit.recorded, commit.view.version)) }
                                start = max(start + 1, end - Int(random.next() % 3))
                            }
                        }
                    }
                    try await group.waitForAll()
                }

                // Pull: both writers ingest the whole log from the stored cursor at once; a
                // batch planned against a cursor the other one already moved is refused whole.
                let refusals = LockedBox(0)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (index, writer) in writers.enumerated() {
                        group.addTask {
                            var random = SplitMix64(seed: UInt64(200 + index))
                            while true {
                                let cursor = Int(try await writer.cursorState().cursor)
                                if cursor == fills.count { return }
                                let batch = Array(fills[cursor..<min(fills.count, cursor + 1 + Int(random.next() % 40))])
                                do {
                                    let commit = try await writer.ingest(batch, atMs: 2)
                                    #expect(commit.stoppedAt == nil)
                                    commits.update { $0.append((commit.recorded, commit.view.version)) }
                                } catch LedgerRejection.notContiguous {
                                    refusals.update { $0 += 1 }
                                }
                            }
                        }
                    }
                    try await group.waitForAll()
                }

                let all = commits.value
                let recorded = all.flatMap(\.recorded)
                #expect(recorded.count == fills.count, "every fill recorded exactly once across both writers")
                #expect(Set(recorded) == Set(fills.map(\.fillId)))

                // Each commit's new fills hold consecutive applied versions ending at the
                // version it returned: no other batch's fill was applied in between.
                let versionRows = try await store.sql("SELECT fill_id || ' ' || applied_version FROM fills;")
                var appliedVersion: [String: Int64] = [:]
                for line in versionRows.split(separator: "\n") {
                    let parts = line.split(separator: " ")
                    if parts.count == 2, let version = Int64(parts[1]) { appliedVersion[String(parts[0])] = version }
                }
                #expect(appliedVersion.count == fills.count)
                for commit in all where !commit.recorded.isEmpty {
                    let expected = Array((commit.version - Int64(commit.recorded.count) + 1)...commit.version)
                    #expect(commit.recorded.map { appliedVersion[$0] ?? -1 } == expected, "batch \(commit.recorded) interleaved")
                }

                for writer in writers {
                    let view = try await writer.positions()
                    #expect(view.version == Int64(fills.count))
                    #expect(view.positions.map(\.fillCount).reduce(0, +) == Int64(fills.count))
                    #expect(economicMismatches(view, distinct: fills).isEmpty)
                    #expect(try await writer.cursorState().cursor == Int64(fills.count))
                }
                #expect(try await writers[0].ledger(symbol: nil, after: 0, limit: 1_000).fills == fills)
            }
        }

        @Test("a writer waits for the advisory lock another connection holds")
        func writerWaitsForLock() async throws {
            try await withLedgerStore(.postgres, label: "lock") { store in
                let holder = try await store.postgresRepository()
                let writer = try await store.postgresRepository()
                let locked = AsyncStream<Void>.makeStream()
                let release = AsyncStream<Void>.makeStream()
                let finished = LockedBox(false)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        // Another process in the middle of a batch: the lock taken, not yet committed.
                        try await holder.client.withTransaction(logger: Logger(label: "test")) { connection in
                            _ = try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresLedgerRepository.writerLockKey))", logger: Logger(label: "test"))
                                .collect()
                            locked.continuation.yield()
                            for await _ in release.stream { break }
                        }
                    }
                    for await _ in locked.stream { break }
                    group.addTask {
                        _ = try await writer.ingest([makeFill(1)], atMs: 1)
                        finished.value = true
                    }
                    try await Task.sleep(for: .milliseconds(400))
                    #expect(finished.value == false, "the batch went through while another writer held the lock")
                    release.continuation.yield()
                    try await group.waitForAll()
                }
                #expect(finished.value)
                #expect(try await writer.cursorState().cursor == 1)
            }
        }

        @Test("a ledger whose schema is newer than this build is refused, and left as it is")
        func newerSchemaRefused() async throws {
            try await withLedgerStore(.postgres, label: "schema") { store in
                let ledger = try await store.open()
                _ = try await ledger.record([makeFill(1)])
                try await store.sql("INSERT INTO schema_version (version, description, applied_at_ms) VALUES (99, 'from a newer build', 0);")
                do {
                    _ = try await store.postgresRepository()
                    Issue.record("a ledger at schema version 99 was opened")
                } catch let error as PostgresLedgerError {
                    guard case .schemaTooNew(let found, let known, _) = error else {
                        Issue.record("expected schemaTooNew, got \(error)")
                        return
                    }
                    #expect(found == 99)
                    #expect(known == PostgresLedgerRepository.knownSchemaVersion)
                    #expect("\(error)".contains("schema version 99"))
                }
                #expect(try await store.sql("SELECT count(*) FROM fills;").trimmingCharacters(in: .whitespacesAndNewlines) == "1")
            }
        }

        @Test("a wrong password is a typed error naming host and user, never the password")
        func wrongPassword() async throws {
            try await withPostgres { server in
                let wrong = "not-the-password-\(UInt32.random(in: 0...UInt32.max))"
                let settings = try PostgresLedgerSettings(
                    host: server.host, port: server.port, user: server.user, password: wrong, database: server.database, tls: .disable)
                do {
                    _ = try await PostgresLedgerRepository.open(settings: settings, symbols: testSymbols)
                    Issue.record("a wrong password was accepted")
                } catch let error as PostgresLedgerError {
                    guard case .authenticationFailed(let host, let port, let user, _) = error else {
                        Issue.record("expected authenticationFailed, got \(error)")
                        return
                    }
                    #expect(host == server.host && port == server.port && user == server.user)
                    #expect("\(error)".contains("\(server.host):\(server.port)") && "\(error)".contains("user '\(server.user)'"))
                    for text in ["\(error)", String(reflecting: error), error.localizedDescription] {
                        #expect(!text.contains(wrong), "the password leaked into: \(text)")
                    }
                }
            }
        }

        @Test("the URL and the password file connect; an unreachable port is a typed error")
        func urlAndPasswordFile() async throws {
            try await withPostgres { server in
                let schema = "t_url_\(UInt32.random(in: 0...UInt32.max))"
                let settings = try PostgresLedgerSettings(url: server.url + "?schema=\(schema)", passwordFile: server.passwordFile)
                #expect(settings.description == "postgres://mm@127.0.0.1:\(server.port)/mm?schema=\(schema)")
                let repository = try await PostgresLedgerRepository.open(settings: settings, symbols: testSymbols)
                #expect(try await repository.schemaVersion() == PostgresLedgerRepository.knownSchemaVersion)
                #expect(try await repository.positions().positions.map(\.symbol) == testSymbols)
                await repository.close()

                var closed = try PostgresLedgerSettings(url: "postgres://mm@127.0.0.1:\(PortAllocator.portBase() + 7)/mm", passwordFile: server.passwordFile)
                closed.connectTimeout = .seconds(2)
                let error = await #expect(throws: PostgresLedgerError.self) {
                    _ = try await PostgresLedgerRepository.open(settings: closed, symbols: testSymbols)
                }
                guard case .unreachable(let host, let port, _)? = error else {
                    Issue.record("expected unreachable, got \(String(describing: error))")
                    return
                }
                #expect(host == "127.0.0.1" && port == closed.port && "\(error!)".contains("is unreachable"))
            }
        }

        @Test("a server that dies is reported as a typed error, and the repository recovers when it is back")
        func serverOutage() async throws {
            // A server of its own: this test kills it.
            try await withPostgresServer(label: "outage") { server in
                var settings = try PostgresLedgerSettings(
                    host: server.host, port: server.port, user: server.user, password: server.password, database: server.database, tls: .disable)
                settings.operationTimeout = .seconds(3)
                settings.connectTimeout = .seconds(1)
                let repository = try await PostgresLedgerRepository.open(settings: settings, symbols: testSymbols)
                _ = try await repository.ingest([makeFill(1)], atMs: 1)
                await server.kill()
                do {
                    _ = try await repository.ingest([makeFill(2)], atMs: 2)
                    Issue.record("ingest succeeded with the server dead")
                } catch let error as PostgresLedgerError {
                    switch error {
                    case .unreachable, .connectionLost, .commitOutcomeUnknown, .timedOut: break
                    default: Issue.record("unexpected error \(error)")
                    }
                    #expect("\(error)".contains("\(server.host):\(server.port)"))
                }
                try await server.restart()
                // The pool reconnects on its own; the failed batch was never half applied.
                let recovered = await eventually(timeout: .seconds(15)) {
                    (try? await repository.ingest([makeFill(2)], atMs: 3)) != nil
                }
                #expect(recovered)
                #expect(try await repository.cursorState().cursor == 2)
                #expect(try await repository.positions().version == 2)
                await repository.close()
            }
        }
    }
}

@Suite("PostgreSQL ledger settings")
struct PostgresLedgerSettingsTests {
    @Test("a URL with a password is refused without repeating it")
    func passwordInURL() {
        let error = #expect(throws: PostgresLedgerError.self) {
            _ = try PostgresLedgerSettings(url: "postgres://mm:s3cr3t-pw@db.example:5433/ledger", passwordFile: nil)
        }
        #expect(error == .passwordInURL(url: "postgres://mm:***@db.example:5433/ledger"))
        #expect(!"\(String(describing: error))".contains("s3cr3t-pw"))
    }

    @Test("URL parts, defaults and mistakes")
    func parsing() throws {
        let settings = try PostgresLedgerSettings(url: "postgresql://trader@db.example/ledger?sslmode=verify-full&connect_timeout=3", passwordFile: nil)
        #expect(settings.host == "db.example" && settings.port == 5432 && settings.user == "trader" && settings.database == "ledger")
        #expect(settings.tls == .verifyFull && settings.connectTimeout == .seconds(3) && settings.schema == nil)
        for bad in [
            "mysql://u@h/db", "postgres://h:5432/db", "postgres://u@h:5432/", "postgres://u@h/db?sslmode=maybe",
            "postgres://u@h/db?schema=Bad-Name", "postgres://u@h/db?pool=3",
        ] {
            #expect(throws: PostgresLedgerError.self, "\(bad)") { _ = try PostgresLedgerSettings(url: bad, passwordFile: nil) }
        }
    }

    @Test("the password file: read without its newline; a missing one is named, its contents never")
    func passwordFile() throws {
        let directory = NSTemporaryDirectory() + "mm-state-pgsettings-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/password"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("hunter2-xyz\n".utf8)))
        let settings = try PostgresLedgerSettings(url: "postgres://mm@localhost/mm", passwordFile: path)
        #expect(settings.password?.value == "hunter2-xyz")
        for text in ["\(settings)", String(reflecting: settings), "\(String(describing: settings.password))"] {
            #expect(!text.contains("hunter2"), "password shown in \(text)")
        }
        #expect(throws: PostgresLedgerError.passwordFileUnreadable(path: directory + "/none", reason: "no such file")) {
            _ = try PostgresLedgerSettings(url: "postgres://mm@localhost/mm", passwordFile: directory + "/none")
        }
    }
}
