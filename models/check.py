"""Checks the committed models' preprocessing by accuracy, with onnxruntime.

Run by a maintainer (never by tests), in the venv that models/reproduce.sh creates:

    models/.work/venv/bin/python models/check.py [--shared ../shared] [--json]

1. BlazeFace (letterboxed, RGB, x/127.5-1) must find a face in every LFW View 1 image.
2. Face mesh (rotated ROI 1.5x the box, RGB, x/255) must put its landmarks on that face.
3. MobileFaceNet (5 mesh points aligned to the ArcFace template, RGB, (x-127.5)/128) is scored
   on the View 1 protocol: threshold tuned on DevTrain, accuracy and TAR at FAR on DevTest.
Progress goes to stderr; the figures are printed on stdout (one JSON object with --json).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

MODELS = os.path.dirname(os.path.abspath(__file__))

# ArcFace 112x112 five-point template: image-left eye, image-right eye, nose tip, mouth corners.
ARCFACE = np.array(
    [[38.29, 51.70], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]], np.float32
)
# Face-mesh indices for those points (eye = mean of its two corners).
MESH_EYE_IMAGE_LEFT = (33, 133)
MESH_EYE_IMAGE_RIGHT = (362, 263)
MESH_NOSE_TIP = 1
MESH_MOUTH = (61, 291)


def blazeface_anchors():
    """896 anchor centres (x, y) in 0..1: stride 8 with 2 per cell, then stride 16 with 6 per cell."""
    out = []
    for stride, per_cell in ((8, 2), (16, 6)):
        cells = 128 // stride
        for y in range(cells):
            for x in range(cells):
                out.extend([((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell)
    return np.array(out, np.float32)


ANCHORS = blazeface_anchors()


def warp(img, dst_to_src, w, h):
    """Bilinear sampling of img through a 2x3 destination->source affine (outside = black)."""
    # Continuous coordinates (pixel i spans [i, i+1]), as PIL samples output pixel centres at +0.5.
    return np.asarray(img.transform((w, h), Image.AFFINE, tuple(dst_to_src), Image.BILINEAR), np.float32)


def letterbox_map(width, height, size):
    """dst->src affine that fits a width x height frame, centred with black bars, into size x size."""
    side = max(width, height)
    s = side / size
    return (s, 0.0, (width - side) / 2.0, 0.0, s, (height - side) / 2.0)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80, 80)))


class Models:
    def __init__(self, threads=0):
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        load = lambda n: ort.InferenceSession(os.path.join(MODELS, n + ".onnx"), opts, providers=["CPUExecutionProvider"])
        self.det = load("face_detection_short_range")
        self.mesh = load("face_landmark")
        self.emb = load("mobilefacenet")

    def detect(self, img, min_score=0.5, iou=0.3):
        """Faces after non-maximum suppression, best first: [(score, box (x0, y0, x1, y1), keypoints [6,2])]
        in image pixels. Always returns at least the best-scoring anchor."""
        m = letterbox_map(img.width, img.height, 128)
        x = warp(img, m, 128, 128) / 127.5 - 1.0
        reg, cls = self.det.run(None, {"input": x[None]})
        scores = sigmoid(cls[0, :, 0])
        r = reg[0] / 128.0
        centre = r[:, :2] + ANCHORS
        boxes = np.concatenate([centre - r[:, 2:4] / 2, centre + r[:, 2:4] / 2], 1) * 128
        kps = (r[:, 4:16].reshape(-1, 6, 2) + ANCHORS[:, None]) * 128
        # Undo the letterbox: 128-px input -> frame pixels.
        boxes = boxes * m[0] + np.array([m[2], m[5], m[2], m[5]], np.float32)
        kps = kps * m[0] + np.array([m[2], m[5]], np.float32)
        order = [int(i) for i in np.argsort(-scores) if scores[i] >= min_score] or [int(np.argmax(scores))]
        kept = []
        for i in order:
            if all(box_iou(boxes[i], boxes[j]) <= iou for j in kept):
                kept.append(i)
        return [(float(scores[i]), boxes[i], kps[i]) for i in kept]

    def landmarks(self, img, box, kp):
        """468 mesh points [468,3] in image pixels (z scaled like x) and the face-presence probability,
        from a detection: square ROI 1.5x the box, rotated so the eye keypoints are level."""
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        side = 1.5 * max(box[2] - box[0], box[3] - box[1])
        angle = math.atan2(kp[1, 1] - kp[0, 1], kp[1, 0] - kp[0, 0])  # image-left eye -> image-right eye
        return self.mesh_in_roi(img, centre, side, angle)

    def refine(self, img, mesh):
        """Second mesh pass on the ROI the first pass implies (as MediaPipe does when tracking):
        the landmarks' bounding box scaled 1.5, rotated by the outer eye corners 33 -> 263."""
        lo, hi = mesh[:, :2].min(0), mesh[:, :2].max(0)
        (x0, y0), (x1, y1) = mesh[33, :2], mesh[263, :2]
        return self.mesh_in_roi(img, (lo + hi) / 2, 1.5 * float(max(hi - lo)), math.atan2(y1 - y0, x1 - x0))

    def mesh_in_roi(self, img, centre, side, angle):
        cx, cy = centre
        s, c, sin = side / 192.0, math.cos(angle), math.sin(angle)
        # dst (u, v) -> src: rotate the centred crop by +angle and scale by s.
        m = (s * c, -s * sin, cx - 96 * s * c + 96 * s * sin, s * sin, s * c, cy - 96 * s * sin - 96 * s * c)
        x = warp(img, m, 192, 192) / 255.0
        pts, flag = self.mesh.run(None, {"input": x[None]})
        p = pts.reshape(468, 3)
        xs = m[0] * p[:, 0] + m[1] * p[:, 1] + m[2]
        ys = m[3] * p[:, 0] + m[4] * p[:, 1] + m[5]
        return np.stack([xs, ys, p[:, 2] * s], -1), float(sigmoid(flag.reshape(-1)[0]))

    def embed(self, img, mesh, flip=False):
        pts = np.array(
            [
                mesh[list(MESH_EYE_IMAGE_LEFT), :2].mean(0),
                mesh[list(MESH_EYE_IMAGE_RIGHT), :2].mean(0),
                mesh[MESH_NOSE_TIP, :2],
                mesh[MESH_MOUTH[0], :2],
                mesh[MESH_MOUTH[1], :2],
            ],
            np.float32,
        )
        m = similarity_dst_to_src(ARCFACE, pts)
        crop = warp(img, m, 112, 112)
        if flip:
            crop = crop[:, ::-1]
        x = (crop - 127.5) / 128.0
        e = self.emb.run(None, {"input": np.ascontiguousarray(x[None])})[0][0]
        return e / np.linalg.norm(e)


