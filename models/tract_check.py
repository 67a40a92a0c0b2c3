"""Loads ONNX models with tract 0.23.9 (the engine facepay-core uses, here through its Python
bindings) and compares each output with onnxruntime on a fixed pseudo-random input.

    models/.work/venv/bin/python models/tract_check.py models/*.onnx [--json]

Exits non-zero if a model fails to load or run in tract, or differs from onnxruntime by more than 1e-3.
"""
import json
import sys
import time

import numpy as np
import onnxruntime as ort
import tract

TOLERANCE = 1e-3


def check(path):
    t0 = time.perf_counter()
    runnable = tract.onnx().load(path).into_model().into_runnable()
    load_ms = (time.perf_counter() - t0) * 1000.0
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    x = np.random.default_rng(1).uniform(-1, 1, size=inp.shape).astype(np.float32)
    if "minifasnet" in path or "dlib_resnet" in path:  # raw 0..255 pixels
        x = (x + 1) * 127.5
    want = sess.run(None, {inp.name: x})
    got = [t.to_numpy() for t in runnable.run([x])]
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(got, want))
    return {"model": path, "tract_load_ms": round(load_ms, 1), "max_abs_diff_vs_ort": diff,
            "outputs": [list(g.shape) for g in got]}


def main():
    paths = [a for a in sys.argv[1:] if a != "--json"]
    if not paths:
        sys.exit("usage: tract_check.py MODEL.onnx... [--json]")
    results = [check(p) for p in paths]
    if "--json" in sys.argv:
        print(json.dumps({"tract": tract.version(), "models": results}))
    else:
        for r in results:
            print(f"tract {tract.version()}: {r['model']} loads in {r['tract_load_ms']} ms, "
                  f"outputs {r['outputs']}, max |tract - onnxruntime| = {r['max_abs_diff_vs_ort']:.1e}")
    bad = [r["model"] for r in results if not r["max_abs_diff_vs_ort"] <= TOLERANCE]
    if bad:
        sys.exit(f"tract_check: outputs differ from onnxruntime: {bad}")


if __name__ == "__main__":
    main()
