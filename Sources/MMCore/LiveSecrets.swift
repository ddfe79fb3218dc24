import Foundation
import Synchronization

/// A process's secrets as they are now: the tokens it checks callers against and presents,
/// and the grant keys, reloaded from the data directory when a rotation step is imported
/// (`ClusterSecrets.rotate`), so a running cluster takes new secrets without a restart.
public final class LiveSecrets: Sendable {
    /// The tokens, and the token each caller presents derived once per load (a node's own is an
    /// HMAC, and it is asked for at every request): one lock, so a reload never leaves a token
    /// of the old set cached.
    private let state: Mutex<(tokens: RoleTokens, presented: [String: String])>
    private let signer: Mutex<GrantSigner?>
    /// The provisioning marker last loaded: an import or rotation rewrites it last.
    private let loadedMarker: Mutex<Data?>
    public let dataDirectory: DataDirectory?

    /// `dataDirectory` nil: fixed tokens (tests, benchmarks), never reloaded.
    public init(_ tokens: RoleTokens, dataDirectory: DataDirectory? = nil) {
        state = Mutex((tokens, [:]))
        signer = Mutex(nil)
        self.dataDirectory = dataDirectory
        loadedMarker = Mutex(dataDirectory.flatMap { FileManager.default.contents(atPath: $0.secretsMarkerPath) })
    }

    public var tokens: RoleTokens { state.withLock { $0.tokens } }

    /// The token a caller of `role` (node `node` for `.node`) presents now.
    public func presentedToken(role: Role, node: String) -> String? {
        let key = role == .node ? "node/" + node : role.rawValue
        return state.withLock { state in
            if let cached = state.presented[key] { return cached }
            let token = state.tokens.token(for: role, node: node)
            if let token { state.presented[key] = token }
            return token
        }
    }

    /// The grant signer over this data directory's keys, made once and reloaded with the rest.
    public func grantSigner() throws -> GrantSigner {
        if let existing = signer.withLock({ $0 }) { return existing }
        guard let dataDirectory else { throw DataDirectoryError.missingSecret("grant-signing.key (no data directory)") }
        let made = try GrantSigner(dataDirectory: dataDirectory)
        return signer.withLock { current in
            if let current { return current }
            current = made
            return made
        }
    }

    /// Reloads when the provisioning marker changed since the last load. Returns true when
    /// new secrets were loaded; throws (keeping the old ones) when they cannot be read, e.g.
    /// in the middle of an import: the next call tries again.
    @discardableResult
    public func reloadIfChanged() throws -> Bool {
        guard let dataDirectory, let marker = FileManager.default.contents(atPath: dataDirectory.secretsMarkerPath),
              marker != loadedMarker.withLock({ $0 }) else { return false }
        let tokens = try RoleTokens.loadProvisioned(from: dataDirectory)
        if let signer = signer.withLock({ $0 }) { try signer.reload(from: dataDirectory) }
        state.withLock { $0 = (tokens, [:]) }
        loadedMarker.withLock { $0 = marker }
        return true
    }
}
