"""Post-process a tf2onnx conversion into the committed FacePay model.

Usage: postprocess.py NAME RAW_ONNX TFLITE OUT_ONNX

Steps: fix the batch dimension to 1 (MobileFaceNet ships with batch 2 baked into its
Reshape constants), give inputs/outputs stable names, simplify with onnxsim (folds
constants; also removes attribute-less ConstantOfShape nodes that tract types as f64),
give every node, internal value and weight a canonical name (tf2onnx's generated names
depend on Python's hash seed, which would make the bytes differ from run to run),
for the models in HALF_STORAGE store every float weight as float16 followed by a Cast to
float32 (halves the file; the graph still computes in float32), then check the result against the TFLite interpreter on a fixed pseudo-random input.
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from onnxsim import simplify

# Per model: new input name, {old output name: new output name}.
RENAMES = {
    "face_detection_short_range": ("input", {}),
    "face_landmark": ("input", {"conv2d_20": "landmarks", "conv2d_30": "face_flag"}),
    "mobilefacenet": ("input", {}),
    "iris_landmark": ("input", {"output_eyes_contours_and_brows": "eye_contour", "output_iris": "iris"}),
}
# Models whose float weights are stored as float16 (each followed by a Cast back to float32).
HALF_STORAGE = {"iris_landmark"}
# Largest tolerated |onnx - tflite| on the check input: float32 storage, and float16 weights (outputs in
# 64-px crop units, so 0.05 is under a tenth of a pixel at the eye's scale).
TOLERANCE = {"float32": 1e-3, "float16": 5e-2}


def rename_value(graph, old, new):
    """Rename a graph value everywhere it is produced or consumed."""
    if old == new:
        return
    for node in graph.node:
        node.input[:] = [new if x == old else x for x in node.input]
        node.output[:] = [new if x == old else x for x in node.output]
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        if vi.name == old:
            vi.name = new


def fix_batch_to_one(graph):
    """Set the batch dim of inputs/outputs to 1 and of every Reshape shape constant too."""
    for vi in list(graph.input) + list(graph.output):
        dims = vi.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_param")
            dims[0].dim_value = 1
    reshape_shapes = {n.input[1] for n in graph.node if n.op_type == "Reshape"}
    for i, init in enumerate(graph.initializer):
        if init.name in reshape_shapes:
            arr = numpy_helper.to_array(init).copy()
            if arr.ndim == 1 and arr.size > 0 and arr[0] > 1:
                arr[0] = 1
                graph.initializer[i].CopyFrom(numpy_helper.from_array(arr, init.name))
    del graph.value_info[:]  # stale shapes; onnxsim re-infers them


def canonical_names(graph):
    """Rename weights (w0, w1, ... in order of first use, sorted so) and every node and internal value
    (<op>_<index>): tf2onnx's generated names depend on Python's hash seed, the graph does not."""
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    renames = {}
    for i, node in enumerate(graph.node):
        node.name = f"{node.op_type}_{i}"
        for j, out in enumerate(node.output):
            if out and out not in keep:
                renames[out] = node.name if len(node.output) == 1 else f"{node.name}_{j}"
    first_use = {}
    for node in graph.node:
        for x in node.input:
            first_use.setdefault(x, len(first_use))
    inits = sorted(graph.initializer, key=lambda t: first_use.get(t.name, len(first_use)))
    for i, t in enumerate(inits):
        renames[t.name] = f"w{i}"
    if len(set(renames.values()) | keep) != len(renames) + len(keep):
        sys.exit("canonical names clash")
    for node in graph.node:
        node.input[:] = [renames.get(x, x) for x in node.input]
        node.output[:] = [renames.get(x, x) for x in node.output]
    copies = []
    for t in inits:
        c = onnx.TensorProto()
        c.CopyFrom(t)
        c.name = renames[t.name]
        copies.append(c)
    del graph.initializer[:]
    graph.initializer.extend(copies)
    for vi in graph.value_info:
        vi.name = renames.get(vi.name, vi.name)


def half_storage(graph):
    """Store each float32 initializer w as float16 `w_f16`, prepended by a node `Cast_w` turning it back into the
    float32 value `w` the graph reads (tract folds these constant casts at load)."""
    casts, halves = [], []
    for t in graph.initializer:
        if t.data_type != onnx.TensorProto.FLOAT:
            halves.append(t)
            continue
        arr = numpy_helper.to_array(t)
        halves.append(numpy_helper.from_array(arr.astype(np.float16), f"{t.name}_f16"))
        casts.append(onnx.helper.make_node("Cast", [f"{t.name}_f16"], [t.name], name=f"Cast_{t.name}",
                                           to=onnx.TensorProto.FLOAT))
    del graph.initializer[:]
    graph.initializer.extend(halves)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)


def tflite_reference(tflite_path, x):
    import tensorflow as tf

    interp = tf.lite.Interpreter(model_path=tflite_path)
    inp = interp.get_input_details()[0]
    if list(inp["shape"]) != list(x.shape):
        interp.resize_tensor_input(inp["index"], x.shape)
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    return [interp.get_tensor(o["index"]) for o in interp.get_output_details()]


def main():
    name, raw, tflite, out = sys.argv[1:5]
    model = onnx.load(raw)
    g = model.graph
    fix_batch_to_one(g)
    in_name, out_names = RENAMES[name]
    rename_value(g, g.input[0].name, in_name)
    for old, new in out_names.items():
        rename_value(g, old, new)
    model, ok = simplify(model)
    if not ok:
        sys.exit(f"{name}: onnxsim could not validate the simplified model")
    canonical_names(model.graph)
    half = name in HALF_STORAGE
    if half:
        half_storage(model.graph)
    del model.metadata_props[:]  # onnxsim's report, which quotes tf2onnx's generated names
    # tf2onnx records the path it was given; keep only the file name so the bytes do not depend on it.
    model.graph.doc_string = f"converted from {os.path.basename(tflite)} with tf2onnx"
    onnx.checker.check_model(model, full_check=True)
    for n in model.graph.node:
        if n.op_type == "ConstantOfShape" and not any(a.name == "value" for a in n.attribute):
            sys.exit(f"{name}: ConstantOfShape without value left after simplify")
    onnx.save(model, out)

    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(7).uniform(-1, 1, size=shape).astype(np.float32)
    sess = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    got = sess.run(None, {in_name: x})
    ref = tflite_reference(tflite, x if name != "mobilefacenet" else np.concatenate([x, x]))
    worst = 0.0
    for a, b in zip(got, ref):
        b = b[:1].reshape(a.shape)
        worst = max(worst, float(np.max(np.abs(a - b))))
    print(f"{name}: input {in_name} {shape}, outputs "
          f"{[(o.name, [d.dim_value for d in o.type.tensor_type.shape.dim]) for o in model.graph.output]}, "
          f"max |onnx - tflite| = {worst:.2e}")
    if worst > TOLERANCE["float16" if half else "float32"]:
        sys.exit(f"{name}: ONNX output differs from TFLite by {worst}")


if __name__ == "__main__":
    main()
