// Kotlin implementations of the foreign traits, as an app would write them over its platform keystore. On the JVM
// they use java.security: a P-256 key pair for DeviceSigner and a SecureRandom-filled map for KeyStore. (On Android,
// AndroidDeviceSigner in android/facepay keeps the key in the Android Keystore instead.)
package dev.facepay.test

import dev.facepay.sdk.DeviceSigner
import dev.facepay.sdk.KeyStore
import dev.facepay.sdk.PlatformException
import java.math.BigInteger
import java.security.KeyPairGenerator
import java.security.SecureRandom
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicInteger

/** A P-256 device key from java.security; [failNext] makes the next signature fail like a locked keystore. */
class JvmDeviceSigner : DeviceSigner {
    private val pair = KeyPairGenerator.getInstance("EC").apply { initialize(ECGenParameterSpec("secp256r1")) }.generateKeyPair()
    val signatures = AtomicInteger()
    @Volatile var failNext = false

    override fun publicKey(): ByteArray {
        val w = (pair.public as ECPublicKey).w
        return byteArrayOf(4) + fixed32(w.affineX) + fixed32(w.affineY)
    }

    override fun sign(message: ByteArray): ByteArray {
        if (failNext) {
            failNext = false
            throw PlatformException.AuthenticationRequired("the device credential was not entered")
        }
        signatures.incrementAndGet()
        return Signature.getInstance("SHA256withECDSA").run {
            initSign(pair.private)
            update(message)
            sign()
        }
    }

    /** The verifier's side, for the test: checks a DER signature with the public key. */
    fun verify(message: ByteArray, signature: ByteArray): Boolean =
        Signature.getInstance("SHA256withECDSA").run {
            initVerify(pair.public)
            update(message)
            verify(signature)
        }

    private fun fixed32(v: BigInteger): ByteArray {
        val b = v.toByteArray().dropWhile { it == 0.toByte() }.toByteArray()
        require(b.size <= 32) { "coordinate longer than 32 bytes" }
        return ByteArray(32 - b.size) + b
    }
}

/** Template keys in memory (an app would wrap them with a Keystore-held key); counts its calls. */
class JvmKeyStore : KeyStore {
    private val keys = ConcurrentHashMap<String, ByteArray>()
    val creates = AtomicInteger()
    val deletes = AtomicInteger()

    override fun getOrCreate(keyId: String): ByteArray = keys.computeIfAbsent(keyId) {
        creates.incrementAndGet()
        ByteArray(32).also { SecureRandom().nextBytes(it) }
    }

    override fun get(keyId: String): ByteArray? = keys[keyId]

    override fun delete(keyId: String) {
        if (keys.remove(keyId) != null) deletes.incrementAndGet()
    }

    fun size() = keys.size
}
