// The merchant's backend, which the app never contains: creates enrolment tokens and orders on the checkout
// server with the merchant API key (plain java.net.http on loopback).
package dev.facepay.test

import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.security.MessageDigest
import java.util.Base64

class MerchantBackend(private val baseUrl: String, private val apiKey: String) {
    private val http = HttpClient.newHttpClient()

    /** `POST /v1/enrollments`: the single-use token the app registers its device with. */
    fun enrollmentToken(accountId: String): String =
        field(post("v1/enrollments", """{"account_id":"$accountId"}"""), "enrollment_token")

    /** `POST /v1/orders`: the client token the app pays the order with. */
    fun createOrder(orderId: String, amountMinor: Long, currency: String): String {
        val digest = MessageDigest.getInstance("SHA-256").digest("$orderId:$amountMinor".toByteArray())
        val b64 = Base64.getUrlEncoder().withoutPadding().encodeToString(digest)
        val body = """{"order_id":"$orderId","amount_minor":$amountMinor,"currency":"$currency","items_digest":"$b64"}"""
        return field(post("v1/orders", body), "client_token")
    }

    private fun post(path: String, json: String): String {
        val request = HttpRequest.newBuilder(URI.create("${baseUrl.trimEnd('/')}/$path"))
            .header("Authorization", "Bearer $apiKey")
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(json))
            .build()
        val response = http.send(request, HttpResponse.BodyHandlers.ofString())
        check(response.statusCode() in 200..299) { "POST $path answered ${response.statusCode()}: ${response.body()}" }
        return response.body()
    }

    private fun field(json: String, name: String): String =
        Regex("\"$name\"\\s*:\\s*\"([^\"]+)\"").find(json)?.groupValues?.get(1)
            ?: error("no \"$name\" in $json")
}
