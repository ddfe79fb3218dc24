import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import MMCore
import NIOCore
import NIOSSL

/// A TLS file named by the config (`tls.cert`, `tls.key`, `tls.ca`) that cannot be used.
/// Said at start, naming the key and the path, rather than as a failed handshake later.
public struct TLSSetupError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The config key: `tls.cert`, `tls.key` or `tls.ca` (`tls` when they do not fit together).
    public var key: String
    public var path: String
    public var reason: String

    public init(key: String, path: String, reason: String) {
        self.key = key
        self.path = path
        self.reason = reason
    }

    public var description: String { "TLS setup: \(key) \(path): \(reason)" }
}

/// HTTPS for every server of the cluster: one place that turns the config's `tls` into a
/// Hummingbird server, used by the services (`buildApplication`) and the supervisor's control
/// API alike, so they cannot drift apart.
public enum TLSServerSetup {
    /// The server TLS configuration of host `host`: its certificate chain and key (`{host}` in
    /// `tls.cert`/`tls.key` replaced by its name). Files are read and checked now, so a missing
    /// or mismatched file fails at start with the key and path named.
    public static func serverConfiguration(_ tls: ClusterConfig.TLSSettings, host: String) throws(TLSSetupError) -> TLSConfiguration {
        let certPath = tls.certPath(host: host)
        let keyPath = tls.keyPath(host: host)
        let chain: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMFile(certPath) } catch {
            throw TLSSetupError(key: "tls.cert", path: certPath, reason: readFailure(certPath, error, expecting: "a PEM certificate chain"))
        }
        guard !chain.isEmpty else { throw TLSSetupError(key: "tls.cert", path: certPath, reason: "holds no PEM certificate") }
        let key: NIOSSLPrivateKey
        do { key = try NIOSSLPrivateKey(file: keyPath, format: .pem) } catch {
            throw TLSSetupError(key: "tls.key", path: keyPath, reason: readFailure(keyPath, error, expecting: "an unencrypted PEM private key"))
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.shutdownTimeout = closeNotifyWait
        // Building the context is where BoringSSL checks that the key belongs to the certificate.
        do { _ = try NIOSSLContext(configuration: configuration) } catch {
            throw TLSSetupError(key: "tls", path: "\(certPath) + \(keyPath)", reason: "the key does not fit the certificate, or neither is usable (\(error))")
        }
        // The CA is the clients' business, but a process that cannot read it cannot call its
        // peers either: better to refuse to start than to serve and then fail every call.
        _ = try ClientTLSSetup.trustRoots(caPath: tls.ca)
        return configuration
    }

    /// The HTTP/1.1 server for host `host`: plain without `tls`, inside TLS with it. Never
    /// throws itself: a TLS file that cannot be used is thrown when the server starts
    /// (`Application.run`), which ends the process with the `TLSSetupError`; callers that can
    /// report a failure earlier use `server(_:host:)`.
    public static func serverBuilder(_ config: ClusterConfig, host: String) -> HTTPServerBuilder {
        do {
            return try server(config, host: host)
        } catch {
            return HTTPServerBuilder { _ in throw error }
        }
    }

    /// Checks now what `serverBuilder` would otherwise throw when the server starts.
    public static func validate(_ config: ClusterConfig, host: String) throws(TLSSetupError) {
        _ = try server(config, host: host)
    }

    /// Like `serverBuilder`, but a TLS file that cannot be used is thrown now.
    public static func server(_ config: ClusterConfig, host: String) throws(TLSSetupError) -> HTTPServerBuilder {
        guard config.tls.isEnabled else { return .http1() }
        let configuration = try serverConfiguration(config.tls, host: host)
        do {
            return try .tls(.http1(), tlsConfiguration: configuration)
        } catch {
            throw TLSSetupError(key: "tls", path: config.tls.certPath(host: host), reason: "\(error)")
        }
    }

    /// How long a closing TLS connection waits for the peer's close_notify. NIOSSL's default is
    /// 5 s, and AsyncHTTPClient's pooled connections do not always answer one, so every kept-alive
    /// peer connection held a graceful shutdown for 5 s; a peer that answers at all does so
    /// within a millisecond or two on a LAN.
    static let closeNotifyWait: TimeAmount = .milliseconds(200)

