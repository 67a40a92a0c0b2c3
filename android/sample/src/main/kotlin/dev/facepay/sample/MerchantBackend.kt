package dev.facepay.sample

import java.net.HttpURLConnection
import java.net.URL

/**
 * The demo merchant backend (not part of FacePay): it holds the merchant API key, creates the order on the
 * checkout server and answers the client token as plain text. Replace with your own backend call.
 */
object MerchantBackend {
    fun createOrder(amountMinor: Long, currency: String): String {
        val connection = URL("${BuildConfig.MERCHANT_BACKEND_URL}/orders?amount=$amountMinor&currency=$currency")
            .openConnection() as HttpURLConnection
        connection.requestMethod = "POST"
        return connection.inputStream.bufferedReader().use { it.readText().trim() }
    }
}
