package dev.facepay.sample

import android.Manifest
import android.content.pm.PackageManager
import android.os.Bundle
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.activity.result.contract.ActivityResultContracts
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.material3.Button
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.res.stringResource
import androidx.core.content.ContextCompat
import dev.facepay.sdk.core.Receipt

/** Buy ▸ selfie ▸ receipt. */
class MainActivity : ComponentActivity() {
    private val camera = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) paying.value = true
    }
    private val paying = mutableStateOf(false)

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val facePay = FacePayHolder.get(this)
        setContent {
            MaterialTheme {
                var receipt by remember { mutableStateOf<Receipt?>(null) }
                var error by remember { mutableStateOf<String?>(null) }
                when {
                    paying.value -> PayScreen(facePay, onDone = { r, e ->
                        receipt = r
                        error = e
                        paying.value = false
                    })
                    else -> Column(
                        Modifier.fillMaxSize(),
                        verticalArrangement = Arrangement.Center,
                        horizontalAlignment = Alignment.CenterHorizontally,
                    ) {
                        receipt?.let { Text("Paid ${it.amountMinor / 100u}.${(it.amountMinor % 100u).toString().padStart(2, '0')} ${it.currency} — receipt ${it.paymentId}") }
                        error?.let { Text(it, color = MaterialTheme.colorScheme.error) }
                        Button(onClick = { startPayment() }) { Text(stringResource(R.string.buy)) }
                    }
                }
            }
        }
    }

    private fun startPayment() {
        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
            paying.value = true
        } else {
            camera.launch(Manifest.permission.CAMERA)
        }
    }
}
