import AsyncPrimitives
import EtcdKit
import MMTestSupport
import Testing

/// Reads, writes and transactions against a real one-member etcd 3.4.
@Suite struct EtcdKeyValueTests {
    @Test func putThenRangeOfOneKeyAndOfAPrefix() async throws {
        try await withEtcdCluster(label: "kv") { cluster in
            let client = try EtcdTesting.client(cluster)
            let created = try await client.put("mm/a", "1")
            for (key, value) in [("mm/b", "2"), ("mm/c/d", "3"), ("ml", "before the prefix"), ("mn", "after the prefix")] {
                try await client.put(key, value)
            }

            let first = try #require(try await client.get("mm/a"))
            #expect(first.valueString == "1")
            #expect(first.version == 1)
            #expect(first.createRevision == created.header.revision)
            #expect(first.modRevision == created.header.revision)
            #expect(first.lease == 0)

            let overwritten = try await client.put(EtcdPutRequest("mm/a", "1b", previousKeyValue: true))
            #expect(overwritten.previous?.valueString == "1")
            let second = try #require(try await client.get("mm/a"))
            #expect(second.valueString == "1b")
            #expect(second.version == 2)
            #expect(second.createRevision == first.createRevision)
            #expect(second.modRevision == overwritten.header.revision)
            #expect(second.modRevision > first.modRevision)

            let prefix = try await client.range(.prefix("mm/"))
            #expect(prefix.keyValues.map(\.keyString) == ["mm/a", "mm/b", "mm/c/d"])
            #expect(prefix.keyValues.map(\.valueString) == ["1b", "2", "3"])
            #expect(prefix.count == 3)
            #expect(!prefix.more)

            let limited = try await client.range(.prefix("mm/", limit: 2))
            #expect(limited.keyValues.map(\.keyString) == ["mm/a", "mm/b"])
            #expect(limited.count == 3)
            #expect(limited.more)

            #expect(try await client.get("mm/absent") == nil)
            let empty = try await client.range(.prefix("nothing/"))
            #expect(empty.keyValues.isEmpty && empty.count == 0)

            let deleted = try await client.deleteRange(.prefix("mm/", previousKeyValues: true))
            #expect(deleted.deleted == 3)
            #expect(deleted.previous.map(\.keyString) == ["mm/a", "mm/b", "mm/c/d"])
            #expect(try await client.range(.prefix("m")).keyValues.map(\.keyString) == ["ml", "mn"])
        }
    }

    /// Keys and values are bytes: base64 on the wire must round-trip any of them, and an empty
    /// value (which the gateway leaves out of its answer) must read back as empty.
    @Test func binaryKeysAndEmptyValuesRoundTrip() async throws {
        try await withEtcdCluster(label: "bytes") { cluster in
            let client = try EtcdTesting.client(cluster)
            let key: [UInt8] = [0x00, 0xFF, 0x80, 0x2F, 0x0A]
            let value: [UInt8] = (0...255).map { UInt8($0) }
            try await client.put(EtcdPutRequest(key: key, value: value))
            try await client.put("empty", "")

            let read = try #require(try await client.range(EtcdRangeRequest(key: key)).keyValues.first)
            #expect(read.key == key)
            #expect(read.value == value)
            let empty = try #require(try await client.get("empty"))
            #expect(empty.value.isEmpty)
            #expect(empty.version == 1)
        }
    }

    @Test func compareAndSwapSucceedsWhenTheComparisonHolds() async throws {
        try await withEtcdCluster(label: "cas") { cluster in
            let client = try EtcdTesting.client(cluster)
            let written = try await client.put("symbol/BTC", "n1")

            let swap = try await client.txn(
                compare: [.modRevisionEquals("symbol/BTC", written.header.revision), .valueEquals("symbol/BTC", "n1")],
                success: [.put("symbol/BTC", "n2"), .get("symbol/BTC")],
                failure: [.get("symbol/BTC")]
            )
            #expect(swap.succeeded)
            #expect(swap.responses.count == 2)
            guard case .put = swap.responses.first else {
                Issue.record("the first response is not the put's: \(swap.responses)")
                return
            }
            let readInTheTransaction = try #require(swap.responses.last?.keyValues?.first)
            #expect(readInTheTransaction.valueString == "n2")
            // The write's revision is the transaction's: the fencing token a grant would carry.
            #expect(readInTheTransaction.modRevision == swap.header.revision)
            #expect(swap.header.revision == written.header.revision + 1)
            #expect(try await client.get("symbol/BTC")?.valueString == "n2")
        }
    }

