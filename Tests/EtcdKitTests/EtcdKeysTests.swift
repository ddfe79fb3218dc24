import EtcdKit
import Testing

/// The prefix rule etcd leaves to clients (clientv3's GetPrefixRangeEnd), without a server.
@Suite struct EtcdKeysTests {
    @Test(arguments: [
        ([UInt8]("a".utf8), [UInt8]("b".utf8)),
        ([UInt8]("mm/grants/".utf8), [UInt8]("mm/grants0".utf8)),  // '/' + 1 == '0'
        ([0x61, 0xFF], [0x62]),  // a trailing 0xFF cannot grow: drop it, increment the byte before
        ([0x61, 0xFF, 0xFF], [0x62]),
        ([0xFF], [0x00]),  // nothing to increment: [0] means "every key from the start key on"
        ([], [0x00]),
    ] as [([UInt8], [UInt8])])
    func prefixRangeEnd(prefix: [UInt8], expected: [UInt8]) {
        #expect(EtcdKeys.prefixRangeEnd(prefix) == expected)
    }
}
