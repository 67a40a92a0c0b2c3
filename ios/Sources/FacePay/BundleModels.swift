import Foundation

/// The model bundle (`manifest.toml` and the NNEF model files) read from a folder of the app bundle's resources
/// (e.g. `models`), without copying. FacePay checks every file's sha256 against the manifest.
public final class BundleModels: ModelAssets {
    private let base: URL

    /// The folder `folder` of `bundle`'s resources.
    public init(bundle: Bundle = .main, folder: String = "models") throws {
        guard let resources = bundle.resourceURL else {
            throw PlatformError.Failed(reason: "the bundle has no resource folder")
        }
        base = resources.appendingPathComponent(folder, isDirectory: true)
    }

    public func read(name: String) throws -> Data? {
        let url = base.appendingPathComponent(name, isDirectory: false)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        do {
            return try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw PlatformError.Failed(reason: "cannot read \(url.path): \(error.localizedDescription)")
        }
    }
}
