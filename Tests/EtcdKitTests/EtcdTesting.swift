import AsyncHTTPClient
import EtcdKit
import MMTestSupport

/// What the etcd tests share: one HTTPClient for the whole run (never shut down, like
/// HTTPClient.shared) and clients on a test cluster.
enum EtcdTesting {
    static let httpClient = EtcdClient.makeHTTPClient()

    static func client(
        _ cluster: EtcdTestCluster, endpoints: [String]? = nil,
        attemptTimeout: Duration = .seconds(3), requestTimeout: Duration = .seconds(10)
    ) throws -> EtcdClient {
        try EtcdClient(
            endpoints: endpoints ?? cluster.clientURLs, httpClient: httpClient,
            configuration: EtcdClient.Configuration(attemptTimeout: attemptTimeout, requestTimeout: requestTimeout)
        )
    }

    /// The index of the member every member agrees is the leader.
    static func leader(of cluster: EtcdTestCluster) async throws -> Int {
        let client = try client(cluster)
        var memberIds: [UInt64] = []
        var leaders: Set<UInt64> = []
        for url in cluster.clientURLs {
            let status = try await client.status(endpoint: url)
            memberIds.append(status.memberId)
            leaders.insert(status.leader)
        }
        guard leaders.count == 1, let leader = leaders.first, let index = memberIds.firstIndex(of: leader) else {
            throw EtcdTestingError("members disagree on the leader: members \(memberIds), leaders \(leaders)")
        }
        return index
    }
}

struct EtcdTestingError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
