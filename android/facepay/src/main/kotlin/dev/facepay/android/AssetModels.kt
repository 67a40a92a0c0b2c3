package dev.facepay.android

import android.content.res.AssetManager
import dev.facepay.sdk.ModelAssets
import dev.facepay.sdk.PlatformException
import java.io.FileNotFoundException
import java.io.IOException

/**
 * The model bundle (`manifest.toml` and the NNEF model files) read straight out of the APK's assets, under
 * [folder] (e.g. `models`): nothing is copied to storage. FacePay checks every file's sha256 against the manifest.
 * Store the `.nnef.tar` files uncompressed (`androidResources { noCompress += "tar" }`) so reading them is a copy.
 */
class AssetModels(private val assets: AssetManager, private val folder: String = "models") : ModelAssets {
    override fun read(name: String): ByteArray? {
        val path = if (folder.isEmpty()) name else "$folder/$name"
        return try {
            assets.open(path, AssetManager.ACCESS_STREAMING).use { it.readBytes() }
        } catch (e: FileNotFoundException) {
            null
        } catch (e: IOException) {
            throw PlatformException.Failed("cannot read asset $path: ${e.message}")
        }
    }
}