def box_iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def central_face(faces, width, height):
    """The detection whose box centre is nearest the image centre (LFW's subject is centred)."""
    dist = lambda f: np.hypot((f[1][0] + f[1][2]) / 2 - width / 2, (f[1][1] + f[1][3]) / 2 - height / 2)
    return min(faces, key=dist)


def similarity_dst_to_src(dst, src):
    """Least-squares similarity (Umeyama) mapping template points dst onto image points src."""
    mu_d, mu_s = dst.mean(0), src.mean(0)
    d, s = dst - mu_d, src - mu_s
    cov = s.T @ d / len(dst)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u @ vt) < 0:
        sign[1, 1] = -1
    r = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / d.var(0).sum()
    a = scale * r
    t = mu_s - a @ mu_d
    return (a[0, 0], a[0, 1], t[0], a[1, 0], a[1, 1], t[1])


def read_pairs(path):
    pairs = []
    with open(path) as f:
        next(f)
        for line in f:
            p = line.split()
            if len(p) == 3:
                pairs.append(((p[0], int(p[1])), (p[0], int(p[2])), True))
            elif len(p) == 4:
                pairs.append(((p[0], int(p[1])), (p[2], int(p[3])), False))
    return pairs


def image_path(root, person, idx):
    return os.path.join(root, "images", person, f"{person}_{idx:04d}.jpg")


