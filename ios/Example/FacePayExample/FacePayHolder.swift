import FacePay
import Foundation

/// One FacePay handle per app, over the Secure Enclave and the Keychain, with the models bundled as resources.
enum FacePayHolder {
    private static var instance: FacePay?
    static let serverURL = "https://pay.example.com"

    static func shared() throws -> FacePay {
        if let instance { return instance }
        let support = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0]
        let config = FacePayConfig(
            serverUrl: serverURL, pinnedCertPem: nil,
            deviceId: "ios-" + (UIDevice.current.identifierForVendor?.uuidString ?? UUID().uuidString),
            stateDir: support.appendingPathComponent("facepay").path,
            // Not used by withModels: the bundle is read from the app's resources below.
            modelsDir: "",
            antispoofModelsDir: nil, enrolmentChallenges: nil)
        let made = try FacePay.withModels(
            config: config, models: try BundleModels(folder: "models"), antispoofModels: nil,
            signer: try SecureEnclaveSigner(), keyStore: KeychainKeyStore())
        instance = made
        return made
    }
}

/// The demo merchant backend (not part of FacePay): answers a client token for a new order.
enum MerchantBackend {
    static let url = URL(string: "https://merchant.example.com/orders")!

    static func createOrder(amountMinor: Int, currency: String) async throws -> String {
        var request = URLRequest(url: url.appending(queryItems: [
            URLQueryItem(name: "amount", value: "\(amountMinor)"), URLQueryItem(name: "currency", value: currency),
        ]))
        request.httpMethod = "POST"
        let (data, _) = try await URLSession.shared.data(for: request)
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
