// The FacePay Android library: the uniffi-generated Kotlin API (bindings/generated/kotlin, produced by
// ../build-rust.sh, never edited), the native library per ABI (src/main/jniLibs), and the Android platform pieces:
// Keystore-backed KeyStore and DeviceSigner, and the CameraX frame adapter.
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "dev.facepay.android"
    compileSdk = 35
    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
    }
    sourceSets["main"].kotlin.srcDir("../../bindings/generated/kotlin")
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    packaging {
        // Keep the .so files page-aligned and uncompressed in the APK (16 KB pages).
        jniLibs.useLegacyPackaging = false
    }
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    // uniffi's Kotlin runtime: JNA (the AAR carries libjnidispatch for every ABI) and coroutines.
    api("net.java.dev.jna:jna:5.15.0@aar")
    api("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.9.0")
    implementation("androidx.camera:camera-core:1.4.1")
}
