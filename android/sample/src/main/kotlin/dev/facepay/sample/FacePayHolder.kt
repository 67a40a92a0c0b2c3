package dev.facepay.sample

import android.content.Context
import dev.facepay.android.AndroidDeviceSigner
import dev.facepay.android.AndroidKeyStore
import dev.facepay.sdk.FacePay
import dev.facepay.sdk.FacePayConfig
import java.io.File

/** One FacePay handle per process, over the Android Keystore and the models copied out of the APK's assets. */
object FacePayHolder {
    @Volatile private var instance: FacePay? = null

    @Synchronized
    fun get(context: Context): FacePay = instance ?: run {
        val models = File(context.filesDir, "models").apply { mkdirs() }
        for (name in context.assets.list("")!!.filter { it.endsWith(".onnx") || it == "manifest.toml" }) {
            context.assets.open(name).use { input -> File(models, name).outputStream().use { input.copyTo(it) } }
        }
        val config = FacePayConfig(
            serverUrl = BuildConfig.SERVER_URL,
            pinnedCertPem = null,
            deviceId = "android-" + android.provider.Settings.Secure.getString(context.contentResolver, "android_id"),
            stateDir = File(context.noBackupFilesDir, "facepay").path,
            modelsDir = models.path,
            antispoofModelsDir = null,
            enrolmentChallenges = null,
        )
        FacePay(config, AndroidDeviceSigner(context), AndroidKeyStore(context)).also { instance = it }
    }
}
