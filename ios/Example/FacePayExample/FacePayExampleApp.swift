import FacePay
import SwiftUI

/// Buy ▸ selfie ▸ receipt, over the FacePay Swift package.
@main
struct FacePayExampleApp: App {
    var body: some Scene {
        WindowGroup { ContentView() }
    }
}

struct ContentView: View {
    @State private var paying = false
    @State private var outcome: String?

    var body: some View {
        if paying {
            PayView { result in
                outcome = result
                paying = false
            }
        } else {
            VStack(spacing: 24) {
                if let outcome { Text(outcome).multilineTextAlignment(.center) }
                Button("Buy for €12.50") { paying = true }.buttonStyle(.borderedProminent)
            }
        }
    }
}