def tar_at_far(same, diff, far):
    """Genuine accept rate at the lowest threshold whose impostor accept rate is <= far."""
    diff = np.sort(diff)[::-1]
    k = int(math.floor(far * len(diff)))
    thr = diff[k] if k < len(diff) else -1.0  # accept strictly above the (k+1)-th highest impostor score
    return float(np.mean(same > thr)), float(thr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=os.environ.get("FACEPAY_SHARED", os.path.join(MODELS, "..", "..", "shared")))
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    ap.add_argument("--overlay", help="write a few landmark overlays (PNG) into this folder")
    args = ap.parse_args()
    lfw = os.path.join(args.shared, "data", "lfw-view1")
    if not os.path.isdir(os.path.join(lfw, "images")):
        sys.exit(f"check.py: LFW View 1 not found at {lfw} (set --shared or FACEPAY_SHARED)")

    models = Models()
    train, test = read_pairs(os.path.join(lfw, "pairsDevTrain.txt")), read_pairs(os.path.join(lfw, "pairsDevTest.txt"))
    names = sorted({a for p in train + test for a in p[:2]})
    emb, emb_flip, emb_refined = {}, {}, {}
    stats = {"images": len(names), "detected": 0, "keypoint0_image_left": 0, "mesh_present": 0,
             "mesh_inside_box": 0, "mesh_covers_centre": 0, "multiple_faces": 0}
    det_scores, t0 = [], time.time()
    for n, key in enumerate(names):
        img = Image.open(image_path(lfw, *key)).convert("RGB")
        faces = models.detect(img)
        stats["multiple_faces"] += len(faces) > 1
        score, box, kp = central_face(faces, img.width, img.height)
        det_scores.append(score)
        stats["detected"] += score > 0.5
        stats["keypoint0_image_left"] += kp[0, 0] < kp[1, 0]
        mesh, presence = models.landmarks(img, box, kp)
        stats["mesh_present"] += presence > 0.5
        bw, bh = box[2] - box[0], box[3] - box[1]
        inside = ((mesh[:, 0] > box[0] - 0.25 * bw) & (mesh[:, 0] < box[2] + 0.25 * bw)
                  & (mesh[:, 1] > box[1] - 0.5 * bh) & (mesh[:, 1] < box[3] + 0.25 * bh))
        stats["mesh_inside_box"] += inside.mean() > 0.95
        # Deep-funneled LFW images are 250x250 with the subject's face over the centre.
        lo, hi = mesh[:, :2].min(0), mesh[:, :2].max(0)
        stats["mesh_covers_centre"] += bool(np.all(lo < 125) and np.all(hi > 125))
        emb[key] = models.embed(img, mesh)
        emb_flip[key] = models.embed(img, mesh, flip=True)
        mesh2, _ = models.refine(img, mesh)
        emb_refined[key] = models.embed(img, mesh2)
        if args.overlay and n < 6:
            draw_overlay(img, box, kp, mesh, os.path.join(args.overlay, f"overlay_{n}.png"))
        if n % 500 == 0:
            print(f"check.py: {n}/{len(names)} images, {time.time() - t0:.0f} s", file=sys.stderr)
    stats["min_detection_score"] = float(min(det_scores))

    def scores(pairs, table):
        s = np.array([float(table[a] @ table[b]) for a, b, _ in pairs])
        y = np.array([same for _, _, same in pairs])
        return s, y

    def evaluate(table):
        s_tr, y_tr = scores(train, table)
        cands = np.unique(s_tr)
        accs = [np.mean((s_tr > t) == y_tr) for t in cands]
        thr = float(cands[int(np.argmax(accs))])
        s_te, y_te = scores(test, table)
        tar2, _ = tar_at_far(s_te[y_te], s_te[~y_te], 1e-2)
        tar3, _ = tar_at_far(s_te[y_te], s_te[~y_te], 1e-3)
        return {"threshold": round(thr, 4), "devtrain_accuracy": round(float(max(accs)), 4),
                "devtest_accuracy": round(float(np.mean((s_te > thr) == y_te)), 4),
                "devtest_tar_at_far_1e-2": round(tar2, 4), "devtest_tar_at_far_1e-3": round(tar3, 4),
                "devtest_pairs": len(test)}

    flip_avg = {}
    for k in emb:
        v = emb[k] + emb_flip[k]
        flip_avg[k] = v / np.linalg.norm(v)
    result = {"lfw_view1": {k: (int(v) if isinstance(v, (bool, np.integer)) else v) for k, v in stats.items()},
              "verification": evaluate(emb), "verification_flip_averaged": evaluate(flip_avg),
              "verification_refined_roi": evaluate(emb_refined),
              "seconds": round(time.time() - t0, 1)}
    result.update(check_clip_frame(models, args.shared))
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))


def check_clip_frame(models, shared):
    """Letterbox sanity on a 640x480 webcam frame: a face is found and the mesh agrees with it."""
    path = os.path.join(shared, "data", "clips", "live-blink-7", "00001.jpg")
    img = Image.open(path).convert("RGB")
    faces = models.detect(img)
    score, box, kp = faces[0]
    mesh, presence = models.landmarks(img, box, kp)
    return {"clip_frame": {"size": [img.width, img.height], "faces": len(faces), "detection_score": round(score, 4),
                           "box": [round(float(v), 1) for v in box], "mesh_presence": round(presence, 4),
                           "nose_tip": [round(float(v), 1) for v in mesh[MESH_NOSE_TIP, :2]]}}


def draw_overlay(img, box, kp, mesh, path):
    from PIL import ImageDraw

    os.makedirs(os.path.dirname(path), exist_ok=True)
    im = img.copy()
    d = ImageDraw.Draw(im)
    d.rectangle([float(v) for v in box], outline=(0, 255, 0))
    for x, y, _ in mesh:
        d.point((float(x), float(y)), fill=(255, 0, 0))
    for i, (x, y) in enumerate(kp):
        d.ellipse([x - 2, y - 2, x + 2, y + 2], outline=(0, 0, 255) if i else (255, 255, 0))
    im.save(path)


if __name__ == "__main__":
    main()
