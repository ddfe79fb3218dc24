import Foundation
import Logging
import MMCore
import MMServiceKit
import ServiceLifecycle
import Synchronization

/// A certificate authority and certificates made for one test with the `openssl` command in a
/// temporary directory, removed by `remove()` (or by `withThrowawayCA`, always):
///
/// - `caPath`: the CA that signed the server certificates;
/// - `serverCertPath`/`serverKeyPath`: a server certificate for `address` (subjectAltName
///   IP:address, so clients that verify the host accept it at that IP), also written as
///   `<host>.crt`/`<host>.key` for each name in `hostNames`, for `tls.cert: DIR/{host}.crt`;
/// - `expiredCertPath` (key `serverKeyPath`): the same name and CA, valid only in January 2020;
/// - `wrongHostCertPath` (key `serverKeyPath`): signed by the CA but naming another address;
/// - `otherCAPath`: an unrelated CA that signed nothing here.
///
/// OpenSSL 3.0 (Debian 12) has no `x509 -not_before/-not_after`, so the expired certificate is
/// issued with `openssl ca -startdate/-enddate` from a minimal CA configuration.
public struct ThrowawayCA: Sendable {
    public let directory: String
    public let address: String
    public var caPath: String { path("ca.pem") }
    public var serverCertPath: String { path("server.pem") }
    public var serverKeyPath: String { path("server.key") }
    public var expiredCertPath: String { path("expired.pem") }
    public var wrongHostCertPath: String { path("wrong-host.pem") }
    public var otherCAPath: String { path("other-ca.pem") }

    /// `tls.cert`/`tls.key` values with `{host}`, for the names given to `make(hostNames:)`.
    public var certTemplate: String { path("{host}.crt") }
    public var keyTemplate: String { path("{host}.key") }

    public func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    /// Makes everything (a few hundred milliseconds: EC P-256 keys).
    public static func make(address: String = "127.0.0.1", hostNames: [String] = ["local"]) throws -> ThrowawayCA {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mm-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let ca = ThrowawayCA(directory: directory, address: address)
        do {
            try ca.build(hostNames: hostNames)
        } catch {
            ca.remove()
            throw error
        }
        return ca
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func build(hostNames: [String]) throws {
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        let caExtensions = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]
        try openssl(["req", "-x509"] + ec + ["-keyout", "ca.key", "-out", "ca.pem", "-days", "7", "-subj", "/CN=mm throwaway CA"] + caExtensions)
        try openssl(["req", "-x509"] + ec + ["-keyout", "other-ca.key", "-out", "other-ca.pem", "-days", "7", "-subj", "/CN=mm unrelated CA"] + caExtensions)

        try openssl(["req", "-new"] + ec + ["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=\(address)"])
        try write("server.ext", "subjectAltName=IP:\(address)\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
        try openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "7", "-extfile", "server.ext"])
        // Same key, another address: signed by the right CA, but for the wrong host.
        let otherAddress = address == "127.0.0.2" ? "127.0.0.3" : "127.0.0.2"
        try write("wrong-host.ext", "subjectAltName=IP:\(otherAddress)\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        try openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "wrong-host.pem", "-days", "7", "-extfile", "wrong-host.ext"])

        // The expired one: `openssl ca` is the 3.0 way to choose both dates.
        try FileManager.default.createDirectory(atPath: path("ca-db"), withIntermediateDirectories: true)
        try write("ca-db/index.txt", "")
        try write("ca-db/serial", "1000\n")
        try write("ca.cnf", """
            [ ca ]
            default_ca = throwaway
            [ throwaway ]
            database = ca-db/index.txt
            serial = ca-db/serial
            new_certs_dir = ca-db
            default_md = sha256
            policy = anything
            unique_subject = no
            [ anything ]
            commonName = supplied
            [ server ]
            subjectAltName = IP:\(address)
            basicConstraints = CA:FALSE
            extendedKeyUsage = serverAuth

            """)
        try openssl(["ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-in", "server.csr", "-out", "expired.pem",
                     "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", "-extensions", "server", "-notext"])

        for host in hostNames {
            try FileManager.default.copyItem(atPath: serverCertPath, toPath: path("\(host).crt"))
            try FileManager.default.copyItem(atPath: serverKeyPath, toPath: path("\(host).key"))
        }
    }

    private func write(_ name: String, _ text: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path(name)))
    }

    private func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.opensslPath)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw HarnessError("openssl \(arguments.joined(separator: " ")) failed (\(process.terminationStatus)): \(String(decoding: message, as: UTF8.self))")
        }
    }

    static var opensslPath: String {
        ["/usr/bin/openssl", "/usr/local/bin/openssl", "/opt/homebrew/bin/openssl"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/openssl"
    }
}

/// Runs `body` with a fresh `ThrowawayCA`, removed afterwards whatever happens.
public func withThrowawayCA<T>(address: String = "127.0.0.1", hostNames: [String] = ["local"], _ body: (ThrowawayCA) async throws -> T) async throws -> T {
    let ca = try ThrowawayCA.make(address: address, hostNames: hostNames)
    defer { ca.remove() }
    return try await body(ca)
}

/// Runs a service's common routes (`/healthz`, `/readyz`, `GET /v1/info`) built exactly as
/// every service is (`buildServiceRouter` + `buildApplication`, so over TLS when `config.tls`
/// is set) on 127.0.0.1 and an ephemeral port, for the duration of `body`, which gets the
/// port. Stopped (and its data directory removed) whatever `body` does; a server that fails to
/// start (an unusable TLS file) throws its error here.
public func withTestService<T: Sendable>(config: ClusterConfig, _ body: @Sendable (Int) async throws -> T) async throws -> T {
    var config = config
    config.listen.host = "127.0.0.1"
    let directory = TestPaths.temporaryDataDirectory("tls")
    defer { try? FileManager.default.removeItem(atPath: directory.path) }
    let tokens = try RoleTokens.generate(in: directory)
    let environment = ServiceEnvironment(
        process: .exchange, role: .exchange, config: config, dataDirectory: directory, tokens: tokens,
        logger: Logger(label: "tls-test"), portOverride: 0)
    let port = Mutex<Int?>(nil)
    let failure = StartFailure()
    let app = buildApplication(environment, router: buildServiceRouter(environment), onServerRunning: { bound in port.withLock { $0 = bound } })
    let group = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "tls-test")))
    return try await withThrowingTaskGroup(of: T?.self) { tasks in
        tasks.addTask {
            do { try await group.run() } catch {
                failure.error.withLock { $0 = error }
                throw error
            }
            return nil
        }
        var bound: Int?
        for _ in 0..<500 {
            bound = port.withLock { $0 }
            if bound != nil { break }
            if let error = failure.error.withLock({ $0 }) { throw error }
            try await Task.sleep(for: .milliseconds(10))
        }
        guard let bound else {
            // Not listening: the run task has (or will have) the reason, e.g. a TLSSetupError.
            await group.triggerGracefulShutdown()
            _ = try await tasks.next()
            throw HarnessError("the test service did not start listening within 5 s")
        }
        let result: T
        do { result = try await body(bound) } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
        return result
    }
}

/// Why a test service stopped before it listened; a class so the run task and the poller share it.
final class StartFailure: Sendable {
    let error = Mutex<(any Error)?>(nil)
}
