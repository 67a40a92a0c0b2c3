import AVFoundation
import FacePay
import SwiftUI

/// The selfie step: front camera, the head outline, the prompt (announced by VoiceOver), then the payment.
struct PayView: View {
    let onDone: (String) -> Void
    @StateObject private var model = PayModel()

    var body: some View {
        ZStack {
            CameraPreview(session: model.camera)
            if let g = model.guidance {
                GeometryReader { geo in
                    Ellipse()
                        .stroke(g.state == .holdStill ? Color.green : Color.white, lineWidth: 4)
                        .frame(width: CGFloat(2 * g.oval.rx) * geo.size.width, height: CGFloat(2 * g.oval.ry) * geo.size.height)
                        .position(x: CGFloat(g.oval.cx) * geo.size.width, y: CGFloat(g.oval.cy) * geo.size.height)
                }
                VStack {
                    Text(NSLocalizedString(g.messageKey, value: g.message, comment: "FacePay prompt"))
                        .font(.title2).foregroundColor(.white).padding(.top, 48)
                    Spacer()
                    ProgressView(value: Double(g.progress)).padding(32)
                }
            }
        }
        .ignoresSafeArea()
        .task { onDone(await model.run()) }
        .onDisappear { model.cancel() }
    }
}

/// Runs one payment: order from the merchant backend, frames from AVFoundation, pay when verified.
@MainActor
final class PayModel: NSObject, ObservableObject, FlowListener, AVCaptureVideoDataOutputSampleBufferDelegate {
    @Published var guidance: Guidance?
    let camera = AVCaptureSession()
    private var session: PaymentSession?
    private var verified: CheckedContinuation<Void, Error>?
    private let queue = DispatchQueue(label: "facepay.frames")

    nonisolated func onEvent(event: FlowEvent) {
        guard case .prompt(let g) = event else { return }
        Task { @MainActor in
            if self.guidance?.messageKey != g.messageKey {
                UIAccessibility.post(notification: .announcement, argument: NSLocalizedString(g.messageKey, value: g.message, comment: ""))
            }
            self.guidance = g
        }
    }

    func run() async -> String {
        do {
            let token = try await MerchantBackend.createOrder(amountMinor: 1250, currency: "EUR")
            let session = try await FacePayHolder.shared().startPayment(clientToken: token, listener: self)
            self.session = session
            try startCamera()
            try await withCheckedThrowingContinuation { self.verified = $0 }
            camera.stopRunning()
            let receipt = try await session.pay()
            return "Paid \(receipt.amountMinor) \(receipt.currency): \(receipt.paymentId)"
        } catch {
            camera.stopRunning()
            return "\(error)"
        }
    }

    func cancel() { session?.cancel() }

    private func startCamera() throws {
        guard let device = AVCaptureDevice.default(.builtInWideAngleCamera, for: .video, position: .front) else {
            throw FacePayError.Config(setting: .tool, detail: "no front camera")
        }
        camera.addInput(try AVCaptureDeviceInput(device: device))
        let output = AVCaptureVideoDataOutput()
        output.videoSettings = [kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_32BGRA]
        output.alwaysDiscardsLateVideoFrames = true
        output.setSampleBufferDelegate(self, queue: queue)
        camera.addOutput(output)
        // Portrait, mirrored like the preview: the oval is drawn as it comes.
        output.connection(with: .video)?.videoOrientation = .portrait
        output.connection(with: .video)?.isVideoMirrored = true
        queue.async { self.camera.startRunning() }
    }

    nonisolated func captureOutput(_ output: AVCaptureOutput, didOutput sample: CMSampleBuffer, from connection: AVCaptureConnection) {
        guard let pixels = CMSampleBufferGetImageBuffer(sample) else { return }
        let t = CMSampleBufferGetPresentationTimeStamp(sample).seconds
        CVPixelBufferLockBaseAddress(pixels, .readOnly)
        defer { CVPixelBufferUnlockBaseAddress(pixels, .readOnly) }
        let stride = CVPixelBufferGetBytesPerRow(pixels)
        let height = CVPixelBufferGetHeight(pixels)
        let data = Data(bytes: CVPixelBufferGetBaseAddress(pixels)!, count: stride * height)
        let frame = CameraFrame(
            pixels: .bgra8(data: data, stride: UInt32(stride)),
            width: UInt32(CVPixelBufferGetWidth(pixels)), height: UInt32(height), rotationDegrees: 0, mirror: false)
        Task { @MainActor in
            guard let session = self.session, let verified = self.verified else { return }
            do {
                if case .verified = try session.pushFrame(frame: frame, timestampS: t) {
                    self.verified = nil
                    verified.resume()
                }
            } catch {
                self.verified = nil
                verified.resume(throwing: error)
            }
        }
    }
}

struct CameraPreview: UIViewRepresentable {
    let session: AVCaptureSession
    func makeUIView(context: Context) -> UIView {
        let view = PreviewUIView()
        view.layer.session = session
        view.layer.videoGravity = .resizeAspectFill
        return view
    }
    func updateUIView(_ view: UIView, context: Context) {}

    final class PreviewUIView: UIView {
        override class var layerClass: AnyClass { AVCaptureVideoPreviewLayer.self }
        override var layer: AVCaptureVideoPreviewLayer { super.layer as! AVCaptureVideoPreviewLayer }
    }
}
