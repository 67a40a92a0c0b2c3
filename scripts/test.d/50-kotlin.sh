# Sourced by scripts/test.sh: the Kotlin end-to-end test of the uniffi bindings (bindings/tests/kotlin/run.sh).
# Installs what it needs when missing: the Kotlin compiler from npm (into target/tools, pinned) and JNA from Debian.
kotlin_dir="$root/target/tools/kotlin"
if [ ! -x "$kotlin_dir/node_modules/kotlin-compiler/bin/kotlinc-jvm" ]; then
  if ! command -v npm >/dev/null; then apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; fi
  mkdir -p "$kotlin_dir"
  npm install --prefix "$kotlin_dir" --no-audit --no-fund --silent kotlin-compiler@2.4.20 >&2
fi
if [ ! -e /usr/share/java/jna.jar ] || ! command -v java >/dev/null || ! command -v clang >/dev/null; then
  apt-get update -qq && apt-get install -y -qq libjna-java libjna-jni default-jre-headless clang >/dev/null
fi
# FACEPAY_BUILD_SCOPE=workspace: build every test target now, with the same features `cargo test` uses below.
FACEPAY_BUILD_SCOPE=workspace \
KOTLINC="$kotlin_dir/node_modules/kotlin-compiler/bin/kotlinc-jvm" \
KOTLIN_LIB="$kotlin_dir/node_modules/kotlin-compiler/lib" \
JNA_JAR=/usr/share/java/jna.jar \
  "$root/bindings/tests/kotlin/run.sh"
