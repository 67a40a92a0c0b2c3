// End-to-end test of the generated Kotlin API on the JVM: enrolment and payment on a recorded clip against a real
// facepay-server on loopback, with Kotlin implementations of KeyStore, DeviceSigner and ModelAssets, the models
// opened from bytes, and the typed errors.
// Run by bindings/tests/kotlin/run.sh (scripts/test.d/50-kotlin.sh); prints "kotlin: N passed, M failed".
package dev.facepay.test

import dev.facepay.sdk.CameraFrame
import dev.facepay.sdk.EnrolmentCapture
import dev.facepay.sdk.EnrolmentStep
import dev.facepay.sdk.core.EnrolmentSummary
import dev.facepay.sdk.FacePay
import dev.facepay.sdk.FacePayConfig
import dev.facepay.sdk.FlowEvent
import dev.facepay.sdk.FlowListener
import dev.facepay.sdk.FramePixels
import dev.facepay.sdk.ModelAssets
import dev.facepay.sdk.PaymentSession
import dev.facepay.sdk.PaymentStep
import dev.facepay.sdk.checkFrame
import dev.facepay.sdk.fileKeyStore
import dev.facepay.sdk.memoryKeyStore
import dev.facepay.sdk.modelBytes
import dev.facepay.sdk.modelDirectory
import dev.facepay.sdk.softwareDeviceSigner
import dev.facepay.sdk.core.Challenge
import dev.facepay.sdk.core.ConfigSetting
import dev.facepay.sdk.core.ErrorCode
import dev.facepay.sdk.core.FacePayException
import dev.facepay.sdk.core.FrameProblem
import dev.facepay.sdk.core.GuidanceState
import dev.facepay.sdk.core.Outcome
import dev.facepay.sdk.core.SessionState
import dev.facepay.sdk.core.SignerFailure
import dev.facepay.sdk.core.VisionFailure
import java.io.File
import java.nio.file.Files
import java.util.Collections
import java.util.concurrent.atomic.AtomicInteger
import kotlin.system.exitProcess
import kotlinx.coroutines.runBlocking

private fun env(name: String): String =
    System.getenv(name)?.takeIf { it.isNotEmpty() } ?: error("environment variable $name is not set (run bindings/tests/kotlin/run.sh)")

private val shared = File(env("FACEPAY_SHARED"))
private val clip: List<File> = File(shared, "data/clips/live-blink-7").let { dir ->
    check(dir.isDirectory) { "missing clip folder $dir: set FACEPAY_SHARED to the shared data folder (holding data/clips/live-blink-7)" }
    dir.listFiles { f -> f.name.endsWith(".jpg") }!!.sortedBy { it.name }
}
private const val FPS = 15.0
private val merchant = MerchantBackend(env("FACEPAY_TEST_SERVER"), env("FACEPAY_TEST_MERCHANT_KEY"))

private fun jpegFrame(i: Int) = CameraFrame(FramePixels.Encoded(clip[i].readBytes()), 0u, 0u, 0, false)

private fun config(state: File, deviceId: String = "kotlin-${System.nanoTime()}", models: String = env("FACEPAY_MODELS")) =
    FacePayConfig(
        serverUrl = env("FACEPAY_TEST_SERVER"),
        pinnedCertPem = null,
        deviceId = deviceId,
        stateDir = state.path,
        modelsDir = models,
        antispoofModelsDir = File(shared, "models").path,
        enrolmentChallenges = listOf(Challenge.Blink),
    )

/** The committed model bundle as bytes (`manifest.toml` and the NNEF model files), as an app reads its assets. */
private fun bundleBytes(): Map<String, ByteArray> =
    File(env("FACEPAY_MODELS")).listFiles { f -> f.name == "manifest.toml" || f.name.endsWith(".nnef.tar") }!!
        .associate { it.name to it.readBytes() }

/** A ModelAssets over a folder, as an Android AssetManager- or iOS Bundle-backed one reads the app's assets. */
private class FolderAssets(private val dir: File) : ModelAssets {
    val reads = AtomicInteger()
    override fun read(name: String): ByteArray? {
        reads.incrementAndGet()
        return File(dir, name).takeIf { it.isFile }?.readBytes()
    }
}

/** Records every event the flow reports. */
private class Recorder : FlowListener {
    val events: MutableList<FlowEvent> = Collections.synchronizedList(mutableListOf())
    override fun onEvent(event: FlowEvent) {
        events.add(event)
    }
}