    @Test func failedComparisonRunsTheFailureBranchAndChangesNothing() async throws {
        try await withEtcdCluster(label: "cas-fail") { cluster in
            let client = try EtcdTesting.client(cluster)
            let stale = try await client.put("symbol/ETH", "n1").header.revision
            try await client.put("other", "kept")
            let current = try await client.put("symbol/ETH", "n2").header.revision

            let swap = try await client.txn(
                compare: [.modRevisionEquals("symbol/ETH", stale)],
                success: [.put("symbol/ETH", "n3"), .delete("other")],
                failure: [.get("symbol/ETH")]
            )
            #expect(!swap.succeeded)
            // No write happened, so the store's revision did not move.
            #expect(swap.header.revision == current)
            #expect(swap.responses.count == 1)
            let seen = try #require(swap.responses.first?.keyValues?.first)
            #expect(seen.valueString == "n2")
            #expect(seen.modRevision == current)

            #expect(try await client.get("symbol/ETH")?.valueString == "n2")
            #expect(try await client.get("other")?.valueString == "kept")

            // Every comparison must hold: one true and one false is a failure.
            let mixed = try await client.txn(
                compare: [.valueEquals("symbol/ETH", "n2"), EtcdCompare("symbol/ETH", .less, .version(2))],
                success: [.put("symbol/ETH", "n3")]
            )
            #expect(!mixed.succeeded)
            #expect(mixed.responses.isEmpty)
            #expect(try await client.get("symbol/ETH")?.valueString == "n2")
        }
    }

    @Test func createIfAbsentWritesOnlyOnce() async throws {
        try await withEtcdCluster(label: "create") { cluster in
            let client = try EtcdTesting.client(cluster)
            let first = try await client.txn(compare: [.absent("grant/BTC")], success: [.put("grant/BTC", "n1")], failure: [.get("grant/BTC")])
            #expect(first.succeeded)

            let second = try await client.txn(compare: [.absent("grant/BTC")], success: [.put("grant/BTC", "n2")], failure: [.get("grant/BTC")])
            #expect(!second.succeeded)
            #expect(second.responses.first?.keyValues?.first?.valueString == "n1")
            #expect(try await client.get("grant/BTC")?.valueString == "n1")

            let exists = try await client.txn(
                compare: [EtcdCompare("grant/BTC", .greater, .version(0)), EtcdCompare("grant/BTC", .notEqual, .createRevision(0))],
                success: []
            )
            #expect(exists.succeeded)
        }
    }

    @Test func refusalsCarryTheGatewaysMessageAndCode() async throws {
        try await withEtcdCluster(label: "refused") { cluster in
            let client = try EtcdTesting.client(cluster)
            do throws(EtcdError) {
                try await client.put("", "no key")
                Issue.record("a put without a key was accepted")
            } catch {
                #expect(error.gatewayStatus?.code == .invalidArgument)
                #expect(error.gatewayStatus?.message == "etcdserver: key is not provided")
                #expect(error.gatewayStatus?.httpStatus == 400)
            }
            do throws(EtcdError) {
                _ = try await client.txn(compare: [], success: [.put("twice", "1"), .put("twice", "2")])
                Issue.record("a transaction writing one key twice was accepted")
            } catch {
                #expect(error.gatewayStatus?.code == .invalidArgument)
                #expect(error.gatewayStatus?.message.contains("duplicate key") == true)
                #expect("\(error)".contains(cluster.clientURLs[0]))
            }
        }
    }

    @Test func statusReportsLeaderTermAndSize() async throws {
        try await withEtcdCluster(label: "status") { cluster in
            let client = try EtcdTesting.client(cluster)
            let status = try await client.status()
            #expect(status.version.hasPrefix("3.4"))
            #expect(status.hasLeader)
            #expect(status.isLeader)
            #expect(status.raftTerm >= 1)
            #expect(status.raftIndex >= 1)
            #expect(status.databaseSize > 0)
            #expect(status.errors.isEmpty)
            let direct = try await client.status(endpoint: cluster.clientURLs[0])
            #expect(direct.memberId == status.memberId)
        }
    }

    @Test func watchSeesPutsAndDeletesInOrder() async throws {
        try await withEtcdCluster(label: "watch") { cluster in
            let client = try EtcdTesting.client(cluster)
            try await client.put("outside", "ignored")
            let events = await withTimeLimit(.seconds(15)) { () async -> Result<[EtcdWatchEvent], any Error> in
                do {
                    var iterator = client.watch(.prefix("w/", previousKeyValue: true)).makeAsyncIterator()
                    guard let created = try await iterator.next(), created.created else { return .success([]) }
                    try await client.put("w/1", "a")
                    try await client.put("outside", "still ignored")
                    try await client.put("w/1", "b")
                    try await client.deleteRange(.key("w/1"))
                    var seen: [EtcdWatchEvent] = []
                    while seen.count < 3, let message = try await iterator.next() { seen += message.events }
                    return .success(seen)
                } catch {
                    return .failure(error)
                }
            }
            let seen = try #require(events, "no watch events within 15 s").get()
            #expect(seen.map(\.kind) == [.put, .put, .delete])
            #expect(seen.map(\.keyValue.keyString) == ["w/1", "w/1", "w/1"])
            #expect(seen.map(\.keyValue.valueString) == ["a", "b", ""])
            #expect(seen.map { $0.previous?.valueString } == [nil, "a", "b"])
            #expect(seen[0].keyValue.modRevision < seen[1].keyValue.modRevision)
            #expect(seen[1].keyValue.modRevision < seen[2].keyValue.modRevision)
        }
    }

    @Test func misconfiguredClientsAreRefusedUpFront() {
        for endpoints in [[], ["127.0.0.1:2379"], ["http://"]] {
            #expect(throws: EtcdError.self, "\(endpoints)") {
                _ = try EtcdClient(endpoints: endpoints, httpClient: EtcdTesting.httpClient)
            }
        }
    }
}
