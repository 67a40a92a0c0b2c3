import Foundation
import Security

/// Template keys (32 random bytes each) as Keychain items, readable only on this device after first unlock.
public final class KeychainKeyStore: KeyStore, @unchecked Sendable {
    private let service: String

    public init(service: String = "facepay.template") {
        self.service = service
    }

    public func getOrCreate(keyId: String) throws -> Data {
        if let key = try get(keyId: keyId) { return key }
        var bytes = Data(count: 32)
        let status = bytes.withUnsafeMutableBytes { SecRandomCopyBytes(kSecRandomDefault, 32, $0.baseAddress!) }
        guard status == errSecSuccess else { throw PlatformError.Failed(reason: "SecRandomCopyBytes: \(status)") }
        try KeychainItem(account: keyId, service: service).write(bytes)
        return bytes
    }

    public func get(keyId: String) throws -> Data? {
        try KeychainItem(account: keyId, service: service).read()
    }

    public func delete(keyId: String) throws {
        try KeychainItem(account: keyId, service: service).delete()
    }
}

/// One generic-password Keychain item.
struct KeychainItem {
    let account: String
    var service: String = "facepay"

    private var query: [String: Any] {
        [kSecClass as String: kSecClassGenericPassword, kSecAttrService as String: service, kSecAttrAccount as String: account]
    }

    func read() throws -> Data? {
        var q = query
        q[kSecReturnData as String] = true
        var out: CFTypeRef?
        let status = SecItemCopyMatching(q as CFDictionary, &out)
        if status == errSecItemNotFound { return nil }
        guard status == errSecSuccess else { throw PlatformError.Failed(reason: "Keychain read: \(status)") }
        return out as? Data
    }

    func write(_ data: Data) throws {
        var q = query
        q[kSecValueData as String] = data
        q[kSecAttrAccessible as String] = kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
        let status = SecItemAdd(q as CFDictionary, nil)
        guard status == errSecSuccess else { throw PlatformError.Failed(reason: "Keychain write: \(status)") }
    }

    func delete() throws {
        let status = SecItemDelete(query as CFDictionary)
        guard status == errSecSuccess || status == errSecItemNotFound else {
            throw PlatformError.Failed(reason: "Keychain delete: \(status)")
        }
    }
}
