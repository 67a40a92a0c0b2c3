// The Swift counterpart of bindings/tests/kotlin: enrolment and payment on the recorded clip against a running
// facepay-server, through the generated Swift API, with a Swift DeviceSigner/KeyStore and the typed errors.
// Run on a Mac (see docs/ios.md): start `facepay-server serve --plain-http --challenge-set blink` and create a
// merchant, then
//   FACEPAY_TEST_SERVER=http://127.0.0.1:PORT FACEPAY_TEST_MERCHANT_KEY=… FACEPAY_SHARED=…/shared \
//   FACEPAY_MODELS=…/models swift test
import CryptoKit
import Foundation
import XCTest

@testable import FacePay

private func env(_ name: String) throws -> String {
    guard let v = ProcessInfo.processInfo.environment[name], !v.isEmpty else {
        throw XCTSkip("set \(name) (see the header of this file)")
    }
    return v
}

/// A software P-256 signer in Swift (CryptoKit), counting its signatures.
final class SwiftSigner: DeviceSigner, @unchecked Sendable {
    let key = P256.Signing.PrivateKey()
    var signatures = 0
    func publicKey() -> Data { key.publicKey.x963Representation }
    func sign(message: Data) throws -> Data {
        signatures += 1
        return try key.signature(for: message).derRepresentation
    }
}

/// Template keys in memory.
final class SwiftKeyStore: KeyStore, @unchecked Sendable {
    private var keys: [String: Data] = [:]
    private let lock = NSLock()
    func getOrCreate(keyId: String) throws -> Data {
        lock.lock(); defer { lock.unlock() }
        if let k = keys[keyId] { return k }
        let k = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        keys[keyId] = k
        return k
    }
    func get(keyId: String) throws -> Data? { lock.lock(); defer { lock.unlock() }; return keys[keyId] }
    func delete(keyId: String) throws { lock.lock(); defer { lock.unlock() }; keys[keyId] = nil }
}

final class Recorder: FlowListener, @unchecked Sendable {
    private(set) var events: [FlowEvent] = []
    func onEvent(event: FlowEvent) { events.append(event) }
}

/// The merchant backend (creates enrolment tokens and orders with the API key).
struct Merchant {
    let base: String
    let apiKey: String

    func post(_ path: String, _ body: [String: Any]) async throws -> [String: Any] {
        var request = URLRequest(url: URL(string: "\(base)/\(path)")!)
        request.httpMethod = "POST"
        request.setValue("Bearer \(apiKey)", forHTTPHeaderField: "Authorization")
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = try JSONSerialization.data(withJSONObject: body)
        let (data, _) = try await URLSession.shared.data(for: request)
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    func order(_ id: String, amount: Int) async throws -> String {
        let digest = Data(SHA256.hash(data: Data("\(id):\(amount)".utf8))).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        let body: [String: Any] = ["order_id": id, "amount_minor": amount, "currency": "EUR", "items_digest": digest]
        return try await post("v1/orders", body)["client_token"] as! String
    }
}

final class FacePayTests: XCTestCase {
    func clipFrames() throws -> [URL] {
        let dir = URL(fileURLWithPath: try env("FACEPAY_SHARED")).appendingPathComponent("data/clips/live-blink-7")
        return try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "jpg" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    func frame(_ url: URL) throws -> CameraFrame {
        CameraFrame(pixels: .encoded(data: try Data(contentsOf: url)), width: 0, height: 0, rotationDegrees: 0, mirror: false)
    }

    func testInvalidFrameIsTyped() throws {
        let bad = CameraFrame(pixels: .nv21(data: Data(count: 36), stride: 6), width: 6, height: 4, rotationDegrees: 45, mirror: false)
        XCTAssertThrowsError(try checkFrame(frame: bad)) { error in
            guard case FacePayError.InvalidFrame = error else { return XCTFail("\(error)") }
        }
    }

    func testEnrolAndPay() async throws {
        let server = try env("FACEPAY_TEST_SERVER")
        let merchant = Merchant(base: server, apiKey: try env("FACEPAY_TEST_MERCHANT_KEY"))
        let frames = try clipFrames()
        let state = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        let signer = SwiftSigner()
        let config = FacePayConfig(
            serverUrl: server, pinnedCertPem: nil, deviceId: "swift-\(UUID().uuidString.prefix(8))",
            stateDir: state.path, modelsDir: try env("FACEPAY_MODELS"),
            antispoofModelsDir: try env("FACEPAY_SHARED") + "/models", enrolmentChallenges: [.blink])
        let facePay = try FacePay(config: config, signer: signer, keyStore: SwiftKeyStore())

        do {
            _ = try await facePay.startPayment(clientToken: try await merchant.order("sw-early-\(UUID())", amount: 100), listener: Recorder())
            XCTFail("paid before enrolling")
        } catch FacePayError.NotEnrolled {}

        let capture = try facePay.startEnrolment(listener: Recorder())
        var enrolled = false
        for (i, url) in frames.enumerated() {
            if case .enrolled = try capture.pushFrame(frame: try frame(url), timestampS: Double(i) / 15) { enrolled = true; break }
        }
        XCTAssertTrue(enrolled)
        let token = try await merchant.post("v1/enrollments", ["account_id": "swift-shopper"])["enrollment_token"] as! String
        _ = try await facePay.registerDevice(enrollmentToken: token)

        let clientToken = try await merchant.order("sw-order-\(UUID())", amount: 1250)
        let session = try await facePay.startPayment(clientToken: clientToken, listener: Recorder())
        var verified = false
        for (i, url) in frames.enumerated() {
            if case .verified = try session.pushFrame(frame: try frame(url), timestampS: Double(i) / 15) { verified = true; break }
        }
        XCTAssertTrue(verified)
        let receipt = try await session.pay()
        XCTAssertEqual(receipt.amountMinor, 1250)
        XCTAssertEqual(receipt.liveness, .passed)
        XCTAssertEqual(signer.signatures, 1)

        do {
            _ = try await facePay.startPayment(clientToken: clientToken, listener: Recorder())
            XCTFail("paid twice")
        } catch FacePayError.Declined(let code, _) {
            XCTAssertEqual(code, .orderAlreadyPaid)
        }
        try facePay.deleteEnrolment()
        XCTAssertFalse(try facePay.isEnrolled())
    }
}
