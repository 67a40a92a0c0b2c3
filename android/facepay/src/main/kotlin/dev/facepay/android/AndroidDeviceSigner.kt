package dev.facepay.android

import android.content.Context
import android.content.pm.PackageManager
import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyPermanentlyInvalidatedException
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import android.security.keystore.UserNotAuthenticatedException
import dev.facepay.sdk.DeviceSigner
import dev.facepay.sdk.PlatformException
import java.math.BigInteger
import java.security.KeyPairGenerator
import java.security.KeyStore as JavaKeyStore
import java.security.PrivateKey
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec

/**
 * The device's payment key: an ECDSA P-256 key that never leaves the Android Keystore (StrongBox when the device
 * has one). Created on first use under [alias].
 */
class AndroidDeviceSigner(context: Context, private val alias: String = "facepay.device.p256") : DeviceSigner {
    private val keyStore = JavaKeyStore.getInstance("AndroidKeyStore").apply { load(null) }
    private val strongBox = Build.VERSION.SDK_INT >= 28 &&
        context.packageManager.hasSystemFeature(PackageManager.FEATURE_STRONGBOX_KEYSTORE)

    init {
        if (!keyStore.containsAlias(alias)) generate()
    }

    private fun generate() {
        fun spec(inStrongBox: Boolean) = KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_SIGN)
            .setAlgorithmParameterSpec(ECGenParameterSpec("secp256r1"))
            .setDigests(KeyProperties.DIGEST_SHA256)
            .apply { if (Build.VERSION.SDK_INT >= 28) setIsStrongBoxBacked(inStrongBox) }
            .build()
        val generator = KeyPairGenerator.getInstance(KeyProperties.KEY_ALGORITHM_EC, "AndroidKeyStore")
        try {
            generator.initialize(spec(strongBox))
            generator.generateKeyPair()
        } catch (e: StrongBoxUnavailableException) {
            generator.initialize(spec(false))
            generator.generateKeyPair()
        }
    }

    override fun publicKey(): ByteArray {
        val w = (keyStore.getCertificate(alias).publicKey as ECPublicKey).w
        return byteArrayOf(4) + fixed32(w.affineX) + fixed32(w.affineY)
    }

    override fun sign(message: ByteArray): ByteArray = try {
        Signature.getInstance("SHA256withECDSA").run {
            initSign(keyStore.getKey(alias, null) as PrivateKey)
            update(message)
            sign()
        }
    } catch (e: UserNotAuthenticatedException) {
        throw PlatformException.AuthenticationRequired("Android Keystore: ${e.message}")
    } catch (e: KeyPermanentlyInvalidatedException) {
        throw PlatformException.KeyInvalidated("Android Keystore: ${e.message}")
    } catch (e: Exception) {
        throw PlatformException.Failed("Android Keystore could not sign: ${e.message}")
    }

    private fun fixed32(v: BigInteger): ByteArray {
        val b = v.toByteArray().dropWhile { it == 0.toByte() }.toByteArray()
        return ByteArray(32 - b.size) + b
    }
}
