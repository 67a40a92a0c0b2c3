"""Converts dlib's ResNet face-recognition network (dlib_face_recognition_resnet_model_v1.dat) to ONNX.

    python dlib_to_onnx.py MODEL.dat OUT.onnx

The .dat file is dlib's own binary serialisation of `anet_type` (dlib's dnn_face_recognition_ex.cpp): a
29-convolution ResNet, 150x150 RGB in, 128-d out. This reader knows only the layer kinds that network uses
(con, affine, relu, max_pool, avg_pool, add_prev, fc) and fails loudly on anything else.

dlib's serialisation, as read here:
- integers: one header byte (low 4 bits = number of bytes that follow, bit 7 = negative), then the magnitude
  little-endian; floats outside tensors: an integer mantissa and an integer exponent (m x 2^e); strings: an
  integer length and the bytes; bools: one ASCII '0'/'1';
- tensors: version 2, the four dimensions (n, k, rows, cols), then raw little-endian float32 values;
- the network: the loss layer's details, then one version per layer from the top down (2 for a computing layer,
  1 for a tag or skip layer, 3 for the lowest layer, which holds the input layer), then the input layer, then each
  computing layer's details from the bottom up, each followed by 3 flags and 3 (empty) state tensors.

The weights (each after its batch norm is folded in) are stored as float16, each followed by a Cast to float32:
half the bytes of the float32 network, for a measured difference of at most 2.5e-4 on the 128 outputs against
dlib's own (cosine 1.000000; manifest.toml records it). The graph built here: NHWC float input (RGB, 0-255, as the rest of FacePay's models take it) -> transpose ->
dlib's input normalisation ((x - channel mean) / 256) -> the ResNet. Each `affine` (a batch norm frozen at
training time) is folded into the convolution before it. Residual additions follow dlib's `add_prev`: when the
two tensors differ in size, the smaller is zero-padded at the end of each axis (dlib adds over the overlap and
keeps the rest).
"""

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def int(self) -> int:
        head = self.data[self.pos]
        size = head & 0x0F
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if head & 0x80 else value

    def float(self) -> float:
        mantissa = self.int()
        exponent = self.int()
        return mantissa * 2.0**exponent

    def string(self) -> str:
        size = self.int()
        value = self.data[self.pos : self.pos + size]
        self.pos += size
        return value.decode("ascii")

    def flags(self, count: int) -> str:
        value = self.data[self.pos : self.pos + count].decode("ascii")
        if set(value) - {"0", "1"}:
            raise ValueError(f"expected {count} flags at byte {self.pos}, found {value!r}")
        self.pos += count
        return value

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise ValueError(f"tensor version {version} at byte {self.pos}")
        shape = [self.int() for _ in range(4)]
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos).copy()
        self.pos += 4 * count
        return values.reshape(shape)

    def alias(self) -> list:
        version = self.int()
        if version != 1:
            raise ValueError(f"alias_tensor version {version} at byte {self.pos}")
        return [self.int() for _ in range(4)]


def read_layers(data: bytes):
    """Returns (input layer dict, computing layers bottom-up as dicts)."""
    r = Reader(data)
    if r.int() != 1 or r.string() != "loss_metric_2":
        raise ValueError("not a dlib loss_metric network")
    r.float(), r.float()  # margin, distance threshold: training-time only
    versions = []
    while True:
        v = r.int()
        versions.append(v)
        if v == 3:
            break
        if v not in (1, 2):
            raise ValueError(f"unexpected layer version {v}")
    if r.string() != "input_rgb_image_sized":
        raise ValueError("expected input_rgb_image_sized")
    mean = [r.float(), r.float(), r.float()]
    rows, cols = r.int(), r.int()
    inp = {"mean": mean, "rows": rows, "cols": cols}
    layers = []
    while r.pos < len(r.data):
        name = r.string()
        if name == "con_4":
            params = r.tensor().ravel()
            filters, kr, kc, sy, sx, py, px = (r.int() for _ in range(7))
            wshape = r.alias()
            r.alias()
            [r.float() for _ in range(4)]
            n = int(np.prod(wshape))
            layer = {
                "kind": "con",
                "w": params[:n].reshape(wshape),
                "b": params[n : n + filters],
                "stride": (sy, sx),
                "pad": (py, px),
            }
            assert wshape[0] == filters and wshape[2:] == [kr, kc] and params.size == n + filters
        elif name == "affine_":
            params = r.tensor().ravel()
            r.alias()
            r.alias()
            mode = r.int()
            k = params.size // 2
            layer = {"kind": "affine", "gamma": params[:k], "beta": params[k:], "mode": mode}
        elif name.startswith("relu_"):
            layer = {"kind": "relu"}
        elif name.startswith("add_prev_"):
            layer = {"kind": "add_prev"}
        elif name in ("max_pool_2", "avg_pool_2"):
            kr, kc, sy, sx, py, px = (r.int() for _ in range(6))
            layer = {"kind": name[:3], "size": (kr, kc), "stride": (sy, sx), "pad": (py, px)}
        elif name == "fc_2":
            outputs, inputs = r.int(), r.int()
            params = r.tensor().ravel()
            r.alias()
            r.alias()
            bias_mode = r.int()
            [r.float() for _ in range(4)]
            if bias_mode != 1:
                raise ValueError("only fc_no_bias is supported")
            layer = {"kind": "fc", "w": params[: inputs * outputs].reshape(inputs, outputs)}
        else:
            raise ValueError(f"unsupported dlib layer {name!r} at byte {r.pos}")
        r.flags(3)
        for _ in range(3):
            r.tensor()
        if not layers:
            r.int()  # the lowest layer's extra field (sample expansion factor)
        layers.append(layer)
    computing = sum(1 for v in versions if v != 1)
    if computing != len(layers):
        raise ValueError(f"{computing} computing layers announced, {len(layers)} read")
    return inp, layers


