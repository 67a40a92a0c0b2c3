package dev.facepay.sample

import android.content.Context
import dev.facepay.android.AndroidDeviceSigner
import dev.facepay.android.AndroidKeyStore
import dev.facepay.android.AssetModels
import dev.facepay.sdk.FacePay
import dev.facepay.sdk.FacePayConfig
import java.io.File

/** One FacePay handle per process, over the Android Keystore and the models read from the APK's assets. */
object FacePayHolder {
    @Volatile private var instance: FacePay? = null

    @Synchronized
    fun get(context: Context): FacePay = instance ?: run {
        val config = FacePayConfig(
            serverUrl = BuildConfig.SERVER_URL,
            pinnedCertPem = null,
            deviceId = "android-" + android.provider.Settings.Secure.getString(context.contentResolver, "android_id"),
            stateDir = File(context.noBackupFilesDir, "facepay").path,
            // Not used by withModels: the bundle comes from the assets below.
            modelsDir = "",
            antispoofModelsDir = null,
            enrolmentChallenges = null,
        )
        // The anti-spoof models, when the app ships them (converted with `facepay models nnef`), under assets/antispoof.
        val antispoof = context.assets.list("antispoof")?.takeIf { it.isNotEmpty() }?.let { AssetModels(context.assets, "antispoof") }
        FacePay.withModels(
            config,
            AssetModels(context.assets, "models"),
            antispoof,
            AndroidDeviceSigner(context),
            AndroidKeyStore(context),
        ).also { instance = it }
    }
}
