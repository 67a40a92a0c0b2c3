package dev.facepay.sample

import android.annotation.SuppressLint
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.Preview
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.compose.foundation.Canvas
import androidx.compose.foundation.layout.Box
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.padding
import androidx.compose.material3.LinearProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.DisposableEffect
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.geometry.Offset
import androidx.compose.ui.geometry.Size
import androidx.compose.ui.graphics.Color
import androidx.compose.ui.graphics.drawscope.Stroke
import androidx.compose.ui.platform.LocalContext
import androidx.compose.ui.platform.LocalLifecycleOwner
import androidx.compose.ui.semantics.LiveRegionMode
import androidx.compose.ui.semantics.liveRegion
import androidx.compose.ui.semantics.semantics
import androidx.compose.ui.unit.dp
import androidx.compose.ui.viewinterop.AndroidView
import androidx.core.content.ContextCompat
import dev.facepay.android.toCameraFrame
import dev.facepay.sdk.FacePay
import dev.facepay.sdk.core.FacePayException
import dev.facepay.sdk.FlowEvent
import dev.facepay.sdk.FlowListener
import dev.facepay.sdk.Guidance
import dev.facepay.sdk.PaymentSession
import dev.facepay.sdk.PaymentStep
import dev.facepay.sdk.core.Receipt
import java.util.concurrent.Executors
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext

/**
 * The selfie step: front camera preview, the head outline and the prompt (a live region, so TalkBack announces
 * each new prompt), frames pushed from CameraX's analyser thread; `onDone` gets the receipt or the error text.
 */
@SuppressLint("UnsafeOptInUsageError")
@Composable
fun PayScreen(facePay: FacePay, onDone: (Receipt?, String?) -> Unit) {
    val context = LocalContext.current
    val lifecycleOwner = LocalLifecycleOwner.current
    var guidance by remember { mutableStateOf<Guidance?>(null) }
    var session by remember { mutableStateOf<PaymentSession?>(null) }
    var verified by remember { mutableStateOf(false) }
    val listener = remember {
        object : FlowListener {
            // Called on the analyser thread: hand the prompt to Compose state (snapshot-safe).
            override fun onEvent(event: FlowEvent) {
                if (event is FlowEvent.Prompt) guidance = event.guidance
            }
        }
    }

    LaunchedEffect(Unit) {
        try {
            val token = withContext(Dispatchers.IO) { MerchantBackend.createOrder(1250, "EUR") }
            session = facePay.startPayment(token, listener)
        } catch (e: FacePayException) {
            onDone(null, e.message)
        }
    }
    LaunchedEffect(verified) {
        val s = session ?: return@LaunchedEffect
        if (!verified) return@LaunchedEffect
        try {
            onDone(s.pay(), null)
        } catch (e: FacePayException) {
            onDone(null, e.message)
        } finally {
            s.destroy()
        }
    }

    Box(Modifier.fillMaxSize()) {
        AndroidView(modifier = Modifier.fillMaxSize(), factory = { ctx ->
            PreviewView(ctx).also { view ->
                val analyser = Executors.newSingleThreadExecutor()
                val providerFuture = ProcessCameraProvider.getInstance(ctx)
                providerFuture.addListener({
                    val provider = providerFuture.get()
                    val preview = Preview.Builder().build().also { it.surfaceProvider = view.surfaceProvider }
                    val analysis = ImageAnalysis.Builder()
                        .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                        .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_YUV_420_888)
                        .build()
                    analysis.setAnalyzer(analyser) { image ->
                        image.use {
                            val s = session ?: return@use
                            if (verified) return@use
                            try {
                                val step = s.pushFrame(it.toCameraFrame(mirror = true), it.imageInfo.timestamp / 1e9)
                                if (step is PaymentStep.Verified) verified = true
                            } catch (e: FacePayException) {
                                ContextCompat.getMainExecutor(ctx).execute { onDone(null, e.message) }
                            }
                        }
                    }
                    provider.unbindAll()
                    provider.bindToLifecycle(lifecycleOwner, CameraSelector.DEFAULT_FRONT_CAMERA, preview, analysis)
                }, ContextCompat.getMainExecutor(ctx))
            }
        })
        guidance?.let { g ->
            // Frames are pushed mirrored, like the front preview: the oval is drawn as it is.
            Canvas(Modifier.fillMaxSize()) {
                val o = g.oval
                drawOval(
                    color = if (g.state is dev.facepay.sdk.core.GuidanceState.HoldStill) Color.Green else Color.White,
                    topLeft = Offset((o.cx - o.rx) * size.width, (o.cy - o.ry) * size.height),
                    size = Size(2 * o.rx * size.width, 2 * o.ry * size.height),
                    style = Stroke(width = 4.dp.toPx()),
                )
            }
            Text(
                text = localized(context, g),
                style = MaterialTheme.typography.headlineSmall,
                color = Color.White,
                modifier = Modifier.align(Alignment.TopCenter).padding(32.dp)
                    .semantics { liveRegion = LiveRegionMode.Polite },
            )
            LinearProgressIndicator(
                progress = { g.progress },
                modifier = Modifier.align(Alignment.BottomCenter).padding(32.dp),
            )
        }
    }
    DisposableEffect(Unit) { onDispose { session?.cancel() } }
}

/** The prompt in the user's language: the string resource named after the message key, else the English text. */
private fun localized(context: android.content.Context, g: Guidance): String {
    val id = context.resources.getIdentifier(g.messageKey.replace('.', '_'), "string", context.packageName)
    return if (id != 0) context.getString(id) else g.message
}
