package dev.facepay.android

import android.content.Context
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import dev.facepay.sdk.KeyStore
import dev.facepay.sdk.PlatformException
import java.io.File
import java.security.KeyStore as JavaKeyStore
import java.security.SecureRandom
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * Template keys (32 random bytes each), stored in app-private files wrapped with AES-256-GCM under a key that
 * never leaves the Android Keystore. FacePay asks for the raw key only while it seals or opens the template.
 */
class AndroidKeyStore(context: Context, private val wrapAlias: String = "facepay.template.wrap") : KeyStore {
    private val dir = File(context.noBackupFilesDir, "facepay-keys").apply { mkdirs() }
    private val keyStore = JavaKeyStore.getInstance("AndroidKeyStore").apply { load(null) }

    private fun wrappingKey(): SecretKey {
        (keyStore.getKey(wrapAlias, null) as? SecretKey)?.let { return it }
        val spec = KeyGenParameterSpec.Builder(wrapAlias, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
            .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
            .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
            .setKeySize(256)
            .build()
        return KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, "AndroidKeyStore").run {
            init(spec)
            generateKey()
        }
    }

    private fun file(keyId: String) = File(dir, "$keyId.wrapped")

    @Synchronized
    override fun getOrCreate(keyId: String): ByteArray = get(keyId) ?: guarded {
        val key = ByteArray(32).also { SecureRandom().nextBytes(it) }
        val cipher = Cipher.getInstance("AES/GCM/NoPadding").apply { init(Cipher.ENCRYPT_MODE, wrappingKey()) }
        val sealed = cipher.iv + cipher.doFinal(key)
        val tmp = File(dir, "$keyId.tmp")
        tmp.writeBytes(sealed)
        check(tmp.renameTo(file(keyId))) { "cannot store the key $keyId" }
        key
    }

    @Synchronized
    override fun get(keyId: String): ByteArray? = guarded {
        val f = file(keyId)
        if (!f.exists()) return@guarded null
        val sealed = f.readBytes()
        Cipher.getInstance("AES/GCM/NoPadding").run {
            init(Cipher.DECRYPT_MODE, wrappingKey(), GCMParameterSpec(128, sealed, 0, 12))
            doFinal(sealed, 12, sealed.size - 12)
        }
    }

    @Synchronized
    override fun delete(keyId: String) {
        guarded { file(keyId).delete() }
    }

    private fun <T> guarded(block: () -> T): T = try {
        block()
    } catch (e: PlatformException) {
        throw e
    } catch (e: Exception) {
        throw PlatformException.Failed("Android Keystore: ${e.message}")
    }
}
