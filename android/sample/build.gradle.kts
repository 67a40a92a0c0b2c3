// Sample app: Buy ▸ front camera with the oval and spoken prompts ▸ receipt.
plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
    id("org.jetbrains.kotlin.plugin.compose")
}

android {
    namespace = "dev.facepay.sample"
    compileSdk = 35
    defaultConfig {
        applicationId = "dev.facepay.sample"
        minSdk = 24
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        // The demo backend (a facepay-server and a merchant backend reachable from the device).
        buildConfigField("String", "SERVER_URL", "\"https://10.0.2.2:8443\"")
        buildConfigField("String", "MERCHANT_BACKEND_URL", "\"http://10.0.2.2:8080\"")
    }
    buildFeatures {
        compose = true
        buildConfig = true
    }
    // The models ship as assets and are copied to files/ on first start (tract reads them from a directory).
    sourceSets["main"].assets.srcDir("../../models")
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    implementation(project(":facepay"))
    implementation(platform("androidx.compose:compose-bom:2024.12.01"))
    implementation("androidx.compose.ui:ui")
    implementation("androidx.compose.material3:material3")
    implementation("androidx.activity:activity-compose:1.9.3")
    implementation("androidx.lifecycle:lifecycle-runtime-compose:2.8.7")
    implementation("androidx.camera:camera-camera2:1.4.1")
    implementation("androidx.camera:camera-lifecycle:1.4.1")
    implementation("androidx.camera:camera-view:1.4.1")
}
