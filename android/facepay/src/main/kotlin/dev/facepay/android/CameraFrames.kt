package dev.facepay.android

import androidx.camera.core.ImageProxy
import dev.facepay.sdk.CameraFrame
import dev.facepay.sdk.FramePixels
import java.nio.ByteBuffer

/**
 * A CameraX `ImageAnalysis` frame (`YUV_420_888`) as a FacePay frame: the three planes with their strides, the
 * rotation that makes it upright, mirrored for the front camera so the oval matches the mirrored preview.
 * Copies each plane once (the copy the FFI needs); close the [ImageProxy] after pushing.
 */
fun ImageProxy.toCameraFrame(mirror: Boolean = true): CameraFrame {
    val (y, u, v) = planes
    return CameraFrame(
        pixels = FramePixels.Yuv420(
            y = y.buffer.bytes(),
            u = u.buffer.bytes(),
            v = v.buffer.bytes(),
            yStride = y.rowStride.toUInt(),
            uvStride = u.rowStride.toUInt(),
            uvPixelStride = u.pixelStride.toUInt(),
        ),
        width = width.toUInt(),
        height = height.toUInt(),
        rotationDegrees = imageInfo.rotationDegrees,
        mirror = mirror,
    )
}

private fun ByteBuffer.bytes(): ByteArray {
    rewind()
    return ByteArray(remaining()).also { get(it) }
}
