import CryptoKit
import Foundation

/// The device's payment key: a P-256 key in the Secure Enclave (a software CryptoKit key on the simulator, where
/// there is no enclave). Persisted as its opaque `dataRepresentation` in the Keychain under `account`.
public final class SecureEnclaveSigner: DeviceSigner, @unchecked Sendable {
    private enum Key {
        case enclave(SecureEnclave.P256.Signing.PrivateKey)
        case software(P256.Signing.PrivateKey)
    }

    private let key: Key

    public init(account: String = "facepay.device.p256") throws {
        let store = KeychainItem(account: account)
        if SecureEnclave.isAvailable {
            if let data = try store.read() {
                key = .enclave(try SecureEnclave.P256.Signing.PrivateKey(dataRepresentation: data))
            } else {
                let k = try SecureEnclave.P256.Signing.PrivateKey()
                try store.write(k.dataRepresentation)
                key = .enclave(k)
            }
        } else if let data = try store.read() {
            key = .software(try P256.Signing.PrivateKey(rawRepresentation: data))
        } else {
            let k = P256.Signing.PrivateKey()
            try store.write(k.rawRepresentation)
            key = .software(k)
        }
    }

    public func publicKey() -> Data {
        switch key {
        case .enclave(let k): return k.publicKey.x963Representation
        case .software(let k): return k.publicKey.x963Representation
        }
    }

    public func sign(message: Data) throws -> Data {
        do {
            switch key {
            case .enclave(let k): return try k.signature(for: message).derRepresentation
            case .software(let k): return try k.signature(for: message).derRepresentation
            }
        } catch {
            throw PlatformError.Failed(reason: "Secure Enclave could not sign: \(error)")
        }
    }
}
