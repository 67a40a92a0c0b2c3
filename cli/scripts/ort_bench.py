"""Times FacePay's ONNX models under onnxruntime, one thread: the reference figures for tract.

    models/.work/venv/bin/python cli/scripts/ort_bench.py [--runs 200] [--antispoof-dir DIR] [--json]

Inputs come from one webcam frame (live-blink-7/00001.jpg, 640x427), preprocessed as models/manifest.toml says: the
detector gets the letterboxed frame, the face mesh a 192x192 centred crop, the iris model a 64x64 one, each embedder a centred crop
at its input size (112x112 MobileFaceNet, 150x150 dlib ResNet), the MiniFASNet models (if found) an 80x80 centred crop. Only session.run is timed.
Progress goes to stderr; with --json, stdout is one object of medians in ms:
{"detect_ms", "landmarks_ms", "eyes_ms", "embed_ms", "embed_dlib_ms", "antispoof_ms", "load_ms"} (eyes_ms is the iris model run
twice, once per eye, as the pipeline does; antispoof_ms is both MiniFASNet models together, null when they are
absent; load_ms is all sessions created).
"""
import argparse
import json
import os
import sys
import time
import tomllib

import numpy as np
import onnxruntime as ort
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIELD = {"detector": "detect_ms", "landmarks": "landmarks_ms", "eyes": "eyes_ms"}
# Embedders are told apart by name: MobileFaceNet and dlib's ResNet (the two of the fused match score).
EMBED_FIELD = {"mobilefacenet": "embed_ms", "dlib_resnet": "embed_dlib_ms"}
# Inferences per frame for a role (the pipeline runs the iris model once per eye).
RUNS_PER_FRAME = {"eyes": 2}


def fail(msg):
    sys.exit(f"ort_bench: {msg}")


def tensor(img, entry):
    """img (PIL, already the input size) -> float32 tensor laid out and normalised per the manifest entry."""
    x = np.asarray(img.convert("RGB"), np.float32)
    if entry["channel_order"] == "BGR":
        x = x[:, :, ::-1]
    norm = entry["normalisation"]
    x = x * norm["scale"] + norm["offset"]
    if entry["layout"] == "NCHW":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x[None], np.float32)


def model_input(frame, entry):
    """Detector: letterboxed frame; others: a centred square crop resized to the model's input."""
    shape = entry["input_shape"]
    size = shape[1] if entry["layout"] == "NHWC" else shape[2]
    w, h = frame.size
    if entry["role"] == "detector":
        side = max(w, h)
        canvas = Image.new("RGB", (side, side))
        canvas.paste(frame, ((side - w) // 2, (side - h) // 2))
        return tensor(canvas.resize((size, size), Image.BILINEAR), entry)
    side = min(w, h) // 2
    box = ((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2)
    return tensor(frame.crop(box).resize((size, size), Image.BILINEAR), entry)


def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    t0 = time.perf_counter()
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    return sess, (time.perf_counter() - t0) * 1000.0


def time_runs(runs, fn):
    for _ in range(5):
        fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1000.0)
    return float(np.median(ts)), float(np.percentile(ts, 95))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    shared = os.path.normpath(os.environ.get("FACEPAY_SHARED", os.path.join(ROOT, "..", "shared")))
    ap.add_argument("--models-dir", default=os.environ.get("FACEPAY_MODELS", os.path.join(ROOT, "models")))
    ap.add_argument("--antispoof-dir", default=os.environ.get("FACEPAY_ANTISPOOF_MODELS", os.path.join(shared, "models")))
    ap.add_argument("--frame", default=os.path.join(shared, "data", "clips", "live-blink-7", "00001.jpg"))
    ap.add_argument("--runs", type=int, default=200, help="timed runs per model (at least 100)")
    ap.add_argument("--json", action="store_true", help="print one JSON object of medians on stdout")
    args = ap.parse_args()
    if args.runs < 100:
        fail("--runs must be at least 100")
    manifest_path = os.path.join(args.models_dir, "manifest.toml")
    if not os.path.isfile(manifest_path):
        fail(f"no manifest at {manifest_path} (set --models-dir or FACEPAY_MODELS)")
    if not os.path.isfile(args.frame):
        fail(f"benchmark frame {args.frame} not found (set --frame or FACEPAY_SHARED)")
    with open(manifest_path, "rb") as f:
        manifest = tomllib.load(f)
    frame = Image.open(args.frame).convert("RGB")
    print(f"ort_bench: onnxruntime {ort.__version__}, frame {args.frame} {frame.size[0]}x{frame.size[1]}, "
          f"{args.runs} runs, 1 thread", file=sys.stderr)

    result = {"detect_ms": None, "landmarks_ms": None, "eyes_ms": None, "embed_ms": None, "embed_dlib_ms": None,
              "antispoof_ms": None,
              "load_ms": 0.0}
    rows = []
    for entry in manifest["model"]:
        path = os.path.join(args.models_dir, entry["file"])
        if not os.path.isfile(path):
            # dlib's ResNet ships as NNEF only; models/reproduce.sh rebuilds its ONNX file into models/.work/out.
            path = os.path.join(args.models_dir, ".work", "out", entry["file"])
        if not os.path.isfile(path):
            fail(f"model {entry['file']} named in the manifest is in neither {args.models_dir} nor its .work/out "
                 "(run models/reproduce.sh)")
        field = EMBED_FIELD.get(entry["name"]) if entry["role"] == "embedder" else FIELD.get(entry["role"])
        if field is None:
            fail(f"model {entry['name']} has role {entry['role']!r}, which this script does not know")
        sess, load = session(path)
        feed = {sess.get_inputs()[0].name: model_input(frame, entry)}
        times = RUNS_PER_FRAME.get(entry["role"], 1)
        med, p95 = time_runs(args.runs, lambda: [sess.run(None, feed) for _ in range(times)])
        result[field] = round(med, 3)
        result["load_ms"] += load
        rows.append((entry["name"], med, p95, load))

    spoof = [e for e in manifest.get("external", []) if e["role"] == "antispoof"]
    present = [e for e in spoof if os.path.isfile(os.path.join(args.antispoof_dir, e["file"]))]
    if present and len(present) < len(spoof):
        fail(f"only some MiniFASNet models are in {args.antispoof_dir}: {[e['file'] for e in present]}")
    if present:
        runners = []
        for entry in present:
            sess, load = session(os.path.join(args.antispoof_dir, entry["file"]))
            feed = {sess.get_inputs()[0].name: model_input(frame, entry)}
            runners.append(lambda s=sess, f=feed: s.run(None, f))
            med, p95 = time_runs(args.runs, runners[-1])
            result["load_ms"] += load
            rows.append((entry["name"], med, p95, load))
        med, p95 = time_runs(args.runs, lambda: [r() for r in runners])
        result["antispoof_ms"] = round(med, 3)
        rows.append(("antispoof (both)", med, p95, 0.0))
    else:
        print(f"ort_bench: no MiniFASNet models in {args.antispoof_dir}; antispoof_ms is null", file=sys.stderr)
    result["load_ms"] = round(result["load_ms"], 3)

    if args.json:
        print(json.dumps(result))
    else:
        print(f"{'model':<28}{'median ms':>10}{'p95 ms':>10}{'load ms':>10}")
        for name, med, p95, load in rows:
            print(f"{name:<28}{med:>10.2f}{p95:>10.2f}{load:>10.1f}")


if __name__ == "__main__":
    main()