private fun check(condition: Boolean, message: () -> String) {
    if (!condition) throw AssertionError(message())
}

private inline fun <reified E : Throwable> expectThrows(what: String, block: () -> Unit): E {
    try {
        block()
    } catch (e: Throwable) {
        if (e is E) return e
        throw AssertionError("$what: expected ${E::class.simpleName}, got $e", e)
    }
    throw AssertionError("$what: expected ${E::class.simpleName}, nothing was thrown")
}

/** Pushes clip frames from `from` until enrolled; answers the summary and the next unused frame. */
private fun enrol(capture: EnrolmentCapture): Pair<EnrolmentSummary, Int> {
    for (i in clip.indices) {
        when (val step = capture.pushFrame(jpegFrame(i), i / FPS)) {
            is EnrolmentStep.Capturing -> continue
            is EnrolmentStep.Enrolled -> return step.summary to i + 1
        }
    }
    throw AssertionError("the clip ended before the enrolment decided")
}

/** Pushes clip frames from `from` until the face is verified; answers the step. */
private fun verify(session: PaymentSession, from: Int): PaymentStep.Verified {
    for (i in from until clip.size) {
        when (val step = session.pushFrame(jpegFrame(i), i / FPS)) {
            is PaymentStep.Capturing -> continue
            is PaymentStep.Verified -> return step
        }
    }
    throw AssertionError("the clip ended before the payment session decided")
}

private fun tempDir(tag: String): File = Files.createTempDirectory("facepay-kotlin-$tag").toFile()

/** Frames of every format convert (size, rotation), bad ones throw InvalidFrame; software keys work. */
private fun framesAndSoftwareKeys() {
    val size = checkFrame(jpegFrame(0))
    check(size.width > 0u && size.height > 0u) { "decoded size $size" }
    // A 64x48 NV21 frame (Y plane then VU plane) rotated 90°: upright it is 48x64.
    val nv21 = ByteArray(64 * 48 + 64 * 24) { 128.toByte() }
    val rotated = checkFrame(CameraFrame(FramePixels.Nv21(nv21, 64u), 64u, 48u, 90, true))
    check(rotated.width == 48u && rotated.height == 64u) { "NV21 rotated: $rotated" }
    val bgra = checkFrame(CameraFrame(FramePixels.Bgra8(ByteArray(256 * 32), 256u), 64u, 32u, 180, false))
    check(bgra.width == 64u && bgra.height == 32u) { "BGRA: $bgra" }
    val yuv = checkFrame(
        CameraFrame(FramePixels.Yuv420(ByteArray(32 * 32), ByteArray(256), ByteArray(256), 32u, 16u, 1u), 32u, 32u, 270, false),
    )
    check(yuv.width == 32u && yuv.height == 32u) { "YUV: $yuv" }
    val badRotation = expectThrows<FacePayException.InvalidFrame>("rotation 45") {
        checkFrame(CameraFrame(FramePixels.Nv21(nv21, 64u), 64u, 48u, 45, false))
    }
    check(badRotation.problem == FrameProblem.ROTATION && badRotation.detail.contains("45")) { "$badRotation" }
    val short = expectThrows<FacePayException.InvalidFrame>("short RGB buffer") {
        checkFrame(CameraFrame(FramePixels.Rgb8(ByteArray(100), 192u), 64u, 64u, 0, false))
    }
    check(short.problem == FrameProblem.BUFFER_TOO_SHORT) { "${short.problem}: ${short.detail}" }
    val stride = expectThrows<FacePayException.InvalidFrame>("RGB stride below a row") {
        checkFrame(CameraFrame(FramePixels.Rgb8(ByteArray(64 * 64 * 3), 100u), 64u, 64u, 0, false))
    }
    check(stride.problem == FrameProblem.STRIDE) { "${stride.problem}: ${stride.detail}" }
    val notImage = expectThrows<FacePayException.InvalidFrame>("not an image") {
        checkFrame(CameraFrame(FramePixels.Encoded("not a jpeg".toByteArray()), 0u, 0u, 0, false))
    }
    check(notImage.problem == FrameProblem.UNDECODABLE) { "${notImage.problem}" }

    val signer = softwareDeviceSigner(null)
    val key = signer.publicKey()
    check(key.size == 65 && key[0] == 4.toByte()) { "public key of ${key.size} bytes" }
    check(signer.sign("payload".toByteArray()).isNotEmpty()) { "empty signature" }
    val garbage = expectThrows<FacePayException.Signer>("garbage PKCS#8") { softwareDeviceSigner(byteArrayOf(1, 2, 3)) }
    check(garbage.kind == SignerFailure.INVALID_KEY) { "${garbage.kind}" }
    for (store in listOf(memoryKeyStore(), fileKeyStore(tempDir("keys").path))) {
        check(store.get("k1") == null) { "a key before creation" }
        val k = store.getOrCreate("k1")
        check(k.size == 32 && store.getOrCreate("k1").contentEquals(k)) { "key not stable" }
        expectThrows<dev.facepay.sdk.PlatformException.Failed>("bad key id") { store.getOrCreate("../escape") }
        store.delete("k1")
        check(store.get("k1") == null) { "key survived delete" }
    }
}

