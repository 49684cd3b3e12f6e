"""Camera calibration figures: recovery of known simulated cameras on both engines (rendered 640x480 checkerboard
views), and how the error grows as the views lose rotation spread (the thresholds' justification).
Run from the repo root: MUJOCO_GL=egl .venv/bin/python benchmarks/camera_calibration.py"""

import json
import sys
import time

import cv2
import numpy as np

import calibration.camera as cc
from calibration.camera import BoardSpec, View, calibrate
from calibration.camera_views import DEFAULT_SQUARE_M, render_views
from sim.robot import panda
from sim2real.calibrate_camera import forward_kinematics, truth_errors

SEEDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
N = 20
fk, _ = forward_kinematics(panda(), "panda_hand")
KEYS = ("fx_pct", "fy_pct", "cx_pct", "cy_pct", "position_mm", "angle_deg")


def run(backend, camera, mount, seed, distortion="plumb_bob", **kw):
    board = BoardSpec(9, 6, DEFAULT_SQUARE_M[camera])
    t0 = time.perf_counter()
    v = render_views(backend, camera, kw.pop("n", N), seed=seed, mount=mount, board=board, **kw)
    t1 = time.perf_counter()
    views = [View(n, cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), q) for n, im, q in zip(v.names, v.images, v.joints_rad)]
    cal = calibrate(views, board, fk, mount, distortion=distortion)
    t2 = time.perf_counter()
    e = truth_errors(cal.k, cal.x, v.k, v.x)
    e.update(
        render_s=t1 - t0,
        calibrate_s=t2 - t1,
        rms_px=cal.rms_px,
        tilt_rms_deg=cal.board_tilt_rms_deg,
        spread2_deg=cal.rotation_spread_deg[1],
        used=len(cal.used),
        cx_px=cal.k[0, 2] - v.k[0, 2],
        cy_px=cal.k[1, 2] - v.k[1, 2],
    )
    return e


out = {"recovery": [], "spread": []}
print("## recovery: 20 views, 640x480, worst and median over", SEEDS, "seeds")
print(
    "| engine | camera (mount) | model | fx % | fy % | cx % | cy % | position mm | angle deg | RMS px | render s | calibrate s |"  # noqa: E501
)
for backend in ("mujoco", "pybullet"):
    for camera, mount in (("scene", "scene"), ("front", "scene"), ("wrist", "wrist")):
        for model in ("plumb_bob", "none"):
            rows = [run(backend, camera, mount, s, model) for s in range(SEEDS)]
            out["recovery"].append({"backend": backend, "camera": camera, "mount": mount, "model": model, "runs": rows})
            worst = {k: max(r[k] for r in rows) for k in KEYS}
            med = {k: float(np.median([r[k] for r in rows])) for k in KEYS + ("rms_px", "render_s", "calibrate_s")}
            cells = " | ".join(f"{worst[k]:.2f} ({med[k]:.2f})" for k in KEYS)
            print(
                f"| {backend} | {camera} ({mount}) | {model} | {cells} | {med['rms_px']:.3f} | {med['render_s']:.1f} | "
                f"{med['calibrate_s']:.2f} |",
                flush=True,
            )

for backend, camera in (("pybullet", "front"), ("mujoco", "front")):
    rows = [run(backend, camera, "scene", s, "plumb_bob", n=30) for s in range(SEEDS)]
    out["recovery"].append(
        {"backend": backend, "camera": camera, "mount": "scene", "model": "plumb_bob", "views": 30, "runs": rows}
    )
    worst = {k: max(r[k] for r in rows) for k in KEYS}
    med = {k: float(np.median([r[k] for r in rows])) for k in KEYS + ("rms_px", "render_s", "calibrate_s")}
    cells = " | ".join(f"{worst[k]:.2f} ({med[k]:.2f})" for k in KEYS)
    print(
        f"| {backend} | {camera} (scene), 30 views | plumb_bob | {cells} | {med['rms_px']:.3f} | {med['render_s']:.1f} | "  # noqa: E501
        f"{med['calibrate_s']:.2f} |",
        flush=True,
    )

print(
    "\n## error against rotation spread (checks disabled), scene camera, 20 views, boards parallel to the image "
    "plane before the drawn tilt, worst over",
    SEEDS,
    "seeds",
)
print(
    "| engine | tilt drawn deg | board tilt RMS deg | link spread (2nd axis) deg | fx % | cx % | cy % | position mm | angle deg |"  # noqa: E501
)
cc.MIN_BOARD_TILT_RMS_DEG = 0.0
cc.MIN_ROTATION_SPREAD_DEG = 0.0
cc.MAX_INTRINSIC_STD_FRACTION = 1e9
cc.MAX_CHAIN_RESIDUAL_MM = cc.MAX_CHAIN_RESIDUAL_DEG = 1e9
for backend in ("mujoco", "pybullet"):
    for lo, hi, roll in (
        (0.0, 0.0, 0.0),
        (0.0, 2.0, 2.0),
        (1.0, 4.0, 4.0),
        (2.0, 7.0, 7.0),
        (4.0, 10.0, 10.0),
        (8.0, 16.0, 15.0),
        (15.0, 40.0, 25.0),
    ):
        rows = []
        for s in range(SEEDS):
            try:
                rows.append(run(backend, "scene", "scene", s, tilt_deg=(lo, hi), roll_deg=roll, parallel=True))
            except Exception as e:  # a degenerate set may not calibrate at all
                rows.append({"error": str(e)[:120]})
        good = [r for r in rows if "error" not in r]
        out["spread"].append({"backend": backend, "tilt_deg": [lo, hi], "roll_deg": roll, "runs": rows})
        if not good:
            print(f"| {backend} | {lo:g}-{hi:g} | - | - | failed: {rows[0]['error']} |")
            continue
        w = {k: max(r[k] for r in good) for k in KEYS}
        t = float(np.median([r["tilt_rms_deg"] for r in good]))
        sp = float(np.median([r["spread2_deg"] for r in good]))
        print(
            f"| {backend} | {lo:g}-{hi:g} (roll {roll:g}) | {t:.1f} | {sp:.1f} | {w['fx_pct']:.2f} | {w['cx_pct']:.2f} | "  # noqa: E501
            f"{w['cy_pct']:.2f} | {w['position_mm']:.2f} | {w['angle_deg']:.2f} |"
            + (f" ({len(rows) - len(good)} failed)" if len(good) < len(rows) else ""),
            flush=True,
        )
with open("bench_camera_calibration.json", "w") as f:
    json.dump(out, f, indent=1, default=float)