    static func readFailure(_ path: String, _ error: any Error, expecting: String) -> String {
        if !FileManager.default.fileExists(atPath: path) { return "no such file" }
        if !FileManager.default.isReadableFile(atPath: path) { return "not readable by this process" }
        return "not \(expecting) (\(error))"
    }
}

/// The clients' side: trust only the cluster's CA.
public enum ClientTLSSetup {
    /// The certificates of `tls.ca`, read now so an unusable file is named at once.
    public static func trustRoots(caPath: String) throws(TLSSetupError) -> [NIOSSLCertificate] {
        let roots: [NIOSSLCertificate]
        do { roots = try NIOSSLCertificate.fromPEMFile(caPath) } catch {
            throw TLSSetupError(key: "tls.ca", path: caPath, reason: TLSServerSetup.readFailure(caPath, error, expecting: "PEM CA certificates"))
        }
        guard !roots.isEmpty else { throw TLSSetupError(key: "tls.ca", path: caPath, reason: "holds no PEM certificate") }
        return roots
    }

    /// Client TLS trusting only the certificates in `caPath` (not the system's roots), with
    /// full verification: chain, validity dates, and the certificate naming the address the
    /// URL names. For an IP address (every cluster URL) NIOSSL checks the certificate's IP
    /// subjectAltName against the connected peer's address.
    public static func clientConfiguration(caPath: String) throws(TLSSetupError) -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates(try trustRoots(caPath: caPath))
        configuration.certificateVerification = .fullVerification
        configuration.minimumTLSVersion = .tlsv12
        configuration.shutdownTimeout = TLSServerSetup.closeNotifyWait
        return configuration
    }
}

/// Turns what AsyncHTTPClient/NIOSSL report into a sentence an operator can act on: which
/// host:port, that it is TLS, and what to check.
enum TLSFailureDescription {
    /// `host:port` of a URL, as the operator would type it.
    static func hostPort(_ url: String) -> String {
        guard let components = URLComponents(string: url), let host = components.host else { return url }
        let shown = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        let port = components.port ?? (components.scheme == "https" ? 443 : 80)
        return "\(shown):\(port)"
    }

    /// A sentence when `error` is about TLS (or about talking plain HTTP to a TLS server),
    /// else nil and the caller keeps the error's own text.
    static func describe(_ error: any Error, url: String, caPath: String?) -> String? {
        let text = String(describing: error)
        let target = hostPort(url)
        let trust = caPath.map { "the CA in tls.ca (\($0))" } ?? "this client's trusted CAs"
        let isHTTPS = url.lowercased().hasPrefix("https:")
        if error is NIOSSLExtraError, text.contains("failedToValidateHostname") || text.contains("hostname") {
            return "TLS verification failed for \(target): its certificate does not name \(target.split(separator: ":").dropLast().joined(separator: ":")) (the certificate needs subjectAltName IP:<address> for the address clients use)"
        }
        if text.contains("CERTIFICATE_VERIFY_FAILED") {
            return "TLS verification failed for \(target): its certificate does not verify against \(trust): signed by another CA, expired or not yet valid (\(text))"
        }
        if text.contains("WRONG_VERSION_NUMBER") || text.contains("PACKET_LENGTH_TOO_LONG") || text.contains("HTTP_REQUEST") {
            return "TLS handshake with \(target) failed: it does not answer in TLS (a plain-HTTP server? tls.* must be set on every process or on none)"
        }
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            return "TLS handshake with \(target) failed (\(text))"
        }
        // A plain-HTTP request to a TLS server: the server answers with a TLS alert (or closes),
        // which no HTTP parser accepts.
        if !isHTTPS, text.contains("HTTPParserError") || text.contains("invalidConstant") || text.contains("invalidVersion") {
            return "\(target) did not answer in HTTP: is it serving HTTPS? (tls.* set there but not here) (\(text))"
        }
        // What a TLS server does with a plain-HTTP request: close without a word.
        if !isHTTPS, text.contains("remoteConnectionClosed") {
            return "\(target) closed the connection without answering: is it serving HTTPS? (tls.* set there but not here; or it is going down)"
        }
        return nil
    }
}