/** Unusable configurations throw typed errors before anything else happens. */
private fun configurationErrors() {
    val state = tempDir("config")
    val e = expectThrows<FacePayException.Vision>("missing models") {
        FacePay(config(state, models = File(state, "no-models").path), JvmDeviceSigner(), JvmKeyStore())
    }
    check(e.detail.contains("manifest")) { e.detail }
    val noDir = expectThrows<FacePayException.Vision>("missing model directory") {
        FacePay.withModels(config(state), modelDirectory(File(state, "no-models").path), null, JvmDeviceSigner(), JvmKeyStore())
    }
    check(noDir.detail.contains("manifest")) { noDir.detail }
    // A model bundle in bytes: a tampered model is refused by its sha256, a missing one by name.
    val bundle = bundleBytes()
    check(bundle.keys.any { it.endsWith(".nnef.tar") } && "manifest.toml" in bundle) { "bundle ${bundle.keys}" }
    val tampered = bundle.mapValues { (name, bytes) ->
        if (name == "face_detection_short_range.nnef.tar") bytes.copyOf().also { it[it.size / 2] = (it[it.size / 2] + 1).toByte() } else bytes
    }
    val hash = expectThrows<FacePayException.Vision>("tampered model bytes") {
        FacePay.withModels(config(state), modelBytes(tampered), null, JvmDeviceSigner(), JvmKeyStore())
    }
    check(hash.kind == VisionFailure.MODEL_INTEGRITY && hash.detail.contains("sha256")) { "$hash" }
    val missing = expectThrows<FacePayException.Vision>("model missing from the bundle") {
        FacePay.withModels(config(state), modelBytes(bundle - "face_landmark.nnef.tar"), null, JvmDeviceSigner(), JvmKeyStore())
    }
    check(missing.kind == VisionFailure.MODEL_MISSING && missing.detail.contains("face_landmark.nnef.tar")) { "$missing" }
    val noId = expectThrows<FacePayException.Config>("empty device id") {
        FacePay(config(state, deviceId = ""), JvmDeviceSigner(), JvmKeyStore())
    }
    check(noId.setting == ConfigSetting.DEVICE_ID) { "${noId.setting}" }
    val plain = expectThrows<FacePayException.Config>("plain HTTP to a public host") {
        FacePay(config(state).copy(serverUrl = "http://example.com/"), JvmDeviceSigner(), JvmKeyStore())
    }
    check(plain.setting == ConfigSetting.SERVER) { "${plain.setting}" }
}

