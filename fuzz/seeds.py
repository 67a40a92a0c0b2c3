"""Writes the committed seed corpora of the fuzz targets into fuzz/corpus/<target>/ (deterministic output).

    python3 fuzz/seeds.py        # needs cjpeg (Debian: libjpeg-turbo-progs) for the JPEG seeds

Every seed is synthetic (made here, no third-party data): frames of every pixel format, sizes, strides and
rotations; small PNG and JPEG images (grey, RGB, odd sizes, progressive); canonical payment payloads; template
payloads and a sealed-file header; the server's JSON request bodies.
"""
import base64
import json
import os
import struct
import subprocess
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def pixels(n, salt=0):
    return bytes((i * 7 + (i >> 6) * 13 + salt) & 0xFF for i in range(n))


# frame_convert: 12 header bytes (format, width lo/hi, height lo/hi, stride extra, rotation mode/quarters, 2 spare
# rotation bytes, mirror|length delta, chroma pixel stride) then pixel bytes cycled to the plane lengths.
def frame_header(fmt, w_off, h_off, stride_extra=0, quarters=0, mirror=0, delta=4, ps=1, raw=None):
    b = bytearray(12)
    b[0] = fmt
    b[1], b[2] = w_off, 0
    b[3], b[4] = h_off, 0
    b[5] = stride_extra & 0xFF
    b[6] = 0
    b[7] = (128 + quarters) & 0xFF
    b[10] = (mirror & 1) | ((delta & 7) << 1)
    b[11] = ps
    if raw is not None:
        b[6] |= 1
        b[7:10] = raw[:3]
        b[6] = raw[3] | 1
    return bytes(b)


for fmt, name in enumerate(["rgb8", "bgra8", "bgr8", "gray8", "yuyv", "nv21", "nv12", "yuv420", "contiguous"]):
    for q in range(4):
        write("frame_convert", f"{name}-r{q * 90}", frame_header(fmt, 8 + q, 3, stride_extra=q, quarters=q, mirror=q & 1) + pixels(512, fmt))
    write("frame_convert", f"{name}-short", frame_header(fmt, 0, 0, delta=2) + pixels(64))
    write("frame_convert", f"{name}-narrow-stride", frame_header(fmt, 31, 17, stride_extra=-3) + pixels(300))
write("frame_convert", "yuv420-interleaved", frame_header(7, 1, 1, ps=2) + pixels(256))
write("frame_convert", "yuv420-bad-pixel-stride", frame_header(7, 1, 1, ps=3) + pixels(256))
write("frame_convert", "contiguous-nv12", frame_header(8, 4, 4, ps=0x80) + pixels(256))
write("frame_convert", "rotation-45", frame_header(0, 0, 0, raw=bytes([45, 0, 0, 0])) + pixels(128))


# image_decode: PNGs written here, JPEGs through cjpeg from the same pixels.
def png(w, h, color_type, data_fn, interlace=0):
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    raw = b"".join(b"\x00" + bytes(data_fn(x, y, c) for x in range(w) for c in range(channels)) for y in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, interlace)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


gradient = lambda x, y, c: (x * 5 + y * 3 + c * 40) & 0xFF
write("image_decode", "rgb-32x32.png", png(32, 32, 2, gradient))
write("image_decode", "grey-33x40.png", png(33, 40, 0, gradient))
write("image_decode", "rgba-40x32.png", png(40, 32, 6, gradient))
write("image_decode", "grey-alpha-32x33.png", png(32, 33, 4, gradient))
write("image_decode", "too-small-8x8.png", png(8, 8, 2, gradient))


def ppm(w, h):
    return f"P6 {w} {h} 255\n".encode() + bytes(gradient(x, y, c) for y in range(h) for x in range(w) for c in range(3))


for args, name in [([], "baseline-48x32.jpg"), (["-progressive"], "progressive-33x47.jpg"), (["-grayscale"], "grey-32x32.jpg"),
                   (["-sample", "1x1"], "444-40x40.jpg")]:
    size = tuple(int(v) for v in name.split("-")[-1].split(".")[0].split("x"))
    jpeg = subprocess.run(["cjpeg", "-quality", "80", *args], input=ppm(*size), capture_output=True, check=True).stdout
    write("image_decode", name, jpeg)
    write("image_decode", "truncated-" + name, jpeg[: len(jpeg) * 2 // 3])


# payload_decode / server_json: canonical payloads as docs/protocol.md defines them.
def put_str(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def payload(challenges=(1, 1), antispoof=0.93, versions=("face_detection_short_range@c26b58af5100", "mobilefacenet@edd9a2b6eb80")):
    out = b"FPAY" + bytes([1])
    out += put_str("m_0123456789abcdef") + put_str("order-1") + struct.pack(">Q", 1250) + b"EUR"
    out += bytes(range(32)) + bytes(range(32, 64)) + put_str("device-1") + struct.pack(">Q", 1)
    out += bytes([1, len(challenges), *challenges])
    out += b"\x00" if antispoof is None else b"\x01" + struct.pack(">f", antispoof)
    out += struct.pack(">f", 0.71) + bytes([len(versions)]) + b"".join(put_str(v) for v in versions)
    out += struct.pack(">QQ", 1_700_000_000_000, 1_700_000_004_000)
    return out


write("payload_decode", "blink-blink", payload())
write("payload_decode", "three-challenges-no-antispoof", payload(challenges=(1, 2, 3), antispoof=None))
write("payload_decode", "one-version", payload(versions=("mobilefacenet@edd9a2b6eb80",)))
write("payload_decode", "truncated", payload()[:60])


# template_codec: plaintext payloads (u16 version | u64 created_at_ms | u8 model_len | model | u8 count | u16 dim |
# count x dim x f32, little-endian) and a sealed-file prefix.
def template(count=3, dim=4, model="mobilefacenet@edd9a2b6eb80", version=1):
    vec = [0.5, 0.5, 0.5, 0.5][:dim] + [0.0] * max(0, dim - 4)
    body = b"".join(struct.pack("<f", v) for _ in range(count) for v in vec)
    m = model.encode()
    return struct.pack("<HQB", version, 1_700_000_000_000, len(m)) + m + struct.pack("<BH", count, dim) + body


write("template_codec", "three-of-4", template())
write("template_codec", "five-of-4", template(count=5))
write("template_codec", "version-2", template(version=2))
write("template_codec", "sealed-header", b"FPTM" + bytes([1, 7]) + b"default" + bytes(12) + bytes(40))

# server_json: each endpoint's body.
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
bodies = {
    "orders": {"order_id": "order-1", "amount_minor": 1250, "currency": "EUR", "items_digest": b64(bytes(32))},
    "enrollments": {"account_id": "shopper-1"},
    "registration-challenge": {"enrollment_token": "et_abc"},
    "devices": {"enrollment_token": "et_abc", "device_id": "device-1", "public_key": b64(b"\x04" + bytes(64))},
    "challenge": {"device_id": "device-1"},
    "pay": {"payload": b64(payload()), "signature": b64(bytes(70))},
    "unknown-field": {"account_id": "x", "extra": 1},
}
for name, body in bodies.items():
    write("server_json", name + ".json", json.dumps(body, separators=(",", ":")).encode())