class Graph:
    def __init__(self):
        self.nodes, self.inits, self.count = [], [], 0

    def const(self, value: np.ndarray, name: str) -> str:
        if value.dtype == np.float32 and value.size >= 16:
            # Weights are stored as float16 and cast back: half the bytes, here and in the NNEF form.
            self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value.astype(np.float16)), name + "_f16"))
            self.nodes.append(helper.make_node("Cast", [name + "_f16"], [name], name=name, to=TensorProto.FLOAT))
            return name
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, kind: str, inputs: list, **attrs) -> str:
        self.count += 1
        out = f"{kind.lower()}_{self.count}"
        self.nodes.append(helper.make_node(kind, inputs, [out], name=out, **attrs))
        return out


def build(inp: dict, layers: list) -> onnx.ModelProto:
    g = Graph()
    rows, cols = inp["rows"], inp["cols"]
    x = g.op("Transpose", ["input"], perm=[0, 3, 1, 2])
    mean = np.array(inp["mean"], dtype=np.float32).reshape(1, 3, 1, 1)
    x = g.op("Sub", [x, g.const(mean, "input_mean")])
    x = g.op("Mul", [x, g.const(np.array(1.0 / 256.0, dtype=np.float32), "input_scale")])
    # Shapes are tracked to pad residual additions of different sizes as dlib does.
    shape = [3, rows, cols]
    unit_in, unit_shape, block_out, block_shape = None, None, None, None
    i = 0
    while i < len(layers):
        layer = layers[i]
        kind = layer["kind"]
        if kind == "con":
            w, b = layer["w"], layer["b"]
            if i + 1 < len(layers) and layers[i + 1]["kind"] == "affine":
                gamma, beta = layers[i + 1]["gamma"], layers[i + 1]["beta"]
                w = w * gamma.reshape(-1, 1, 1, 1)
                b = b * gamma + beta
                i += 1
            (py, px), (sy, sx) = layer["pad"], layer["stride"]
            kr, kc = w.shape[2:]
            x = g.op(
                "Conv",
                [x, g.const(w.astype(np.float32), f"conv{i}_w"), g.const(b.astype(np.float32), f"conv{i}_b")],
                kernel_shape=[kr, kc],
                strides=[sy, sx],
                pads=[py, px, py, px],
            )
            shape = [w.shape[0], 1 + (shape[1] + 2 * py - kr) // sy, 1 + (shape[2] + 2 * px - kc) // sx]
        elif kind == "affine":
            raise ValueError("an affine layer that does not follow a convolution")
        elif kind == "relu":
            x = g.op("Relu", [x])
            # A residual unit starts after the stem's max pool and after each unit's closing relu.
            if i > 0 and layers[i - 1]["kind"] == "add_prev":
                unit_in, unit_shape = x, list(shape)
        elif kind in ("max", "avg") and layer["size"] == (0, 0):
            x = g.op("GlobalAveragePool", [x])
            shape = [shape[0], 1, 1]
        elif kind in ("max", "avg"):
            (kr, kc), (sy, sx), (py, px) = layer["size"], layer["stride"], layer["pad"]
            if kind == "avg":
                # dlib's skip layer: the pool applies to the unit's input; the block's output waits for add_prev.
                block_out, block_shape = x, list(shape)
                x, shape = unit_in, list(unit_shape)
            x = g.op(
                "MaxPool" if kind == "max" else "AveragePool",
                [x],
                kernel_shape=[kr, kc],
                strides=[sy, sx],
                pads=[py, px, py, px],
            )
            shape = [shape[0], 1 + (shape[1] + 2 * py - kr) // sy, 1 + (shape[2] + 2 * px - kc) // sx]
            if kind == "max":
                unit_in, unit_shape = x, list(shape)
        elif kind == "add_prev":
            if block_out is not None:
                other, other_shape = block_out, block_shape
                block_out = None
            else:
                other, other_shape = unit_in, unit_shape
            target = [max(a, b) for a, b in zip(shape, other_shape)]
            x = pad_to(g, x, shape, target)
            other = pad_to(g, other, other_shape, target)
            x = g.op("Add", [x, other])
            shape = target
        elif kind == "fc":
            x = g.op("Flatten", [x], axis=1)
            x = g.op("MatMul", [x, g.const(layer["w"].astype(np.float32), "fc_w")])
            shape = [layer["w"].shape[1]]
        i += 1
    g.nodes[-1].output[0] = "embedding"
    graph = helper.make_graph(
        g.nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, rows, cols, 3])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, shape[0]])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="facepay-dlib_to_onnx")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def pad_to(g: Graph, x: str, shape: list, target: list) -> str:
    if shape == target:
        return x
    ends = [t - s for s, t in zip(shape, target)]
    pads = np.array([0, 0, 0, 0, 0] + ends, dtype=np.int64)
    return g.op("Pad", [x, g.const(pads, f"pads_{g.count + 1}")])


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: dlib_to_onnx.py MODEL.dat OUT.onnx")
    inp, layers = read_layers(open(sys.argv[1], "rb").read())
    model = build(inp, layers)
    onnx.save(model, sys.argv[2])
    convs = sum(1 for l in layers if l["kind"] == "con")
    print(f"dlib_to_onnx: {len(layers)} layers ({convs} convolutions) -> {sys.argv[2]}", file=sys.stderr)


if __name__ == "__main__":
    main()