/** The whole flow through the Kotlin API: enrol, register, pay, then the typed failures of later payments. */
private fun enrolAndPay() = runBlocking {
    val state = tempDir("flow")
    val signer = JvmDeviceSigner()
    val keys = JvmKeyStore()
    // The models from bytes (as read from an APK's assets or an app bundle), the anti-spoof models through a
    // Kotlin ModelAssets: nothing is read from a models directory.
    val antispoof = FolderAssets(File(env("FACEPAY_TEST_ANTISPOOF_NNEF")))
    val facePay = FacePay.withModels(config(state, models = "/nonexistent"), modelBytes(bundleBytes()), antispoof, signer, keys)
    check(!facePay.isEnrolled()) { "enrolled before enrolment" }
    // Both embedders of the fused match score are in the signed evidence's model versions.
    check(listOf("mobilefacenet@", "dlib_resnet@").all { p -> facePay.modelVersions().any { it.startsWith(p) } }) {
        "${facePay.modelVersions()}"
    }
    check(facePay.modelVersions().any { it.startsWith("minifasnet_v2@") } && antispoof.reads.get() >= 2) {
        "anti-spoof models not loaded through ModelAssets: ${facePay.modelVersions()}, ${antispoof.reads.get()} reads"
    }
    check(facePay.matchThreshold() > 0f && facePay.matchThreshold() < 1f) { "threshold ${facePay.matchThreshold()}" }

    // Paying before enrolling: typed NotEnrolled.
    val early = merchant.createOrder("kt-early-${System.nanoTime()}", 100, "EUR")
    expectThrows<FacePayException.NotEnrolled>("pay before enrolling") { facePay.startPayment(early, Recorder()) }

    // Enrolment from the clip, through the Kotlin key store.
    val enrolEvents = Recorder()
    val capture = facePay.startEnrolment(enrolEvents)
    expectThrows<FacePayException.Busy>("second capture") { facePay.startEnrolment(Recorder()) }
    val (summary, _) = enrol(capture)
    check(summary.embeddings in 3u..5u && summary.frames.size.toUInt() == summary.embeddings) { "$summary" }
    check(summary.model.startsWith("mobilefacenet.dlib_resnet@")) { summary.model }
    check(facePay.isEnrolled()) { "not enrolled after Enrolled" }
    check(keys.creates.get() == 1 && keys.size() == 1) { "the template key was not created in the Kotlin key store" }
    check(enrolEvents.events.first() is FlowEvent.Prompt) { "first event ${enrolEvents.events.first()}" }
    check(enrolEvents.events.any { it is FlowEvent.Verifying }) { "no Verifying event" }
    check((enrolEvents.events.last() as? FlowEvent.Enrolled)?.summary == summary) { "last event ${enrolEvents.events.last()}" }
    val prompts = enrolEvents.events.filterIsInstance<FlowEvent.Prompt>().map { it.guidance }
    check(prompts.any { it.state == GuidanceState.Blink && it.messageKey == "liveness.blink" }) { "no blink prompt" }
    check(prompts.all { it.oval.rx > 0f && it.oval.ry > 0f && it.progress in 0f..1f }) { "bad oval/progress" }
    capture.destroy()

    // Device registration with the merchant's single-use enrolment token.
    val account = "shopper-${System.nanoTime()}"
    val registration = facePay.registerDevice(merchant.enrollmentToken(account))
    check(registration.deviceId == facePay.deviceId() && registration.accountId == account) { "$registration" }
    // Registration proves possession of the key: the server's registration challenge is signed once.
    check(signer.signatures.get() == 1) { "registration signed ${signer.signatures.get()} times" }

    // The payment: challenges from the server's nonce, frames in, verified, signed in Kotlin, receipt.
    val orderId = "kt-order-${System.nanoTime()}"
    val token = merchant.createOrder(orderId, 1250, "EUR")
    val events = Recorder()
    val session = facePay.startPayment(token, events)
    check(session.order().orderId == orderId && session.order().amountMinor == 1250uL) { "${session.order()}" }
    check(session.challenges().size in 3..4 && session.challenges().all { it == Challenge.Blink }) { "${session.challenges()}" }
    val notVerified = expectThrows<FacePayException.InvalidState>("pay before verified") { session.pay() }
    check(notVerified.state == SessionState.CAPTURING) { "${notVerified.state}" }
    val verified = verify(session, 0)
    check(verified.matchScore >= verified.threshold) { "$verified" }
    val receipt = session.pay()
    check(receipt.orderId == orderId && receipt.amountMinor == 1250uL && receipt.currency == "EUR") { "$receipt" }
    check(receipt.paymentId.isNotEmpty() && receipt.liveness == Outcome.PASSED) { "$receipt" }
    check(receipt.counter == 1uL && facePay.counter() == 1uL) { "counter ${receipt.counter}" }
    check(receipt.challenges == session.challenges()) { "challenges ${receipt.challenges}" }
    check(signer.signatures.get() == 2) { "the Kotlin signer signed ${signer.signatures.get() - 1} times for one payment" }
    check(events.events.any { it is FlowEvent.Paying }) { "no Paying event" }
    check((events.events.last() as? FlowEvent.Done)?.receipt == receipt) { "last event ${events.events.last()}" }
    println("  paid ${receipt.amountMinor} ${receipt.currency}: payment ${receipt.paymentId}, score ${receipt.matchScore}")
    session.destroy()

    // The same order again: the server declines it with its stable code.
    val declined = expectThrows<FacePayException.Declined>("paying a paid order") {
        facePay.startPayment(token, Recorder())
    }
    check(declined.code == ErrorCode.ORDER_ALREADY_PAID) { "code ${declined.code}" }

    // The same template on a device the server never registered: declined with the typed UNKNOWN_DEVICE.
    val stranger = FacePay.withModels(config(state, models = "/nonexistent"), modelBytes(bundleBytes()), null, JvmDeviceSigner(), keys)
    val unknown = expectThrows<FacePayException.Declined>("unregistered device") {
        stranger.startPayment(merchant.createOrder("kt-stranger-${System.nanoTime()}", 100, "EUR"), Recorder())
    }
    check(unknown.code == ErrorCode.UNKNOWN_DEVICE) { "code ${unknown.code}" }
    stranger.destroy()

    // A keystore that refuses to sign: typed Signer error, nothing paid.
    val refused = facePay.startPayment(merchant.createOrder("kt-locked-${System.nanoTime()}", 300, "EUR"), Recorder())
    verify(refused, 0)
    signer.failNext = true
    val signerError = expectThrows<FacePayException.Signer>("locked keystore") { refused.pay() }
    check(signerError.kind == SignerFailure.AUTHENTICATION_REQUIRED && signerError.detail.contains("device credential")) { "$signerError" }
    refused.destroy()

    // Cancellation: later frames and pay throw Cancelled; the listener hears it.
    val cancelEvents = Recorder()
    val cancelled = facePay.startPayment(merchant.createOrder("kt-cancel-${System.nanoTime()}", 200, "EUR"), cancelEvents)
    for (i in 0 until 5) check(cancelled.pushFrame(jpegFrame(i), i / FPS) is PaymentStep.Capturing) { "frame $i" }
    // A frame whose stride does not fit its width is a typed error (the session counts it and goes on).
    val badFrame = expectThrows<FacePayException.InvalidFrame>("bad frame in a session") {
        cancelled.pushFrame(CameraFrame(FramePixels.Rgb8(ByteArray(64 * 64 * 3), 100u), 64u, 64u, 0, false), 5 / FPS)
    }
    check(badFrame.problem == FrameProblem.STRIDE) { "${badFrame.problem}: ${badFrame.detail}" }
    check(cancelled.pushFrame(jpegFrame(6), 6 / FPS) is PaymentStep.Capturing) { "frame after a bad one" }
    cancelled.cancel()
    expectThrows<FacePayException.Cancelled>("frame after cancel") { cancelled.pushFrame(jpegFrame(7), 7 / FPS) }
    expectThrows<FacePayException.Cancelled>("pay after cancel") { cancelled.pay() }
    check((cancelEvents.events.last() as? FlowEvent.Failed)?.error is FacePayException.Cancelled) { "last event ${cancelEvents.events.last()}" }
    cancelled.destroy()

    // A cancelled enrolment stores nothing; later frames throw Cancelled.
    val cancelledEnrolment = facePay.startEnrolment(Recorder())
    for (i in 0 until 3) check(cancelledEnrolment.pushFrame(jpegFrame(i), i / FPS) is EnrolmentStep.Capturing) { "frame $i" }
    cancelledEnrolment.cancel()
    expectThrows<FacePayException.Cancelled>("enrolment frame after cancel") { cancelledEnrolment.pushFrame(jpegFrame(3), 3 / FPS) }
    check(keys.creates.get() == 1) { "a cancelled enrolment created a key" }
    cancelledEnrolment.destroy()

    // Deletion wipes the template and its key from the Kotlin key store.
    facePay.deleteEnrolment()
    check(!facePay.isEnrolled() && keys.size() == 0 && keys.deletes.get() == 1) { "template or key left after deletion" }
    facePay.destroy()
    state.deleteRecursively()
}

fun main() {
    val tests = listOf(
        "frames_and_software_keys" to ::framesAndSoftwareKeys,
        "configuration_errors" to ::configurationErrors,
        "enrol_and_pay_through_kotlin" to ::enrolAndPay,
    )
    var failed = 0
    for ((name, test) in tests) {
        val start = System.nanoTime()
        try {
            test()
            println("test $name ... ok (${(System.nanoTime() - start) / 1_000_000} ms)")
        } catch (e: Throwable) {
            failed++
            println("test $name ... FAILED")
            e.printStackTrace(System.out)
        }
    }
    println("kotlin: ${tests.size - failed} passed, $failed failed")
    exitProcess(if (failed == 0) 0 else 1)
}
